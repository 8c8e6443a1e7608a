"""The audit trail: who did what and when, with what each entry is about in indexed columns."""
from __future__ import annotations

import json
from typing import Any, Sequence

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from socialcrm.core.store.schema import audit

REDACTED = {"redacted": "the author's data was erased"}
# The columns an entry may name, besides its JSON detail.
SUBJECTS = ("record_id", "outbox_id", "sink", "author_key")


def entry(at: float, actor: str, action: str, detail: dict[str, Any], **subjects: Any) -> dict[str, Any]:
    """An audit row: ``subjects`` are what it is about (``record_id``, ``outbox_id``, ``sink``, ``author_key``)."""
    unknown = set(subjects) - set(SUBJECTS)
    if unknown:
        raise ValueError(f"audit entries name only {', '.join(SUBJECTS)}, not {', '.join(sorted(unknown))}")
    return {"at": at, "actor": actor, "action": action, "detail": json.dumps(detail),
            **{name: subjects.get(name) for name in SUBJECTS}}


def write(conn: Connection, entries: Sequence[dict[str, Any]]) -> None:
    """Add ``entries`` (made by ``entry``) to the trail, inside the caller's transaction."""
    if entries:
        conn.execute(insert(audit), list(entries))


def of_outbox_row(conn: Connection, outbox_id: int) -> list[dict[str, Any]]:
    """The entries about one outbox row, oldest first, their detail decoded."""
    rows = conn.execute(select(audit.c.at, audit.c.actor, audit.c.action, audit.c.detail)
                        .where(audit.c.outbox_id == outbox_id).order_by(audit.c.id)).mappings()
    return [{"at": row["at"], "actor": row["actor"], "action": row["action"],
             "detail": json.loads(row["detail"]) if row["detail"] else None} for row in rows]


def redact_records(conn: Connection, record_ids: Sequence[str]) -> int:
    """Strip the entries about these records of everything that named them; returns how many."""
    if not record_ids:
        return 0
    return conn.execute(update(audit).where(audit.c.record_id.in_(list(record_ids))).values(
        record_id=None, outbox_id=None, sink=None, detail=json.dumps(REDACTED))).rowcount
