"""Bringing a database written by an older layout up to this schema, until migrations arrive.

``create_all`` makes missing tables but never changes existing ones. The audit table gained the
columns naming what an entry is about (``record_id``, ``outbox_id``, ``sink``, ``author_key``): an
older database gets them added, indexed and filled in from each entry's JSON detail, once. The
records table gained ``conversation`` and ``parent`` the same way, filled in from each record's data.
The records table gained ``incident`` (the incident a grouped complaint belongs to): an older database
gets it added, empty (nothing was grouped before it existed).
"""
from __future__ import annotations

import json
import logging

from typing import Sequence

from sqlalchemy import Table, bindparam, inspect, select, update
from sqlalchemy.engine import Connection

from socialcrm.core.store.audit import SUBJECTS
from socialcrm.core.store.database import Database
from socialcrm.core.store.rows import chunks
from socialcrm.core.store.schema import audit, records

log = logging.getLogger(__name__)


def missing_columns(db: Database, table: Table, names: Sequence[str], filled_from: str) -> list[str]:
    """Which of ``names`` the stored ``table`` lacks (an older layout), said in a warning when any."""
    present = {column["name"] for column in inspect(db.engine).get_columns(table.name)}
    missing = [name for name in names if name not in present]
    if missing:
        log.warning("the %s table predates its %s columns: adding them and filling them in from %s", table.name,
                    ", ".join(missing), filled_from)
    return missing


def add_columns(conn: Connection, db: Database, table: Table, names: Sequence[str],
                references: dict[str, str] | None = None) -> None:
    """ALTER ``table`` to add the columns ``names`` as the schema declares them, then its missing indexes."""
    preparer = db.engine.dialect.identifier_preparer
    for name in names:
        foreign = f" REFERENCES {(references or {})[name]}" if name in (references or {}) else ""
        conn.exec_driver_sql(f"ALTER TABLE {preparer.quote(table.name)} ADD COLUMN {preparer.quote(name)} "
                             f"{table.c[name].type.compile(db.engine.dialect)}{foreign}")
    for index in table.indexes:
        index.create(conn, checkfirst=True)


def add_audit_subjects(db: Database) -> None:
    """Add the audit table's subject columns when an older layout lacks them, and fill them in."""
    missing = missing_columns(db, audit, SUBJECTS, "each entry's detail")
    if not missing:
        return
    with db.begin() as conn:
        add_columns(conn, db, audit, missing, references={"record_id": "records (id)"})
        filled = []
        for entry_id, detail in conn.execute(select(audit.c.id, audit.c.detail).where(audit.c.detail.is_not(None))):
            about = json.loads(detail)
            if not isinstance(about, dict):
                continue
            filled.append({"entry": entry_id, "record_id": about.get("record_id"),
                           "outbox_id": about.get("outbox_id"), "sink": about.get("sink"),
                           "author_key": about.get("author_key") or about.get("author_hash")})
        named = list({row["record_id"] for row in filled if row["record_id"]})
        held: set[str] = set()
        for chunk in chunks(named):
            held.update(conn.execute(select(records.c.id).where(records.c.id.in_(chunk))).scalars())
        for row in filled:
            if row["record_id"] not in held:
                row["record_id"] = None  # the foreign key holds only for records still stored
        rows = [row for row in filled if any(row[name] is not None for name in SUBJECTS)]
        if rows:
            # Parameters named apart from the columns they set: SQLAlchemy reserves the columns' own names.
            conn.execute(update(audit).where(audit.c.id == bindparam("entry"))
                         .values({name: bindparam(f"new_{name}") for name in SUBJECTS}),
                         [{"entry": row["entry"], **{f"new_{name}": row[name] for name in SUBJECTS}} for row in rows])


THREAD_COLUMNS = ("conversation", "parent")


def add_record_threads(db: Database) -> None:
    """Add the records table's ``conversation`` and ``parent`` columns when an older layout lacks them,
    index them and fill them in from each record's stored JSON, once."""
    missing = missing_columns(db, records, THREAD_COLUMNS, "each record's data")
    if not missing:
        return
    with db.begin() as conn:
        add_columns(conn, db, records, missing)
        filled = []
        for record_id, data in conn.execute(select(records.c.id, records.c.data)):
            stored = json.loads(data)
            # A record learned before threads were captured is its own conversation.
            filled.append({"rid": record_id, "new_conversation": stored.get("conversation") or record_id,
                           "new_parent": stored.get("parent")})
        if filled:
            conn.execute(update(records).where(records.c.id == bindparam("rid"))
                         .values({name: bindparam(f"new_{name}") for name in THREAD_COLUMNS}), filled)


def add_record_incident(db: Database) -> None:
    """Add the records table's ``incident`` column (and its index) when an older layout lacks it."""
    present = {column["name"] for column in inspect(db.engine).get_columns("records")}
    if "incident" in present:
        return
    log.warning("the records table predates its incident column: adding it")
    column = records.c.incident
    with db.begin() as conn:
        conn.exec_driver_sql(f"ALTER TABLE records ADD COLUMN incident {column.type.compile(db.engine.dialect)}")
        for index in records.indexes:
            index.create(conn, checkfirst=True)
