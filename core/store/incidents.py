"""Incident groups: near-identical complaints gathered while they form and once they are an incident.

The engine (``core.engine.incidents``) decides who belongs together; this module only keeps the groups
(the ``incidents`` table) and rewrites the stored records that join one, inside a page's transaction.

A wave keeps its groups growing page after page, so decoding every open group from the table with each
page cost more than the grouping itself. ``GroupCache`` keeps the decoded groups of one process between
pages: each page reads only the ids and versions of the groups in its window (a group's ``updated_at``
and the length of its member list, which every writer changes) and decodes only those it does not hold
at that version: new ones, and those another process or an erasure changed. What a page writes enters
the cache only once its transaction commits; a page that fails drops every group it was handed, since
the engine changes them in place. One transaction at a time holds the cache (``lease``): a page
running beside it in another thread (a webhook's, on PostgreSQL) reads its groups afresh instead.
"""
from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Any, Iterable, Sequence

import orjson
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.engine import Connection

from socialcrm.core.sdk.model import Record, utc
from socialcrm.core.store.bulk import BulkWriter
from socialcrm.core.store.rows import chunks, load_record, naive_utc
from socialcrm.core.store.schema import incidents, records

_JSON_COLUMNS = ("terms", "members", "authors", "examples")
_WRITTEN = (*_JSON_COLUMNS, "first_at", "last_at", "opened", "updated_at")

#: A stored group's version: its ``updated_at`` and the length of its ``members`` text.
Version = tuple[float, int]


class GroupCache:
    """Decoded incident groups by id, each with the version of the row it was read from or written as."""

    def __init__(self) -> None:
        self._groups: dict[str, tuple[Version, dict[str, Any]]] = {}
        self._lease = threading.Lock()

    def lease(self) -> bool:
        """Take the cache for one transaction; False if another holds it (then use a fresh one)."""
        return self._lease.acquire(blocking=False)

    def give_back(self) -> None:
        """End the lease ``lease`` took."""
        self._lease.release()

    def get(self, group_id: str, version: Version) -> dict[str, Any] | None:
        """The cached group, if it is held at exactly this version."""
        held = self._groups.get(group_id)
        return held[1] if held is not None and held[0] == version else None

    def put(self, group_id: str, version: Version, group: dict[str, Any]) -> None:
        """Hold ``group`` as stored at ``version``."""
        self._groups[group_id] = (version, group)

    def drop(self, group_ids: Iterable[str]) -> None:
        """Forget these groups (a failed page may have changed them in place)."""
        for group_id in group_ids:
            self._groups.pop(group_id, None)

    def keep_only(self, group_ids: Iterable[str]) -> None:
        """Forget every group but these (the latest page's window): memory stays as small as a window."""
        wanted = set(group_ids)
        for group_id in list(self._groups):
            if group_id not in wanted:
                del self._groups[group_id]

    def __len__(self) -> int:
        return len(self._groups)


def groups_since(conn: Connection, since: datetime, cache: GroupCache | None = None) -> list[dict[str, Any]]:
    """The groups whose last post is at or after ``since``, oldest first, as dicts of the table's columns
    (JSON columns decoded, times as aware UTC datetimes). With a ``cache``, only the groups it does not
    hold at their stored version are read in full (and then cached)."""
    cache = cache if cache is not None else GroupCache()
    window = (conn.execute(select(incidents.c.id, incidents.c.updated_at, func.length(incidents.c.members))
                           .where(incidents.c.last_at >= naive_utc(since))
                           .order_by(incidents.c.first_at, incidents.c.id)).all())
    found: dict[str, dict[str, Any]] = {}
    for group_id, updated_at, length in window:
        group = cache.get(group_id, (updated_at, length))
        if group is not None:
            found[group_id] = group
    missing = [group_id for group_id, _, _ in window if group_id not in found]
    for chunk in chunks(missing):
        for row in conn.execute(select(incidents).where(incidents.c.id.in_(chunk))).mappings():
            group = _decoded(row)
            cache.put(group["id"], (row["updated_at"], len(row["members"])), group)
            found[group["id"]] = group
    cache.keep_only(found)
    return [found[group_id] for group_id, _, _ in window if group_id in found]


def _decoded(row: Any) -> dict[str, Any]:
    group = dict(row)
    for name in _JSON_COLUMNS:
        group[name] = orjson.loads(group[name])
    group["first_at"], group["last_at"] = utc(group["first_at"]), utc(group["last_at"])
    return group


def save_groups(conn: Connection, groups: Sequence[dict[str, Any]], stored_ids: set[str],
                now: float | None = None, bulk: BulkWriter | None = None) -> dict[str, Version]:
    """Write groups (as ``groups_since`` returns them): those in ``stored_ids`` are updated, the rest
    inserted. Returns the version each is now stored at."""
    now = time.time() if now is None else now
    bulk = bulk or BulkWriter(conn.dialect)
    rows = [(*(orjson.dumps(group[name]).decode() for name in _JSON_COLUMNS), naive_utc(group["first_at"]),
             naive_utc(group["last_at"]), group["opened"], now, group["id"]) for group in groups]
    bulk.insert(conn, incidents, (*_WRITTEN, "id"), [row for row in rows if row[-1] not in stored_ids])
    bulk.update(conn, incidents, "id", _WRITTEN, [row for row in rows if row[-1] in stored_ids])
    return {row[-1]: (now, len(row[1])) for row in rows}


def stored_records(conn: Connection, record_ids: Sequence[str]) -> list[Record]:
    """The stored records of these ids (those that exist)."""
    found: list[Record] = []
    for chunk in chunks(list(dict.fromkeys(record_ids))):
        found.extend(load_record(data, reposts) for data, reposts in conn.execute(
            select(records.c.data, records.c.reposts).where(records.c.id.in_(chunk))))
    return found


def rewrite_records(conn: Connection, changed: Sequence[Record]) -> None:
    """Store the incident link, reasons and summary of records already stored (their JSON and the
    ``incident`` column)."""
    if changed:
        conn.execute(update(records).where(records.c.id == bindparam("rid")).values(
            data=bindparam("new_data"), incident=bindparam("new_incident")),
            [{"rid": r.id, "new_data": orjson.dumps(r.to_dict()).decode(), "new_incident": r.incident}
             for r in changed])


def forget_records(conn: Connection, erased: Sequence[Record], now: float | None = None) -> int:
    """Take erased records out of every group (members, example posts, their author's key) and out of
    the example posts of the incident records; returns how many groups changed. Each changed group's
    ``updated_at`` moves on, so a process holding it in its ``GroupCache`` reads it again."""
    now = time.time() if now is None else now
    ids = {r.id for r in erased}
    if not ids:
        return 0
    authors = {f"{r.network}:{r.author.id or r.author.handle or r.id}" for r in erased}
    changed = 0
    for row in conn.execute(select(incidents.c.id, incidents.c.members, incidents.c.authors,
                                   incidents.c.examples)).all():
        members = orjson.loads(row.members)
        if not ids.intersection(members):
            continue
        changed += 1
        examples = [e for e in orjson.loads(row.examples) if e["id"] not in ids]
        conn.execute(update(incidents).where(incidents.c.id == row.id).values(
            members=orjson.dumps([m for m in members if m not in ids]).decode(),
            authors=orjson.dumps([a for a in orjson.loads(row.authors) if a not in authors]).decode(),
            examples=orjson.dumps(examples).decode(), updated_at=now))
        for record in stored_records(conn, [row.id]):
            if record.incident_summary:
                record.incident_summary.examples = examples
                rewrite_records(conn, [record])
    return changed
