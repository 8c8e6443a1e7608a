"""People's corrections of records: applying one (with its re-routing and audit), and reading them
back as training examples."""
from __future__ import annotations

import json
import time
from typing import Any, Callable, Sequence

import orjson
from sqlalchemy import delete, insert, select, update

from socialcrm.core.sdk.model import Record
from socialcrm.core.store import audit as audit_trail
from socialcrm.core.store.database import Database
from socialcrm.core.store.rows import OUTBOX_COLUMNS, RECORD_COLUMNS, chunks, load_record, new_outbox_rows, record_row
from socialcrm.core.store.schema import feedback, outbox, records
from socialcrm.core.store.transaction import Transaction

# The record's columns a correction may change (the rest say where and when it came from).
_CORRECTABLE = ("type", "sentiment", "priority", "action", "team", "route", "data")


class Corrections:
    """Corrections of records, kept in ``feedback`` for learning and in the audit trail."""

    def __init__(self, db: Database):
        self.db = db

    def apply_feedback(self, record_id: str, who: str,
                       change: Callable[[Record, Transaction], dict[str, tuple[Any, Any]]],
                       note: str | None = None, now: float | None = None) -> dict[str, Any] | None:
        """Correct a record in one transaction: ``change`` edits the record (it gets the transaction, to
        read inside it) and returns the fields it changed as ``{field: (old, new)}``.
        Each change is kept in ``feedback`` (for learning) and the whole in ``audit``; sinks newly in
        the route get pending outbox rows, sinks dropped from it lose their rows not yet sent. Returns
        what happened, or None when there is no such record."""
        now = time.time() if now is None else now
        query = select(records.c.data, records.c.reposts).where(records.c.id == record_id)
        if self.db.is_postgres:
            query = query.with_for_update()
        with self.db.begin() as conn:
            row = conn.execute(query).first()
            if row is None:
                return None
            record = load_record(row.data, row.reposts)
            changes = change(record, Transaction(self.db, conn))
            existing = dict(conn.execute(select(outbox.c.sink, outbox.c.state)
                                         .where(outbox.c.record_id == record_id)).all())
            added = [s for s in record.route if s not in existing]
            cancelled = [s for s, state in existing.items() if s not in record.route and state in ("pending", "retry")]
            stored = dict(zip(RECORD_COLUMNS, record_row(record, now)))
            conn.execute(update(records).where(records.c.id == record_id).values(
                **{k: stored[k] for k in _CORRECTABLE}))
            if changes:
                conn.execute(insert(feedback), [{
                    "record_id": record_id, "field": name, "old_value": json.dumps(old), "new_value": json.dumps(new),
                    "text": note, "who": who, "at": now} for name, (old, new) in changes.items()])
            self.db.bulk.insert(conn, outbox, OUTBOX_COLUMNS, new_outbox_rows(record_id, record.priority, added, now))
            if cancelled:
                conn.execute(delete(outbox).where(outbox.c.record_id == record_id, outbox.c.sink.in_(cancelled),
                                                  outbox.c.state.in_(("pending", "retry"))))
            if changes or added or cancelled:
                audit_trail.write(conn, [audit_trail.entry(now, who, "record.feedback", {
                    "record_id": record_id, "changes": {k: list(v) for k, v in changes.items()},
                    "added_sinks": added, "cancelled_sinks": cancelled}, record_id=record_id)])
        return {"record": record, "changes": changes, "added_sinks": added, "cancelled_sinks": cancelled}

    def latest_corrections(self, fields: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
        """Per corrected record still held, in the order they were first corrected: its content and the
        latest value people gave each of ``fields`` (``(content, {field: value})``)."""
        latest: dict[str, dict[str, Any]] = {}
        with self.db.connect() as conn:
            for record_id, field, new_value in conn.execute(
                    select(feedback.c.record_id, feedback.c.field, feedback.c.new_value)
                    .where(feedback.c.field.in_(list(fields))).order_by(feedback.c.at, feedback.c.id)):
                latest.setdefault(record_id, {})[field] = json.loads(new_value)
            texts: dict[str, str] = {}
            for chunk in chunks(list(latest)):
                texts.update(conn.execute(select(records.c.id, records.c.data).where(records.c.id.in_(chunk))).all())
        return [(orjson.loads(texts[record_id])["content"], values)
                for record_id, values in latest.items() if record_id in texts]  # erased records are left out
