"""One unit of work: a database transaction and the reads and writes that must share it.

``Store.page()`` opens one for each page a source returns: the engine reads what the store already
knows, counts near-identical posts, learns, and saves the page, its records, their outbox rows and
the source's next cursor, all or nothing. ``Store.apply_feedback`` hands one to the change it applies.
"""
from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any, Iterable, Sequence

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Connection

from socialcrm.core.sdk.model import Mention, Record, SkippedItem
from socialcrm.core.store import quarantine as quarantined
from socialcrm.core.store.conversations import ConversationState, read_conversations, write_conversations
from socialcrm.core.store import incidents as incident_groups
from socialcrm.core.store.cursors import write_cursor
from socialcrm.core.store.database import Database
from socialcrm.core.store.rows import (MENTION_COLUMNS, OUTBOX_COLUMNS, RECORD_COLUMNS, chunks, mention_row,
                                       new_outbox_rows, record_row)
from socialcrm.core.store.schema import do_not_engage, fingerprints, mentions, outbox, records

_FINGERPRINT_COLUMNS = ("fingerprint", "posts", "authors", "last_at")


class WriteConflict(Exception):
    """Another writer stored some of the same rows first (a unique key clashed): read again and retry."""


class Transaction:
    """Reads and writes inside one open transaction."""

    def __init__(self, db: Database, connection: Connection, groups: incident_groups.GroupCache | None = None):
        self.db = db
        self._connection = connection
        self._stored_prints: set[str] = set()
        self._stored_groups: set[str] = set()
        # Incident groups: the process's cache (leased when first needed; a transaction of its own when
        # another holds it), what this transaction handed out (the engine changes those in place) and
        # what it wrote, cached once it commits.
        self._shared_groups = groups
        self._group_cache: incident_groups.GroupCache | None = None
        self._handed_out: set[str] = set()
        self._written_groups: dict[str, tuple[incident_groups.Version, dict[str, Any]]] = {}

    def known(self, mention_ids: Sequence[str], record_ids: Sequence[str]) -> tuple[set, set]:
        """Which of these mention ids and record ids the store already holds."""
        seen_mentions: set[str] = set()
        seen_records: set[str] = set()
        for chunk in chunks(list(set(mention_ids))):
            seen_mentions.update(self._connection.execute(select(mentions.c.id).where(mentions.c.id.in_(chunk)))
                                 .scalars())
        for chunk in chunks(list(set(record_ids))):
            seen_records.update(self._connection.execute(select(records.c.id).where(records.c.id.in_(chunk)))
                                .scalars())
        return seen_mentions, seen_records

    def blocked_authors(self, author_keys: Iterable[str]) -> set[str]:
        """Which of these author keys are on the stored do-not-engage list."""
        found: set[str] = set()
        for chunk in chunks(list(set(author_keys))):
            found.update(self._connection.execute(select(do_not_engage.c.author_key)
                                                 .where(do_not_engage.c.author_key.in_(chunk))).scalars())
        return found

    def fingerprints(self, wanted: Iterable[str]) -> dict[str, tuple[int, list[str]]]:
        """The stored counts of these text fingerprints: ``{fingerprint: (posts, up to 20 author keys)}``."""
        known: dict[str, tuple[int, list[str]]] = {}
        for chunk in chunks(sorted(set(wanted))):
            for fp, posts, authors in self._connection.execute(
                    select(fingerprints.c.fingerprint, fingerprints.c.posts, fingerprints.c.authors)
                    .where(fingerprints.c.fingerprint.in_(chunk))):
                known[fp] = (posts, json.loads(authors))
        self._stored_prints.update(known)
        return known

    def save_fingerprints(self, counts: dict[str, tuple[int, list[str]]], now: float | None = None) -> None:
        """Store fingerprint counts (as ``fingerprints`` returns them, updated): the ones read from
        this transaction are updated, the others inserted."""
        now = time.time() if now is None else now
        bulk, stored = self.db.bulk, self._stored_prints
        bulk.insert(self._connection, fingerprints, _FINGERPRINT_COLUMNS,
                    [(fp, posts, json.dumps(authors), now) for fp, (posts, authors) in counts.items()
                     if fp not in stored])
        bulk.update(self._connection, fingerprints, "fingerprint", _FINGERPRINT_COLUMNS[1:],
                    [(posts, json.dumps(authors), now, fp) for fp, (posts, authors) in counts.items() if fp in stored])
        stored.update(counts)

    def conversations(self, keys: Iterable[str]) -> dict[str, ConversationState]:
        """The stored states of these conversations (keys never seen are left out)."""
        return read_conversations(self._connection, keys)

    def save_conversations(self, states: Iterable[ConversationState]) -> None:
        """Store conversation states as the engine changed them (new ones inserted, the rest updated)."""
        write_conversations(self._connection, states, self.db.bulk)

    def routes_of(self, record_ids: Iterable[str]) -> dict[str, list[str]]:
        """The sinks each of these stored records was routed to."""
        found: dict[str, list[str]] = {}
        for chunk in chunks(sorted(set(record_ids))):
            for record_id, route in self._connection.execute(select(records.c.id, records.c.route)
                                                             .where(records.c.id.in_(chunk))):
                found[record_id] = json.loads(route)
        return found

    def incident_groups(self, since: datetime) -> list[dict[str, Any]]:
        """The incident groups (forming or opened) whose last post is at or after ``since``. They may be
        the very objects an earlier page of this process changed and saved (the store's cache holds them
        at the version it wrote), so only what changed is read again."""
        if self._group_cache is None:
            shared = self._shared_groups
            self._group_cache = shared if shared is not None and shared.lease() else incident_groups.GroupCache()
        groups = incident_groups.groups_since(self._connection, since, self._group_cache)
        ids = [g["id"] for g in groups]
        self._stored_groups.update(ids)
        self._handed_out.update(ids)
        return groups

    def save_incident_groups(self, groups: Sequence[dict[str, Any]], now: float | None = None) -> None:
        """Write incident groups as ``incident_groups`` returns them (changed or new): give only the
        groups that changed, since each is written whole."""
        versions = incident_groups.save_groups(self._connection, groups, self._stored_groups, now=now,
                                               bulk=self.db.bulk)
        self._stored_groups.update(versions)
        self._handed_out.update(versions)
        self._written_groups.update((g["id"], (versions[g["id"]], g)) for g in groups)

    def committed(self) -> None:
        """The transaction committed: the groups it wrote are what the store now holds."""
        if self._group_cache is not None:
            for group_id, (version, group) in self._written_groups.items():
                self._group_cache.put(group_id, version, group)
        self._end_lease()

    def rolled_back(self) -> None:
        """The transaction rolled back: the groups it handed out may have been changed in place."""
        if self._group_cache is not None:
            self._group_cache.drop(self._handed_out)
        self._end_lease()

    def _end_lease(self) -> None:
        if self._group_cache is not None and self._group_cache is self._shared_groups:
            self._group_cache.give_back()
        self._group_cache = None

    def stored_records(self, record_ids: Sequence[str]) -> list[Record]:
        """The stored records of these ids, read inside this transaction."""
        return incident_groups.stored_records(self._connection, record_ids)

    def rewrite_records(self, changed: Sequence[Record]) -> None:
        """Store the incident link, reasons and summary of records stored by earlier pages."""
        incident_groups.rewrite_records(self._connection, changed)

    def save_page(self, source: str | None, cursor: Any, new_mentions: Sequence[Mention], new_records: Sequence[Record],
                  reposts: dict[str, int], now: float | None = None, error: str | None = None,
                  skipped: Sequence[SkippedItem] = (), skipped_from: str | None = None,
                  replayed: dict[int, str] | None = None) -> int:
        """Write a page's mentions, records, outbox rows, repost counts and cursor; returns outbox rows.

        ``skipped`` (the page's unreadable items, of source ``skipped_from``, else ``source``) go to the
        quarantine; ``replayed`` marks quarantined items read at last (``{quarantine id: mention id}``).
        ``source`` None writes no cursor (a replay from the quarantine moves no source on)."""
        now = time.time() if now is None else now
        conn, bulk = self._connection, self.db.bulk
        quarantined.hold(conn, skipped_from or source or "", skipped, now)
        if replayed:
            quarantined.release(conn, replayed, now)
        bulk.insert(conn, mentions, MENTION_COLUMNS, [mention_row(m, now) for m in new_mentions])
        bulk.insert(conn, records, RECORD_COLUMNS, [record_row(r, now) for r in new_records])
        rows = [row for r in new_records for row in new_outbox_rows(r.id, r.priority, r.route, now)]
        bulk.insert(conn, outbox, OUTBOX_COLUMNS, rows)
        if reposts:
            conn.execute(update(records).where(records.c.id == bindparam("rid"))
                         .values(reposts=records.c.reposts + bindparam("n")),
                         [{"rid": rid, "n": n} for rid, n in reposts.items()])
        if source is not None:
            write_cursor(conn, source, cursor, now, error)
        return len(rows)
