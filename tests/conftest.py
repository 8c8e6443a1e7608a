"""Shared fixtures: plugin managers, config files, stores on SQLite and on the real PostgreSQL server."""
from __future__ import annotations

import json
import os
import subprocess
import textwrap
import uuid
from pathlib import Path

import pytest

from socialcrm.core.config import load_config
from socialcrm.core.plugins import default_manager
from socialcrm.core.store import Store

IN_CI = os.environ.get("CI", "").lower() == "true"
PG_ADMIN_URL = os.environ.get("SOCIALCRM_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PG_START = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"


@pytest.fixture
def plugins():
    """Every installed plugin (the built-ins come in through their entry points)."""
    return default_manager()


BASE_CONFIG = """
[brand]
name = "Brightwave"
handles = ["@Brightwave", "@BrightwaveHelp"]
keywords = ["WaveBox"]
competitors = ["Orbit Fiber", "@OrbitFiber"]

[store]
url = "sqlite:///socialcrm.db"

[sources.file]
plugin = "jsonl"
path = "mentions.jsonl"
page_size = 50

[sinks.desk]
plugin = "jsonl"
path = "out/desk.jsonl"

[sinks.sales]
plugin = "jsonl"
path = "out/sales.jsonl"

[[routes]]
name = "support"
when = { type = ["case", "query", "rant"] }
sinks = ["desk"]
team = "care"

[[routes]]
name = "leads"
when = { type = ["lead"] }
sinks = ["sales"]
"""


@pytest.fixture
def write_config(tmp_path):
    """Write a config file into the test's folder; returns its path."""
    def write(text: str = BASE_CONFIG, name: str = "socialcrm.toml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path
    return write


@pytest.fixture
def base_config():
    """The text of the base config (a support route to ``desk``, leads to ``sales``)."""
    return textwrap.dedent(BASE_CONFIG)


@pytest.fixture
def config(write_config, plugins):
    """The base config, loaded."""
    return load_config(write_config(), plugins)


def mention_json(native_id: str, text: str, network: str = "x", **extra) -> dict:
    """A mention as the jsonl source reads it."""
    data = {"network": network, "id": native_id, "text": text, "created_at": "2026-10-01T10:00:00Z",
            "author": {"id": f"u{native_id}", "handle": f"user{native_id}", "followers": 100}}
    data.update(extra)
    return data


def write_mentions(path: Path, mentions: list[dict], mode: str = "w") -> None:
    """Write (or append) mentions as JSON Lines."""
    with path.open(mode, encoding="utf-8") as handle:
        for m in mentions:
            handle.write(json.dumps(m) + "\n")


def _pg_admin_engine():
    from sqlalchemy import create_engine, text
    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        return engine
    except Exception:
        engine.dispose()
        return None


@pytest.fixture(scope="session")
def pg_admin():
    """An autocommit engine on the PostgreSQL server; starts the server if it is down."""
    engine = _pg_admin_engine()
    if engine is None:
        subprocess.run(PG_START, shell=True, capture_output=True, timeout=60)
        engine = _pg_admin_engine()
    if engine is None:
        message = f"PostgreSQL does not answer at {PG_ADMIN_URL}; start it with: {PG_START}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_url(pg_admin):
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    from sqlalchemy import text
    name = f"socialcrm_test_{uuid.uuid4().hex[:12]}"
    with pg_admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with pg_admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request, tmp_path):
    """The same tests on the embedded SQLite store and on the real PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def store(store_url):
    store = Store(store_url)
    yield store
    store.close()


@pytest.fixture(name="mention_json")
def _mention_json_fixture():
    """The ``mention_json`` builder, for tests (importlib mode keeps conftest out of imports)."""
    return mention_json


@pytest.fixture(name="write_mentions")
def _write_mentions_fixture():
    """The ``write_mentions`` helper, for tests."""
    return write_mentions
