"""One error shape for every 4xx and 5xx: ``{code, status, message, errors: {field: [messages]}}``.

flask-smorest routes every ``HTTPException`` (including webargs' validation errors and Werkzeug's
413 for an oversized body) through ``Api.handle_http_exception``; ``SocialcrmApi`` overrides it so
validation errors are keyed by field name (``author.followers``), not by request location, and every
error carries a message a person can act on.
"""
from __future__ import annotations

import logging
from typing import Any, Mapping

import flask_smorest
from flask_smorest import abort as _abort
from werkzeug.exceptions import HTTPException

from .schemas import ErrorSchema

log = logging.getLogger(__name__)

_LOCATIONS = ("json", "query", "querystring", "headers", "path", "view_args", "form", "files", "cookies")


def field_errors(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """Flatten marshmallow/webargs messages to ``{"dotted.field": [message, ...]}``.

    The request location (``json``, ``query``) is dropped: field names are unique within one view.
    A whole-body problem (``_schema``) is reported under ``body``; a list item under ``[i]``.
    """
    out: dict[str, list[str]] = {}

    def walk(value: Any, path: str) -> None:
        if isinstance(value, Mapping):
            for key, inner in value.items():
                key = str(key)
                if not path and key in _LOCATIONS:
                    walk(inner, "")
                elif key == "_schema":
                    walk(inner, path or "body")
                elif key.isdigit():
                    walk(inner, f"{path}[{key}]" if path else f"[{key}]")
                else:
                    walk(inner, f"{path}.{key}" if path else key)
        elif isinstance(value, (list, tuple)):
            for item in value:
                if isinstance(item, (Mapping, list, tuple)):
                    walk(item, path)
                else:
                    out.setdefault(path or "body", []).append(str(item))
        else:
            out.setdefault(path or "body", []).append(str(value))

    walk(messages, prefix)
    return out


def summary(errors: Mapping[str, list[str]], limit: int = 3) -> str:
    """``field: message; field: message`` for the first few problems."""
    parts = [f"{name}: {messages[0]}" for name, messages in list(errors.items())[:limit] if messages]
    more = len(errors) - limit
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def abort(code: int, message: str, errors: Mapping[str, list[str]] | None = None,
          headers: Mapping[str, str] | None = None):
    """Stop the request with an error response in the one shape."""
    kwargs: dict[str, Any] = {"message": message}
    if errors:
        kwargs["errors"] = dict(errors)
    if headers:
        kwargs["headers"] = dict(headers)
    _abort(code, **kwargs)


class SocialcrmApi(flask_smorest.Api):
    """flask-smorest's ``Api`` with socialcrm's error shape."""

    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error: HTTPException):
        """Every ``HTTPException`` as ``{code, status, message, errors}`` JSON."""
        code = error.code or 500
        data = getattr(error, "data", None) or {}
        errors: dict[str, list[str]] = {}
        if "errors" in data:
            errors = field_errors(data["errors"])
        elif "messages" in data:  # webargs' validation errors
            errors = field_errors(data["messages"])
        message = data.get("message")
        if not message:
            if errors:
                message = f"invalid input: {summary(errors)}"
            elif code == 500:
                message = "internal error: the server log has the details"
            else:
                message = error.description or error.name
        headers = {k: v for k, v in error.get_headers() if k.lower() not in ("content-type", "content-length")}
        headers.update(data.get("headers") or {})
        if code >= 500:
            original = getattr(error, "original_exception", None)
            if original is not None:
                log.error("unhandled error in %s: %s", _request_line(), type(original).__name__,
                          exc_info=original)
        payload = {"code": code, "status": error.name, "message": message, "errors": errors}
        return payload, code, headers


def _request_line() -> str:
    from flask import request
    return f"{request.method} {request.path}"


__all__ = ["SocialcrmApi", "abort", "field_errors", "summary"]
