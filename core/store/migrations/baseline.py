"""Revision 0001, the baseline: the layout socialcrm 0.1.0 made with ``create_all``, frozen here, and the
adoption of a database an earlier socialcrm made (one with no version table).

``LAYOUT`` is that layout table by table. It never changes: a later revision changes the schema
(``schema.py``) and says how in its own file. Before migrations, every open ran ``create_all`` (which adds
missing tables, never columns) and then added the few columns the layout had gained since: the audit
entries' subject columns, the records' thread columns and their incident column. ``adopt`` does what
those opens did, once, so a database from any of those releases reaches this layout with every row it
holds: the columns are added and filled in from what the rows already say, and missing indexes made.
"""
from __future__ import annotations

import json
import logging
from typing import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

log = logging.getLogger(__name__)

LAYOUT = sa.MetaData()
_OPEN = sa.text("state IN ('pending', 'retry', 'in_flight')")

sa.Table(
    "mentions", LAYOUT,
    sa.Column("id", sa.String(300), primary_key=True),
    sa.Column("network", sa.String(40), nullable=False),
    sa.Column("source", sa.String(100)),
    sa.Column("native_id", sa.String(255), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("author_id", sa.String(255)),
    sa.Column("author_handle", sa.String(255)),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("lang", sa.String(16)),
    sa.Column("repost_of", sa.String(300)),
    sa.Column("raw", sa.Text),
    sa.Column("captured_at", sa.Float, nullable=False),
    sa.Index("ix_mentions_author", "network", "author_handle"),
)
sa.Table(
    "records", LAYOUT,
    sa.Column("id", sa.String(300), primary_key=True),
    sa.Column("network", sa.String(40), nullable=False),
    sa.Column("source", sa.String(100)),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("sentiment", sa.String(16), nullable=False),
    sa.Column("priority", sa.String(4), nullable=False),
    sa.Column("mode", sa.String(16), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("influence", sa.Integer, nullable=False),
    sa.Column("fraud", sa.Boolean, nullable=False),
    sa.Column("author_handle", sa.String(255)),
    sa.Column("team", sa.String(100)),
    sa.Column("route", sa.Text, nullable=False),
    sa.Column("reposts", sa.Integer, nullable=False),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("learned_at", sa.Float, nullable=False),
    sa.Column("conversation", sa.String(300)),
    sa.Column("parent", sa.String(300)),
    sa.Column("incident", sa.String(300)),
    sa.Index("ix_records_created", "created_at"),
    sa.Index("ix_records_incident", "incident"),
    sa.Index("ix_records_type", "type", "created_at"),
    sa.Index("ix_records_conversation", "conversation", "created_at"),
    sa.Index("ix_records_parent", "parent"),
)
sa.Table(
    "conversations", LAYOUT,
    sa.Column("key", sa.String(300), primary_key=True),
    sa.Column("first_record_id", sa.String(300), nullable=False),
    sa.Column("customer_key", sa.String(64)),
    sa.Column("opened_at", sa.DateTime, nullable=False),
    sa.Column("first_response_at", sa.DateTime),
    sa.Column("last_customer_post_at", sa.DateTime, nullable=False),
    sa.Column("followups", sa.Integer, nullable=False),
    sa.Column("state", sa.String(12), nullable=False),
)
sa.Table(
    "cursors", LAYOUT,
    sa.Column("source", sa.String(100), primary_key=True),
    sa.Column("cursor", sa.Text),
    sa.Column("updated_at", sa.Float),
    sa.Column("last_poll_at", sa.Float),
    sa.Column("last_error", sa.Text),
)
sa.Table(
    "outbox", LAYOUT,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("record_id", sa.String(300), nullable=False),
    sa.Column("sink", sa.String(100), nullable=False),
    sa.Column("priority", sa.String(4), nullable=False),
    sa.Column("state", sa.String(12), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", sa.Float, nullable=False),
    sa.Column("lease_until", sa.Float),
    sa.Column("claim", sa.String(36)),
    sa.Column("external_id", sa.String(255)),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.UniqueConstraint("record_id", "sink", name="uq_outbox_record_sink"),
    sa.Index("ix_outbox_open", "sink", "priority", "id", sqlite_where=_OPEN, postgresql_where=_OPEN),
)
sa.Table(
    "feedback", LAYOUT,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("record_id", sa.String(300), nullable=False),
    sa.Column("field", sa.String(32), nullable=False),
    sa.Column("old_value", sa.Text),
    sa.Column("new_value", sa.Text, nullable=False),
    sa.Column("text", sa.Text),
    sa.Column("who", sa.String(255), nullable=False),
    sa.Column("at", sa.Float, nullable=False),
)
sa.Table(
    "audit", LAYOUT,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("actor", sa.String(255), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("record_id", sa.String(300), sa.ForeignKey("records.id", name="fk_audit_record")),
    sa.Column("outbox_id", sa.Integer),
    sa.Column("sink", sa.String(100)),
    sa.Column("author_key", sa.String(64)),
    sa.Column("detail", sa.Text),
    sa.Index("ix_audit_record", "record_id"),
    sa.Index("ix_audit_outbox", "outbox_id"),
    sa.Index("ix_audit_author", "author_key"),
)
sa.Table(
    "sink_state", LAYOUT,
    sa.Column("sink", sa.String(100), primary_key=True),
    sa.Column("breaker", sa.String(12), nullable=False),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("opened_at", sa.Float),
    sa.Column("open_until", sa.Float),
    sa.Column("probe_until", sa.Float),
    sa.Column("hold_until", sa.Float),
    sa.Column("last_error", sa.Text),
    sa.Column("updated_at", sa.Float, nullable=False),
)
sa.Table(
    "sink_calls", LAYOUT,
    sa.Column("sink", sa.String(100), primary_key=True),
    sa.Column("day", sa.String(10), primary_key=True),
    sa.Column("calls", sa.Integer, nullable=False),
)
sa.Table(
    "fingerprints", LAYOUT,
    sa.Column("fingerprint", sa.String(32), primary_key=True),
    sa.Column("posts", sa.Integer, nullable=False),
    sa.Column("authors", sa.Text, nullable=False),
    sa.Column("last_at", sa.Float, nullable=False),
)
sa.Table(
    "incidents", LAYOUT,
    sa.Column("id", sa.String(300), primary_key=True),
    sa.Column("terms", sa.Text, nullable=False),
    sa.Column("members", sa.Text, nullable=False),
    sa.Column("authors", sa.Text, nullable=False),
    sa.Column("examples", sa.Text, nullable=False),
    sa.Column("first_at", sa.DateTime, nullable=False),
    sa.Column("last_at", sa.DateTime, nullable=False),
    sa.Column("opened", sa.Boolean, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Index("ix_incidents_last", "last_at"),
)
sa.Table(
    "do_not_engage", LAYOUT,
    sa.Column("author_key", sa.String(64), primary_key=True),
    sa.Column("network", sa.String(40), nullable=False),
    sa.Column("added_at", sa.Float, nullable=False),
    sa.Column("added_by", sa.String(255), nullable=False),
)
sa.Table(
    "quarantine", LAYOUT,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(100), nullable=False),
    sa.Column("location", sa.String(300)),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("payload", sa.Text),
    sa.Column("state", sa.String(12), nullable=False),
    sa.Column("replays", sa.Integer, nullable=False),
    sa.Column("record_id", sa.String(300)),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Index("ix_quarantine_state", "state", "id"),
)

AUDIT_SUBJECTS = ("record_id", "outbox_id", "sink", "author_key")
THREAD_COLUMNS = ("conversation", "parent")
OPTIONAL = {"audit": AUDIT_SUBJECTS, "records": (*THREAD_COLUMNS, "incident")}
"""The columns a database an earlier socialcrm made may lack (it added them on open); ``adopt`` adds them."""


def upgrade(bind: Connection) -> None:
    """Revision 0001: create the tables the database lacks; adopt those an earlier socialcrm made."""
    present = set(sa.inspect(bind).get_table_names()) & set(LAYOUT.tables)
    for table in LAYOUT.sorted_tables:
        if table.name not in present:
            table.create(bind)
    if present:
        adopt(bind, present)


def adopt(bind: Connection, present: set[str]) -> None:
    """Bring the tables an earlier socialcrm made (``present``) to ``LAYOUT``: the columns they lack, filled
    in from what their rows already hold, and the indexes they lack."""
    if "audit" in present:
        _audit_subjects(bind, _lacking(bind, "audit", AUDIT_SUBJECTS))
    if "records" in present:
        _record_threads(bind, _lacking(bind, "records", THREAD_COLUMNS))
        _add_columns(bind, "records", _lacking(bind, "records", ("incident",)))  # nothing was grouped before
    inspector = sa.inspect(bind)
    for name in sorted(present):
        indexed = {index["name"] for index in inspector.get_indexes(name)}
        for index in LAYOUT.tables[name].indexes:
            if index.name not in indexed:
                index.create(bind)


def _lacking(bind: Connection, table: str, names: Sequence[str]) -> list[str]:
    present = {column["name"] for column in sa.inspect(bind).get_columns(table)}
    missing = [name for name in names if name not in present]
    if missing:
        log.warning("the %s table predates its %s columns: adding them", table, ", ".join(missing))
    return missing


def _add_columns(bind: Connection, table: str, names: Sequence[str], references: dict[str, str] | None = None) -> None:
    """ALTER ``table`` to add ``names`` as ``LAYOUT`` declares them (SQLite adds a column with its foreign
    key in place, where a separate constraint would need the whole table rebuilt)."""
    for name in names:
        column = LAYOUT.tables[table].c[name]
        foreign = f" CONSTRAINT {references[name]}" if references and name in references else ""
        bind.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {name} {column.type.compile(bind.dialect)}{foreign}")


def _audit_subjects(bind: Connection, missing: list[str]) -> None:
    """Add the audit entries' subject columns and fill them in from each entry's JSON detail."""
    if not missing:
        return
    _add_columns(bind, "audit", missing, references={"record_id": "fk_audit_record REFERENCES records (id)"})
    audit = sa.table("audit", sa.column("id"), sa.column("detail"), *(sa.column(name) for name in AUDIT_SUBJECTS))
    records = sa.table("records", sa.column("id"))
    filled = []
    for entry_id, detail in bind.execute(sa.select(audit.c.id, audit.c.detail).where(audit.c.detail.is_not(None))):
        about = json.loads(detail)
        if isinstance(about, dict):
            filled.append({"entry": entry_id, "record_id": about.get("record_id"), "outbox_id": about.get("outbox_id"),
                           "sink": about.get("sink"), "author_key": about.get("author_key") or about.get("author_hash")})
    named = sorted({row["record_id"] for row in filled if row["record_id"]})
    held: set[str] = set()
    for start in range(0, len(named), 500):
        held.update(bind.execute(sa.select(records.c.id).where(records.c.id.in_(named[start:start + 500]))).scalars())
    for row in filled:
        if row["record_id"] not in held:
            row["record_id"] = None  # the foreign key holds only for records still stored
    rows = [row for row in filled if any(row[name] is not None for name in AUDIT_SUBJECTS)]
    if rows:
        # Parameters named apart from the columns they set: SQLAlchemy reserves the columns' own names.
        bind.execute(sa.update(audit).where(audit.c.id == sa.bindparam("entry"))
                     .values({name: sa.bindparam(f"new_{name}") for name in AUDIT_SUBJECTS}),
                     [{"entry": row["entry"], **{f"new_{name}": row[name] for name in AUDIT_SUBJECTS}} for row in rows])


def _record_threads(bind: Connection, missing: list[str]) -> None:
    """Add the records' ``conversation`` and ``parent`` columns and fill them in from each record's data."""
    if not missing:
        return
    _add_columns(bind, "records", missing)
    records = sa.table("records", sa.column("id"), sa.column("data"), *(sa.column(name) for name in THREAD_COLUMNS))
    filled = []
    for record_id, data in bind.execute(sa.select(records.c.id, records.c.data)):
        stored = json.loads(data)
        # A record learned before threads were captured is its own conversation.
        filled.append({"rid": record_id, "new_conversation": stored.get("conversation") or record_id,
                       "new_parent": stored.get("parent")})
    if filled:
        bind.execute(sa.update(records).where(records.c.id == sa.bindparam("rid"))
                     .values({name: sa.bindparam(f"new_{name}") for name in THREAD_COLUMNS}), filled)
