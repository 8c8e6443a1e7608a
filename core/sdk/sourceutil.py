"""Small helpers the network sources share: timestamps, brand search terms, secrets, plain-word errors.

Nothing here talks to a network; each source keeps its own pagination and cursor logic.
"""
from __future__ import annotations

import re
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Iterator
from urllib.parse import urlsplit

from socialcrm.core.sdk.errors import ConfigError, RetriableError, TransportError

if TYPE_CHECKING:  # pragma: no cover
    from socialcrm.core.sdk.brand import Brand
    from socialcrm.core.sdk.connector import PluginContext
    from socialcrm.core.sdk.http import HttpClient

_FRACTION = re.compile(r"(\.\d{1,6})\d*")


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


def stamp(value: datetime) -> str:
    """A fixed-width UTC timestamp (microseconds, ``Z``) whose string order is its time order."""
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def brand_terms(brand: "Brand") -> list[str]:
    """What to search for when the config names no query: the brand's name and keywords, once each."""
    terms: list[str] = []
    for term in (brand.name, *brand.keywords):
        term = term.strip()
        if term and term.lower() not in {t.lower() for t in terms}:
            terms.append(term)
    return terms


def require_env_secret(config: dict[str, Any], context: "PluginContext", field: str, variable: str) -> None:
    """Refuse a secret written into the config file itself: secrets come from the environment only.

    The config loader remembers every value it filled in from ``${VAR}``; a secret that is not among
    them was typed into the file, where it would end up in backups and version control.
    """
    value = config.get(field)
    if value and value not in context.secrets:
        raise ConfigError(f"[sources.{context.instance}] {field}: write it as {field} = \"${{{variable}}}\" and "
                          f"export {variable}=...: secrets are read from the environment, never from the file")


@contextmanager
def quick(http: "HttpClient") -> Iterator[None]:
    """One attempt per call while the block runs: a connection check should answer at once, not retry."""
    attempts, http.max_attempts = http.max_attempts, 1
    try:
        yield
    finally:
        http.max_attempts = attempts


def unreachable(exc: RetriableError, url: str, field: str) -> RetriableError:
    """Say in plain words that a host could not be reached, when that is what ``exc`` is about."""
    if isinstance(exc, TransportError):
        host = urlsplit(url).netloc or url
        what = "timed out" if exc.timed_out else "cannot be reached (unknown host, refused, or no network)"
        return TransportError(f"{host} {what}: check `{field}`", retry_after=exc.retry_after,
                              timed_out=exc.timed_out)
    return exc


__all__ = ["brand_terms", "parse_time", "quick", "require_env_secret", "stamp", "unreachable"]
