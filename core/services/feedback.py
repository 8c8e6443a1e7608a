"""People correcting a record: the one place the CLI and the API both go through.

A correction is kept in ``feedback`` with who and when (it is what ``socialcrm train`` learns from),
audited, and recomputes what depends on it: a new type or sentiment gets the priority and action the
learner's own rules give it, and a re-route goes through the pipeline's routing decision
(``routing.route``): newly routed sinks get the record, dropped ones lose unsent rows.
"""
from __future__ import annotations

from typing import Any, Sequence

from socialcrm.core.engine.config import Config
from socialcrm.core.engine.donotengage import hold_back, stored_keys
from socialcrm.core.engine.learning.priority import prioritise
from socialcrm.core.engine.routing import route as route_by_rules
from socialcrm.core.sdk.model import Record
from socialcrm.core.store import Store


def correct_record(store: Store, config: Config, enabled_sinks: set[str], record_id: str, who: str, *,
                   type_: str | None = None, sentiment: str | None = None, route: Sequence[str] | None = None,
                   reroute: bool = False, note: str | None = None, now: float | None = None) -> dict[str, Any] | None:
    """Apply a correction in one transaction; returns what changed, or None when there is no such record.

    ``changes`` holds what the person corrected (kept for learning); ``recomputed`` what followed from it
    (priority, action)."""
    recomputed: dict[str, tuple[Any, Any]] = {}

    def change(record: Record, conn) -> dict[str, tuple[Any, Any]]:
        changes: dict[str, tuple[Any, Any]] = {}
        if type_ is not None and type_ != record.type:
            changes["type"] = (record.type, type_)
            record.type = type_
        if sentiment is not None and sentiment != record.sentiment.label:
            changes["sentiment"] = (record.sentiment.label, sentiment)
            record.sentiment.label = sentiment
        if changes:
            said = ", ".join(f"{k} {old} -> {new}" for k, (old, new) in changes.items())
            record.reasons.append(f"corrected by {who}: {said}")
            recomputed.update(_reprioritise(record, config.learning.high_influence, who, config.learning.high_reach))
        if route is None and not reroute:
            return changes
        old_route = list(record.route)
        blocked = stored_keys(conn, [record], config.privacy)
        if route is not None:  # a person's choice of sinks, still kept from anyone on the do-not-engage list
            record.route = list(dict.fromkeys(route))
            record.reasons.append(f"route set by {who}: {', '.join(record.route) or 'no sink'}")
            hold_back([record], config.privacy, blocked)
        else:
            record.team = None
            route_by_rules([record], config.routes, enabled_sinks, config.privacy, blocked, config.routing.unmatched)
        if record.route != old_route:
            changes["route"] = (old_route, record.route)
        return changes

    result = store.apply_feedback(record_id, who, change, note=note, now=now)
    return None if result is None else {**result, "recomputed": recomputed}


def _reprioritise(record: Record, high_influence: int, who: str,
                  high_reach: int = 10_000) -> dict[str, tuple[Any, Any]]:
    """Give a corrected record the priority and action the learner's rules give its new type and
    sentiment, with the reason; returns what that changed as ``{field: (old, new)}``."""
    before = {"priority": record.priority, "action": record.action}
    record.priority, record.action, why = prioritise(record, high_influence, high_reach)
    record.reasons.append(f"{why} (recomputed after the correction by {who})")
    return {k: (old, getattr(record, k)) for k, old in before.items() if getattr(record, k) != old}
