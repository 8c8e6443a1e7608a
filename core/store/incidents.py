"""Incident groups: near-identical complaints gathered while they form and once they are an incident.

The engine (``core.engine.incidents``) decides who belongs together; this module only keeps the groups
(the ``incidents`` table) and rewrites the stored records that join one, inside a page's transaction.
"""
from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any, Sequence

import orjson
from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Connection

from socialcrm.core.sdk.model import Record, utc
from socialcrm.core.store.rows import chunks, load_record, naive_utc
from socialcrm.core.store.schema import incidents, records

_JSON_COLUMNS = ("terms", "members", "authors", "examples")


def groups_since(conn: Connection, since: datetime) -> list[dict[str, Any]]:
    """The groups whose last post is at or after ``since``, oldest first, as dicts of the table's columns
    (JSON columns decoded, times as aware UTC datetimes)."""
    rows = conn.execute(select(incidents).where(incidents.c.last_at >= naive_utc(since))
                        .order_by(incidents.c.first_at, incidents.c.id)).mappings().all()
    out = []
    for row in rows:
        group = dict(row)
        for name in _JSON_COLUMNS:
            group[name] = json.loads(group[name])
        group["first_at"], group["last_at"] = utc(group["first_at"]), utc(group["last_at"])
        out.append(group)
    return out


def save_groups(conn: Connection, groups: Sequence[dict[str, Any]], stored_ids: set[str],
                now: float | None = None) -> None:
    """Write groups (as ``groups_since`` returns them): those in ``stored_ids`` are updated, the rest inserted."""
    now = time.time() if now is None else now
    rows = [{**{k: group[k] for k in ("id", "opened")},
             **{name: json.dumps(group[name]) for name in _JSON_COLUMNS},
             "first_at": naive_utc(group["first_at"]), "last_at": naive_utc(group["last_at"]), "updated_at": now}
            for group in groups]
    new = [row for row in rows if row["id"] not in stored_ids]
    old = [row for row in rows if row["id"] in stored_ids]
    if new:
        conn.execute(incidents.insert(), new)
    if old:
        conn.execute(update(incidents).where(incidents.c.id == bindparam("gid")).values(
            {name: bindparam(f"new_{name}") for name in (*_JSON_COLUMNS, "first_at", "last_at", "opened",
                                                          "updated_at")}),
            [{"gid": row["id"], **{f"new_{k}": v for k, v in row.items() if k != "id"}} for row in old])


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


def forget_records(conn: Connection, erased: Sequence[Record]) -> int:
    """Take erased records out of every group (members, example posts, their author's key) and out of
    the example posts of the incident records; returns how many groups changed."""
    ids = {r.id for r in erased}
    if not ids:
        return 0
    authors = {f"{r.network}:{r.author.id or r.author.handle or r.id}" for r in erased}
    changed = 0
    for row in conn.execute(select(incidents.c.id, incidents.c.members, incidents.c.authors,
                                   incidents.c.examples)).all():
        members = json.loads(row.members)
        if not ids.intersection(members):
            continue
        changed += 1
        examples = [e for e in json.loads(row.examples) if e["id"] not in ids]
        conn.execute(update(incidents).where(incidents.c.id == row.id).values(
            members=json.dumps([m for m in members if m not in ids]),
            authors=json.dumps([a for a in json.loads(row.authors) if a not in authors]),
            examples=json.dumps(examples)))
        for record in stored_records(conn, [row.id]):
            if record.incident_summary:
                record.incident_summary.examples = examples
                rewrite_records(conn, [record])
    return changed
