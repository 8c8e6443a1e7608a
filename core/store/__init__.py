"""The store: mentions, records, cursors and the delivery outbox, on SQLAlchemy Core.

One schema serves SQLite (the embedded default, in WAL mode) and PostgreSQL. A page of mentions,
the records learned from it, their outbox rows and the source's next cursor are written in ONE
transaction, so a crash either keeps all of a page or none of it.
"""
from __future__ import annotations

import json
import logging

import orjson
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterable, Iterator, Sequence

from sqlalchemy import (Boolean, Column, DateTime, Float, Index, Integer, MetaData, String, Table, Text,
                        UniqueConstraint, and_, bindparam, case, create_engine, delete, event, func, insert,
                        literal_column, or_, select, update)
from sqlalchemy.engine import Connection, Engine, make_url

from socialcrm.core.store.bulk import BulkWriter
from socialcrm.core.engine.capture import count_repeats
from socialcrm.core.sdk.model import Mention, Record, isoformat, utc

log = logging.getLogger(__name__)

metadata = MetaData()

mentions = Table(
    "mentions", metadata,
    Column("id", String(300), primary_key=True),
    Column("network", String(40), nullable=False),
    Column("source", String(100)),
    Column("native_id", String(255), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("author_id", String(255)),
    Column("author_handle", String(255)),
    Column("text", Text, nullable=False),
    Column("lang", String(16)),
    Column("repost_of", String(300)),
    Column("raw", Text),
    Column("captured_at", Float, nullable=False),
)
Index("ix_mentions_author", mentions.c.network, mentions.c.author_handle)

records = Table(
    "records", metadata,
    Column("id", String(300), primary_key=True),
    Column("network", String(40), nullable=False),
    Column("source", String(100)),
    Column("created_at", DateTime, nullable=False),
    Column("type", String(16), nullable=False),
    Column("sentiment", String(16), nullable=False),
    Column("priority", String(4), nullable=False),
    Column("mode", String(16), nullable=False),
    Column("action", String(16), nullable=False),
    Column("influence", Integer, nullable=False),
    Column("fraud", Boolean, nullable=False, default=False),
    Column("author_handle", String(255)),
    Column("team", String(100)),
    Column("route", Text, nullable=False),
    Column("reposts", Integer, nullable=False, default=0),
    Column("data", Text, nullable=False),
    Column("learned_at", Float, nullable=False),
)
Index("ix_records_created", records.c.created_at)
Index("ix_records_type", records.c.type, records.c.created_at)

cursors = Table(
    "cursors", metadata,
    Column("source", String(100), primary_key=True),
    Column("cursor", Text),
    Column("updated_at", Float),
    Column("last_poll_at", Float),
    Column("last_error", Text),
)

# One row per (record, sink). States: pending -> in_flight -> delivered | retry | dead.
outbox = Table(
    "outbox", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("record_id", String(300), nullable=False),
    Column("sink", String(100), nullable=False),
    Column("priority", String(4), nullable=False),
    Column("state", String(12), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Float, nullable=False),
    Column("lease_until", Float),
    Column("claim", String(36)),
    Column("external_id", String(255)),
    Column("last_error", Text),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("record_id", "sink", name="uq_outbox_record_sink"),
)
# Claims walk a sink's open rows in priority order and stop at the batch size. The index is partial:
# delivered and dead rows leave it, so it stays as small as the backlog however long the history grows.
# Queries repeat the predicate with the states as literals, not bound parameters: neither SQLite nor a
# generic PostgreSQL plan can prove a parameter matches the index's condition, and both would then
# scan the whole outbox, history and all, on every claim.
_OPEN = outbox.c.state.in_([literal_column("'pending'"), literal_column("'retry'"), literal_column("'in_flight'")])
Index("ix_outbox_open", outbox.c.sink, outbox.c.priority, outbox.c.id, sqlite_where=_OPEN, postgresql_where=_OPEN)

feedback = Table(
    "feedback", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("record_id", String(300), nullable=False),
    Column("field", String(32), nullable=False),
    Column("old_value", Text),
    Column("new_value", Text, nullable=False),
    Column("text", Text),
    Column("who", String(255), nullable=False),
    Column("at", Float, nullable=False),
)

audit = Table(
    "audit", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("actor", String(255), nullable=False),
    Column("action", String(64), nullable=False),
    Column("detail", Text),
)

# One row per sink: its circuit breaker and the pause its last failures asked for, so every delivery
# loop (and a restarted process) sees the same state.
sink_state = Table(
    "sink_state", metadata,
    Column("sink", String(100), primary_key=True),
    Column("breaker", String(12), nullable=False, default="closed"),  # closed | open | half_open
    Column("failures", Integer, nullable=False, default=0),  # consecutive failed batches
    Column("opened_at", Float),
    Column("open_until", Float),
    Column("probe_until", Float),
    Column("hold_until", Float),
    Column("last_error", Text),
    Column("updated_at", Float, nullable=False),
)

# Calls made to each sink per UTC day, for daily call budgets.
sink_calls = Table(
    "sink_calls", metadata,
    Column("sink", String(100), primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("calls", Integer, nullable=False, default=0),
)

# Near-identical posts: how many were seen per text fingerprint, and by how many accounts.
fingerprints = Table(
    "fingerprints", metadata,
    Column("fingerprint", String(32), primary_key=True),
    Column("posts", Integer, nullable=False),
    Column("authors", Text, nullable=False),  # JSON list of up to 20 author keys
    Column("last_at", Float, nullable=False),
)

# Authors who asked not to be engaged, by a salted hash of network and handle (the handle is not kept).
do_not_engage = Table(
    "do_not_engage", metadata,
    Column("author_key", String(64), primary_key=True),
    Column("network", String(40), nullable=False),
    Column("added_at", Float, nullable=False),
    Column("added_by", String(255), nullable=False),
)

OPEN_STATES = ("pending", "retry", "in_flight")


def _naive_utc(value: datetime) -> datetime:
    return utc(value).replace(tzinfo=None)


def create_store_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and write-locking transactions."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, future=True)
    engine = create_engine(url, future=True, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # pragma: no cover - exercised by every SQLite test
        # Leave transaction control to us so BEGIN IMMEDIATE below takes the write lock up front:
        # two delivery loops then cannot claim the same outbox rows.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if parsed.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # Checkpoint the WAL every ~40 MB instead of every 4 MB: ingest writes a lot, and each
        # checkpoint is an fsync (half the cost of storing a page in bench/pipeline.py).
        cursor.execute("PRAGMA wal_autocheckpoint=10000")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # pragma: no cover - exercised by every SQLite test
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


@dataclass
class Claimed:
    """An outbox row claimed for delivery, with its record."""

    outbox_id: int
    record: Record
    attempts: int


@dataclass
class Outcome:
    """What to write back to a claimed outbox row."""

    outbox_id: int
    state: str  # delivered | retry | dead
    external_id: str | None = None
    error: str | None = None
    next_attempt_at: float | None = None
    counts_attempt: bool = True  # False when the server itself scheduled the retry (a rate limit)


class Store:
    """All reads and writes of socialcrm's data; nothing else touches the database."""

    def __init__(self, url: str):
        self.url = url
        self.engine = create_store_engine(url)
        self.is_postgres = self.engine.dialect.name == "postgresql"
        self.bulk = BulkWriter(self.engine.dialect)
        metadata.create_all(self.engine)

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()

    def begin(self):
        """A transaction context (``with store.begin() as conn``)."""
        return self.engine.begin()

    # --- listen and capture ---

    def get_cursor(self, source: str) -> Any:
        """The cursor the source's last stored page returned, or None."""
        with self.engine.connect() as conn:
            value = conn.execute(select(cursors.c.cursor).where(cursors.c.source == source)).scalar()
        return None if value is None else json.loads(value)

    def known(self, conn: Connection, mention_ids: Sequence[str], record_ids: Sequence[str]) -> tuple[set, set]:
        """Which of these mention ids and record ids the store already holds."""
        seen_mentions: set[str] = set()
        seen_records: set[str] = set()
        for chunk in _chunks(list(set(mention_ids)), 500):
            seen_mentions.update(conn.execute(select(mentions.c.id).where(mentions.c.id.in_(chunk))).scalars())
        for chunk in _chunks(list(set(record_ids)), 500):
            seen_records.update(conn.execute(select(records.c.id).where(records.c.id.in_(chunk))).scalars())
        return seen_mentions, seen_records

    def save_page(self, conn: Connection, source: str, cursor: Any, new_mentions: Sequence[Mention],
                  new_records: Sequence[Record], reposts: dict[str, int], now: float | None = None,
                  error: str | None = None) -> int:
        """Write a page's mentions, records, outbox rows, repost counts and cursor; returns outbox rows."""
        now = time.time() if now is None else now
        self.bulk.insert(conn, mentions, _MENTION_COLUMNS, [
            (m.id, m.network, m.source, m.native_id, _naive_utc(m.created_at), m.author.id, m.author.handle, m.text,
             m.lang, m.repost_of, _raw_text(m.raw), now) for m in new_mentions])
        self.bulk.insert(conn, records, _RECORD_COLUMNS, [_record_row(r, now) for r in new_records])
        rows = [row for r in new_records for row in _new_outbox_rows(r.id, r.priority, r.route, now)]
        self.bulk.insert(conn, outbox, _OUTBOX_COLUMNS, rows)
        if reposts:
            conn.execute(update(records).where(records.c.id == bindparam("rid"))
                         .values(reposts=records.c.reposts + bindparam("n")),
                         [{"rid": rid, "n": n} for rid, n in reposts.items()])
        self._write_cursor(conn, source, cursor, now, error)
        return len(rows)

    def _write_cursor(self, conn: Connection, source: str, cursor: Any, now: float, error: str | None) -> None:
        values = {"cursor": json.dumps(cursor), "updated_at": now, "last_poll_at": now, "last_error": error}
        if conn.execute(update(cursors).where(cursors.c.source == source).values(**values)).rowcount == 0:
            conn.execute(insert(cursors).values(source=source, **values))

    def note_poll(self, source: str, error: str | None) -> None:
        """Record that a source was polled (and the error it hit, if any) without moving its cursor."""
        now = time.time()
        with self.begin() as conn:
            done = conn.execute(update(cursors).where(cursors.c.source == source)
                                .values(last_poll_at=now, last_error=error)).rowcount
            if not done:
                conn.execute(insert(cursors).values(source=source, cursor=json.dumps(None), updated_at=now,
                                                    last_poll_at=now, last_error=error))

    def count_repeats(self, conn: Connection, prints: Sequence[tuple[str | None, str]],
                      now: float | None = None) -> list[int]:
        """For each (fingerprint, author) of a page, in order: how many near-identical posts by OTHER
        accounts came before it (earlier pages and earlier in this page). Records the page's posts."""
        now = time.time() if now is None else now
        wanted = sorted({fp for fp, _ in prints if fp})
        known: dict[str, tuple[int, list[str]]] = {}
        for chunk in _chunks(wanted, 500):
            for fp, posts, authors in conn.execute(select(fingerprints.c.fingerprint, fingerprints.c.posts,
                                                          fingerprints.c.authors)
                                                   .where(fingerprints.c.fingerprint.in_(chunk))):
                known[fp] = (posts, json.loads(authors))
        fresh = set(wanted) - set(known)
        repeats = count_repeats(prints, known)
        self.bulk.insert(conn, fingerprints, ("fingerprint", "posts", "authors", "last_at"),
                         [(fp, posts, json.dumps(authors), now) for fp, (posts, authors) in known.items() if fp in fresh])
        self.bulk.update(conn, fingerprints, "fingerprint", ("posts", "authors", "last_at"),
                         [(posts, json.dumps(authors), now, fp) for fp, (posts, authors) in known.items()
                          if fp not in fresh])
        return repeats

    # --- engage: the outbox ---

    def open_deliveries(self) -> int:
        """Outbox rows not yet delivered or dead (the backpressure measure)."""
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(outbox)
                                .where(_OPEN)).scalar_one()

    def claim(self, sink: str, limit: int, lease_seconds: float, now: float | None = None,
              priorities: Sequence[str] | None = None) -> tuple[str, list[Claimed]]:
        """Claim up to ``limit`` due rows for ``sink``: pending or retry rows whose time has come, and
        in-flight rows whose lease expired (their worker died). Returns the claim token and the rows."""
        now = time.time() if now is None else now
        token = str(uuid.uuid4())
        due = or_(and_(outbox.c.state.in_(("pending", "retry")), outbox.c.next_attempt_at <= now),
                  and_(outbox.c.state == "in_flight", outbox.c.lease_until < now))
        query = select(outbox.c.id).where(outbox.c.sink == sink, _OPEN, due)
        if priorities:
            query = query.where(outbox.c.priority.in_(priorities))
        query = query.order_by(outbox.c.priority, outbox.c.id).limit(limit)
        if self.is_postgres:
            query = query.with_for_update(skip_locked=True)
        mark = (update(outbox).where(outbox.c.id.in_(query.scalar_subquery()))
                .values(state="in_flight", lease_until=now + lease_seconds, claim=token, updated_at=now)
                .returning(outbox.c.id, outbox.c.record_id, outbox.c.priority, outbox.c.attempts))
        with self.begin() as conn:
            rows = sorted(conn.execute(mark).all(), key=lambda row: (row.priority, row.id))
            stored: dict[str, tuple[str, int]] = {}
            for chunk in _chunks(list({row.record_id for row in rows}), 500):
                stored.update((r.id, (r.data, r.reposts)) for r in conn.execute(
                    select(records.c.id, records.c.data, records.c.reposts).where(records.c.id.in_(chunk))))
        return token, [Claimed(row.id, _load(*stored[row.record_id]), row.attempts)
                       for row in rows if row.record_id in stored]

    def complete(self, token: str, outcomes: Iterable[Outcome], now: float | None = None) -> int:
        """Write outcomes back to rows this claim still holds; returns how many rows were updated.

        A row whose lease expired and was claimed again by another loop is left to that loop.
        """
        now = time.time() if now is None else now
        rows = [(o.state, o.external_id, o.error, o.next_attempt_at if o.next_attempt_at is not None else now,
                 1 if o.counts_attempt else 0, now, o.outbox_id, token) for o in outcomes]
        if not rows:
            return 0
        with self.begin() as conn:
            if self.bulk.direct:  # the same statement as plain SQL: no per-row parameter processing
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
        with self.begin() as conn:
            conn.execute(update(outbox).where(outbox.c.id.in_(list(outbox_ids)), outbox.c.claim == token)
                         .values(state="retry", next_attempt_at=next_attempt_at, lease_until=None, claim=None))

    def delivery_counts(self, now: float | None = None) -> list[dict[str, Any]]:
        """Per sink: rows in each state and the age in seconds of the oldest undelivered row."""
        now = time.time() if now is None else now
        states = ("pending", "in_flight", "retry", "delivered", "dead")
        columns = [func.sum(case((outbox.c.state == s, 1), else_=0)).label(s) for s in states]
        oldest = func.min(case((outbox.c.state.in_(OPEN_STATES), outbox.c.created_at), else_=None))
        with self.engine.connect() as conn:
            rows = conn.execute(select(outbox.c.sink, *columns, oldest.label("oldest"))
                                .group_by(outbox.c.sink).order_by(outbox.c.sink)).all()
        return [{"sink": row.sink, **{s: int(getattr(row, s) or 0) for s in states},
                 "oldest_pending_s": round(now - row.oldest, 1) if row.oldest is not None else None}
                for row in rows]

    # --- reading records ---

    def iter_records(self, type_: str | None = None, since: datetime | None = None,
                     limit: int | None = None) -> Iterator[Record]:
        """Records, newest first, optionally of one type and since a time."""
        query = select(records.c.data, records.c.reposts).order_by(records.c.created_at.desc(), records.c.id)
        if type_:
            query = query.where(records.c.type == type_)
        if since:
            query = query.where(records.c.created_at >= _naive_utc(since))
        if limit:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            for data, reposts in conn.execute(query):
                yield _load(data, reposts)

    def get_record(self, record_id: str) -> Record | None:
        """One record by id."""
        with self.engine.connect() as conn:
            row = conn.execute(select(records.c.data, records.c.reposts).where(records.c.id == record_id)).first()
        return _load(*row) if row else None

    def summary(self) -> dict[str, dict[str, int]]:
        """Counts of records by type, sentiment, priority and route."""
        out: dict[str, dict[str, int]] = {}
        with self.engine.connect() as conn:
            for name, column in (("type", records.c.type), ("sentiment", records.c.sentiment),
                                 ("priority", records.c.priority), ("route", records.c.route)):
                rows = conn.execute(select(column, func.count()).group_by(column).order_by(column)).all()
                out[name] = {(", ".join(json.loads(k)) or "(none)") if name == "route" else k: n
                             for k, n in rows}
            out["mentions"] = {"total": conn.execute(select(func.count()).select_from(mentions)).scalar_one()}
        return out

    def counts(self) -> dict[str, int]:
        """Row counts of the main tables."""
        with self.engine.connect() as conn:
            return {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                    for t in (mentions, records, outbox)}


    # --- engage: sink state (circuit breaker, pauses) and daily call counts ---

    def sink_states(self) -> dict[str, dict[str, Any]]:
        """Every sink's stored breaker state, by sink name."""
        with self.engine.connect() as conn:
            return {row["sink"]: dict(row) for row in conn.execute(select(sink_state)).mappings()}

    def change_sink_state(self, sink: str, change: Callable[[dict[str, Any]], dict[str, Any] | None],
                          now: float | None = None) -> dict[str, Any]:
        """Read and update one sink's state row in one transaction, the row locked against other
        loops; ``change`` gets the current row and returns the columns to set (or None). Returns the
        row as it now is."""
        now = time.time() if now is None else now
        with self.begin() as conn:
            conn.execute(self._insert_ignore(sink_state, {"sink": sink, "breaker": "closed", "failures": 0,
                                                          "updated_at": now}))
            query = select(sink_state).where(sink_state.c.sink == sink)
            if self.is_postgres:
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
        dialect = _dialect_insert(self.is_postgres)
        statement = dialect(sink_calls).values(sink=sink, day=day, calls=calls)
        statement = statement.on_conflict_do_update(index_elements=["sink", "day"],
                                                    set_={"calls": sink_calls.c.calls + calls})
        with self.begin() as conn:
            conn.execute(statement)

    def calls_on(self, day: str) -> dict[str, int]:
        """Calls made to each sink on ``day`` (UTC, ``YYYY-MM-DD``)."""
        with self.engine.connect() as conn:
            return dict(conn.execute(select(sink_calls.c.sink, sink_calls.c.calls)
                                     .where(sink_calls.c.day == day)).all())

    def _insert_ignore(self, table: Table, values: dict[str, Any]):
        return _dialect_insert(self.is_postgres)(table).values(**values).on_conflict_do_nothing()

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
        with self.engine.connect() as conn:
            return [_dead_row(row) for row in conn.execute(query).mappings()]

    def dead_letter(self, outbox_id: int) -> dict[str, Any] | None:
        """One outbox row (dead or not) with its record and the audit entries about it."""
        with self.engine.connect() as conn:
            row = conn.execute(select(outbox, records.c.data, records.c.reposts, records.c.type)
                               .join(records, records.c.id == outbox.c.record_id)
                               .where(outbox.c.id == outbox_id)).mappings().first()
            if row is None:
                return None
            history = conn.execute(select(audit).where(audit.c.detail.like(f'{{"outbox_id": {outbox_id},%'))
                                   .order_by(audit.c.id)).mappings().all()
        out = {k: row[k] for k in ("id", "sink", "record_id", "priority", "state", "attempts", "next_attempt_at",
                                   "external_id", "last_error", "created_at", "updated_at", "type")}
        out["record"] = _load(row["data"], row["reposts"]).to_dict()
        out["audit"] = [{"at": h["at"], "actor": h["actor"], "action": h["action"],
                         "detail": json.loads(h["detail"]) if h["detail"] else None} for h in history]
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
        if self.is_postgres:
            query = query.with_for_update()
        with self.begin() as conn:
            rows = conn.execute(query).all()
            for chunk in _chunks([row.id for row in rows], 500):
                conn.execute(update(outbox).where(outbox.c.id.in_(chunk), outbox.c.state == "dead")
                             .values(state="pending", attempts=0, next_attempt_at=now, last_error=None,
                                     external_id=None, lease_until=None, claim=None, updated_at=now))
            if rows:
                conn.execute(insert(audit), [{
                    "at": now, "actor": actor, "action": "dlq.replay",
                    "detail": json.dumps({"outbox_id": row.id, "sink": row.sink, "record_id": row.record_id,
                                          "attempts": row.attempts, "error": row.last_error})} for row in rows])
        return [row.id for row in rows]

    # --- the REST API: record queries, feedback, sources, stats, erasure, do-not-engage ---

    def records_page(self, *, types: Sequence[str] = (), sentiments: Sequence[str] = (),
                     priorities: Sequence[str] = (), route: str | None = None, team: str | None = None,
                     network: str | None = None, author: str | None = None, text: str | None = None,
                     since: datetime | None = None, until: datetime | None = None,
                     after: tuple[datetime, str] | None = None, limit: int = 50) -> list[tuple[Record, datetime]]:
        """Up to ``limit`` records matching every filter given, newest first (ties by id, descending),
        each with its stored ``created_at`` (the keyset position). ``after`` is the position of the last
        record of the previous page. ``text`` matches the content, case-insensitively."""
        query = select(records.c.data, records.c.reposts, records.c.created_at, records.c.id)
        for column, values in ((records.c.type, types), (records.c.sentiment, sentiments),
                               (records.c.priority, priorities)):
            if values:
                query = query.where(column.in_(list(values)))
        if route:
            query = query.where(records.c.route.contains(json.dumps(route), autoescape=True))
        if team:
            query = query.where(records.c.team == team)
        if network:
            query = query.where(records.c.network == network)
        if author:
            query = query.where(_author_matches(records.c.author_handle, author))
        if since:
            query = query.where(records.c.created_at >= _naive_utc(since))
        if until:
            query = query.where(records.c.created_at < _naive_utc(until))
        needle = text.casefold() if text else None
        if needle and needle.isascii():
            # Narrow in SQL (LIKE ignores ASCII case on SQLite; ILIKE on PostgreSQL), then check exactly below.
            escaped = orjson.dumps(text).decode()[1:-1]
            query = query.where(records.c.data.ilike(f"%{_like_escape(escaped)}%", escape="\\")
                                if self.is_postgres else records.c.data.like(f"%{_like_escape(escaped)}%", escape="\\"))
        query = query.order_by(records.c.created_at.desc(), records.c.id.desc())
        out: list[tuple[Record, datetime]] = []
        position = (_naive_utc(after[0]), after[1]) if after else None
        chunk = limit if not needle else max(limit, 200)
        with self.engine.connect() as conn:
            while len(out) < limit:
                page_query = query
                if position:
                    page_query = page_query.where(or_(records.c.created_at < position[0],
                                                      and_(records.c.created_at == position[0],
                                                           records.c.id < position[1])))
                rows = conn.execute(page_query.limit(chunk)).all()
                for row in rows:
                    record = _load(row.data, row.reposts)
                    if needle is None or needle in record.content.casefold():
                        out.append((record, utc(row.created_at)))
                        if len(out) == limit:
                            break
                if len(rows) < chunk:
                    break
                position = (rows[-1].created_at, rows[-1].id)
        return out

    def record_history(self, record_id: str) -> dict[str, list[dict[str, Any]]]:
        """A record's deliveries (its outbox rows) and the feedback people gave on it, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(outbox).where(outbox.c.record_id == record_id)
                                .order_by(outbox.c.id)).mappings().all()
            notes = conn.execute(select(feedback).where(feedback.c.record_id == record_id)
                                 .order_by(feedback.c.id)).mappings().all()
        deliveries = [{k: row[k] for k in ("id", "sink", "state", "attempts", "external_id", "last_error",
                                           "next_attempt_at", "created_at", "updated_at")} for row in rows]
        return {"deliveries": deliveries,
                "feedback": [{k: row[k] for k in ("id", "field", "old_value", "new_value", "text", "who", "at")}
                             for row in notes]}

    def apply_feedback(self, record_id: str, who: str,
                       change: Callable[[Record, Connection], dict[str, tuple[Any, Any]]],
                       note: str | None = None, now: float | None = None) -> dict[str, Any] | None:
        """Correct a record in one transaction: ``change`` edits the record (it gets the connection, to
        read inside the transaction) and returns the fields it changed as ``{field: (old, new)}``.
        Each change is kept in ``feedback`` (for learning) and the whole in ``audit``; sinks newly in
        the route get pending outbox rows, sinks dropped from it lose their rows not yet sent. Returns
        what happened, or None when there is no such record."""
        now = time.time() if now is None else now
        query = select(records.c.data, records.c.reposts).where(records.c.id == record_id)
        if self.is_postgres:
            query = query.with_for_update()
        with self.begin() as conn:
            row = conn.execute(query).first()
            if row is None:
                return None
            record = _load(row.data, row.reposts)
            changes = change(record, conn)
            existing = dict(conn.execute(select(outbox.c.sink, outbox.c.state)
                                         .where(outbox.c.record_id == record_id)).all())
            added = [s for s in record.route if s not in existing]
            cancelled = [s for s, state in existing.items() if s not in record.route and state in ("pending", "retry")]
            stored = dict(zip(_RECORD_COLUMNS, _record_row(record, now)))
            conn.execute(update(records).where(records.c.id == record_id).values(
                **{k: stored[k] for k in ("type", "sentiment", "priority", "action", "team", "route", "data")}))
            if changes:
                conn.execute(insert(feedback), [{
                    "record_id": record_id, "field": name, "old_value": json.dumps(old), "new_value": json.dumps(new),
                    "text": note, "who": who, "at": now} for name, (old, new) in changes.items()])
            self.bulk.insert(conn, outbox, _OUTBOX_COLUMNS, _new_outbox_rows(record_id, record.priority, added, now))
            if cancelled:
                conn.execute(delete(outbox).where(outbox.c.record_id == record_id, outbox.c.sink.in_(cancelled),
                                                  outbox.c.state.in_(("pending", "retry"))))
            if changes or added or cancelled:
                conn.execute(insert(audit).values(at=now, actor=who, action="record.feedback", detail=json.dumps({
                    "record_id": record_id, "changes": {k: list(v) for k, v in changes.items()},
                    "added_sinks": added, "cancelled_sinks": cancelled})))
        return {"record": record, "changes": changes, "added_sinks": added, "cancelled_sinks": cancelled}

    def source_states(self) -> dict[str, dict[str, Any]]:
        """Every source's stored cursor, when it was last polled and the error it last hit, by name."""
        with self.engine.connect() as conn:
            return {row["source"]: {"cursor": json.loads(row["cursor"]) if row["cursor"] else None,
                                    "updated_at": row["updated_at"], "last_poll_at": row["last_poll_at"],
                                    "last_error": row["last_error"]}
                    for row in conn.execute(select(cursors)).mappings()}

    def record_counts(self, since: datetime, until: datetime, bucket: str) -> dict[str, list[tuple[str, str, int]]]:
        """Records said in [since, until) counted per ``bucket`` (``hour`` or ``day``) by type, sentiment
        and network: ``{"type": [(bucket start as ISO 8601, value, count), ...], ...}``."""
        if self.is_postgres:
            pattern = 'YYYY-MM-DD"T"HH24:00:00"Z"' if bucket == "hour" else 'YYYY-MM-DD"T"00:00:00"Z"'
            start = func.to_char(func.date_trunc(bucket, records.c.created_at), pattern)
        else:
            start = func.strftime("%Y-%m-%dT%H:00:00Z" if bucket == "hour" else "%Y-%m-%dT00:00:00Z",
                                  records.c.created_at)
        start = start.label("bucket")
        window = and_(records.c.created_at >= _naive_utc(since), records.c.created_at < _naive_utc(until))
        out: dict[str, list[tuple[str, str, int]]] = {}
        with self.engine.connect() as conn:
            for name in ("type", "sentiment", "network"):
                column = records.c[name]
                rows = conn.execute(select(start, column, func.count()).where(window)
                                    .group_by(start, column).order_by(start, column)).all()
                out[name] = [(b, value, n) for b, value, n in rows]
        return out

    def record_contents(self, since: datetime, until: datetime, limit: int) -> list[str]:
        """The content of up to ``limit`` records said in [since, until), newest first."""
        query = (select(records.c.data).where(records.c.created_at >= _naive_utc(since),
                                              records.c.created_at < _naive_utc(until))
                 .order_by(records.c.created_at.desc()).limit(limit))
        with self.engine.connect() as conn:
            return [orjson.loads(data)["content"] for data in conn.execute(query).scalars()]

    def records_by_type(self) -> dict[str, int]:
        """How many records the store holds of each type."""
        with self.engine.connect() as conn:
            return dict(conn.execute(select(records.c.type, func.count()).group_by(records.c.type)).all())

    def erase_author(self, network: str, handle: str, actor: str, author_hash: str,
                     now: float | None = None) -> dict[str, int]:
        """Remove everything held about one author on one network, in one transaction: their mentions,
        the records learned from them, those records' outbox rows and feedback. Audit entries that named
        those records are redacted. The erasure's own audit entry keeps ``author_hash`` and the counts,
        never the handle. Returns the counts."""
        now = time.time() if now is None else now
        with self.begin() as conn:
            record_ids = list(conn.execute(select(records.c.id).where(
                records.c.network == network, _author_matches(records.c.author_handle, handle))).scalars())
            mention_ids = list(conn.execute(select(mentions.c.id).where(
                mentions.c.network == network, _author_matches(mentions.c.author_handle, handle))).scalars())
            counts = {"mentions": 0, "records": 0, "pending_deliveries": 0, "deliveries": 0, "feedback": 0,
                      "audit_redacted": 0}
            for chunk in _chunks(mention_ids, 500):
                counts["mentions"] += conn.execute(delete(mentions).where(mentions.c.id.in_(chunk))).rowcount
            for chunk in _chunks(record_ids, 500):
                counts["pending_deliveries"] += conn.execute(select(func.count()).select_from(outbox).where(
                    outbox.c.record_id.in_(chunk), outbox.c.state.in_(OPEN_STATES))).scalar_one()
                counts["deliveries"] += conn.execute(delete(outbox).where(outbox.c.record_id.in_(chunk))).rowcount
                counts["feedback"] += conn.execute(delete(feedback).where(feedback.c.record_id.in_(chunk))).rowcount
                counts["records"] += conn.execute(delete(records).where(records.c.id.in_(chunk))).rowcount
            for chunk in _chunks(record_ids, 50):
                named = or_(*(audit.c.detail.contains(f'"record_id": {json.dumps(rid)}', autoescape=True)
                              for rid in chunk))
                counts["audit_redacted"] += conn.execute(update(audit).where(named).values(
                    detail=json.dumps({"redacted": "the author's data was erased"}))).rowcount
            conn.execute(insert(audit).values(at=now, actor=actor, action="author.erase", detail=json.dumps(
                {"network": network, "author_hash": author_hash, "counts": counts})))
        return counts

    def add_do_not_engage(self, author_key: str, network: str, handle: str, actor: str,
                          now: float | None = None) -> dict[str, Any]:
        """Put an author (by salted key: the handle is not kept) on the do-not-engage list and cancel
        their records' deliveries not yet sent. Returns whether the entry is new and what was cancelled."""
        now = time.time() if now is None else now
        with self.begin() as conn:
            # rowcount of an ON CONFLICT insert is not reliable across drivers (psycopg answers -1): look first.
            new = conn.execute(select(do_not_engage.c.author_key)
                               .where(do_not_engage.c.author_key == author_key)).first() is None
            conn.execute(self._insert_ignore(do_not_engage, {
                "author_key": author_key, "network": network, "added_at": now, "added_by": actor}))
            ids = select(records.c.id).where(records.c.network == network,
                                             _author_matches(records.c.author_handle, handle)).scalar_subquery()
            cancelled = conn.execute(delete(outbox).where(outbox.c.record_id.in_(ids),
                                                          outbox.c.state.in_(("pending", "retry")))).rowcount
            conn.execute(insert(audit).values(at=now, actor=actor, action="do_not_engage.add", detail=json.dumps(
                {"author_key": author_key, "network": network, "cancelled_deliveries": cancelled})))
        return {"added": new, "cancelled_deliveries": cancelled}

    def remove_do_not_engage(self, author_key: str, actor: str, now: float | None = None) -> bool:
        """Take an author off the do-not-engage list; False when they were not on it."""
        now = time.time() if now is None else now
        with self.begin() as conn:
            gone = conn.execute(delete(do_not_engage).where(do_not_engage.c.author_key == author_key)).rowcount
            if gone:
                conn.execute(insert(audit).values(at=now, actor=actor, action="do_not_engage.remove",
                                                  detail=json.dumps({"author_key": author_key})))
        return bool(gone)

    def do_not_engage_entries(self) -> list[dict[str, Any]]:
        """The stored do-not-engage list (salted keys, never handles), the most recent first."""
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(select(do_not_engage).order_by(
                do_not_engage.c.added_at.desc(), do_not_engage.c.author_key)).mappings()]

    def blocked_authors(self, conn: Connection, author_keys: Iterable[str]) -> set[str]:
        """Which of these author keys are on the stored do-not-engage list."""
        found: set[str] = set()
        for chunk in _chunks(list(set(author_keys)), 500):
            found.update(conn.execute(select(do_not_engage.c.author_key)
                                      .where(do_not_engage.c.author_key.in_(chunk))).scalars())
        return found


def _author_matches(column: Any, handle: str) -> Any:
    """``column`` holds this handle, whatever its case and with or without a leading ``@``."""
    bare = handle.strip().lstrip("@").lower()
    return func.lower(column).in_([bare, f"@{bare}"])


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


_MENTION_COLUMNS = ("id", "network", "source", "native_id", "created_at", "author_id", "author_handle", "text", "lang",
                    "repost_of", "raw", "captured_at")
_RECORD_COLUMNS = ("id", "network", "source", "created_at", "type", "sentiment", "priority", "mode", "action",
                   "influence", "fraud", "author_handle", "team", "route", "reposts", "data", "learned_at")
# Store.complete's UPDATE written for SQLite's driver (qmark parameters), in the order complete() passes them.
_COMPLETE_SQL = ("UPDATE outbox SET state = ?, external_id = ?, last_error = ?, next_attempt_at = ?, "
                 "attempts = attempts + ?, lease_until = NULL, claim = NULL, updated_at = ? WHERE id = ? AND claim = ?")
# The same parameters by name, for SQLAlchemy's statement ("now" is bound into that statement itself).
_COMPLETE_PARAMS = ("st", "ext", "err", "nxt", "inc", "now", "oid", "tok")
_OUTBOX_COLUMNS = ("record_id", "sink", "priority", "state", "attempts", "next_attempt_at", "created_at", "updated_at")


def _new_outbox_rows(record_id: str, priority: str, sinks: Iterable[str], now: float) -> list[tuple]:
    """Pending outbox rows, due now, that deliver a record to each of ``sinks`` (``_OUTBOX_COLUMNS`` order)."""
    return [(record_id, sink, priority, "pending", 0, now, now, now) for sink in sinks]


def _record_row(record: Record, now: float) -> tuple:
    """A record as a row of the records table, in ``_RECORD_COLUMNS`` order."""
    return (record.id, record.network, record.source, _naive_utc(record.created_at), record.type,
            record.sentiment.label, record.priority, record.mode, record.action, record.influence.score,
            record.fraud, record.author.handle, record.team, json.dumps(record.route), record.reposts,
            orjson.dumps(record.to_dict()).decode(), now)


def _raw_text(raw: Any) -> str | None:
    """The raw payload as stored: JSON text, kept as the network sent it."""
    if raw is None:
        return None
    return raw if isinstance(raw, str) else orjson.dumps(raw, default=str).decode()


def _load(data: str, reposts: int) -> Record:
    """A stored record; the repost count lives in its own column because reposts arrive later."""
    record = Record.from_dict(orjson.loads(data))
    record.reposts = reposts
    return record


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]

def _dialect_insert(is_postgres: bool):
    """The dialect's INSERT, which knows ON CONFLICT (both SQLite and PostgreSQL speak it)."""
    if is_postgres:
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    return dialect_insert


def _dead_row(row: Any) -> dict[str, Any]:
    return {"id": row["id"], "sink": row["sink"], "record_id": row["record_id"], "type": row["type"],
            "priority": row["priority"], "attempts": row["attempts"], "error": row["last_error"],
            "queued_at": row["created_at"], "dead_at": row["updated_at"]}


__all__ = ["Claimed", "Outcome", "Store", "audit", "create_store_engine", "cursors", "feedback", "mentions",
           "metadata", "outbox", "records", "do_not_engage", "sink_calls", "sink_state", "isoformat"]
