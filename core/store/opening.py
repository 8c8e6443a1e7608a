"""Opening a store URL, and every way that can go wrong said as one ``StoreError``.

``open_engine`` is the one place a URL becomes an engine: it refuses a scheme socialcrm does not speak,
names the ``[postgres]`` extra when the driver is missing, refuses an SQLite file in a folder that does
not exist, connects once (so an unreachable server is said at open, not at the first query), and, for a
``read_only`` open, refuses to create a database that is not there. ``check_schema`` then refuses a
database whose tables of our names are someone else's. Every message names the URL with its password
hidden, the cause and the fix.
"""
from __future__ import annotations

import os

from sqlalchemy import inspect
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from socialcrm.core.sdk.errors import ConfigError

SUPPORTED = "socialcrm supports sqlite:/// and postgresql://"
POSTGRES_DRIVER = "psycopg"  # what the ``[postgres]`` extra installs
_POSTGRES_EXTRA = "PostgreSQL driver missing: pip install 'socialcrm[postgres]'"


class StoreError(ConfigError):
    """The store cannot be opened as configured: a bad URL, a missing driver, an unreachable server, a
    missing SQLite folder or database, or tables that are not socialcrm's. The message names the URL
    (password hidden), the cause and the fix, on one line."""

    def __init__(self, message: str):
        self.problems = [message]
        Exception.__init__(self, message)


class StoreMissing(StoreError):
    """A read-only open found no socialcrm database where the URL points."""


def shown(url: str | URL) -> str:
    """``url`` as it may be shown: the password replaced by ``***``."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unreadable URL>"


def parse(url: str) -> URL:
    """The URL with its driver settled (plain ``postgresql://`` uses psycopg, the extra's driver);
    a ``StoreError`` for a URL that does not parse or a scheme socialcrm does not speak."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"store url {url.split('://')[0]}://...: not a database URL ({exc}); {SUPPORTED}") from None
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise StoreError(f"store {shown(parsed)}: unsupported scheme {parsed.drivername}:// ({SUPPORTED}); "
                         "fix [store] url")
    if backend == "postgresql" and "+" not in parsed.drivername:
        parsed = parsed.set(drivername=f"postgresql+{POSTGRES_DRIVER}")
    return parsed


def location(url: str) -> tuple[str, str]:
    """The backend (``sqlite``, ``postgresql``) and where the database is, as a person reads it: the
    SQLite file's path, or the server and database (password hidden)."""
    parsed = parse(url)
    if parsed.get_backend_name() == "sqlite":
        return "sqlite", "memory" if is_in_memory(url) else os.path.abspath(parsed.database)
    return "postgresql", shown(url)


def is_in_memory(url: str) -> bool:
    """Whether ``url`` is an in-memory SQLite database (``sqlite://``, ``sqlite:///``, ``:memory:``),
    which is gone when the process ends."""
    parsed = parse(url)
    return parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")


def refuse_in_memory(url: str, command: str) -> None:
    """A ``StoreError`` when ``command`` (one that keeps what it does: run, serve, backfill) is given an
    in-memory SQLite store, whose records, outbox and cursors would be lost when it exits."""
    if is_in_memory(url):
        raise StoreError(f"store {shown(url)} is in memory: `socialcrm {command}` needs a lasting store, or "
                         "every record, delivery and cursor is lost when it exits; set [store] url to "
                         "sqlite:///socialcrm.db or a postgresql:// URL")


def check_reachable(url: str, parsed: URL, read_only: bool) -> None:
    """What can be said before connecting: the SQLite file's folder exists, and for a read-only open,
    the file itself (connecting would create it)."""
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return
    path = os.path.abspath(parsed.database)
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        raise StoreError(f"store {shown(url)}: no such folder {folder} for the SQLite file; create it or fix "
                         "[store] url")
    if read_only and not os.path.isfile(path):
        raise StoreMissing(f"no socialcrm database at {path} (run `socialcrm run` first, or check [store] url)")


def connect_once(engine: Engine, url: str, parsed: URL) -> None:
    """Connect and disconnect, so an unreachable server or a refused login is said now, in words."""
    try:
        with engine.connect():
            pass
    except DBAPIError as exc:
        where = (f"{parsed.host or 'localhost'}:{parsed.port or 5432}" if parsed.get_backend_name() == "postgresql"
                 else parsed.database)
        cause = " ".join(str(exc.orig).split()) or type(exc.orig).__name__
        raise StoreError(f"store {shown(url)}: cannot connect to {where}: {cause}; check that the server runs "
                         "and [store] url") from None


def missing_driver(url: str, parsed: URL, exc: Exception) -> StoreError:
    """The ``StoreError`` for a URL whose database driver is not installed."""
    if parsed.get_backend_name() == "postgresql":
        return StoreError(f"store {shown(url)}: {_POSTGRES_EXTRA}")
    return StoreError(f"store {shown(url)}: database driver missing ({exc}); {SUPPORTED}")


def check_schema(engine: Engine, tables, read_only: bool, url: str, optional: dict[str, tuple[str, ...]]) -> None:
    """Refuse tables of our names that are not ours (a column of ours missing; ``optional`` names the
    columns an older layout may lack, added on open), and, for a read-only open, a database with none
    of our tables."""
    present = set(inspect(engine).get_table_names())
    ours = [table for table in tables if table.name in present]
    if read_only and not ours:
        raise StoreMissing(f"no socialcrm database at {shown(url)} (run `socialcrm run` first, or check [store] url)")
    for table in ours:
        columns = {column["name"] for column in inspect(engine).get_columns(table.name)}
        lacking = {column.name for column in table.columns} - columns - set(optional.get(table.name, ()))
        if lacking:
            raise StoreError(f"store {shown(url)}: table `{table.name}` exists but is not socialcrm's (columns "
                             f"{', '.join(sorted(columns))}): use another database or [store] url")


__all__ = ["StoreError", "StoreMissing", "check_reachable", "check_schema", "connect_once",
           "is_in_memory", "location", "missing_driver", "parse", "refuse_in_memory", "shown"]
