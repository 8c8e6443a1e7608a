"""Opening a store URL, and every way that can go wrong said as one ``StoreError``.

``open_engine`` is the one place a URL becomes an engine: it refuses a scheme socialcrm does not speak,
names the ``[postgres]`` extra when the driver is missing, refuses an SQLite file in a folder that does
not exist, connects once (so an unreachable server is said at open, not at the first query), and, for a
``read_only`` open, refuses to create a database that is not there. ``check_schema_setting`` and
``ensure_schema`` do the same for a ``[store] schema`` (PostgreSQL only), ``check_ours`` refuses a database
whose tables of our names are someone else's. Every message names the URL with its password hidden, the
cause and the fix.
"""
from __future__ import annotations

import os
import re
from typing import Iterable, Sequence

from sqlalchemy import Table, inspect, text
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.schema import CreateSchema

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


def check_ours(conn: Connection, tables: Iterable[Table], url: str, optional: dict[str, Sequence[str]],
               schema: str | None = None) -> None:
    """Refuse tables of our names that are not ours: a column of ours missing (``optional`` names the columns
    a database an earlier socialcrm made may lack, which the baseline migration adds)."""
    inspector = inspect(conn)
    present = set(inspector.get_table_names(schema=schema))
    for table in tables:
        if table.name not in present:
            continue
        columns = {column["name"] for column in inspector.get_columns(table.name, schema=schema)}
        lacking = {column.name for column in table.columns} - columns - set(optional.get(table.name, ()))
        if lacking:
            raise StoreError(f"store {shown(url)}: table `{table.name}` exists but is not socialcrm's (columns "
                             f"{', '.join(sorted(columns))}): use another database or [store] url")


SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
SCHEMA_RULE = ("lowercase letters, digits and _, starting with a letter or _, at most 63 characters, "
               "not starting with pg_")


def schema_problem(schema: str) -> str | None:
    """Why ``schema`` cannot be socialcrm's PostgreSQL schema (``[store] schema``), or None when it can. Names
    are kept to those PostgreSQL never folds or quotes, so the name in the config is the name in the database."""
    if not SCHEMA_NAME.fullmatch(schema) or schema.startswith("pg_") or schema == "information_schema":
        return f"{schema!r} is not a schema name socialcrm accepts: {SCHEMA_RULE}"
    return None


def check_schema_setting(url: str, parsed: URL, schema: str | None) -> None:
    """A ``StoreError`` for a ``[store] schema`` that cannot be used: not a name socialcrm accepts, or set for
    an SQLite store (schemas are PostgreSQL's; an SQLite store is one file per socialcrm)."""
    if schema is None:
        return
    problem = schema_problem(schema)
    if problem:
        raise StoreError(f"store {shown(url)}: [store] schema {problem}")
    if parsed.get_backend_name() != "postgresql":
        raise StoreError(f"store {shown(url)}: [store] schema {schema!r} is for PostgreSQL only (an SQLite store is "
                         "its own file): leave schema out or use a postgresql:// url")


def ensure_schema(engine: Engine, url: str, schema: str, read_only: bool) -> None:
    """Make sure PostgreSQL schema ``schema`` exists (creating it, unless ``read_only``: then a missing one
    is ``StoreMissing``), and make it the engine's default schema, as the connections' search_path has it."""
    def exists() -> bool:
        with engine.connect() as conn:
            found = conn.execute(text("SELECT 1 FROM pg_namespace WHERE nspname = :name"), {"name": schema}).first()
        return found is not None

    if not exists():
        if read_only:
            raise StoreMissing(f"no socialcrm database at {shown(url)}: schema {schema} ([store] schema) does not "
                               "exist (run `socialcrm db upgrade` first, or check [store] schema)")
        try:
            with engine.begin() as conn:
                conn.execute(CreateSchema(schema, if_not_exists=True))
        except DBAPIError as exc:
            # Two processes creating it at once: IF NOT EXISTS does not spare the second a unique violation.
            if not exists():
                cause = " ".join(str(exc.orig).split()) or type(exc.orig).__name__
                raise StoreError(f"store {shown(url)}: cannot create schema {schema} ([store] schema): {cause}; "
                                 f"create it as a user who may (CREATE SCHEMA {schema} AUTHORIZATION <this user>) "
                                 "or grant this user CREATE on the database") from None
    # What the server's current_schema() said before the schema existed; every inspection reads this.
    engine.dialect.default_schema_name = schema


__all__ = ["SCHEMA_RULE", "StoreError", "StoreMissing", "check_ours", "check_reachable", "check_schema_setting",
           "connect_once", "ensure_schema", "is_in_memory", "location", "missing_driver", "parse", "refuse_in_memory",
           "schema_problem", "shown"]
