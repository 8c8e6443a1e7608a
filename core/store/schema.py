"""Every table and index of the store, on one ``MetaData``.

One schema serves SQLite (the embedded default) and PostgreSQL. The concern modules of the store
(outbox, records, privacy, sink state, audit) all read and write these tables; nothing outside
``socialcrm.core.store`` does.
"""
from __future__ import annotations

from sqlalchemy import (Boolean, Column, DateTime, Float, ForeignKey, Index, Integer, MetaData, String, Table, Text,
                        UniqueConstraint, literal_column)

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
    Column("conversation", String(300)),  # the thread's root post id (network:root_id)
    Column("parent", String(300)),        # the post this one answers, if any
    Column("incident", String(300)),  # the incident record a grouped complaint belongs to
)
Index("ix_records_created", records.c.created_at)
Index("ix_records_incident", records.c.incident)
Index("ix_records_type", records.c.type, records.c.created_at)
Index("ix_records_conversation", records.c.conversation, records.c.created_at)
Index("ix_records_parent", records.c.parent)

# One row per conversation (thread) the store has heard a customer in: the customer who opened it (by the
# salted author key do-not-engage uses, not the handle), and ``followups``, that customer's posts after the
# first that no brand reply has answered yet. States: open | answered | resolved.
CONVERSATION_STATES = ("open", "answered", "resolved")
conversations = Table(
    "conversations", metadata,
    Column("key", String(300), primary_key=True),
    Column("first_record_id", String(300), nullable=False),
    Column("customer_key", String(64)),
    Column("opened_at", DateTime, nullable=False),
    Column("first_response_at", DateTime),
    Column("last_customer_post_at", DateTime, nullable=False),
    Column("followups", Integer, nullable=False, default=0),
    Column("state", String(12), nullable=False, default="open"),
)

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
OPEN_STATES = ("pending", "retry", "in_flight")
# Claims walk a sink's open rows in priority order and stop at the batch size. The index is partial:
# delivered and dead rows leave it, so it stays as small as the backlog however long the history grows.
# Queries repeat the predicate with the states as literals, not bound parameters: neither SQLite nor a
# generic PostgreSQL plan can prove a parameter matches the index's condition, and both would then
# scan the whole outbox, history and all, on every claim.
OPEN = outbox.c.state.in_([literal_column(f"'{state}'") for state in OPEN_STATES])
Index("ix_outbox_open", outbox.c.sink, outbox.c.priority, outbox.c.id, sqlite_where=OPEN, postgresql_where=OPEN)

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

# Who did what, and when. What an entry is about has its own columns, so history is found by index:
# the record (a foreign key: erasing a record redacts its entries first), the outbox row (no foreign
# key: a cancelled delivery's row is deleted while its history stays), the sink and the author key.
# ``detail`` is the entry's JSON, as the API shows it.
audit = Table(
    "audit", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("actor", String(255), nullable=False),
    Column("action", String(64), nullable=False),
    Column("record_id", String(300), ForeignKey("records.id", name="fk_audit_record")),
    Column("outbox_id", Integer),
    Column("sink", String(100)),
    Column("author_key", String(64)),
    Column("detail", Text),
)
Index("ix_audit_record", audit.c.record_id)
Index("ix_audit_outbox", audit.c.outbox_id)
Index("ix_audit_author", audit.c.author_key)

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

# Groups of near-identical complaints (``core.engine.incidents``): each keeps its key terms, members and
# accounts while it forms; ``opened`` once it has enough accounts and its incident record (id ``id``) exists.
incidents = Table(
    "incidents", metadata,
    Column("id", String(300), primary_key=True),
    Column("terms", Text, nullable=False),  # JSON object: key term -> how many members use it
    Column("members", Text, nullable=False),  # JSON list of member record ids
    Column("authors", Text, nullable=False),  # JSON list of member author keys
    Column("examples", Text, nullable=False),  # JSON list of up to 3 example posts
    Column("first_at", DateTime, nullable=False),
    Column("last_at", DateTime, nullable=False),
    Column("opened", Boolean, nullable=False, default=False),
    Column("updated_at", Float, nullable=False),
)
Index("ix_incidents_last", incidents.c.last_at)

# Authors who asked not to be engaged, by a salted hash of network and handle (the handle is not kept).
do_not_engage = Table(
    "do_not_engage", metadata,
    Column("author_key", String(64), primary_key=True),
    Column("network", String(40), nullable=False),
    Column("added_at", Float, nullable=False),
    Column("added_by", String(255), nullable=False),
)

# Items a source could not read (broken JSON, a missing field, undecodable bytes), kept with their raw
# payload so nothing is lost silently: ``held`` until a replay reads them as a mention (``replayed``).
quarantine = Table(
    "quarantine", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(100), nullable=False),
    Column("location", String(300)),  # where the item was: "line 7", the network's id
    Column("reason", Text, nullable=False),
    Column("payload", Text),  # the item as received, as text; None when the plugin kept none
    Column("state", String(12), nullable=False),  # held | replayed
    Column("replays", Integer, nullable=False, default=0),
    Column("record_id", String(300)),  # the mention a successful replay made
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)
Index("ix_quarantine_state", quarantine.c.state, quarantine.c.id)

__all__ = ["CONVERSATION_STATES", "OPEN", "OPEN_STATES", "audit", "conversations", "cursors", "do_not_engage",
           "feedback", "fingerprints", "incidents", "mentions", "metadata", "outbox", "quarantine", "records", "sink_calls",
           "sink_state"]
