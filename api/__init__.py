"""The REST API (Flask + flask-smorest): records, feedback, sources, dead letters, the quarantine, stats,
metrics, signed inbound webhooks, erasure and the do-not-engage list, with bearer-token auth.

``create_app(config, plugins, pipeline)`` builds the app; ``socialcrm serve`` runs it under waitress
with the listen/deliver schedule beside it. The OpenAPI document (``/openapi.json``) is generated from
the marshmallow schemas in ``api/schemas.py``; ``/docs`` renders it as a page. One blueprint per
resource, each in its own module.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable

from flask import Flask

if TYPE_CHECKING:  # pragma: no cover
    from socialcrm.core.services.runtime import Config, Pipeline, PluginManager

API_VERSION = "1"


def create_app(config: "Config | None" = None, plugins: "PluginManager | None" = None,
               pipeline: "Pipeline | None" = None, *, scheduled: bool = False,
               clock: Callable[[], float] = time.time) -> Flask:
    """Build the Flask application.

    Without a config only ``/health`` is served. With one, every resource is, over ``pipeline`` (built
    from the config when not given; the caller closes it). ``scheduled`` says a ``run_forever`` loop
    runs beside the app, so asked-for polls are handed to it. ``clock`` gives the time (tests pin it).
    """
    from . import auth, deadletters, docs, erasure, health, metrics, plugins as plugins_api, quarantine, records, \
        sources, stats, webhooks
    from .errors import SocialcrmApi
    from .state import ApiState

    app = Flask("socialcrm")
    app.config.update(API_TITLE="socialcrm", API_VERSION=API_VERSION, OPENAPI_VERSION="3.0.3",
                      OPENAPI_URL_PREFIX="/", OPENAPI_JSON_PATH="openapi.json")
    app.json.sort_keys = False
    if config is None:
        api = SocialcrmApi(app)
        api.register_blueprint(health.blp)
        return app

    from socialcrm.core.services.runtime import Runtime
    app.config["MAX_CONTENT_LENGTH"] = config.api.max_body_bytes
    api_state = ApiState(Runtime.open(config, plugins, pipeline), clock=clock, scheduled=scheduled)
    app.extensions["socialcrm"] = api_state

    api = SocialcrmApi(app)
    app.extensions["socialcrm.api"] = api
    api.spec.components.security_scheme(auth.SCHEME, {"type": "http", "scheme": "bearer"})
    webhooks.register_schemas(api.spec)
    for module in (health, plugins_api, sources, records, deadletters, quarantine, stats, metrics, webhooks, erasure,
                   docs):
        api.register_blueprint(module.blp)
    docs_endpoints = {"api-docs.openapi_json", "docs.docs"}
    if config.api.public_docs:
        auth.install(app, config.api.tokens, docs_endpoints)
    else:
        auth.install(app, config.api.tokens, set(), {name: "read" for name in docs_endpoints})
    metrics.install(app, api_state)
    _log_requests(app)
    return app


def _log_requests(app: Flask) -> None:
    """One line per request: method, path, status and the token's name; never headers or the query
    (a query may name a person; headers hold the credentials)."""
    import logging

    from flask import request

    from .auth import caller
    log = logging.getLogger("socialcrm.api.access")

    @app.after_request
    def _log(response):
        log.info("%s %s %s (%s)", request.method, request.path, response.status_code, caller())
        return response


__all__ = ["API_VERSION", "create_app"]
