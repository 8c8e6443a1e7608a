"""Per-sink state shared by every delivery loop: the circuit breaker row, the server's holds ("nothing
before T") and daily call counts."""
from __future__ import annotations

import time
from typing import Any, Callable

from sqlalchemy import select, update

from socialcrm.core.store.database import Database
from socialcrm.core.store.schema import sink_calls, sink_state


class SinkStates:
    """Each sink's breaker state (read and changed under a row lock) and the calls made per UTC day."""

    def __init__(self, db: Database):
        self.db = db

    def sink_states(self) -> dict[str, dict[str, Any]]:
        """Every sink's stored breaker state, by sink name."""
        with self.db.connect() as conn:
            return {row["sink"]: dict(row) for row in conn.execute(select(sink_state)).mappings()}

    def sink_state(self, sink: str) -> dict[str, Any] | None:
        """One sink's stored state, or None if nothing was ever stored for it."""
        with self.db.connect() as conn:
            row = conn.execute(select(sink_state).where(sink_state.c.sink == sink)).mappings().first()
        return dict(row) if row else None

    def hold_sink(self, sink: str, until: float, now: float | None = None) -> dict[str, Any]:
        """Keep ``sink`` blocked until ``until`` (a wait the server asked for), for every loop and a
        restarted process; a later hold already stored is kept. Returns the row as it now is."""
        def later(row: dict[str, Any]) -> dict[str, Any] | None:
            return {"hold_until": until} if (row.get("hold_until") or 0.0) < until else None
        return self.change_sink_state(sink, later, now=now)

    def change_sink_state(self, sink: str, change: Callable[[dict[str, Any]], dict[str, Any] | None],
                          now: float | None = None) -> dict[str, Any]:
        """Read and update one sink's state row in one transaction, the row locked against other
        loops; ``change`` gets the current row and returns the columns to set (or None). Returns the
        row as it now is."""
        now = time.time() if now is None else now
        with self.db.begin() as conn:
            conn.execute(self.db.insert_ignore(sink_state, {"sink": sink, "breaker": "closed", "failures": 0,
                                                            "updated_at": now}))
            query = select(sink_state).where(sink_state.c.sink == sink)
            if self.db.is_postgres:
                query = query.with_for_update()
            row = dict(conn.execute(query).mappings().one())
            values = change(dict(row))
            if values:
                conn.execute(update(sink_state).where(sink_state.c.sink == sink).values(**values, updated_at=now))
                row.update(values, updated_at=now)
        return row

    def add_calls(self, sink: str, day: str, calls: int) -> None:
        """Count ``calls`` more calls to ``sink`` on ``day`` (UTC, ``YYYY-MM-DD``)."""
        if calls <= 0:
            return
        statement = self.db.dialect_insert(sink_calls).values(sink=sink, day=day, calls=calls)
        statement = statement.on_conflict_do_update(index_elements=["sink", "day"],
                                                    set_={"calls": sink_calls.c.calls + calls})
        with self.db.begin() as conn:
            conn.execute(statement)

    def calls_on(self, day: str) -> dict[str, int]:
        """Calls made to each sink on ``day`` (UTC, ``YYYY-MM-DD``)."""
        with self.db.connect() as conn:
            return dict(conn.execute(select(sink_calls.c.sink, sink_calls.c.calls)
                                     .where(sink_calls.c.day == day)).all())
