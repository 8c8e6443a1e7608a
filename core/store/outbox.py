"""The delivery outbox: claims, outcomes, the backlog, dead letters and their replay.

One row per (record, sink). Claims take due rows with ``UPDATE ... RETURNING`` (and ``FOR UPDATE
SKIP LOCKED`` on PostgreSQL, so parallel loops pass each other's rows by), through the partial
index of open rows; outcomes are written back only while the claim still holds the row.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from sqlalchemy import and_, bindparam, case, cast, exists, func, literal_column, or_, select, update
from sqlalchemy.dialects.postgresql import JSONB

from socialcrm.core.sdk.model import Record
from socialcrm.core.store import audit as audit_trail
from socialcrm.core.store.database import Database
from socialcrm.core.store.rows import chunks, load_record
from socialcrm.core.store.schema import OPEN, OPEN_STATES, outbox, records

# Outbox.complete's UPDATE written for SQLite's driver (qmark parameters), in the order complete() passes them.
_COMPLETE_SQL = ("UPDATE outbox SET state = ?, external_id = ?, last_error = ?, next_attempt_at = ?, "
                 "attempts = attempts + ?, lease_until = NULL, claim = NULL, updated_at = ? WHERE id = ? AND claim = ?")
# The same parameters by name, for SQLAlchemy's statement.
_COMPLETE_PARAMS = ("st", "ext", "err", "nxt", "inc", "now", "oid", "tok")
_STATES = ("pending", "in_flight", "retry", "delivered", "dead")


@dataclass
class Claimed:
    """An outbox row claimed for delivery, with its record."""

    outbox_id: int
    record: Record
    attempts: int


@dataclass(frozen=True)
class ConversationRoot:
    """Where the first record of a conversation stands in one sink: its outbox state and, once delivered,
    the id of the object it made there."""

    record_id: str
    state: str  # pending | in_flight | retry | delivered | dead
    external_id: str | None = None


@dataclass
class Outcome:
    """What to write back to a claimed outbox row."""

    outbox_id: int
    state: str  # delivered | retry | dead
    external_id: str | None = None
    error: str | None = None
    next_attempt_at: float | None = None
    counts_attempt: bool = True  # False when the server itself scheduled the retry (a rate limit)


class Outbox:
    """Claiming outbox rows, writing their outcomes, and the dead letters."""

    def __init__(self, db: Database):
        self.db = db

    def open_deliveries(self) -> int:
        """Outbox rows not yet delivered or dead (the backpressure measure)."""
        with self.db.connect() as conn:
            return conn.execute(select(func.count()).select_from(outbox).where(OPEN)).scalar_one()

    def claim(self, sink: str, limit: int, lease_seconds: float, now: float | None = None,
              priorities: Sequence[str] | None = None) -> tuple[str, list[Claimed]]:
        """Claim up to ``limit`` due rows for ``sink``: pending or retry rows whose time has come, and
        in-flight rows whose lease expired (their worker died). Returns the claim token and the rows."""
        now = time.time() if now is None else now
        token = str(uuid.uuid4())
        due = or_(and_(outbox.c.state.in_(("pending", "retry")), outbox.c.next_attempt_at <= now),
                  and_(outbox.c.state == "in_flight", outbox.c.lease_until < now))
        query = (select(outbox.c.id).join(records, records.c.id == outbox.c.record_id)
                 .where(outbox.c.sink == sink, OPEN, due, ~self._root_still_open()))
        if priorities:
            query = query.where(outbox.c.priority.in_(priorities))
        query = query.order_by(outbox.c.priority, outbox.c.id).limit(limit)
        if self.db.is_postgres:
            query = query.with_for_update(skip_locked=True, of=outbox)
        mark = (update(outbox).where(outbox.c.id.in_(query.scalar_subquery()))
                .values(state="in_flight", lease_until=now + lease_seconds, claim=token, updated_at=now)
                .returning(outbox.c.id, outbox.c.record_id, outbox.c.priority, outbox.c.attempts))
        with self.db.begin() as conn:
            rows = sorted(conn.execute(mark).all(), key=lambda row: (row.priority, row.id))
            stored: dict[str, tuple[str, int]] = {}
            for chunk in chunks(list({row.record_id for row in rows})):
                stored.update((r.id, (r.data, r.reposts)) for r in conn.execute(
                    select(records.c.id, records.c.data, records.c.reposts).where(records.c.id.in_(chunk))))
        return token, [Claimed(row.id, load_record(*stored[row.record_id]), row.attempts)
                       for row in rows if row.record_id in stored]

    def _root_still_open(self):
        """True for a follow-up whose conversation's first record is not yet delivered (nor dead) in the same
        sink: it waits, so the sink finds the conversation's object when the follow-up comes."""
        root = outbox.alias("conversation_root")
        if self.db.is_postgres:
            conversation = cast(records.c.data, JSONB)["conversation"].astext
        else:
            conversation = func.json_extract(records.c.data, "$.conversation")
        return exists().where(root.c.sink == outbox.c.sink, root.c.record_id == conversation,
                              root.c.record_id != outbox.c.record_id,
                              root.c.state.in_([literal_column(f"'{state}'") for state in OPEN_STATES]))

    def conversation_roots(self, sink: str, conversations: Iterable[str]) -> dict[str, ConversationRoot]:
        """The outbox rows in ``sink`` of these conversations' first records, by conversation id (a
        conversation whose first record has no row there, never routed to it or erased, is left out)."""
        found: dict[str, ConversationRoot] = {}
        with self.db.connect() as conn:
            for chunk in chunks(sorted(set(conversations))):
                found.update((row.record_id, ConversationRoot(row.record_id, row.state, row.external_id))
                             for row in conn.execute(select(outbox.c.record_id, outbox.c.state, outbox.c.external_id)
                                                     .where(outbox.c.sink == sink, outbox.c.record_id.in_(chunk))))
        return found

    def complete(self, token: str, outcomes: Iterable[Outcome], now: float | None = None) -> int:
        """Write outcomes back to rows this claim still holds; returns how many rows were updated.

        A row whose lease expired and was claimed again by another loop is left to that loop.
        """
        now = time.time() if now is None else now
        rows = [(o.state, o.external_id, o.error, o.next_attempt_at if o.next_attempt_at is not None else now,
                 1 if o.counts_attempt else 0, now, o.outbox_id, token) for o in outcomes]
        if not rows:
            return 0
        with self.db.begin() as conn:
            if self.db.bulk.direct:  # the same statement as plain SQL: no per-row parameter processing
                result = conn.exec_driver_sql(_COMPLETE_SQL, rows)
            else:
                statement = (update(outbox).where(outbox.c.id == bindparam("oid"), outbox.c.claim == bindparam("tok"))
                             .values(state=bindparam("st"), external_id=bindparam("ext"), last_error=bindparam("err"),
                                     next_attempt_at=bindparam("nxt"), attempts=outbox.c.attempts + bindparam("inc"),
                                     lease_until=None, claim=None, updated_at=now))
                result = conn.execute(statement, [dict(zip(_COMPLETE_PARAMS, row)) for row in rows])
        return result.rowcount if result.rowcount is not None and result.rowcount >= 0 else len(rows)

    def release(self, token: str, outbox_ids: Sequence[int], next_attempt_at: float) -> None:
        """Hand claimed rows back untouched (no attempt counted), due again at ``next_attempt_at``."""
        with self.db.begin() as conn:
            conn.execute(update(outbox).where(outbox.c.id.in_(list(outbox_ids)), outbox.c.claim == token)
                         .values(state="retry", next_attempt_at=next_attempt_at, lease_until=None, claim=None))

    def delivery_counts(self, now: float | None = None) -> list[dict[str, Any]]:
        """Per sink: rows in each state and the age in seconds of the oldest undelivered row."""
        now = time.time() if now is None else now
        columns = [func.sum(case((outbox.c.state == s, 1), else_=0)).label(s) for s in _STATES]
        oldest = func.min(case((outbox.c.state.in_(OPEN_STATES), outbox.c.created_at), else_=None))
        with self.db.connect() as conn:
            rows = conn.execute(select(outbox.c.sink, *columns, oldest.label("oldest"))
                                .group_by(outbox.c.sink).order_by(outbox.c.sink)).all()
        return [{"sink": row.sink, **{s: int(getattr(row, s) or 0) for s in _STATES},
                 "oldest_pending_s": round(now - row.oldest, 1) if row.oldest is not None else None}
                for row in rows]

    # --- dead letters ---

    def dead_letters(self, sink: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Dead-lettered outbox rows, the most recent first: id, sink, record, attempts, reason."""
        query = (select(outbox.c.id, outbox.c.sink, outbox.c.record_id, outbox.c.priority, outbox.c.attempts,
                        outbox.c.last_error, outbox.c.created_at, outbox.c.updated_at, records.c.type)
                 .join(records, records.c.id == outbox.c.record_id)
                 .where(outbox.c.state == "dead").order_by(outbox.c.updated_at.desc(), outbox.c.id.desc()))
        if sink:
            query = query.where(outbox.c.sink == sink)
        if limit:
            query = query.limit(limit)
        with self.db.connect() as conn:
            return [_dead_row(row) for row in conn.execute(query).mappings()]

    def dead_letter(self, outbox_id: int) -> dict[str, Any] | None:
        """One outbox row (dead or not) with its record and the audit entries about it."""
        with self.db.connect() as conn:
            row = conn.execute(select(outbox, records.c.data, records.c.reposts, records.c.type)
                               .join(records, records.c.id == outbox.c.record_id)
                               .where(outbox.c.id == outbox_id)).mappings().first()
            if row is None:
                return None
            history = audit_trail.of_outbox_row(conn, outbox_id)
        out = {k: row[k] for k in ("id", "sink", "record_id", "priority", "state", "attempts", "next_attempt_at",
                                   "external_id", "last_error", "created_at", "updated_at", "type")}
        out["record"] = load_record(row["data"], row["reposts"]).to_dict()
        out["audit"] = history
        return out

    def replay_dead(self, actor: str, ids: Sequence[int] | None = None, sink: str | None = None,
                    now: float | None = None) -> list[int]:
        """Put dead-lettered rows back to pending with no attempts counted, each with an audit entry.

        ``ids`` picks rows, ``sink`` every dead row of one sink; neither means every dead row.
        Returns the ids replayed (rows that are not dead are left alone)."""
        now = time.time() if now is None else now
        query = select(outbox.c.id, outbox.c.sink, outbox.c.record_id, outbox.c.attempts, outbox.c.last_error) \
            .where(outbox.c.state == "dead").order_by(outbox.c.id)
        if ids is not None:
            query = query.where(outbox.c.id.in_(list(ids)))
        if sink:
            query = query.where(outbox.c.sink == sink)
        if self.db.is_postgres:
            query = query.with_for_update()
        with self.db.begin() as conn:
            rows = conn.execute(query).all()
            for chunk in chunks([row.id for row in rows]):
                conn.execute(update(outbox).where(outbox.c.id.in_(chunk), outbox.c.state == "dead")
                             .values(state="pending", attempts=0, next_attempt_at=now, last_error=None,
                                     external_id=None, lease_until=None, claim=None, updated_at=now))
            audit_trail.write(conn, [audit_trail.entry(
                now, actor, "dlq.replay",
                {"outbox_id": row.id, "sink": row.sink, "record_id": row.record_id, "attempts": row.attempts,
                 "error": row.last_error},
                outbox_id=row.id, sink=row.sink, record_id=row.record_id) for row in rows])
        return [row.id for row in rows]


def _dead_row(row: Any) -> dict[str, Any]:
    return {"id": row["id"], "sink": row["sink"], "record_id": row["record_id"], "type": row["type"],
            "priority": row["priority"], "attempts": row["attempts"], "error": row["last_error"],
            "queued_at": row["created_at"], "dead_at": row["updated_at"]}
