"""Incidents: an outage wave (near-identical complaints from many accounts) becomes one incident.

Each complaint (a ``case`` or ``rant``) is reduced to its key terms: the words of the post once links,
handles, numbers, punctuation and the brand's own names are taken out, so what is left says the fault,
the place and the product ("no internet leeds fibre since morning"). A group's signature is the terms
at least half its members use. A complaint joins the group, still open within ``[incidents] window``
of its last post, whose signature it shares most (Jaccard similarity of the two term sets, at least
``SIMILARITY``), or starts a group of its own. A group with posts from
``min_accounts`` accounts becomes an incident: one record of type ``incident`` (``INCIDENT_TYPE``) with
its ``incident_summary`` (posts, accounts, first and last post, the terms most members share, example
posts), routed to the members' sinks, while every member keeps its own record, linked by
``record.incident`` and explained in its reasons. Later members of an open incident join it at once.

Measured on the test wave (tests/test_incidents.py): 125 posts from 40 accounts, written from a dozen
phrasings of one outage, group at 0.5 while none of the 395 bundled sample posts joins them or forms
an incident of its own.
"""
from __future__ import annotations

import hashlib
import logging
import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from socialcrm.core.engine.config import IncidentsConfig
from socialcrm.core.sdk.brand import Brand
from socialcrm.core.sdk.model import INCIDENT_TYPE, PRIORITIES, IncidentSummary, Record, Sentiment

if TYPE_CHECKING:  # pragma: no cover
    from socialcrm.core.store import Transaction

log = logging.getLogger(__name__)

COMPLAINT_TYPES = ("case", "rant")
#: The least Jaccard similarity of key terms at which a complaint joins a group.
SIMILARITY = 0.5
#: Complaints with fewer key terms than this say too little to be grouped.
MIN_TERMS = 3
EXAMPLES = 3
TOP_TERMS = 8
_NOT_WORDS = re.compile(r"https?://\S+|www\.\S+|@[\w.@]+|\d+|[^\w\s]|_")


def key_terms(text: str, brand_words: Iterable[str] = ()) -> frozenset[str]:
    """The words of a post that say what it is about: links, handles, numbers, punctuation, words of
    one or two letters and the brand's names taken out."""
    skip = set(brand_words)
    return frozenset(w for w in _NOT_WORDS.sub(" ", text.lower()).split() if len(w) > 2 and w not in skip)


def similarity(a: frozenset[str], b: frozenset[str]) -> float:
    """Jaccard similarity of two term sets (0 when both are empty)."""
    union = len(a | b)
    return len(a & b) / union if union else 0.0


def brand_words(brand: Brand) -> set[str]:
    """The brand's name, handles and keywords as lower-case words, left out of key terms."""
    return {w for name in (brand.name, *brand.handles, *brand.keywords) for w in key_terms(name)}


def author_key(record: Record) -> str:
    """Who posted a record, as one key per account."""
    return f"{record.network}:{record.author.id or record.author.handle or record.id}"


def group_incidents(tx: "Transaction", records: Sequence[Record], config: IncidentsConfig,
                    brand: Brand, signatures: "Signatures | None" = None) -> list[tuple[dict[str, Any], list[Record]]]:
    """Group this page's complaints with each other and with the stored groups, and link members of
    incidents (this page's records in place, earlier pages' in the store). Returns the groups that
    become incidents now, each with its members: once this page is routed, ``incident_record`` makes
    their incident records, to be saved with the page before their members. ``signatures`` keeps the
    groups' signatures from one page to the next (a pipeline holds one); only the groups that gained
    members are written back."""
    complaints = sorted((r for r in records if r.type in COMPLAINT_TYPES and r.incident is None),
                        key=lambda r: r.created_at)
    if not config.enabled or not complaints:
        return []
    window = timedelta(seconds=config.window)
    groups = tx.incident_groups(complaints[0].created_at - window)
    signatures = signatures if signatures is not None else Signatures()
    signatures.keep_only(g["id"] for g in groups)
    skip = brand_words(brand)
    touched: dict[str, dict[str, Any]] = {}
    joined: dict[str, list[Record]] = {}
    candidates = _Candidates(groups, signatures)
    for record in complaints:
        terms = key_terms(record.content, skip)
        if len(terms) < MIN_TERMS:
            continue
        group = candidates.best(terms, record.created_at, window)
        if group is None:
            group = _new_group(record, terms)
        _add_member(group, record, terms)
        candidates.add(group)
        touched[group["id"]] = group
        joined.setdefault(group["id"], []).append(record)
    opened: list[tuple[dict[str, Any], list[Record]]] = []
    for group_id, group in touched.items():
        members = joined[group_id]
        if group["opened"]:
            _link(members, group)
            _refresh_incident(tx, group)
        elif len(set(group["authors"])) >= config.min_accounts:
            group["opened"] = True
            earlier = [r for r in tx.stored_records(group["members"]) if r.incident is None]
            _link(members, group)
            _link(earlier, group)
            tx.rewrite_records(earlier)
            opened.append((group, [*earlier, *members]))
            log.info("incident %s: %d near-identical complaints from %d accounts (%s)", group_id,
                     len(group["members"]), len(set(group["authors"])), ", ".join(top_terms(group)[:5]))
    tx.save_incident_groups(list(touched.values()))
    return opened


class Signatures:
    """Each incident group's signature, kept between pages while the group is unchanged.

    The store hands back the same group object, page after page, until someone changes it (this process
    adding members, or another writer: then it is a new object), and a signature changes only with the
    members: so it is recomputed only for a new object or a longer member list."""

    def __init__(self) -> None:
        self._held: dict[str, tuple[dict[str, Any], int, frozenset[str]]] = {}

    def of(self, group: dict[str, Any]) -> frozenset[str]:
        """``signature(group)``, recomputed only when the group object or its member count changed."""
        held = self._held.get(group["id"])
        members = len(group["members"])
        if held is not None and held[0] is group and held[1] == members:
            return held[2]
        core = signature(group)
        self._held[group["id"]] = (group, members, core)
        return core

    def keep_only(self, group_ids: Iterable[str]) -> None:
        """Forget the signatures of every group but these (the current page's window)."""
        wanted = set(group_ids)
        for gid in list(self._held):  # list(): a copy taken at once, should another thread ingest too
            if gid not in wanted:
                self._held.pop(gid, None)


class _Candidates:
    """The open groups, indexed by the terms of their signatures: a complaint is compared only with the
    groups it shares a term with (a Jaccard similarity of at least ``SIMILARITY`` needs one), in the order
    the groups were found, so the choice is the one a scan of every group would make, without the scan."""

    def __init__(self, groups: Iterable[dict[str, Any]], signatures: Signatures):
        self.order: dict[str, int] = {}
        self.groups: dict[str, dict[str, Any]] = {}
        self.signatures: dict[str, frozenset[str]] = {}
        self.by_term: dict[str, set[str]] = {}
        self.known = signatures
        for group in groups:
            self.add(group)

    def add(self, group: dict[str, Any]) -> None:
        """Index a group (again, after it gained a member: its signature may have changed)."""
        gid = group["id"]
        self.order.setdefault(gid, len(self.order))
        self.groups[gid] = group
        self.signatures[gid] = self.known.of(group)
        for term in self.signatures[gid]:
            self.by_term.setdefault(term, set()).add(gid)

    def best(self, terms: frozenset[str], at: datetime, window: timedelta) -> dict[str, Any] | None:
        """The group whose signature this complaint shares most (the latest found on a tie), if any."""
        ids = set().union(*(self.by_term.get(term, ()) for term in terms))
        best, best_rank = None, (SIMILARITY, -1)
        for gid in ids:
            group = self.groups[gid]
            if at - group["last_at"] > window or group["first_at"] - at > window:
                continue
            rank = (similarity(terms, self.signatures[gid]), self.order[gid])
            if rank >= best_rank:
                best, best_rank = group, rank
        return best


def _new_group(seed: Record, terms: frozenset[str]) -> dict[str, Any]:
    """A group seeded by one complaint: its key terms are the group's signature."""
    digest = hashlib.sha1(seed.id.encode("utf-8")).hexdigest()[:20]
    return {"id": f"incident:{digest}", "terms": {}, "members": [], "authors": [], "examples": [],
            "first_at": seed.created_at, "last_at": seed.created_at, "opened": False}


def signature(group: dict[str, Any]) -> frozenset[str]:
    """The terms at least half of a group's members use (``terms`` counts members per term)."""
    members = len(group["members"])
    return frozenset(t for t, n in group["terms"].items() if 2 * n >= members)


def top_terms(group: dict[str, Any]) -> list[str]:
    """The group's signature, the terms most members use first."""
    core = signature(group)
    return sorted(core, key=lambda t: (-group["terms"][t], t))[:TOP_TERMS]


def _add_member(group: dict[str, Any], record: Record, terms: frozenset[str]) -> None:
    group["members"].append(record.id)
    for term in terms:
        group["terms"][term] = group["terms"].get(term, 0) + 1
    key = author_key(record)
    if key not in group["authors"]:
        group["authors"].append(key)
    if len(group["examples"]) < EXAMPLES:
        group["examples"].append({"id": record.id, "author": record.author.handle, "content": record.content,
                                  "url": record.url})
    group["first_at"] = min(group["first_at"], record.created_at)
    group["last_at"] = max(group["last_at"], record.created_at)


def _link(members: Iterable[Record], group: dict[str, Any]) -> None:
    accounts = len(set(group["authors"]))
    for record in members:
        record.incident = group["id"]
        record.reasons.append(f"incident {group['id']}: one of {len(group['members'])} near-identical complaints "
                              f"from {accounts} accounts sharing the terms {', '.join(top_terms(group))}")


def _summary(group: dict[str, Any]) -> IncidentSummary:
    return IncidentSummary(posts=len(group["members"]), accounts=len(set(group["authors"])),
                           first_at=group["first_at"], last_at=group["last_at"], terms=top_terms(group),
                           examples=list(group["examples"]))


def _reason(summary: IncidentSummary, route: Sequence[str]) -> str:
    minutes = (summary.last_at - summary.first_at).total_seconds() / 60
    return (f"incident: {summary.posts} complaints from {summary.accounts} accounts within {minutes:.0f} minutes "
            f"share the terms {', '.join(summary.terms)} (Jaccard similarity >= {SIMILARITY}); routed to the "
            f"members' sinks -> {', '.join(route) or 'no sink'}")


def _describe(summary: IncidentSummary) -> str:
    """The incident record's content: no member's words, which stay in the (erasable) examples."""
    return (f"Incident: {summary.posts} near-identical complaints from {summary.accounts} accounts: "
            f"{', '.join(summary.terms[:5])}")


def incident_record(group: dict[str, Any], members: Sequence[Record]) -> Record:
    """The incident record of a group that opens now: routed to every sink its members go to, at the
    highest priority among them, so the parent reaches each sink before (or with) its members."""
    summary = _summary(group)
    first = min(members, key=lambda r: r.created_at)
    route = list(dict.fromkeys(sink for r in members for sink in r.route))
    priority = min((r.priority for r in members), key=PRIORITIES.index)
    content = _describe(summary)
    return Record(
        id=group["id"], network=first.network, content=content, created_at=group["first_at"], source=first.source,
        lang=first.lang, type=INCIDENT_TYPE, sentiment=Sentiment("negative", -0.5), action="open_case",
        priority=priority, mode="reactive", route=route, team=next((r.team for r in members if r.team), None),
        reasons=[_reason(summary, route)],
        incident_summary=summary)


def _refresh_incident(tx: "Transaction", group: dict[str, Any]) -> None:
    """Bring a stored incident record's counts up to date as members join an open incident."""
    for record in tx.stored_records([group["id"]]):
        record.incident_summary = _summary(group)
        record.content = _describe(record.incident_summary)
        record.reasons[0] = _reason(record.incident_summary, record.route)
        tx.rewrite_records([record])
