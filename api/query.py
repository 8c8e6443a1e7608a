"""Query parameters are checked as strictly as request bodies: an unknown one (``?priorty=P1``) is a 422
naming it and the parameters the endpoint takes, never a filter silently left out.

webargs excludes unknown query parameters by default; ``query_arguments`` passes ``unknown=None`` so the
schema's own ``RAISE`` (every ``QuerySchema`` is a ``StrictSchema``) decides. The one exception is ``_``,
the cache-buster browsers' HTTP libraries append (jQuery's ``cache: false``): it is dropped, never a filter.
"""
from __future__ import annotations

from typing import Any, Callable

from flask_smorest import Blueprint
from marshmallow import ValidationError, pre_load

from socialcrm.core.sdk.schema import StrictSchema

_UNKNOWN = "Unknown field."
CACHE_BUSTER = "_"


class QuerySchema(StrictSchema):
    """The base of every query-string schema: unknown parameters are reported by name, with the known ones."""

    @pre_load
    def _drop_cache_buster(self, data: Any, **_: Any) -> Any:
        if CACHE_BUSTER in data:
            data = {k: v for k, v in data.items() if k != CACHE_BUSTER}
        return data

    def handle_error(self, error: ValidationError, data: Any, **kwargs: Any) -> None:
        messages = error.messages if isinstance(error.messages, dict) else {}
        unknown = [name for name, problems in messages.items() if problems == [_UNKNOWN]]
        if not unknown:
            return
        known = sorted(field.data_key or name for name, field in self.fields.items() if not field.dump_only)
        takes = f"this endpoint takes: {', '.join(known)}" if known else "this endpoint takes none"
        raise ValidationError({**messages, **{name: [f"unknown query parameter ({takes})"] for name in unknown}})


class NoQuerySchema(QuerySchema):
    """An endpoint that takes no query parameters: any given is a typo or a filter it does not have."""


def query_arguments(blp: Blueprint, schema: type[QuerySchema] = NoQuerySchema) -> Callable:
    """``blp.arguments`` for the query string, refusing unknown parameters (the view receives the dict)."""
    return blp.arguments(schema, location="query", unknown=None)
