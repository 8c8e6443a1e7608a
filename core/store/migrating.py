"""The store's schema under Alembic: which revision a database is at, upgrading it, and making a new one.

The migrations ship in the package (``migrations/``: Alembic's ``env.py`` and ``versions/``), and the
version table is ``socialcrm_alembic_version``, beside socialcrm's tables (in ``[store] schema`` when one
is set), so it never meets another application's ``alembic_version``. A database is in one of five states:

- ``empty``: none of socialcrm's tables. Any open that may write creates them at head, the way Alembic's
  docs advise for a new database (``create_all``, then stamp head) rather than replaying every revision;
  a read-only open finds no socialcrm database there.
- ``current``: at head. Every open goes ahead.
- ``behind``: at an older revision. Opens are refused, naming ``socialcrm db upgrade --config ...``;
  only that command (and the embedded demo) upgrades.
- ``unversioned``: made by socialcrm 0.1.0 or earlier, before migrations (its tables, no version table).
  Refused like ``behind``; ``db upgrade`` adopts it through the baseline revision, rows and all.
- ``unknown``: at a revision this socialcrm does not ship (a newer socialcrm upgraded it): refused.

Creating and upgrading run in one transaction that holds a lock first (SQLite's write lock, a
PostgreSQL advisory lock), so two processes starting on the same new database cannot both create it,
and a failed migration leaves the database as it was.
"""
from __future__ import annotations

import functools
import logging
import os
import shlex
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Sequence

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from socialcrm.core.store.database import Database
from socialcrm.core.store.migrations.baseline import LAYOUT, OPTIONAL
from socialcrm.core.store.opening import StoreError, StoreMissing, check_ours, refuse_in_memory, shown
from socialcrm.core.store.schema import metadata

log = logging.getLogger(__name__)

VERSION_TABLE = "socialcrm_alembic_version"
SCRIPTS = "socialcrm.core.store:migrations"
# PostgreSQL advisory lock key (hashed by the server): one schema change at a time per schema.
_LOCK = "socialcrm schema change: {schema}"


class StoreBehind(StoreError):
    """The database's schema is older than this socialcrm's (or predates migrations): the message names
    ``socialcrm db upgrade`` with the config file to run it with."""


class MigrationFailed(StoreError):
    """A migration failed and was rolled back: the message names the revision, its file and the cause."""


@dataclass(frozen=True)
class Revision:
    """One migration: its id, the revision it follows, its title (its docstring's first line), its file."""

    id: str
    down: str | None
    title: str
    path: str


@dataclass(frozen=True)
class SchemaState:
    """Where a database stands: the revisions in its version table (none before it has one), the head this
    socialcrm ships, which of socialcrm's tables it holds, and the revisions it has that no file here knows."""

    current: tuple[str, ...]
    head: str
    tables: frozenset[str] = field(default_factory=frozenset)
    unknown: tuple[str, ...] = ()

    @property
    def status(self) -> str:
        """``current``, ``behind``, ``unversioned`` (made before migrations), ``empty`` or ``unknown``."""
        if self.unknown:
            return "unknown"
        if self.current == (self.head,):
            return "current"
        if self.current:
            return "behind"
        return "unversioned" if self.tables else "empty"


@dataclass(frozen=True)
class Upgrade:
    """What ``db upgrade`` did: the state before, the revisions applied (oldest first; none when it was
    current already), and whether it made a new database at head instead."""

    before: SchemaState
    applied: tuple[Revision, ...]
    created: bool


class Migrations:
    """The migration scripts: the package's own, plus ``extra_locations`` (folders of further revisions,
    which tests use to have a head beyond the shipped one)."""

    def __init__(self, extra_locations: Iterable[str | Path] = ()):
        self._extra = tuple(str(location) for location in extra_locations)
        self.script = ScriptDirectory.from_config(self._config())
        self.head = self.script.get_current_head()

    def _config(self) -> Config:
        config = Config()
        config.set_main_option("script_location", SCRIPTS)
        if self._extra:
            shipped = str(resources.files("socialcrm.core.store") / "migrations" / "versions")
            config.set_main_option("path_separator", "os")
            config.set_main_option("version_locations", os.pathsep.join((shipped, *self._extra)))
        return config

    def history(self) -> list[Revision]:
        """Every revision, oldest first."""
        revisions = []
        for script in reversed(list(self.script.walk_revisions())):
            down = script.down_revision
            revisions.append(Revision(script.revision, ", ".join(down) if isinstance(down, tuple) else down,
                                      (script.doc or "").strip().split("\n")[0], script.path))
        return revisions

    @staticmethod
    def options(db: Database) -> dict[str, Any]:
        """Alembic's context options for ``db``: where its version table is."""
        return {"version_table": VERSION_TABLE, "version_table_schema": db.schema}

    def state_of(self, conn: Connection, db: Database) -> SchemaState:
        """Where the database ``conn`` is on stands (read in the caller's transaction)."""
        tables = frozenset(set(inspect(conn).get_table_names(schema=db.schema)) & set(LAYOUT.tables))
        current = MigrationContext.configure(conn, opts=self.options(db)).get_current_heads()
        known = {script.revision for script in self.script.walk_revisions()}
        return SchemaState(current=tuple(sorted(current)), head=self.head, tables=tables,
                           unknown=tuple(sorted(set(current) - known)))

    def create(self, db: Database) -> bool:
        """Make a new database's tables at head and stamp it so; False when, once the lock was ours, another
        process had made them first (or the database is not empty)."""
        with db.begin() as conn:
            _lock(conn, db)
            if self.state_of(conn, db).status != "empty":
                return False
            self._make_at_head(conn, db)
        return True

    def _make_at_head(self, conn: Connection, db: Database) -> None:
        """Create every table as ``schema.py`` declares it and record the head revision, in ``conn``'s
        transaction (Alembic's way for a new database: no revision replayed)."""
        metadata.create_all(conn)
        MigrationContext.configure(conn, opts=self.options(db)).stamp(self.script, "head")
        log.info("created socialcrm's tables at schema revision %s", self.head)

    def upgrade(self, db: Database, *, fresh_at_head: bool = True, fix: str = "socialcrm db upgrade") -> Upgrade:
        """Bring ``db`` to head in one transaction: a new (empty) database is made at head when
        ``fresh_at_head``, else by replaying every revision. ``MigrationFailed`` (rolled back, nothing changed)
        when a revision fails; a ``StoreError`` for a database at a revision this socialcrm does not know."""
        applied: list[str] = []
        with db.begin() as conn:
            _lock(conn, db)
            before = self.state_of(conn, db)
            if before.status == "unknown":
                raise _unknown(db, before)
            if before.status == "unversioned":
                check_ours(conn, LAYOUT.sorted_tables, db.url, OPTIONAL, db.schema)
            if before.status == "current":
                return Upgrade(before, (), created=False)
            if before.status == "empty" and fresh_at_head:
                self._make_at_head(conn, db)
                return Upgrade(before, (), created=True)
            planned = self._planned(before.current)
            config = self._config()
            config.attributes.update(connection=conn, options={
                **self.options(db), "on_version_apply": lambda step, **_: applied.append(step.up_revision_id)})
            try:
                command.upgrade(config, "head")
            except Exception as exc:
                failed = planned[len(applied)] if len(applied) < len(planned) else planned[-1]
                raise MigrationFailed(
                    f"store {_where(db)}: migration {failed.id} ({failed.title}; {failed.path}) failed: {_cause(exc)}; "
                    f"rolled back, so the database is unchanged ({_stands(before)}) and nothing stored is lost: "
                    f"fix the cause, then run `{fix}` again") from exc
        by_id = {revision.id: revision for revision in planned}
        done = tuple(by_id[revision] for revision in applied if revision in by_id)
        log.info("upgraded the store from %s to %s", _stands(before), self.head)
        return Upgrade(before, done, created=False)

    def _planned(self, current: Sequence[str]) -> list[Revision]:
        """The revisions an upgrade from ``current`` applies, oldest first."""
        ahead = {script.revision for script in self.script.iterate_revisions("head", current[0] if current else "base")}
        return [revision for revision in self.history() if revision.id in ahead]


@functools.lru_cache(maxsize=1)
def _shipped() -> Migrations:
    return Migrations()


def default_migrations() -> Migrations:
    """The migrations this socialcrm ships, read once per process."""
    return _shipped()


def ready(db: Database, *, read_only: bool = False, upgrade: bool = False,
          config_file: str | Path | None = None) -> SchemaState:
    """Check ``db``'s schema as a store opens it, and return where it stood: at head, go ahead; empty, create
    it at head (unless ``read_only``: ``StoreMissing``); behind or made before migrations, upgrade it when
    ``upgrade`` (the embedded demo), else ``StoreBehind`` naming ``socialcrm db upgrade --config CONFIG_FILE``."""
    migrations = default_migrations()
    with db.connect() as conn:
        state = migrations.state_of(conn, db)
        if state.status == "unversioned":
            check_ours(conn, LAYOUT.sorted_tables, db.url, OPTIONAL, db.schema)
    fix = upgrade_command(config_file)
    if state.status == "current":
        return state
    if state.status == "unknown":
        raise _unknown(db, state)
    if state.status == "empty":
        if read_only:
            raise StoreMissing(f"no socialcrm database at {_where(db)} (run `socialcrm run` or `{fix}` first, or "
                               "check [store] url)")
        migrations.create(db)
        return state
    if upgrade:
        migrations.upgrade(db, fix=fix)
        return state
    if state.status == "unversioned":
        raise StoreBehind(f"store {_where(db)} was made by socialcrm 0.1.0 or earlier, before schema migrations (no "
                          f"{VERSION_TABLE} table): run `{fix}` to adopt it as it is (nothing stored is lost)")
    raise StoreBehind(f"store {_where(db)} is at schema revision {', '.join(state.current)}, this socialcrm needs "
                      f"{state.head}: run `{fix}` (one transaction: every step or none)")


def upgrade_command(config_file: str | Path | None) -> str:
    """The command that upgrades the store of ``config_file``, as a person types it."""
    return "socialcrm db upgrade" + (f" --config {shlex.quote(str(config_file))}" if config_file else "")


def schema_state(url: str, schema: str | None = None) -> SchemaState:
    """Where the database at ``url`` stands, opened read-only (``StoreMissing`` when it is not there;
    a ``StoreError`` when tables of socialcrm's names there are someone else's)."""
    db = Database(url, read_only=True, schema=schema)
    try:
        with db.connect() as conn:
            state = default_migrations().state_of(conn, db)
            if state.status == "unversioned":
                check_ours(conn, LAYOUT.sorted_tables, db.url, OPTIONAL, db.schema)
        return state
    finally:
        db.close()


def upgrade_store(url: str, schema: str | None = None, config_file: str | Path | None = None) -> Upgrade:
    """``socialcrm db upgrade``: bring the database at ``url`` (created when it is not there) to head."""
    refuse_in_memory(url, "db upgrade")
    db = Database(url, schema=schema)
    try:
        return default_migrations().upgrade(db, fix=upgrade_command(config_file))
    finally:
        db.close()


def history() -> list[Revision]:
    """Every revision this socialcrm ships, oldest first."""
    return default_migrations().history()


def _lock(conn: Connection, db: Database) -> None:
    """Hold the schema-change lock for the rest of ``conn``'s transaction (SQLite's BEGIN IMMEDIATE has
    taken its write lock already)."""
    if db.is_postgres:
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                     {"key": _LOCK.format(schema=db.schema or "default")})


def _where(db: Database) -> str:
    return shown(db.url) + (f" (schema {db.schema})" if db.schema else "")


def _stands(state: SchemaState) -> str:
    if state.current:
        return f"at revision {', '.join(state.current)}"
    return "made before migrations" if state.tables else "empty"


def _unknown(db: Database, state: SchemaState) -> StoreError:
    return StoreError(f"store {_where(db)} is at schema revision {', '.join(state.unknown)}, which this socialcrm "
                      f"does not know (its newest is {state.head}): a newer socialcrm upgraded it; run that version "
                      "(socialcrm never migrates down)")


def _cause(exc: BaseException) -> str:
    if isinstance(exc, DBAPIError):
        return " ".join(str(exc.orig).split()) or type(exc.orig).__name__
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


__all__ = ["MigrationFailed", "Migrations", "Revision", "SchemaState", "StoreBehind", "Upgrade", "VERSION_TABLE",
           "default_migrations", "history", "ready", "schema_state", "upgrade_command", "upgrade_store"]
