"""``/quarantine``: items sources could not read, held with their raw payload; list, show, replay.

A thin face over the quarantine service that ``socialcrm quarantine`` uses too, with the dead letters'
scopes: reading needs ``read``, a replay ``write``. A replay takes the item in through the pipeline,
one at a time with webhook pages (the runtime's ingest lock).
"""
from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from socialcrm.core.services import quarantine as service

from .auth import needs
from .errors import abort
from .query import query_arguments
from .schemas import (QuarantinedDetailSchema, QuarantinedSchema, QuarantineItemReplaySchema, QuarantineQuerySchema,
                      QuarantineReplayResultSchema, QuarantineReplaySchema)
from .state import state

blp = Blueprint("quarantine", __name__, description="Unreadable input: list, show, replay")


def _outcomes(outcomes: list[service.ReplayOutcome]) -> dict[str, Any]:
    return {"outcomes": [{"id": o.id, "read": o.read, "mention_id": o.mention_id, "reason": o.reason}
                         for o in outcomes]}


@blp.route("/quarantine", methods=["GET"])
@needs(blp, "read")
@query_arguments(blp, QuarantineQuerySchema)
@blp.response(200, QuarantinedSchema(many=True))
def list_quarantined(args: dict[str, Any]):
    """List the items held, the most recent first, with where each was and why it could not be read."""
    return service.quarantined(state().runtime.store, source=args.get("source"), limit=args["limit"])


@blp.route("/quarantine/<int(min=1, max=9223372036854775807):item_id>", methods=["GET"])
@needs(blp, "read")
@blp.response(200, QuarantinedDetailSchema)
@blp.alt_response(404, response="NOT_FOUND")
def show_quarantined(item_id: int):
    """One quarantined item (held or replayed) with its raw payload."""
    row = service.quarantined_item(state().runtime.store, item_id)
    if row is None:
        abort(404, f"no quarantined item {item_id} (see GET /quarantine)", {"item_id": ["no such item"]})
    return row


@blp.route("/quarantine/replay", methods=["POST"])
@needs(blp, "write")
@blp.arguments(QuarantineReplaySchema)
@blp.response(200, QuarantineReplayResultSchema)
@blp.alt_response(413, response="REQUEST_ENTITY_TOO_LARGE")
def replay_quarantined(data: dict[str, Any]):
    """Read held items again as mentions: by ``ids``, or ``all`` (of one ``source``). Ids not held are
    refused (nothing is replayed); items still unreadable stay held with the new reason."""
    runtime = state().runtime
    try:
        with runtime.ingest_lock:
            outcomes = service.replay(runtime.pipeline, ids=data.get("ids"), source=data.get("source"))
    except service.NotQuarantined as exc:
        abort(422, f"ids: {exc}", {"ids": [f"{i} is not held in the quarantine" for i in exc.missing]})
    return _outcomes(outcomes)


@blp.route("/quarantine/<int(min=1, max=9223372036854775807):item_id>/replay", methods=["POST"])
@needs(blp, "write")
@blp.arguments(QuarantineItemReplaySchema)
@blp.response(200, QuarantineReplayResultSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(413, response="REQUEST_ENTITY_TOO_LARGE")
def replay_one_quarantined(data: dict[str, Any], item_id: int):
    """Read one held item again: its stored payload, or the edited ``payload`` given."""
    runtime = state().runtime
    try:
        with runtime.ingest_lock:
            outcomes = service.replay(runtime.pipeline, ids=[item_id], payload=data.get("payload"))
    except service.NotQuarantined:
        abort(404, f"no held item {item_id} (see GET /quarantine)", {"item_id": ["not held in the quarantine"]})
    return _outcomes(outcomes)
