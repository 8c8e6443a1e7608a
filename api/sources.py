"""``/sources``: each source's cursor, last poll and last error; ask for a poll now.

Under ``socialcrm serve`` a schedule loop owns the sources, so a poll asked for here is handed to it
(``status: scheduled``, picked up within a second). Without one (an app embedded elsewhere, tests)
the poll runs in the request (``status: done``) under a lock, one poll at a time.
"""
from __future__ import annotations

from flask_smorest import Blueprint

from socialcrm.core.services.runtime import SourceDisabled, UnknownSource
from socialcrm.core.services.status import sources_status

from .auth import needs
from .errors import abort
from .query import query_arguments
from .schemas import PollResultSchema, SourceSchema
from .state import state

blp = Blueprint("sources", __name__, description="Sources: cursors, last polls, polling now")


@blp.route("/sources", methods=["GET"])
@needs(blp, "read")
@query_arguments(blp)
@blp.response(200, SourceSchema(many=True))
def list_sources(_query: dict):
    """List the configured sources and inbound webhooks with cursor, last poll and last error."""
    st = state()
    return sources_status(st.runtime.store, st.config)


@blp.route("/sources/<string:name>/poll", methods=["POST"])
@needs(blp, "write")
@blp.response(200, PollResultSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def poll_source(name: str):
    """Poll one source now (or have the running schedule poll it on its next tick)."""
    st = state()
    try:
        return st.runtime.poll_now(name, scheduled=st.scheduled)
    except UnknownSource as exc:
        abort(404, str(exc), {"name": ["no such source"]})
    except SourceDisabled as exc:
        abort(409, str(exc), {"name": ["source disabled"]})
