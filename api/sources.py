"""``/sources``: each source's cursor, last poll and last error; ask for a poll now.

Under ``socialcrm serve`` a schedule loop owns the sources, so a poll asked for here is handed to it
(``status: scheduled``, picked up within a second). Without one (an app embedded elsewhere, tests)
the poll runs in the request (``status: done``) under a lock, one poll at a time.
"""
from __future__ import annotations

import logging

from flask_smorest import Blueprint

from socialcrm.core.engine.pipeline import ListenStats

from .auth import needs
from .errors import abort
from .schemas import PollResultSchema, SourceSchema
from .state import state

log = logging.getLogger(__name__)

blp = Blueprint("sources", __name__, description="Sources: cursors, last polls, polling now")

WEBHOOK_CURSOR_PREFIX = "webhook:"


@blp.route("/sources", methods=["GET"])
@needs(blp, "read")
@blp.response(200, SourceSchema(many=True))
def list_sources():
    """List the configured sources and inbound webhooks with cursor, last poll and last error."""
    st = state()
    stored = st.store.source_states()
    full = st.store.open_deliveries() >= st.config.max_pending
    out = []
    for sc in st.config.sources:
        row = stored.get(sc.instance, {})
        out.append({"name": sc.instance, "kind": "poll", "plugin": sc.plugin, "enabled": sc.enabled,
                    "poll_interval": sc.poll_interval, "cursor": row.get("cursor"),
                    "last_poll_at": row.get("last_poll_at"), "last_error": row.get("last_error"),
                    "paused": (not sc.enabled) or full})
    for name in sorted(st.config.api.webhooks):
        row = stored.get(WEBHOOK_CURSOR_PREFIX + name, {})
        out.append({"name": name, "kind": "webhook", "plugin": None, "enabled": True, "poll_interval": None,
                    "cursor": None, "last_poll_at": row.get("last_poll_at"), "last_error": row.get("last_error"),
                    "paused": full})
    return out


@blp.route("/sources/<string:name>/poll", methods=["POST"])
@needs(blp, "write")
@blp.response(200, PollResultSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def poll_source(name: str):
    """Poll one source now (or have the running schedule poll it on its next tick)."""
    st = state()
    configured = {sc.instance: sc for sc in st.config.sources}
    if name not in configured:
        abort(404, f"no source named {name!r} (sources: {', '.join(sorted(configured)) or 'none'})",
              {"name": ["no such source"]})
    if name not in st.pipeline.sources:
        abort(409, f"source {name!r} is disabled (enabled = false in [sources.{name}])",
              {"name": ["source disabled"]})
    if st.scheduled:
        st.pipeline.request_poll(name)
        return {"source": name, "status": "scheduled", "fetched": None, "records": None, "duplicates": None,
                "error": None}
    stats = ListenStats()
    with st.poll_lock:
        st.pipeline.listen_source(name, st.pipeline.sources[name], stats)
    error = stats.errors.get(name) or ("listening paused: the outbox is full" if stats.paused else None)
    return {"source": name, "status": "done", "fetched": stats.fetched, "records": stats.records,
            "duplicates": stats.duplicates, "error": error}
