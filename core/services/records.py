"""Reading records for people: a page of them by filter (keyset pagination), and one with its deliveries
and the feedback on it. The API's ``/records`` presents these; corrections go through ``feedback``."""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from socialcrm.core.sdk.model import Record
from socialcrm.core.store import Store


def records_page(store: Store, limit: int, after: tuple[datetime, str] | None = None, **filters: Any
                 ) -> tuple[list[tuple[Record, datetime]], bool]:
    """Up to ``limit`` records matching ``filters`` (the store's ``records_page`` filters), newest first, each
    with its keyset position, after the position ``after``; and whether more follow."""
    rows = store.records_page(after=after, limit=limit + 1, **filters)
    return rows[:limit], len(rows) > limit


def record_detail(store: Store, record_id: str) -> dict[str, Any] | None:
    """The record with its deliveries (outbox rows) and the feedback on it (old and new values decoded),
    oldest first, and its conversation's state (None when the store tracks none for it); None when
    there is no such record."""
    record = store.get_record(record_id)
    if record is None:
        return None
    history = store.record_history(record_id)
    for entry in history["feedback"]:
        entry["old_value"] = json.loads(entry["old_value"]) if entry["old_value"] is not None else None
        entry["new_value"] = json.loads(entry["new_value"])
    thread = store.conversation(record.conversation) if record.conversation else None
    return {"record": record, **history, "conversation": thread.to_dict() if thread else None}


__all__ = ["record_detail", "records_page"]
