"""Bulk inserts and updates for the store's hot path: one page of mentions, records and outbox rows.

SQLAlchemy Core builds a parameter dictionary per row and runs every value through its type's
processor. For a page of 500 mentions written three ways, that per-row work cost more than SQLite's
own writing. On SQLite, ``BulkWriter`` hands the driver plain tuples and one prepared statement
instead, converting only the columns whose type needs it (``DateTime`` to SQLAlchemy's own text
format, so rows read back exactly as if SQLAlchemy had written them). PostgreSQL keeps SQLAlchemy's
path, which already batches rows into multi-row statements there.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, Sequence

from sqlalchemy import Table, bindparam, insert, update
from sqlalchemy.dialects.sqlite.base import DATETIME as SQLITE_DATETIME
from sqlalchemy.engine import Connection, Dialect


class BulkWriter:
    """Executes one statement over many rows, given as tuples in a fixed column order."""

    def __init__(self, dialect: Dialect):
        self.dialect = dialect
        self.direct = dialect.name == "sqlite" and dialect.paramstyle == "qmark"
        self._inserts: dict[tuple[str, tuple[str, ...]], tuple[str, list[tuple[int, Callable[[Any], Any]]]]] = {}
        self._updates: dict[tuple[str, str, tuple[str, ...]], tuple[str, list[tuple[int, Callable[[Any], Any]]]]] = {}

    def insert(self, conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[tuple]) -> None:
        """INSERT ``rows`` (tuples ordered as ``columns``) into ``table``."""
        if not rows:
            return
        columns = tuple(columns)
        if not self.direct:
            conn.execute(insert(table), [dict(zip(columns, row)) for row in rows])
            return
        sql, processors = self._prepared_insert(table, columns)
        if processors:
            rows = [_processed(row, processors) for row in rows]
        conn.exec_driver_sql(sql, rows)

    def update(self, conn: Connection, table: Table, key: str, columns: Sequence[str], rows: Sequence[tuple]) -> None:
        """UPDATE ``table`` SET ``columns`` WHERE ``key`` matches, one row per tuple (``columns``' values, then
        the key's). Values are converted as ``insert`` converts them."""
        if not rows:
            return
        columns = tuple(columns)
        if not self.direct:
            statement = (update(table).where(table.c[key] == bindparam("_key"))
                         .values({c: bindparam(f"_{c}") for c in columns}))
            conn.execute(statement, [{**{f"_{c}": v for c, v in zip(columns, row)}, "_key": row[-1]} for row in rows])
            return
        sql, processors = self._prepared_update(table, key, columns)
        conn.exec_driver_sql(sql, [_processed(row, processors) for row in rows] if processors else list(rows))

    def _prepared_insert(self, table: Table, columns: tuple[str, ...]):
        key = (table.name, columns)
        if key not in self._inserts:
            quote = self.dialect.identifier_preparer.quote
            sql = (f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "
                   f"VALUES ({', '.join('?' for _ in columns)})")
            self._inserts[key] = (sql, self._processors(table, columns))
        return self._inserts[key]

    def _prepared_update(self, table: Table, key: str, columns: tuple[str, ...]):
        cached = (table.name, key, columns)
        if cached not in self._updates:
            quote = self.dialect.identifier_preparer.quote
            sql = (f"UPDATE {quote(table.name)} SET {', '.join(f'{quote(c)} = ?' for c in columns)} "
                   f"WHERE {quote(key)} = ?")
            self._updates[cached] = (sql, self._processors(table, (*columns, key)))
        return self._updates[cached]

    def _processors(self, table: Table, columns: tuple[str, ...]) -> list[tuple[int, Callable[[Any], Any]]]:
        """Each column's bind processor (by position) for the types that need one (``DateTime``, ``Boolean``)."""
        unknown = [c for c in columns if c not in table.c]
        if unknown:
            raise ValueError(f"table {table.name} has no column(s) {', '.join(unknown)}")
        processors = []
        for position, name in enumerate(columns):
            process = table.c[name].type._cached_bind_processor(self.dialect)
            if process is not None:
                processors.append((position, _faster(table.c[name].type.dialect_impl(self.dialect), process)))
        return processors


#: SQLAlchemy's own text for SQLite ``DateTime`` columns, which ``datetime.isoformat`` writes alike.
_SQLITE_DATETIME_FORMAT = SQLITE_DATETIME()._storage_format


def _faster(impl: Any, process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``process``, or for SQLite datetimes in SQLAlchemy's default text a C-speed equivalent (the page's
    four datetime columns were a tenth of writing it): naive and aware values alike written as their
    wall-clock time, as SQLAlchemy does; anything else (a ``date``, a subclass) left to ``process``."""
    if not (isinstance(impl, SQLITE_DATETIME) and impl._storage_format == _SQLITE_DATETIME_FORMAT):
        return process

    def as_text(value: Any) -> Any:
        if type(value) is datetime and value.year >= 1000:
            return (value if value.tzinfo is None else value.replace(tzinfo=None)).isoformat(" ", "microseconds")
        return process(value)

    return as_text


def _processed(row: tuple, processors: list[tuple[int, Callable[[Any], Any]]]) -> tuple:
    values = list(row)
    for position, process in processors:
        if values[position] is not None:
            values[position] = process(values[position])
    return tuple(values)
