"""What the network sources share: the strict config schema with secrets taken from the environment,
timestamps, counts, item-level read errors, the brand's search terms and polling stream by stream.

Not a plugin itself: it registers nothing and has no entry point.
"""
from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Iterator, Sequence

from marshmallow import ValidationError, fields, validates_schema

from socialcrm import Brand, Page, StrictSchema


class EnvSecret(fields.String):
    """A secret config field whose value comes from the environment.

    Write it in the TOML as ``token = "${ENV_VAR}"`` (the config loader expands it), or leave it out
    and it is read from ``env_var`` directly. ``required`` secrets that end up empty are reported by
    ``SourceSchema`` naming both the field and the variable to export.
    """

    def __init__(self, env_var: str, *, required: bool = True, **kwargs: Any):
        self.env_var = env_var
        self.secret_required = required
        super().__init__(load_default=lambda: os.environ.get(env_var) or None, allow_none=True, **kwargs)


class SourceSchema(StrictSchema):
    """Base config schema of a network source: unknown keys are typos, missing secrets are named."""

    @validates_schema
    def _secrets_present(self, data: dict[str, Any], **_: Any) -> None:
        missing = {}
        for name, field in self.fields.items():
            if isinstance(field, EnvSecret) and field.secret_required and not data.get(name):
                missing[field.data_key or name] = [missing_secret_message(field.data_key or name, field.env_var)]
        if missing:
            raise ValidationError(missing)


def missing_secret_message(field_name: str, env_var: str) -> str:
    """The message for a secret that is not set: which variable to export, and how to refer to it."""
    return (f"not set: export {env_var}=... in the environment (the block may also say "
            f"{field_name} = \"${{{env_var}}}\"); secrets are never written in the config file")


class ItemError(ValueError):
    """One item of a page could not be read: names the item and the field, so the rest of the page is kept."""

    def __init__(self, item: str, field: str, problem: str):
        super().__init__(f"{item}: {field}: {problem}")
        self.item = item
        self.field = field


class Unreadable(Exception):
    """One item of a page that cannot be read; the message names the field, the caller the item."""


def need(obj: dict[str, Any], key: str, item: str, kind: type | tuple[type, ...] = str) -> Any:
    """``obj[key]``, which must be present and of ``kind``; otherwise an ``ItemError`` naming ``key``."""
    if key not in obj or obj[key] is None:
        raise ItemError(item, key, "missing")
    value = obj[key]
    if not isinstance(value, kind) or isinstance(value, bool) and bool not in _as_tuple(kind):
        raise ItemError(item, key, f"expected {_kind_name(kind)}, got {type(value).__name__} {value!r:.40}")
    return value


def count(obj: dict[str, Any] | None, key: str, item: str, prefix: str = "") -> int:
    """A non-negative engagement count; absent counts are 0, unreadable ones an ``ItemError``."""
    if not obj or obj.get(key) is None:
        return 0
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ItemError(item, prefix + key, f"expected a count, got {value!r:.40}")
    try:
        return max(0, int(value))
    except ValueError:
        raise ItemError(item, prefix + key, f"expected a count, got {value!r:.40}") from None


def whole_count(obj: dict[str, Any], key: str) -> int:
    """``obj[key]`` when it is a non-negative whole number, else 0: for APIs that send counts as integers."""
    value = obj.get(key)
    return value if type(value) is int and value >= 0 else 0


def iso_time(value: Any, item: str, field: str) -> datetime:
    """An ISO 8601 timestamp as an aware UTC datetime, or an ``ItemError`` naming ``field``."""
    if not isinstance(value, str) or not value:
        raise ItemError(item, field, "missing" if value in (None, "") else f"expected a timestamp, got {value!r:.40}")
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ItemError(item, field, f"not an ISO 8601 timestamp: {value!r:.40}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc)


def epoch_time(value: Any, item: str, field: str) -> datetime:
    """Unix seconds (int or float) as an aware UTC datetime, or an ``ItemError`` naming ``field``."""
    if value is None:
        raise ItemError(item, field, "missing")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ItemError(item, field, f"expected Unix seconds, got {value!r:.40}")
    return datetime.fromtimestamp(value, tz=timezone.utc)


def id_key(value: str) -> tuple[int, str]:
    """Sort key for the numeric-string ids X and Mastodon use: longer is newer, then by digits."""
    return (len(value), value)


def brand_terms(brand: Brand) -> list[str]:
    """The brand's name, handles (without ``@``) and keywords, each once, in config order."""
    seen: dict[str, str] = {}
    for term in [brand.name, *(h.lstrip("@") for h in brand.handles), *brand.keywords]:
        term = (term or "").strip()
        if term and term.lower() not in seen:
            seen[term.lower()] = term
    return list(seen.values())


def fetch_streams(streams: Sequence[Any], cursor: Any,
                  poll: Callable[[Any, dict[str, Any]], Iterator[Page]]) -> Iterator[Page]:
    """``poll(stream, cursor)`` for each stream in turn, each page's cursor carried into the next poll."""
    cursor = dict(cursor or {})
    for stream in streams:
        for page in poll(stream, cursor):
            cursor = page.cursor
            yield page


def promote_sweep(stream: dict[str, Any]) -> None:
    """A live sweep reached the stream's watermark: the newest time it found (with the ids seen at that
    time) becomes the watermark, and the sweep is over."""
    sweep, old = stream["sweep"], stream.get("watermark")
    top = sweep["top"]
    if top is None or (old is not None and top < old):
        stream["watermark"] = old if old is not None else sweep["since"]
    elif top == old:
        stream["seen"] = sorted(set(stream.get("seen") or []) | set(sweep["top_seen"]))
    else:
        stream["watermark"], stream["seen"] = top, sorted(set(sweep["top_seen"]))
    stream["sweep"] = None


def finish_backfill(stream: dict[str, Any]) -> None:
    """A backfill sweep reached ``since``: the stream is done."""
    stream["done"], stream["sweep"] = True, None


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "text", int: "a number", float: "a number", dict: "an object", list: "a list", bool: "true/false"}
    return " or ".join(dict.fromkeys(names.get(k, k.__name__) for k in _as_tuple(kind)))


def unique(values: Iterable[str]) -> list[str]:
    """``values`` without repeats (case-insensitive), order kept."""
    out: dict[str, str] = {}
    for value in values:
        out.setdefault(value.lower(), value)
    return list(out.values())
