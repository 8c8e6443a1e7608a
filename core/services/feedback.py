"""People correcting a record: the one place the CLI and the API both go through.

A correction is kept in ``feedback`` with who and when (it is what ``socialcrm train`` learns from),
audited, and can re-route the record: newly routed sinks get it, dropped ones lose unsent rows.
"""
from __future__ import annotations

from typing import Any, Sequence

from socialcrm.core.engine.config import Config
from socialcrm.core.engine.donotengage import hold_back
from socialcrm.core.sdk.model import Record
from socialcrm.core.engine.routing import route_record
from socialcrm.core.store import Store


def correct_record(store: Store, config: Config, enabled_sinks: set[str], record_id: str, who: str, *,
                   type_: str | None = None, sentiment: str | None = None, route: Sequence[str] | None = None,
                   reroute: bool = False, note: str | None = None, now: float | None = None) -> dict[str, Any] | None:
    """Apply a correction in one transaction; returns what changed, or None when there is no such record."""

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
        old_route = list(record.route)
        if route is not None:
            record.route = list(dict.fromkeys(route))
            record.reasons.append(f"route set by {who}: {', '.join(record.route) or 'no sink'}")
        elif reroute:
            record.team = None
            route_record(record, config.routes, enabled_sinks)
        if route is not None or reroute:
            hold_back(store, conn, [record], config.api)
            if record.route != old_route:
                changes["route"] = (old_route, record.route)
        return changes

    return store.apply_feedback(record_id, who, change, note=note, now=now)
