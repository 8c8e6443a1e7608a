"""``GET /stats``: the sentiment map and conversation drivers for a time range.

Counts of records by type, sentiment and network per hour or day, and the top terms and hashtags
(see ``socialcrm.core.services.stats`` for how they are counted).
"""
from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from socialcrm.core.services.stats import RangeRefused, record_stats

from .auth import needs
from .errors import abort
from .query import query_arguments
from .schemas import StatsQuerySchema, StatsSchema
from .state import state

blp = Blueprint("stats", __name__, description="Counts and top terms over time")


@blp.route("/stats", methods=["GET"])
@needs(blp, "read")
@query_arguments(blp, StatsQuerySchema)
@blp.response(200, StatsSchema)
def stats(args: dict[str, Any]):
    """Counts by type, sentiment and network per hour or day, and the top terms and hashtags."""
    st = state()
    try:
        return record_stats(st.runtime.store, st.config.brand, args["bucket"], args["top"], st.clock(),
                            since=args.get("since"), until=args.get("until"))
    except RangeRefused as exc:
        abort(422, str(exc), {exc.field: [exc.detail]})
