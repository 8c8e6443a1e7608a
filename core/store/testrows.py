"""Tests' one door past the Store's methods: reading rows the store has no query for.

Tests check what landed in the tables (an audit entry's columns, how many rows a table holds) and
arrange states no method makes (a row gone dead after ten attempts). They build their queries with
SQLAlchemy over ``socialcrm.core.store.schema`` and run them here. Production code never imports
this module: it calls ``Store`` methods.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import Table, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.sql import Executable


def rows(store: Any, query: Executable) -> list[dict[str, Any]]:
    """The rows ``query`` selects, as dictionaries."""
    with store.db.connect() as conn:
        return [dict(row) for row in conn.execute(query).mappings()]


def tuples(store: Any, query: Executable) -> list[tuple]:
    """The rows ``query`` selects, as tuples."""
    with store.db.connect() as conn:
        return [tuple(row) for row in conn.execute(query)]


def scalars(store: Any, query: Executable) -> list[Any]:
    """The first column of every row ``query`` selects."""
    with store.db.connect() as conn:
        return list(conn.execute(query).scalars())


def count(store: Any, table: Table, **where: Any) -> int:
    """How many rows of ``table`` have these column values."""
    query = select(func.count()).select_from(table)
    for column, value in where.items():
        query = query.where(table.c[column] == value)
    with store.db.connect() as conn:
        return conn.execute(query).scalar_one()


def execute_sql(store: Any, sql: str) -> None:
    """Run a statement in its own transaction, to arrange a state no store method makes."""
    with store.db.begin() as conn:
        conn.exec_driver_sql(sql)


def engine(store: Any) -> Engine:
    """The store's engine, to listen to the statements it runs (query-plan tests)."""
    return store.db.engine
