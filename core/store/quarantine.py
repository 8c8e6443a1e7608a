"""The quarantine: items sources could not read, kept with their raw payload until a replay reads them.

A page's unreadable items are held inside the page's own transaction (``Transaction.save_page``), so
the cursor never moves past an item that is neither stored nor held. A replay that reads an item
marks it ``replayed`` in the transaction that stores its mention; one that still cannot read it keeps
it ``held`` with the new reason (``Quarantine.still_unreadable``).
"""
from __future__ import annotations

import time
from typing import Any, Iterable

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection

from socialcrm.core.sdk.model import SkippedItem
from socialcrm.core.store.database import Database
from socialcrm.core.store.schema import quarantine

_LISTED = (quarantine.c.id, quarantine.c.source, quarantine.c.location, quarantine.c.reason, quarantine.c.state,
           quarantine.c.replays, quarantine.c.created_at, quarantine.c.updated_at)


def _text(value: str | None) -> str | None:
    # PostgreSQL text holds no NUL character; keep it visible the way backslashreplace shows other bytes.
    return None if value is None else value.replace("\x00", "\\x00")


def hold(conn: Connection, source: str, items: Iterable[SkippedItem], now: float) -> int:
    """Quarantine ``items`` of ``source`` inside the caller's transaction; returns how many."""
    rows = [{"source": source, "location": _text(item.where), "reason": _text(item.reason) or "unreadable",
             "payload": _text(item.payload), "state": "held", "replays": 0, "created_at": now, "updated_at": now}
            for item in items]
    if rows:
        conn.execute(insert(quarantine), rows)
    return len(rows)


def release(conn: Connection, replayed: dict[int, str], now: float) -> None:
    """Mark held items as replayed inside the caller's transaction: ``{quarantine id: mention id made}``."""
    for item_id, mention_id in replayed.items():
        conn.execute(update(quarantine).where(quarantine.c.id == item_id, quarantine.c.state == "held")
                     .values(state="replayed", record_id=mention_id, replays=quarantine.c.replays + 1,
                             updated_at=now))


class Quarantine:
    """Listing, showing and counting quarantined items, and noting a replay that still failed."""

    def __init__(self, db: Database):
        self.db = db

    def quarantined(self, source: str | None = None, limit: int | None = None,
                    state: str | None = "held") -> list[dict[str, Any]]:
        """Quarantined items (held ones unless ``state`` says otherwise; every one for ``None``), the
        most recent first, without their payloads."""
        query = select(*_LISTED).order_by(quarantine.c.id.desc())
        if state:
            query = query.where(quarantine.c.state == state)
        if source:
            query = query.where(quarantine.c.source == source)
        if limit:
            query = query.limit(limit)
        with self.db.connect() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def quarantined_item(self, item_id: int) -> dict[str, Any] | None:
        """One quarantined item with its payload, or None."""
        with self.db.connect() as conn:
            row = conn.execute(select(quarantine).where(quarantine.c.id == item_id)).mappings().first()
        return None if row is None else dict(row)

    def quarantine_count(self) -> int:
        """How many items are held."""
        with self.db.connect() as conn:
            return conn.execute(select(func.count()).select_from(quarantine)
                                .where(quarantine.c.state == "held")).scalar_one()

    def still_unreadable(self, item_id: int, reason: str, payload: str | None,
                         now: float | None = None) -> None:
        """A replay could not read the item either: keep it held with the new reason (and the payload
        the replay read, when it was given one)."""
        now = time.time() if now is None else now
        values: dict[str, Any] = {"reason": _text(reason), "replays": quarantine.c.replays + 1, "updated_at": now}
        if payload is not None:
            values["payload"] = _text(payload)
        with self.db.begin() as conn:
            conn.execute(update(quarantine).where(quarantine.c.id == item_id).values(**values))


__all__ = ["Quarantine", "hold", "release"]
