"""Routing: ``[[routes]]`` rules, read top to bottom, decide which sinks and team get a record.

A rule matches when every condition in its ``when`` table holds. The first matching rule decides,
unless it says ``continue = true``, in which case later rules may add sinks. Noise (spam, news) is
routed only by a rule that names that type explicitly, so a catch-all rule never ships spam.

A reactive record (addressed to a brand handle) that is not noise and that no rule matched goes to
the ``[routing] unmatched`` fallback when one is set, so nothing addressed to the brand falls
through. ``route`` is the one routing decision: the rules, the fallback, then the do-not-engage list. The pipeline, the
command line's ``classify`` and a person's correction (``services.feedback``) all call it.
"""
from __future__ import annotations

from typing import Collection, Iterable, Sequence

from socialcrm.core.engine.config import PrivacyConfig, Route, UnmatchedRoute
from socialcrm.core.engine.donotengage import hold_back
from socialcrm.core.sdk.model import NOISE_TYPES, Record

_LIST_FIELDS = {
    "type": lambda r: r.type,
    "sentiment": lambda r: r.sentiment.label,
    "priority": lambda r: r.priority,
    "mode": lambda r: r.mode,
    "network": lambda r: r.network,
    "source": lambda r: r.source,
    "lang": lambda r: r.lang,
}


def matches(route: Route, record: Record) -> str | None:
    """Why the route matches the record (a readable list of the conditions), or None if it does not."""
    why: list[str] = []
    when = route.when
    if record.type in NOISE_TYPES and record.type not in when.get("type", ()):
        return None
    for name, value_of in _LIST_FIELDS.items():
        if name in when:
            value = value_of(record)
            if value not in when[name]:
                return None
            why.append(f"{name} is {value}")
    if "fraud" in when:
        if record.fraud != when["fraud"]:
            return None
        why.append("fraud" if record.fraud else "not fraud")
    if "min_influence" in when:
        if record.influence.score < when["min_influence"]:
            return None
        why.append(f"influence {record.influence.score} >= {when['min_influence']}")
    return " and ".join(why) or "matches everything"


def route_record(record: Record, routes: Iterable[Route], enabled_sinks: set[str],
                 unmatched: UnmatchedRoute | None = None) -> None:
    """Set ``record.route``, ``record.team`` and add the routing reason; a reactive, non-noise record no
    rule matched goes to ``unmatched`` (the ``[routing] unmatched`` fallback) when given."""
    sinks: list[str] = []
    matched = False
    for route in routes:
        why = matches(route, record)
        if why is None:
            continue
        matched = True
        for sink in route.sinks:
            if sink in enabled_sinks and sink not in sinks:
                sinks.append(sink)
        record.team = record.team or route.team
        target = ", ".join(route.sinks) or "no sink"
        team = f", team {route.team}" if route.team else ""
        record.reasons.append(f"route {route.name!r}: {why} -> {target}{team}")
        if not route.continue_:
            break
    if not matched and unmatched is not None and record.mode == "reactive" and record.type not in NOISE_TYPES:
        sinks = [sink for sink in unmatched.sinks if sink in enabled_sinks]
        record.team = record.team or unmatched.team
        team = f", team {unmatched.team}" if unmatched.team else ""
        record.reasons.append(f"route: no rule matched a reactive {record.type}: the [routing] unmatched "
                              f"fallback -> {', '.join(unmatched.sinks)}{team}")
        matched = True
    if not matched:
        noise = " (noise is routed only by a rule naming its type)" if record.type in NOISE_TYPES else ""
        record.reasons.append(f"route: no rule matched, kept without delivery{noise}")
    record.route = sinks


def route(records: Sequence[Record], rules: Sequence[Route], enabled_sinks: set[str], privacy: PrivacyConfig,
          blocked_keys: Collection[str] = (), unmatched: UnmatchedRoute | None = None) -> int:
    """Decide each record's route and team by the rules, then hold back those whose author is on the
    do-not-engage list (the config's entries, or ``blocked_keys``: the store's, see
    ``donotengage.stored_keys``), each decision with its reason. ``unmatched`` is the config's
    ``routing.unmatched`` fallback. Returns how many were held back."""
    for record in records:
        route_record(record, rules, enabled_sinks, unmatched)
    return hold_back(records, privacy, blocked_keys)


def unrouted(record: Record) -> bool:
    """Whether the record reaches no sink although it is not noise: what the run summary and
    ``status`` count as unrouted."""
    return not record.route and record.type not in NOISE_TYPES
