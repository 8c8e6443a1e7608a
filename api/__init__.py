"""The REST API (Flask). Today it serves ``/health``; records, feedback, webhooks and the rest follow."""
from __future__ import annotations

from flask import Flask, jsonify


def create_app() -> Flask:
    """Build the Flask application."""
    app = Flask("socialcrm")

    @app.get("/health")
    def health():
        """Liveness: answers without authentication."""
        return jsonify(status="ok")

    return app
