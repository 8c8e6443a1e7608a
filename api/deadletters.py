"""``/dead-letters``: deliveries a sink refused for good (or gave up on); list, show, replay.

A thin face over the dead-letters service that ``socialcrm dlq`` uses too; a replay is audited under
the calling token's name.
"""
from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from socialcrm.core.sdk.model import Record
from socialcrm.core.services import deadletters as service

from .auth import caller, needs
from .errors import abort
from .query import query_arguments
from .schemas import (DeadLetterDetailSchema, DeadLetterQuerySchema, DeadLetterSchema, ReplayResultSchema,
                      ReplaySchema)
from .state import state

blp = Blueprint("dead-letters", __name__, description="Dead letters: list, show, replay")


@blp.route("/dead-letters", methods=["GET"])
@needs(blp, "read")
@query_arguments(blp, DeadLetterQuerySchema)
@blp.response(200, DeadLetterSchema(many=True))
def list_dead_letters(args: dict[str, Any]):
    """List dead letters, the most recent first, with each sink's reason."""
    return service.dead_letters(state().runtime.store, sink=args.get("sink"), limit=args["limit"])


@blp.route("/dead-letters/<int(min=1, max=9223372036854775807):outbox_id>", methods=["GET"])
@needs(blp, "read")
@blp.response(200, DeadLetterDetailSchema)
@blp.alt_response(404, response="NOT_FOUND")
def show_dead_letter(outbox_id: int):
    """One dead letter: the reason, the record as the sink received it, and its replay history."""
    row = service.outbox_row(state().runtime.store, outbox_id)
    if row is None or row["state"] != "dead":
        abort(404, f"no dead letter {outbox_id} (see GET /dead-letters)", {"outbox_id": ["not a dead letter"]})
    return {**row, "record": Record.from_dict(row["record"])}


@blp.route("/dead-letters/replay", methods=["POST"])
@needs(blp, "write")
@blp.arguments(ReplaySchema)
@blp.response(200, ReplayResultSchema)
@blp.alt_response(413, response="REQUEST_ENTITY_TOO_LARGE")
def replay_dead_letters(data: dict[str, Any]):
    """Send dead letters again: by ``ids``, every one of a ``sink``, or ``all``. Ids that are not dead
    letters are refused (nothing is replayed)."""
    st = state()
    try:
        replayed = service.replay(st.runtime.store, caller(), ids=data.get("ids"), sink=data.get("sink"),
                                  now=st.clock())
    except service.NotDeadLetters as exc:
        abort(422, f"ids: {exc}", {"ids": [f"{i} is not a dead letter" for i in exc.missing]})
    return {"replayed": replayed}


@blp.route("/dead-letters/<int(min=1, max=9223372036854775807):outbox_id>/replay", methods=["POST"])
@needs(blp, "write")
@blp.response(200, ReplayResultSchema)
@blp.alt_response(404, response="NOT_FOUND")
def replay_dead_letter(outbox_id: int):
    """Send one dead letter again."""
    st = state()
    try:
        replayed = service.replay(st.runtime.store, caller(), ids=[outbox_id], now=st.clock())
    except service.NotDeadLetters:
        abort(404, f"no dead letter {outbox_id} (see GET /dead-letters)", {"outbox_id": ["not a dead letter"]})
    return {"replayed": replayed}
