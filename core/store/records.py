"""Reading records: the queries the API, the CLI, the demo and training use."""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Iterator, Sequence

import orjson
from sqlalchemy import Select, and_, func, or_, select

from socialcrm.core.sdk.model import NOISE_TYPES, Record, utc
from socialcrm.core.store.conversations import ConversationState, read_conversations
from socialcrm.core.store.database import Database
from socialcrm.core.store.rows import author_matches, load_record, naive_utc
from socialcrm.core.store.schema import feedback, mentions, outbox, records


class Records:
    """Queries over stored records and their history; every method reads, none writes."""

    def __init__(self, db: Database):
        self.db = db

    def iter_records(self, type_: str | None = None, since: datetime | None = None,
                     limit: int | None = None, conversation: str | None = None,
                     parent: str | None = None) -> Iterator[Record]:
        """Records, newest first, optionally of one type, since a time, of one conversation (its root's
        id) or answering one post (``parent``)."""
        query = select(records.c.data, records.c.reposts).order_by(records.c.created_at.desc(), records.c.id)
        if type_:
            query = query.where(records.c.type == type_)
        query = _in_thread_since(query, conversation, parent, since)
        if limit:
            query = query.limit(limit)
        with self.db.connect() as conn:
            for data, reposts in conn.execute(query):
                yield load_record(data, reposts)

    def get_record(self, record_id: str) -> Record | None:
        """One record by id."""
        with self.db.connect() as conn:
            row = conn.execute(select(records.c.data, records.c.reposts).where(records.c.id == record_id)).first()
        return load_record(*row) if row else None

    def conversation(self, key: str) -> ConversationState | None:
        """Where one conversation stands (None when no customer has spoken in it)."""
        with self.db.connect() as conn:
            return read_conversations(conn, [key]).get(key)

    def summary(self) -> dict[str, dict[str, int]]:
        """Counts of records by type, sentiment, priority and route."""
        out: dict[str, dict[str, int]] = {}
        with self.db.connect() as conn:
            for name, column in (("type", records.c.type), ("sentiment", records.c.sentiment),
                                 ("priority", records.c.priority), ("route", records.c.route)):
                rows = conn.execute(select(column, func.count()).group_by(column).order_by(column)).all()
                out[name] = {(", ".join(json.loads(k)) or "(none)") if name == "route" else k: n
                             for k, n in rows}
            out["mentions"] = {"total": conn.execute(select(func.count()).select_from(mentions)).scalar_one()}
        return out

    def counts(self) -> dict[str, int]:
        """Row counts of the main tables."""
        with self.db.connect() as conn:
            return {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                    for t in (mentions, records, outbox)}

    def records_page(self, *, types: Sequence[str] = (), sentiments: Sequence[str] = (),
                     priorities: Sequence[str] = (), route: str | None = None, unrouted: bool = False,
                     team: str | None = None,
                     network: str | None = None, author: str | None = None, text: str | None = None,
                     since: datetime | None = None, until: datetime | None = None,
                     after: tuple[datetime, str] | None = None, limit: int = 50,
                     conversation: str | None = None, parent: str | None = None) -> list[tuple[Record, datetime]]:
        """Up to ``limit`` records matching every filter given, newest first (ties by id, descending),
        each with its stored ``created_at`` (the keyset position). ``after`` is the position of the last
        record of the previous page. ``text`` matches the content, case-insensitively; ``unrouted`` keeps
        only the records no route sent anywhere. ``conversation`` keeps the records of one thread (its
        root's id), ``parent`` the replies to one post."""
        query = select(records.c.data, records.c.reposts, records.c.created_at, records.c.id)
        for column, values in ((records.c.type, types), (records.c.sentiment, sentiments),
                               (records.c.priority, priorities)):
            if values:
                query = query.where(column.in_(list(values)))
        if route:
            query = query.where(records.c.route.contains(json.dumps(route), autoescape=True))
        if unrouted:
            query = query.where(records.c.route == json.dumps([]))
        if team:
            query = query.where(records.c.team == team)
        if network:
            query = query.where(records.c.network == network)
        if author:
            query = query.where(author_matches(records.c.author_handle, author))
        query = _in_thread_since(query, conversation, parent, since)
        if until:
            query = query.where(records.c.created_at < naive_utc(until))
        needle = text.casefold() if text else None
        if needle and needle.isascii():
            # Narrow in SQL (LIKE ignores ASCII case on SQLite; ILIKE on PostgreSQL), then check exactly below.
            escaped = orjson.dumps(text).decode()[1:-1]
            query = query.where(records.c.data.ilike(f"%{_like_escape(escaped)}%", escape="\\")
                                if self.db.is_postgres
                                else records.c.data.like(f"%{_like_escape(escaped)}%", escape="\\"))
        query = query.order_by(records.c.created_at.desc(), records.c.id.desc())
        out: list[tuple[Record, datetime]] = []
        position = (naive_utc(after[0]), after[1]) if after else None
        chunk = limit if not needle else max(limit, 200)
        with self.db.connect() as conn:
            while len(out) < limit:
                page_query = query
                if position:
                    page_query = page_query.where(or_(records.c.created_at < position[0],
                                                      and_(records.c.created_at == position[0],
                                                           records.c.id < position[1])))
                rows = conn.execute(page_query.limit(chunk)).all()
                for row in rows:
                    record = load_record(row.data, row.reposts)
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
        with self.db.connect() as conn:
            rows = conn.execute(select(outbox).where(outbox.c.record_id == record_id)
                                .order_by(outbox.c.id)).mappings().all()
            notes = conn.execute(select(feedback).where(feedback.c.record_id == record_id)
                                 .order_by(feedback.c.id)).mappings().all()
        deliveries = [{k: row[k] for k in ("id", "sink", "state", "attempts", "external_id", "last_error",
                                           "next_attempt_at", "created_at", "updated_at")} for row in rows]
        return {"deliveries": deliveries,
                "feedback": [{k: row[k] for k in ("id", "field", "old_value", "new_value", "text", "who", "at")}
                             for row in notes]}

    def record_counts(self, since: datetime, until: datetime, bucket: str) -> dict[str, list[tuple[str, str, int]]]:
        """Records said in [since, until) counted per ``bucket`` (``hour`` or ``day``) by type, sentiment
        and network: ``{"type": [(bucket start as ISO 8601, value, count), ...], ...}``."""
        if self.db.is_postgres:
            pattern = 'YYYY-MM-DD"T"HH24:00:00"Z"' if bucket == "hour" else 'YYYY-MM-DD"T"00:00:00"Z"'
            start = func.to_char(func.date_trunc(bucket, records.c.created_at), pattern)
        else:
            start = func.strftime("%Y-%m-%dT%H:00:00Z" if bucket == "hour" else "%Y-%m-%dT00:00:00Z",
                                  records.c.created_at)
        start = start.label("bucket")
        window = and_(records.c.created_at >= naive_utc(since), records.c.created_at < naive_utc(until))
        out: dict[str, list[tuple[str, str, int]]] = {}
        with self.db.connect() as conn:
            for name in ("type", "sentiment", "network"):
                column = records.c[name]
                rows = conn.execute(select(start, column, func.count()).where(window)
                                    .group_by(start, column).order_by(start, column)).all()
                out[name] = [(b, value, n) for b, value, n in rows]
        return out

    def record_contents(self, since: datetime, until: datetime, limit: int) -> list[str]:
        """The content of up to ``limit`` records said in [since, until), newest first."""
        query = (select(records.c.data).where(records.c.created_at >= naive_utc(since),
                                              records.c.created_at < naive_utc(until))
                 .order_by(records.c.created_at.desc()).limit(limit))
        with self.db.connect() as conn:
            return [orjson.loads(data)["content"] for data in conn.execute(query).scalars()]

    def unrouted_count(self) -> int:
        """How many records reach no sink although they are not noise (spam, news)."""
        with self.db.connect() as conn:
            return conn.execute(select(func.count()).select_from(records).where(
                records.c.route == "[]", records.c.type.not_in(list(NOISE_TYPES)))).scalar_one()

    def records_by_type(self) -> dict[str, int]:
        """How many records the store holds of each type."""
        with self.db.connect() as conn:
            return dict(conn.execute(select(records.c.type, func.count()).group_by(records.c.type)).all())


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _in_thread_since(query: Select, conversation: str | None, parent: str | None, since: datetime | None) -> Select:
    """``query`` kept to one conversation (its root's id), the replies to one post, and records said at or
    after ``since``, for each that is given."""
    if conversation:
        query = query.where(records.c.conversation == conversation)
    if parent:
        query = query.where(records.c.parent == parent)
    if since:
        query = query.where(records.c.created_at >= naive_utc(since))
    return query
