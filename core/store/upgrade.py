"""Bringing a database written by an older layout up to this schema, until migrations arrive.

``create_all`` makes missing tables but never changes existing ones. The audit table gained the
columns naming what an entry is about (``record_id``, ``outbox_id``, ``sink``, ``author_key``): an
older database gets them added, indexed and filled in from each entry's JSON detail, once. The
records table gained ``incident`` (the incident a grouped complaint belongs to): an older database
gets it added, empty (nothing was grouped before it existed).
"""
from __future__ import annotations

import json
import logging

from sqlalchemy import bindparam, inspect, select, update

from socialcrm.core.store.audit import SUBJECTS
from socialcrm.core.store.database import Database
from socialcrm.core.store.rows import chunks
from socialcrm.core.store.schema import audit, records

log = logging.getLogger(__name__)


def add_audit_subjects(db: Database) -> None:
    """Add the audit table's subject columns when an older layout lacks them, and fill them in."""
    present = {column["name"] for column in inspect(db.engine).get_columns("audit")}
    missing = [name for name in SUBJECTS if name not in present]
    if not missing:
        return
    log.warning("the audit table predates its %s columns: adding them and filling them in from each "
                "entry's detail", ", ".join(missing))
    preparer = db.engine.dialect.identifier_preparer
    with db.begin() as conn:
        for name in missing:
            column = audit.c[name]
            references = " REFERENCES records (id)" if name == "record_id" else ""
            conn.exec_driver_sql(f"ALTER TABLE audit ADD COLUMN {preparer.quote(name)} "
                                 f"{column.type.compile(db.engine.dialect)}{references}")
        for index in audit.indexes:
            index.create(conn, checkfirst=True)
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
