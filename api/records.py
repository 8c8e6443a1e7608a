"""``/records``: list and filter records (cursor pagination), one record with its history, and feedback.

Pages are keyed on (created_at, id), newest first, so a page boundary never skips or repeats a record
while new ones arrive. The cursor is opaque to clients (base64 of that position).
"""
from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from flask_smorest import Blueprint

from socialcrm.core.services.feedback import correct_record
from socialcrm.core.services.records import record_detail, records_page

from .auth import caller, needs
from .errors import abort
from .query import query_arguments
from .schemas import (FeedbackResultSchema, FeedbackSchema, RecordDetailSchema, RecordPageSchema,
                      RecordQuerySchema)
from .state import state

blp = Blueprint("records", __name__, description="Records: list, filter, inspect, correct")


def encode_cursor(created_at: datetime, record_id: str) -> str:
    """The opaque cursor for the position after this record."""
    raw = json.dumps([created_at.isoformat(), record_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The position a cursor names; ``ValueError`` when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        when, record_id = json.loads(raw)
        position = datetime.fromisoformat(when)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise ValueError("not a cursor from this API") from exc
    if not isinstance(record_id, str) or position.tzinfo is None:
        raise ValueError("not a cursor from this API")
    return position, record_id


@blp.route("/records", methods=["GET"])
@needs(blp, "read")
@query_arguments(blp, RecordQuerySchema)
@blp.response(200, RecordPageSchema)
def list_records(args: dict[str, Any]):
    """List records, newest first, filtered by type, sentiment, priority, route, team, network, author,
    text, time, conversation and parent; pass ``next_cursor`` as ``cursor`` for the next page."""
    after = None
    if "cursor" in args:
        try:
            after = decode_cursor(args["cursor"])
        except ValueError as exc:
            abort(422, f"cursor: {exc}; pass next_cursor from the previous page", {"cursor": [str(exc)]})
    rows, more = records_page(
        state().runtime.store, args["limit"], after, types=args.get("type") or (),
        sentiments=args.get("sentiment") or (), priorities=args.get("priority") or (), route=args.get("route"),
        team=args.get("team"), network=args.get("network"), author=args.get("author"), text=args.get("q"),
        since=args.get("since"), until=args.get("until"),
        conversation=args.get("conversation"), parent=args.get("parent"))
    next_cursor = encode_cursor(rows[-1][1], rows[-1][0].id) if more and rows else None
    return {"items": [record for record, _ in rows], "next_cursor": next_cursor}


@blp.route("/records/<path:record_id>", methods=["GET"])
@needs(blp, "read")
@blp.response(200, RecordDetailSchema)
@blp.alt_response(404, response="NOT_FOUND")
def get_record(record_id: str):
    """One record with its reasons, its deliveries to each sink, the feedback on it, and its
    conversation's state (open or answered, the first response time)."""
    detail = record_detail(state().runtime.store, record_id)
    if detail is None:
        abort(404, f"no record {record_id!r}", {"record_id": ["no such record"]})
    return detail


@blp.route("/records/<path:record_id>/feedback", methods=["POST"])
@needs(blp, "write")
@blp.arguments(FeedbackSchema)
@blp.response(200, FeedbackResultSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(413, response="REQUEST_ENTITY_TOO_LARGE")
def give_feedback(data: dict[str, Any], record_id: str):
    """Correct a record's type, sentiment or route; kept for learning, audited, optionally re-routed."""
    st = state()
    sinks = st.runtime.enabled_sinks
    unknown = [s for s in data.get("route", []) if s not in sinks]
    if unknown:
        known = ", ".join(sorted(sinks)) or "none enabled"
        abort(422, f"route: no enabled sink named {', '.join(map(repr, unknown))} (sinks: {known})",
              {"route": [f"no enabled sink named {s!r}" for s in unknown]})
    result = correct_record(st.runtime.store, st.config, sinks, record_id, caller(), type_=data.get("type"),
                            sentiment=data.get("sentiment"), route=data.get("route"), reroute=data["reroute"],
                            note=data.get("note"), now=st.clock())
    if result is None:
        abort(404, f"no record {record_id!r}", {"record_id": ["no such record"]})
    return {**result, "changes": {k: list(v) for k, v in result["changes"].items()}}
