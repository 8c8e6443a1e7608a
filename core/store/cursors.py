"""Where each source left off: its stored cursor, when it was last polled and the error it last hit."""
from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from socialcrm.core.store.database import Database
from socialcrm.core.store.schema import cursors


def write_cursor(conn: Connection, source: str, cursor: Any, now: float, error: str | None) -> None:
    """Store a source's next cursor (JSON) inside the caller's transaction, as polled at ``now``."""
    values = {"cursor": json.dumps(cursor), "updated_at": now, "last_poll_at": now, "last_error": error}
    if conn.execute(update(cursors).where(cursors.c.source == source).values(**values)).rowcount == 0:
        conn.execute(insert(cursors).values(source=source, **values))


class Cursors:
    """Reading sources' cursors and noting polls that stored no page."""

    def __init__(self, db: Database):
        self.db = db

    def get_cursor(self, source: str) -> Any:
        """The cursor the source's last stored page returned, or None."""
        with self.db.connect() as conn:
            value = conn.execute(select(cursors.c.cursor).where(cursors.c.source == source)).scalar()
        return None if value is None else json.loads(value)

    def note_poll(self, source: str, error: str | None) -> None:
        """Record that a source was polled (and the error it hit, if any) without moving its cursor."""
        now = time.time()
        with self.db.begin() as conn:
            done = conn.execute(update(cursors).where(cursors.c.source == source)
                                .values(last_poll_at=now, last_error=error)).rowcount
            if not done:
                conn.execute(insert(cursors).values(source=source, cursor=json.dumps(None), updated_at=now,
                                                    last_poll_at=now, last_error=error))

    def source_states(self) -> dict[str, dict[str, Any]]:
        """Every source's stored cursor, when it was last polled and the error it last hit, by name."""
        with self.db.connect() as conn:
            return {row["source"]: {"cursor": json.loads(row["cursor"]) if row["cursor"] else None,
                                    "updated_at": row["updated_at"], "last_poll_at": row["last_poll_at"],
                                    "last_error": row["last_error"]}
                    for row in conn.execute(select(cursors)).mappings()}
