"""Conversations: one row per thread a customer spoke in, and whether the brand has answered it.

The engine decides how a page changes a conversation (``socialcrm.core.engine.conversations``); the
store reads the states it needs inside the page's transaction and writes back the ones it changed.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable

from sqlalchemy import select
from sqlalchemy.engine import Connection

from socialcrm.core.sdk.model import isoformat, utc
from socialcrm.core.store.bulk import BulkWriter
from socialcrm.core.store.rows import chunks, naive_utc
from socialcrm.core.store.schema import conversations

CONVERSATION_COLUMNS = ("key", "first_record_id", "customer_key", "opened_at", "first_response_at", "last_customer_post_at",
                        "followups", "state")


@dataclass
class ConversationState:
    """Where one conversation stands: who opened it and when, the brand's first reply, and how many of
    the customer's follow-ups since the brand last spoke are unanswered (``followups``).
    ``customer_key`` is the opener's salted author key (``[privacy] hash_salt``), never the handle.

    ``state`` is ``open`` (the customer spoke last), ``answered`` (the brand did) or ``resolved``.
    ``stored`` says whether the row exists yet (the store inserts or updates accordingly).
    """

    key: str
    first_record_id: str
    opened_at: datetime
    last_customer_post_at: datetime
    first_response_at: datetime | None = None
    customer_key: str | None = None
    followups: int = 0
    state: str = "open"
    stored: bool = False

    @property
    def answered(self) -> bool:
        """Whether the brand has replied since the customer last spoke."""
        return self.state == "answered"

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict, timestamps as ISO 8601 UTC; first-response time in seconds once answered."""
        response = self.first_response_at
        return {"key": self.key, "state": self.state, "first_record_id": self.first_record_id,
                "opened_at": isoformat(self.opened_at),
                "first_response_at": isoformat(response) if response else None,
                "first_response_seconds": (max(0, int((response - self.opened_at).total_seconds()))
                                           if response else None),
                "last_customer_post_at": isoformat(self.last_customer_post_at),
                "unanswered_followups": self.followups}


def read_conversations(conn: Connection, keys: Iterable[str]) -> dict[str, ConversationState]:
    """The stored states of these conversation keys (keys the store has not seen are left out)."""
    found: dict[str, ConversationState] = {}
    for chunk in chunks(sorted(set(keys))):
        for row in conn.execute(select(conversations).where(conversations.c.key.in_(chunk))).mappings():
            found[row["key"]] = _state(row)
    return found


def write_conversations(conn: Connection, states: Iterable[ConversationState], bulk: BulkWriter | None = None) -> None:
    """Insert the new states and update the stored ones; each is marked stored afterwards."""
    states = list(states)
    bulk = bulk or BulkWriter(conn.dialect)
    rows = [(s.first_record_id, s.customer_key, naive_utc(s.opened_at),
             naive_utc(s.first_response_at) if s.first_response_at else None, naive_utc(s.last_customer_post_at),
             s.followups, s.state, s.key) for s in states]
    bulk.insert(conn, conversations, (*CONVERSATION_COLUMNS[1:], "key"),
                [row for s, row in zip(states, rows) if not s.stored])
    bulk.update(conn, conversations, "key", CONVERSATION_COLUMNS[1:], [row for s, row in zip(states, rows) if s.stored])
    for state in states:
        state.stored = True


def _state(row) -> ConversationState:
    response = row["first_response_at"]
    return ConversationState(key=row["key"], first_record_id=row["first_record_id"], opened_at=utc(row["opened_at"]),
                             last_customer_post_at=utc(row["last_customer_post_at"]),
                             first_response_at=utc(response) if response else None,
                             customer_key=row["customer_key"], followups=row["followups"],
                             state=row["state"], stored=True)
