"""The store: mentions, records, cursors and the delivery outbox, on SQLAlchemy Core.

One schema serves SQLite (the embedded default, in WAL mode) and PostgreSQL. A page of mentions,
the records learned from it, their outbox rows and the source's next cursor are written in ONE
transaction, so a crash either keeps all of a page or none of it.
"""
from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Iterator, Sequence

from sqlalchemy import (Boolean, Column, DateTime, Float, Index, Integer, MetaData, String, Table, Text,
                        UniqueConstraint, and_, bindparam, case, create_engine, event, func, insert, or_,
                        select, update)
from sqlalchemy.engine import Connection, Engine, make_url

from .model import Mention, Record, isoformat, utc

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
Index("ix_outbox_due", outbox.c.sink, outbox.c.state, outbox.c.next_attempt_at)

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


class Store:
    """All reads and writes of socialcrm's data; nothing else touches the database."""

    def __init__(self, url: str):
        self.url = url
        self.engine = create_store_engine(url)
        self.is_postgres = self.engine.dialect.name == "postgresql"
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
        if new_mentions:
            conn.execute(insert(mentions), [{
                "id": m.id, "network": m.network, "source": m.source, "native_id": m.native_id,
                "created_at": _naive_utc(m.created_at), "author_id": m.author.id,
                "author_handle": m.author.handle, "text": m.text, "lang": m.lang, "repost_of": m.repost_of,
                "raw": json.dumps(m.raw, ensure_ascii=False, default=str) if m.raw is not None else None,
                "captured_at": now} for m in new_mentions])
        if new_records:
            conn.execute(insert(records), [_record_row(r, now) for r in new_records])
        rows = [{"record_id": r.id, "sink": sink, "priority": r.priority, "state": "pending", "attempts": 0,
                 "next_attempt_at": now, "created_at": now, "updated_at": now}
                for r in new_records for sink in r.route]
        if rows:
            conn.execute(insert(outbox), rows)
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

    # --- engage: the outbox ---

    def open_deliveries(self) -> int:
        """Outbox rows not yet delivered or dead (the backpressure measure)."""
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(outbox)
                                .where(outbox.c.state.in_(OPEN_STATES))).scalar_one()

    def claim(self, sink: str, limit: int, lease_seconds: float, now: float | None = None,
              priorities: Sequence[str] | None = None) -> tuple[str, list[Claimed]]:
        """Claim up to ``limit`` due rows for ``sink``: pending or retry rows whose time has come, and
        in-flight rows whose lease expired (their worker died). Returns the claim token and the rows."""
        now = time.time() if now is None else now
        token = str(uuid.uuid4())
        due = or_(and_(outbox.c.state.in_(("pending", "retry")), outbox.c.next_attempt_at <= now),
                  and_(outbox.c.state == "in_flight", outbox.c.lease_until < now))
        query = select(outbox.c.id).where(outbox.c.sink == sink, due)
        if priorities:
            query = query.where(outbox.c.priority.in_(priorities))
        query = query.order_by(outbox.c.priority, outbox.c.id).limit(limit)
        if self.is_postgres:
            query = query.with_for_update(skip_locked=True)
        with self.begin() as conn:
            ids = list(conn.execute(query).scalars())
            if not ids:
                return token, []
            conn.execute(update(outbox).where(outbox.c.id.in_(ids))
                         .values(state="in_flight", lease_until=now + lease_seconds, claim=token, updated_at=now))
            rows = conn.execute(select(outbox.c.id, outbox.c.attempts, records.c.data, records.c.reposts)
                                .join(records, records.c.id == outbox.c.record_id)
                                .where(outbox.c.id.in_(ids)).order_by(outbox.c.priority, outbox.c.id)).all()
        return token, [Claimed(row.id, _load(row.data, row.reposts), row.attempts) for row in rows]

    def complete(self, token: str, outcomes: Iterable[Outcome], now: float | None = None) -> int:
        """Write outcomes back to rows this claim still holds; returns how many rows were updated.

        A row whose lease expired and was claimed again by another loop is left to that loop.
        """
        now = time.time() if now is None else now
        params = [{"oid": o.outbox_id, "tok": token, "st": o.state, "ext": o.external_id, "err": o.error,
                   "nxt": o.next_attempt_at if o.next_attempt_at is not None else now} for o in outcomes]
        if not params:
            return 0
        statement = (update(outbox).where(outbox.c.id == bindparam("oid"), outbox.c.claim == bindparam("tok"))
                     .values(state=bindparam("st"), external_id=bindparam("ext"), last_error=bindparam("err"),
                             next_attempt_at=bindparam("nxt"), attempts=outbox.c.attempts + 1,
                             lease_until=None, claim=None, updated_at=now))
        with self.begin() as conn:
            result = conn.execute(statement, params)
        return result.rowcount if result.rowcount is not None and result.rowcount >= 0 else len(params)

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


def _record_row(record: Record, now: float) -> dict[str, Any]:
    return {
        "id": record.id, "network": record.network, "source": record.source,
        "created_at": _naive_utc(record.created_at), "type": record.type, "sentiment": record.sentiment.label,
        "priority": record.priority, "mode": record.mode, "action": record.action,
        "influence": record.influence.score, "fraud": record.fraud, "author_handle": record.author.handle,
        "team": record.team, "route": json.dumps(record.route), "reposts": record.reposts,
        "data": json.dumps(record.to_dict(), ensure_ascii=False), "learned_at": now,
    }


def _load(data: str, reposts: int) -> Record:
    """A stored record; the repost count lives in its own column because reposts arrive later."""
    record = Record.from_dict(json.loads(data))
    record.reposts = reposts
    return record


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


__all__ = ["Claimed", "Outcome", "Store", "audit", "create_store_engine", "cursors", "feedback", "mentions",
           "metadata", "outbox", "records", "isoformat"]
