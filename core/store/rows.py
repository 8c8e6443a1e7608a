"""Converting between the SDK's objects and the store's rows, and batching ids for ``IN`` lists."""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Iterable, Iterator

import orjson
from sqlalchemy import func

from socialcrm.core.sdk.model import Mention, Record, utc

MENTION_COLUMNS = ("id", "network", "source", "native_id", "created_at", "author_id", "author_handle", "text", "lang",
                   "repost_of", "raw", "captured_at")
RECORD_COLUMNS = ("id", "network", "source", "created_at", "type", "sentiment", "priority", "mode", "action",
                  "influence", "fraud", "author_handle", "team", "route", "reposts", "data", "learned_at",
                  "conversation", "parent", "incident")
OUTBOX_COLUMNS = ("record_id", "sink", "priority", "state", "attempts", "next_attempt_at", "created_at", "updated_at")


def naive_utc(value: datetime) -> datetime:
    """A time as the ``DateTime`` columns hold it: UTC without a zone."""
    return utc(value).replace(tzinfo=None)


def mention_row(m: Mention, now: float) -> tuple:
    """A mention as a row of the mentions table, in ``MENTION_COLUMNS`` order."""
    return (m.id, m.network, m.source, m.native_id, naive_utc(m.created_at), m.author.id, m.author.handle, m.text,
            m.lang, m.repost_of, raw_text(m.raw), now)


def record_row(record: Record, now: float) -> tuple:
    """A record as a row of the records table, in ``RECORD_COLUMNS`` order."""
    return (record.id, record.network, record.source, naive_utc(record.created_at), record.type,
            record.sentiment.label, record.priority, record.mode, record.action, record.influence.score,
            record.fraud, record.author.handle, record.team, json.dumps(record.route), record.reposts,
            orjson.dumps(record.to_dict()).decode(), now, record.conversation, record.parent, record.incident)


def new_outbox_rows(record_id: str, priority: str, sinks: Iterable[str], now: float) -> list[tuple]:
    """Pending outbox rows, due now, that deliver a record to each of ``sinks`` (``OUTBOX_COLUMNS`` order)."""
    return [(record_id, sink, priority, "pending", 0, now, now, now) for sink in sinks]


def raw_text(raw: Any) -> str | None:
    """The raw payload as stored: JSON text, kept as the network sent it."""
    if raw is None:
        return None
    return raw if isinstance(raw, str) else orjson.dumps(raw, default=str).decode()


def load_record(data: str, reposts: int) -> Record:
    """A stored record; the repost count lives in its own column because reposts arrive later."""
    record = Record.from_dict(orjson.loads(data))
    record.reposts = reposts
    return record


def chunks(items: list, size: int = 500) -> Iterator[list]:
    """``items`` in lists of at most ``size``: bound parameters per statement are limited."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


def author_matches(column: Any, handle: str) -> Any:
    """``column`` holds this handle, whatever its case and with or without a leading ``@``."""
    bare = handle.strip().lstrip("@").lower()
    return func.lower(column).in_([bare, f"@{bare}"])
