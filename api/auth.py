"""Bearer-token auth with scopes, checked before any view runs.

Tokens come from ``[api] tokens`` in the config and from ``$SOCIALCRM_API_TOKENS``. Each is compared
in constant time (``hmac.compare_digest``) against every known token, so neither a token's content nor
its position leaks through timing. Scopes nest: ``admin`` holds ``write``, which holds ``read``.

A view declares what it needs with ``@needs(blp, "write")``, which also documents the security
requirement and the 401/403 answers in the OpenAPI spec. Views without a declaration are refused
unless marked ``@public`` (``/health``, the docs): auth fails closed.
"""
from __future__ import annotations

import hmac
import logging
from typing import Callable, Iterable

from flask import Flask, g, request
from flask_smorest import Blueprint

from socialcrm.core.services.runtime import ApiToken

from .errors import abort

log = logging.getLogger(__name__)

SCHEME = "bearerAuth"
_RANK = {"read": 1, "write": 2, "admin": 3}
_NEEDS = "_socialcrm_scope"
_PUBLIC = "_socialcrm_public"


def needs(blp: Blueprint, scope: str) -> Callable:
    """Require a bearer token with ``scope`` (or a higher one) for this view."""
    if scope not in _RANK:
        raise ValueError(f"unknown scope {scope!r}")

    def decorate(func: Callable) -> Callable:
        setattr(func, _NEEDS, scope)
        func = blp.doc(security=[{SCHEME: []}])(func)
        func = blp.alt_response(401, response="UNAUTHORIZED")(func)
        return blp.alt_response(403, response="FORBIDDEN")(func)
    return decorate


def public(func: Callable) -> Callable:
    """Mark a view as needing no token (``/health``; webhooks, which carry a signature instead)."""
    setattr(func, _PUBLIC, True)
    return func


def _has(token: ApiToken, scope: str) -> bool:
    return max((_RANK.get(s, 0) for s in token.scopes), default=0) >= _RANK[scope]


def find_token(presented: str, tokens: Iterable[ApiToken]) -> ApiToken | None:
    """The token whose value is ``presented``, comparing with every token in constant time."""
    given = presented.encode("utf-8", "surrogateescape")
    found = None
    for token in tokens:
        if hmac.compare_digest(given, token.token.encode("utf-8")) and found is None:
            found = token
    return found


def install(app: Flask, tokens: list[ApiToken], public_endpoints: set[str],
            endpoint_scopes: dict[str, str] | None = None) -> None:
    """Check every request's token against the scope its view needs, before the view runs.

    ``public_endpoints`` and ``endpoint_scopes`` cover views this app does not declare itself (the spec
    that flask-smorest serves) or whose rule depends on the config (the docs)."""
    endpoint_scopes = endpoint_scopes or {}

    @app.before_request
    def _authenticate():
        view = app.view_functions.get(request.endpoint or "")
        if view is None or request.endpoint in public_endpoints or (
                getattr(view, _PUBLIC, False) and request.endpoint not in endpoint_scopes):
            return None  # unknown routes get their 404/405; public views need nothing
        # An undeclared view is the most guarded.
        scope = endpoint_scopes.get(request.endpoint or "") or getattr(view, _NEEDS, "admin")
        header = request.headers.get("Authorization", "")
        kind, _, presented = header.partition(" ")
        challenge = {"WWW-Authenticate": 'Bearer realm="socialcrm"'}
        if kind.lower() != "bearer" or not presented.strip():
            abort(401, "send Authorization: Bearer <token> (tokens are set in [api] tokens or "
                       "$SOCIALCRM_API_TOKENS)", {"Authorization": ["missing bearer token"]}, challenge)
        token = find_token(presented.strip(), tokens)
        if token is None:
            log.warning("refused %s %s: unknown bearer token", request.method, request.path)
            abort(401, "the bearer token is not valid", {"Authorization": ["unknown token"]},
                  {"WWW-Authenticate": 'Bearer realm="socialcrm", error="invalid_token"'})
        if not _has(token, scope):
            log.warning("refused %s %s: token %r lacks the %r scope", request.method, request.path, token.name, scope)
            abort(403, f"this token ({token.name}) lacks the {scope!r} scope this endpoint needs",
                  {"Authorization": [f"needs scope {scope!r}"]})
        g.api_token = token
        return None


def caller() -> str:
    """The calling token's name: the "who" of feedback and audit entries."""
    token = getattr(g, "api_token", None)
    return token.name if token else "anonymous"


__all__ = ["SCHEME", "caller", "find_token", "install", "needs", "public"]
