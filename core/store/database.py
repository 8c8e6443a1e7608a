"""The connection to the database: the engine, its dialect's quirks, and the transactions.

``Database`` is what every concern module of the store holds: the engine, whether it speaks
PostgreSQL (row locks, ``SKIP LOCKED``), the bulk writer for the hot path, and transactions.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import Table, create_engine, event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import NoSuchModuleError

from socialcrm.core.store.bulk import BulkWriter
from socialcrm.core.store.opening import check_reachable, connect_once, missing_driver, parse


def create_store_engine(url: str | URL) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout, foreign keys and write-locking transactions."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, future=True)
    engine = create_engine(url, future=True, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # pragma: no cover - exercised by every SQLite test
        # Leave transaction control to us so BEGIN IMMEDIATE below takes the write lock up front:
        # two delivery loops then cannot claim the same outbox rows.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if parsed.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # Checkpoint the WAL every ~40 MB instead of every 4 MB: ingest writes a lot, and each
        # checkpoint is an fsync (half the cost of storing a page in bench/pipeline.py).
        cursor.execute("PRAGMA wal_autocheckpoint=10000")
        cursor.execute("PRAGMA busy_timeout=30000")
        # SQLite checks foreign keys only when asked; PostgreSQL always does, and both must agree.
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # pragma: no cover - exercised by every SQLite test
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class Database:
    """One database: its engine, dialect and bulk writer, shared by the store's concern modules.

    Opening it connects once; every way that fails is a ``StoreError`` (see ``opening``). A
    ``read_only`` open never creates a database: an SQLite file that is not there is refused.
    """

    def __init__(self, url: str, *, read_only: bool = False):
        self.url = url
        parsed = parse(url)
        check_reachable(url, parsed, read_only)
        try:
            self.engine = create_store_engine(parsed)
        except (ImportError, NoSuchModuleError) as exc:
            raise missing_driver(url, parsed, exc) from None
        connect_once(self.engine, url, parsed)
        self.is_postgres = self.engine.dialect.name == "postgresql"
        self.bulk = BulkWriter(self.engine.dialect)

    def begin(self):
        """A write transaction (``with db.begin() as conn``): committed when the block ends, rolled
        back when it raises."""
        return self.engine.begin()

    def connect(self):
        """A read-only connection context (``with db.connect() as conn``)."""
        return self.engine.connect()

    def insert_ignore(self, table: Table, values: dict[str, Any]):
        """INSERT ``values`` unless a row with the same key exists (``ON CONFLICT DO NOTHING``)."""
        return self.dialect_insert(table).values(**values).on_conflict_do_nothing()

    def dialect_insert(self, table: Table):
        """The dialect's INSERT, which knows ON CONFLICT (both SQLite and PostgreSQL speak it)."""
        if self.is_postgres:
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        else:
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        return dialect_insert(table)

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()
