"""``GET /plugins``: every source and sink plugin found, built-in or installed."""
from __future__ import annotations

from flask_smorest import Blueprint

from .auth import needs
from .query import query_arguments
from .schemas import PluginSchema
from .state import state

blp = Blueprint("plugins", __name__, description="Installed source and sink plugins")


@blp.route("/plugins", methods=["GET"])
@needs(blp, "read")
@query_arguments(blp)
@blp.response(200, PluginSchema(many=True))
def list_plugins(_query: dict):
    """List every source and sink plugin, with the distribution that registered it."""
    return [{"kind": p.kind, "name": p.name, "plugin": p.plugin, "distribution": p.distribution,
             "version": p.version, "summary": ((p.cls.__doc__ or "").strip().splitlines() or [""])[0]}
            for p in state().runtime.plugins.listing()]
