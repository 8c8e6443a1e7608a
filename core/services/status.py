"""How socialcrm stands, from the store: delivery per sink with the backpressure on listening, records held,
unreadable items quarantined, and each source's (and inbound webhook's) cursor, last poll, last error and whether it is paused.
``socialcrm status``, the API's ``/sources`` and ``/metrics`` all read it here.
"""
from __future__ import annotations

from typing import Any

from socialcrm.core.engine.config import Config
from socialcrm.core.engine.delivery import delivery_report as _delivery_report
from socialcrm.core.services.runtime import WEBHOOK_CURSOR_PREFIX
from socialcrm.core.store import Store


def delivery_report(store: Store, config: Config, now: float | None = None) -> dict[str, Any]:
    """Per configured (or still queued-for) sink: rows in each state, the oldest undelivered age, the
    circuit and today's calls; the outbox backlog against ``store.max_pending``; the table counts; and
    how many unreadable items the quarantine holds; ``unrouted``, the records no sink receives although
    they are not noise."""
    report = _delivery_report(store, config.sinks, config.max_pending, now=now)
    report["quarantine"] = {"held": store.quarantine_count()}
    report["unrouted"] = store.unrouted_count()
    return report


def snapshot(store: Store, config: Config, now: float | None = None) -> dict[str, Any]:
    """What a metrics scrape exports: records held by type, the delivery report, and by source name whether
    it is paused (disabled, or the outbox is full)."""
    report = delivery_report(store, config, now=now)
    full = report["backpressure"]["paused"]
    return {"records_by_type": store.records_by_type(), "delivery": report,
            "sources_paused": {sc.instance: _paused(sc.enabled, full) for sc in config.sources}}


def _paused(enabled: bool, outbox_full: bool) -> bool:
    return not enabled or outbox_full


def sources_status(store: Store, config: Config) -> list[dict[str, Any]]:
    """The configured sources, then the inbound webhooks, each with its cursor, last poll, last error and
    whether it is paused (disabled, or the outbox is full)."""
    stored = store.source_states()
    full = store.open_deliveries() >= config.max_pending
    out = []
    for sc in config.sources:
        row = stored.get(sc.instance, {})
        out.append({"name": sc.instance, "kind": "poll", "plugin": sc.plugin, "enabled": sc.enabled,
                    "poll_interval": sc.poll_interval, "cursor": row.get("cursor"),
                    "last_poll_at": row.get("last_poll_at"), "last_error": row.get("last_error"),
                    "paused": _paused(sc.enabled, full)})
    for name in sorted(config.api.webhooks):
        row = stored.get(WEBHOOK_CURSOR_PREFIX + name, {})
        out.append({"name": name, "kind": "webhook", "plugin": None, "enabled": True, "poll_interval": None,
                    "cursor": None, "last_poll_at": row.get("last_poll_at"), "last_error": row.get("last_error"),
                    "paused": full})
    return out


__all__ = ["delivery_report", "snapshot", "sources_status"]
