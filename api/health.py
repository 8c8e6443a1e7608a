"""``GET /health``: liveness, without a token."""
from __future__ import annotations

from flask_smorest import Blueprint

from .auth import public
from .schemas import HealthSchema

blp = Blueprint("health", __name__, description="Liveness")


@blp.route("/health", methods=["GET"])
@public
@blp.response(200, HealthSchema)
def health():
    """Liveness: answers without authentication."""
    return {"status": "ok"}
