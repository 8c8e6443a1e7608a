"""People's rights over their data: erasing an author, and the do-not-engage list."""
from __future__ import annotations

import time
from typing import Any

from sqlalchemy import delete, func, select

from socialcrm.core.store import audit as audit_trail
from socialcrm.core.store import incidents as incident_groups
from socialcrm.core.store.database import Database
from socialcrm.core.store.rows import author_matches, chunks
from socialcrm.core.store.schema import (OPEN_STATES, conversations, do_not_engage, feedback, mentions, outbox,
                                         records)


class Privacy:
    """Erasure of an author's data, and the stored do-not-engage list (salted keys, never handles)."""

    def __init__(self, db: Database):
        self.db = db

    def erase_author(self, network: str, handle: str, actor: str, author_hash: str,
                     now: float | None = None) -> dict[str, int]:
        """Remove everything held about one author on one network, in one transaction: their mentions,
        the records learned from them, those records' outbox rows and feedback, and the conversations they
        opened (kept by the same salted key, ``author_hash``, or by a first record erased). Audit entries about
        those records are redacted. The erasure's own audit entry keeps ``author_hash`` and the counts,
        never the handle. Returns the counts."""
        now = time.time() if now is None else now
        with self.db.begin() as conn:
            record_ids = list(conn.execute(select(records.c.id).where(
                records.c.network == network, author_matches(records.c.author_handle, handle))).scalars())
            mention_ids = list(conn.execute(select(mentions.c.id).where(
                mentions.c.network == network, author_matches(mentions.c.author_handle, handle))).scalars())
            counts = {"mentions": 0, "records": 0, "pending_deliveries": 0, "deliveries": 0, "feedback": 0,
                      "audit_redacted": 0}
            # Incidents keep example posts and account keys of their members: those go first.
            incident_groups.forget_records(conn, incident_groups.stored_records(conn, record_ids))
            for chunk in chunks(mention_ids):
                counts["mentions"] += conn.execute(delete(mentions).where(mentions.c.id.in_(chunk))).rowcount
            for chunk in chunks(record_ids):
                # Redacting drops the entries' reference to the record before the record goes.
                counts["audit_redacted"] += audit_trail.redact_records(conn, chunk)
                counts["pending_deliveries"] += conn.execute(select(func.count()).select_from(outbox).where(
                    outbox.c.record_id.in_(chunk), outbox.c.state.in_(OPEN_STATES))).scalar_one()
                counts["deliveries"] += conn.execute(delete(outbox).where(outbox.c.record_id.in_(chunk))).rowcount
                counts["feedback"] += conn.execute(delete(feedback).where(feedback.c.record_id.in_(chunk))).rowcount
                counts["records"] += conn.execute(delete(records).where(records.c.id.in_(chunk))).rowcount
                conn.execute(delete(conversations).where(conversations.c.first_record_id.in_(chunk)))
            conn.execute(delete(conversations).where(conversations.c.customer_key == author_hash))
            audit_trail.write(conn, [audit_trail.entry(
                now, actor, "author.erase", {"network": network, "author_hash": author_hash, "counts": counts},
                author_key=author_hash)])
        return counts

    def add_do_not_engage(self, author_key: str, network: str, handle: str, actor: str,
                          now: float | None = None) -> dict[str, Any]:
        """Put an author (by salted key: the handle is not kept) on the do-not-engage list and cancel
        their records' deliveries not yet sent. Returns whether the entry is new and what was cancelled."""
        now = time.time() if now is None else now
        with self.db.begin() as conn:
            # rowcount of an ON CONFLICT insert is not reliable across drivers (psycopg answers -1): look first.
            new = conn.execute(select(do_not_engage.c.author_key)
                               .where(do_not_engage.c.author_key == author_key)).first() is None
            conn.execute(self.db.insert_ignore(do_not_engage, {
                "author_key": author_key, "network": network, "added_at": now, "added_by": actor}))
            ids = select(records.c.id).where(records.c.network == network,
                                             author_matches(records.c.author_handle, handle)).scalar_subquery()
            cancelled = conn.execute(delete(outbox).where(outbox.c.record_id.in_(ids),
                                                          outbox.c.state.in_(("pending", "retry")))).rowcount
            audit_trail.write(conn, [audit_trail.entry(
                now, actor, "do_not_engage.add",
                {"author_key": author_key, "network": network, "cancelled_deliveries": cancelled},
                author_key=author_key)])
        return {"added": new, "cancelled_deliveries": cancelled}

    def remove_do_not_engage(self, author_key: str, actor: str, now: float | None = None) -> bool:
        """Take an author off the do-not-engage list; False when they were not on it."""
        now = time.time() if now is None else now
        with self.db.begin() as conn:
            gone = conn.execute(delete(do_not_engage).where(do_not_engage.c.author_key == author_key)).rowcount
            if gone:
                audit_trail.write(conn, [audit_trail.entry(now, actor, "do_not_engage.remove",
                                                           {"author_key": author_key}, author_key=author_key)])
        return bool(gone)

    def do_not_engage_entries(self) -> list[dict[str, Any]]:
        """The stored do-not-engage list (salted keys, never handles), the most recent first."""
        with self.db.connect() as conn:
            return [dict(row) for row in conn.execute(select(do_not_engage).order_by(
                do_not_engage.c.added_at.desc(), do_not_engage.c.author_key)).mappings()]
