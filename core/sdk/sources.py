"""What a source reads items with: config and secrets, brand search terms, times, counts, links, and
the per-item error that keeps the rest of a page.

Nothing here talks to a network; paging and cursors live in ``socialcrm.core.sdk.streams``. Both are
exported from the public ``socialcrm`` package, so plugins import them from there.
"""
from __future__ import annotations

import os
import re
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Iterable, Iterator
from urllib.parse import urlsplit

from marshmallow import ValidationError, fields, validates_schema

from socialcrm.core.sdk.errors import ConfigError, RetriableError, TransportError
from socialcrm.core.sdk.schema import StrictSchema

if TYPE_CHECKING:  # pragma: no cover
    from socialcrm.core.sdk.brand import Brand
    from socialcrm.core.sdk.connector import PluginContext
    from socialcrm.core.sdk.http import HttpClient

_FRACTION = re.compile(r"(\.\d{1,6})\d*")


# --- config: the strict schema and the secret policy ---


class EnvSecret(fields.String):
    """A secret config field whose value comes from the environment.

    Write it in the TOML as ``token = "${ENV_VAR}"`` (the config loader expands it), or leave it out
    and it is read from ``env_var`` directly. ``required`` secrets that end up empty are reported by
    ``SourceSchema`` naming both the field and the variable to export; a value typed into the file
    itself is refused by ``require_env_secret``.
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


def require_env_secret(config: dict[str, Any], context: "PluginContext", field: str, variable: str) -> None:
    """Refuse a secret written into the config file itself: secrets come from the environment only.

    The config loader remembers every value it filled in from ``${VAR}``; a secret that is not among
    them (nor the value of ``variable`` itself) was typed into the file, where it would end up in
    backups and version control.
    """
    value = config.get(field)
    if value and value not in context.secrets and value != os.environ.get(variable):
        raise ConfigError(f"[sources.{context.instance}] {field}: write it as {field} = \"${{{variable}}}\" and "
                          f"export {variable}=...: secrets are read from the environment, never from the file")


# --- reading one item ---


class ItemError(ValueError):
    """One item of a page could not be read; the rest of the page is kept and this goes to its errors.

    The message is ``item: field: problem``, leaving out what is ``None`` (a helper that reads a field
    may not know which item it is in; the caller then prefixes the item).
    """

    def __init__(self, item: str | None, field: str | None, problem: str):
        super().__init__(": ".join(part for part in (item, field, problem) if part))
        self.item = item
        self.field = field


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


# --- times ---


def parse_time(value: Any) -> datetime:
    """An aware UTC datetime from an RFC 3339 / ISO 8601 string (``Z``, offsets, any fraction length).

    Raises ``ValueError`` (with the value) when it is not a timestamp, so callers can name the field.
    """
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"not a timestamp: {value!r}")
    text = _FRACTION.sub(r"\1", value.strip().replace("z", "Z"), count=1).replace("Z", "+00:00")
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not a timestamp: {value!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc)


def iso_time(value: Any, item: str, field: str) -> datetime:
    """``parse_time`` for a field of an item: an ``ItemError`` naming ``field`` when it is not a timestamp."""
    if not isinstance(value, str) or not value:
        raise ItemError(item, field, "missing" if value in (None, "") else f"expected a timestamp, got {value!r:.40}")
    try:
        return parse_time(value)
    except ValueError:
        raise ItemError(item, field, f"not an ISO 8601 timestamp: {value!r:.40}") from None


def epoch_time(value: Any, item: str, field: str) -> datetime:
    """Unix seconds (int or float) as an aware UTC datetime, or an ``ItemError`` naming ``field``."""
    if value is None:
        raise ItemError(item, field, "missing")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ItemError(item, field, f"expected Unix seconds, got {value!r:.40}")
    return datetime.fromtimestamp(value, tz=timezone.utc)


def stamp(value: datetime) -> str:
    """A fixed-width UTC timestamp (microseconds, ``Z``) whose string order is its time order."""
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- ids, terms and text ---


def id_key(value: str) -> tuple[int, str]:
    """Sort key for the numeric-string ids X and Mastodon use: longer is newer, then by digits."""
    return (len(value), value)


def unique(values: Iterable[str]) -> list[str]:
    """``values`` without repeats (case-insensitive), order kept."""
    out: dict[str, str] = {}
    for value in values:
        out.setdefault(value.lower(), value)
    return list(out.values())


def brand_terms(brand: "Brand", *, handles: bool = False) -> list[str]:
    """What to search for when the config names no query: the brand's name, (with ``handles=True``)
    its handles without ``@``, and its keywords, each once (case-insensitive), in config order.

    Handles are left out by default: full-text searches (Hacker News, Bluesky) match a handle only
    as a word, which the name already covers; networks where people write the handle itself
    (Reddit's ``u/name``, Mastodon's ``@name``) ask for them.
    """
    names = (h.lstrip("@") for h in brand.handles) if handles else ()
    return unique(t for t in ((term or "").strip() for term in (brand.name, *names, *brand.keywords)) if t)


def expand_links(text: str, links: Iterable[tuple[int, int, str]], *, encoding: str | None = None) -> str:
    """``text`` with each ``(start, end, address)`` span replaced by the full address it stands for.

    Offsets count characters, or bytes of ``encoding`` (Bluesky facets count UTF-8 bytes). Spans that
    overlap an earlier one or fall outside the text are left as written.
    """
    data: Any = text.encode(encoding) if encoding else text
    out, position = [], 0
    for start, end, address in sorted(links):
        if start < position or start >= end or end > len(data):
            continue
        out += [data[position:start], address.encode(encoding) if encoding else address]
        position = end
    out.append(data[position:])
    joined = (b"" if encoding else "").join(out)
    return joined.decode(encoding, errors="replace") if encoding else joined


def spans_of(text: str, short: str) -> list[tuple[int, int]]:
    """The character spans where ``short`` occurs in ``text``: for APIs that name a link by its text."""
    return [(m.start(), m.end()) for m in re.finditer(re.escape(short), text)] if short else []


# --- HTTP conveniences for sources ---


@contextmanager
def quick(http: "HttpClient") -> Iterator[None]:
    """One attempt per call while the block runs: a connection check should answer at once, not retry."""
    attempts, http.max_attempts = http.max_attempts, 1
    try:
        yield
    finally:
        http.max_attempts = attempts


def unreachable(exc: RetriableError, url: str, field: str) -> RetriableError:
    """Say in plain words that a host could not be reached, when that is what ``exc`` is about.

    Only a ``TransportError`` (no answer came) is reworded; a failure with an HTTP answer is returned as it is.
    """
    if isinstance(exc, TransportError):
        host = urlsplit(url).netloc or url
        what = "timed out" if exc.timed_out else "cannot be reached (unknown host, refused, or no network)"
        return TransportError(f"{host} {what}: check `{field}`", retry_after=exc.retry_after,
                              timed_out=exc.timed_out)
    return exc


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "text", int: "a number", float: "a number", dict: "an object", list: "a list", bool: "true/false"}
    return " or ".join(dict.fromkeys(names.get(k, k.__name__) for k in _as_tuple(kind)))


__all__ = ["EnvSecret", "ItemError", "SourceSchema", "brand_terms", "count", "epoch_time", "expand_links", "id_key",
           "iso_time", "missing_secret_message", "need", "parse_time", "quick", "require_env_secret", "spans_of",
           "stamp", "unique", "unreachable", "whole_count"]
