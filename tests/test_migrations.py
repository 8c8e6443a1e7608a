"""The store's schema under Alembic (issue #18, item 1): a new database made at head equals one made by
replaying every migration; a database the previous release made (committed dumps, with data) is
refused by run and serve until `socialcrm db upgrade` adopts it with nothing lost; a newer revision is
applied by `db upgrade`, a failing one rolled back and named; `[store] schema` keeps two installations
in one PostgreSQL database apart. Every test runs on SQLite and on the real PostgreSQL server."""
from __future__ import annotations

import json
import sqlite3
import textwrap
import threading
import uuid
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.engine import make_url

from socialcrm.core.cli.main import main
from socialcrm.core.store import MigrationFailed, Store, StoreBehind, StoreError, StoreMissing, migrating
from socialcrm.core.store.database import Database
from socialcrm.core.store.migrations.baseline import LAYOUT
from socialcrm.core.store.schema import metadata

RELEASE = Path(__file__).parent / "payloads" / "release-0.1.0"
# What the previous release's database holds (tests/payloads/release-0.1.0/README.md says how it was made).
RELEASE_RECORDS = 48
ERASED_AUTHOR = "gemma_sheff"
CORRECTED = "x:2108601906099958703"  # corrected from query to lead with `socialcrm feedback`

CONFIG = """
[brand]
name = "Brightwave"
handles = ["@Brightwave", "@BrightwaveHelp"]

[store]
url = "{url}"
{schema}

[sources.file]
plugin = "jsonl"
path = "mentions.jsonl"

[sinks.desk]
plugin = "jsonl"
path = "out/desk.jsonl"

[[routes]]
name = "care"
when = {{ type = ["case", "query", "rant", "lead"] }}
sinks = ["desk"]
"""

NOTE_REVISION = '''"""Test revision: records gain a note.

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("records", sa.Column("note", sa.Text()))
    op.execute("UPDATE records SET note = 'kept'")
    {then}


def downgrade():
    raise NotImplementedError
'''


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def write_store_config(tmp_path):
    """Write a config on ``url`` (and ``schema``) into its own folder; returns its path."""
    def write(url: str, schema: str | None = None, folder: str = ".") -> Path:
        home = tmp_path / folder
        home.mkdir(exist_ok=True)
        (home / "mentions.jsonl").touch()
        path = home / "socialcrm.toml"
        path.write_text(textwrap.dedent(CONFIG.format(url=url, schema=f'schema = "{schema}"' if schema else "")),
                        encoding="utf-8")
        return path
    return write


def load_release(url: str) -> None:
    """Put the previous release's database (its layout and its rows, as that release left them) at ``url``."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        with sqlite3.connect(parsed.database) as conn:
            conn.executescript((RELEASE / "sqlite.sql").read_text(encoding="utf-8"))
        return
    import psycopg
    libpq = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(libpq, autocommit=True) as conn:
        conn.execute((RELEASE / "postgresql.sql").read_text(encoding="utf-8"))


def snapshot(url: str, schema: str | None = None) -> dict[str, list[tuple]]:
    """Every row of every table of the 0.1.0 layout, in primary-key order."""
    db = Database(url, read_only=True, schema=schema)
    try:
        with db.connect() as conn:
            return {table.name: [tuple(row) for row in conn.execute(
                select(*table.columns).order_by(*table.primary_key.columns))] for table in LAYOUT.sorted_tables}
    finally:
        db.close()


def differences(url: str, schema: str | None = None) -> list:
    """What Alembic's autogenerate finds between the database and the store's schema (nothing, when in step)."""
    db = Database(url, read_only=True, schema=schema)
    try:
        with db.connect() as conn:
            # The schema is the connection's default one, so the version table is named without it.
            context = MigrationContext.configure(conn, opts={"version_table": migrating.VERSION_TABLE})
            return compare_metadata(context, metadata)
    finally:
        db.close()


def revisions_in(url: str, schema: str | None = None) -> list[str]:
    """The revisions the database's version table holds."""
    db = Database(url, read_only=True, schema=schema)
    try:
        with db.connect() as conn:
            return list(conn.execute(text(f"SELECT version_num FROM {migrating.VERSION_TABLE}")).scalars())
    finally:
        db.close()


def revisions_in_or_none(url: str) -> list[str] | None:
    """The revisions the database's version table holds; None when it has none."""
    db = Database(url, read_only=True)
    try:
        return revisions_in(url) if migrating.VERSION_TABLE in inspect(db.engine).get_table_names() else None
    finally:
        db.close()


@pytest.fixture
def second_url(tmp_path):
    """Another empty database on the same backend as ``store_url`` (for PostgreSQL, another schema of it)."""
    def make(url: str) -> tuple[str, str | None]:
        if make_url(url).get_backend_name() == "sqlite":
            return f"sqlite:///{tmp_path / 'second.db'}", None
        return url, "second"
    return make


@pytest.fixture
def newer(tmp_path, monkeypatch):
    """Make this socialcrm's head a test revision 0002 (records gain a note), followed by ``then`` (a
    statement of its upgrade(), e.g. one that fails)."""
    def install(then: str = "pass") -> None:
        folder = tmp_path / "newer_versions"
        folder.mkdir(exist_ok=True)
        (folder / "0002_note.py").write_text(NOTE_REVISION.replace("{then}", then), encoding="utf-8")
        migrations = migrating.Migrations([folder])
        monkeypatch.setattr(migrating, "default_migrations", lambda: migrations)
    return install


# --- a new database ---

def test_a_new_store_is_made_at_head_the_same_as_replaying_every_migration(store_url, second_url):
    store = Store(store_url)  # the way every new store is made: create_all, then stamp head
    store.close()
    assert revisions_in(store_url) == [migrating.default_migrations().head]
    assert differences(store_url) == []
    url, schema = second_url(store_url)
    db = Database(url, schema=schema)
    try:
        done = migrating.default_migrations().upgrade(db, fresh_at_head=False)  # every revision from the start
    finally:
        db.close()
    assert [r.id for r in done.applied] == [r.id for r in migrating.history()]
    assert differences(url, schema) == []


def test_processes_opening_one_new_database_at_once_make_it_once(store_url):
    errors: list[BaseException] = []

    def open_it():
        try:
            Store(store_url, schema="shared" if store_url.startswith("postgresql") else None).close()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    schema = "shared" if store_url.startswith("postgresql") else None
    assert revisions_in(store_url, schema) == [migrating.default_migrations().head]


def test_a_read_only_open_of_an_empty_database_creates_nothing(store_url):
    if store_url.startswith("sqlite"):
        sqlite3.connect(make_url(store_url).database).close()  # an empty file
    with pytest.raises(StoreMissing, match="no socialcrm database at"):
        Store(store_url, read_only=True)
    db = Database(store_url, read_only=True)
    try:
        assert inspect(db.engine).get_table_names() == []
    finally:
        db.close()


# --- the previous release's database ---

def test_run_and_serve_refuse_the_previous_releases_database_naming_db_upgrade(store_url, write_store_config):
    load_release(store_url)
    config = write_store_config(store_url)
    for command in (["run", "--once"], ["serve", "--port", "0"], ["status"], ["records"], ["check"]):
        result = invoke(*command, "--config", str(config))
        assert result.exit_code == 2, result.output
        assert "made by socialcrm 0.1.0 or earlier, before schema migrations" in result.output
        assert f"run `socialcrm db upgrade --config {config}` to adopt it" in result.output
        assert "Traceback" not in result.output
    current = invoke("db", "current", "--config", str(config))
    assert current.exit_code == 1 and "no revision: made by socialcrm 0.1.0 or earlier" in current.output
    assert revisions_in_or_none(store_url) is None  # refusing changed nothing


def test_db_upgrade_adopts_the_previous_releases_database_and_nothing_is_lost(store_url, write_store_config,
                                                                              mention_json, write_mentions):
    load_release(store_url)
    before = snapshot(store_url)
    assert all(before[name] for name in LAYOUT.tables), {name: len(rows) for name, rows in before.items()}
    config = write_store_config(store_url)

    result = invoke("db", "upgrade", "--config", str(config))
    assert result.exit_code == 0, result.output
    assert "made before migrations (no version table): adopted as it was; now at revision 0001 (head)" in result.output
    assert "applied 0001" in result.output
    assert snapshot(store_url) == before  # every row of every table, as it was
    assert differences(store_url) == []  # and the layout is the head's
    assert invoke("db", "current", "--config", str(config)).exit_code == 0
    again = invoke("db", "upgrade", "--config", str(config))
    assert again.exit_code == 0 and "nothing to do" in again.output

    # The upgraded store is used as it is: its records read, its corrections kept, new mentions added.
    listed = invoke("records", "--json", "--limit", "500", "--config", str(config))
    records = [json.loads(line) for line in listed.output.splitlines()]
    assert len(records) == RELEASE_RECORDS
    assert ERASED_AUTHOR not in listed.output
    assert {r["id"]: r["type"] for r in records}[CORRECTED] == "lead"
    write_mentions(config.parent / "mentions.jsonl", [mention_json("77001", "@Brightwave my router is down again")])
    ran = invoke("run", "--once", "--config", str(config))
    assert ran.exit_code == 0, ran.output
    assert "1 new records" in ran.output
    assert len(snapshot(store_url)["records"]) == RELEASE_RECORDS + 1


def test_a_store_opened_to_upgrade_itself_as_the_demo_opens_its_own_adopts_the_previous_release(store_url):
    load_release(store_url)
    with pytest.raises(StoreBehind):
        Store(store_url)
    store = Store(store_url, upgrade=True)  # what the demo opens its store with
    try:
        assert len(list(store.iter_records(limit=500))) == RELEASE_RECORDS
    finally:
        store.close()
    assert revisions_in(store_url) == ["0001"]


def test_tables_of_our_names_that_are_not_ours_are_never_adopted(store_url, write_store_config):
    engine = create_engine(store_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE records (id INTEGER PRIMARY KEY, invoice TEXT)"))
    engine.dispose()
    config = write_store_config(store_url)
    for command in (["db", "upgrade"], ["db", "current"], ["run", "--once"]):
        result = invoke(*command, "--config", str(config))
        assert result.exit_code == 2, result.output
        assert "table `records` exists but is not socialcrm's (columns id, invoice)" in result.output


# --- a newer revision ---

def test_a_database_behind_the_head_is_refused_until_db_upgrade_applies_the_rest(store_url, write_store_config, newer):
    load_release(store_url)
    migrating.upgrade_store(store_url)  # at 0001, with the previous release's rows
    load_rows = snapshot(store_url)
    config = write_store_config(store_url)
    newer()
    with pytest.raises(StoreBehind, match="is at schema revision 0001, this socialcrm needs 0002"):
        Store(store_url)
    ran = invoke("run", "--once", "--config", str(config))
    assert ran.exit_code == 2
    assert f"needs 0002: run `socialcrm db upgrade --config {config}`" in ran.output
    current = invoke("db", "current", "--config", str(config))
    assert current.exit_code == 1 and "behind" in current.output, current.output
    history = invoke("db", "history", "--config", str(config))
    assert history.exit_code == 0
    assert [line.split()[0] for line in history.output.splitlines()[1:]] == ["0001", "0002"]
    assert "(current)" in history.output.splitlines()[1] and "(head)" in history.output.splitlines()[2]

    result = invoke("db", "upgrade", "--config", str(config))
    assert result.exit_code == 0, result.output
    assert "was at revision 0001; now at revision 0002 (head)" in result.output
    assert "applied 0002  Test revision: records gain a note." in result.output
    assert revisions_in(store_url) == ["0002"]
    assert snapshot(store_url) == load_rows
    assert invoke("run", "--once", "--config", str(config)).exit_code == 0
    assert invoke("db", "current", "--config", str(config)).exit_code == 0


def test_a_failing_migration_is_rolled_back_named_and_loses_nothing(store_url, write_store_config, newer):
    load_release(store_url)
    config = write_store_config(store_url)
    assert invoke("db", "upgrade", "--config", str(config)).exit_code == 0
    before = snapshot(store_url)
    newer(then='op.execute("UPDATE no_such_table SET x = 1")')
    result = invoke("db", "upgrade", "--config", str(config))
    assert result.exit_code == 1, result.output
    message = result.output.strip()
    assert message.startswith("store ") and "migration 0002 (Test revision: records gain a note.;" in message
    assert "newer_versions/0002_note.py) failed:" in message and "no_such_table" in message
    assert "rolled back, so the database is unchanged (at revision 0001) and nothing stored is lost" in message
    assert f"then run `socialcrm db upgrade --config {config}` again" in message
    assert revisions_in(store_url) == ["0001"]
    assert snapshot(store_url) == before
    db = Database(store_url, read_only=True)
    try:
        assert "note" not in {c["name"] for c in inspect(db.engine).get_columns("records")}  # the ALTER undone too
    finally:
        db.close()
    with pytest.raises(MigrationFailed):
        migrating.upgrade_store(store_url)


def test_a_database_a_newer_socialcrm_upgraded_is_refused(store_url, write_store_config, newer, monkeypatch):
    newer()
    Store(store_url).close()  # made at 0002 by the "newer" socialcrm
    shipped = migrating.Migrations()
    monkeypatch.setattr(migrating, "default_migrations", lambda: shipped)  # back to this socialcrm's own
    config = write_store_config(store_url)
    with pytest.raises(StoreError, match="is at schema revision 0002, which this socialcrm does not know"):
        Store(store_url)
    current = invoke("db", "current", "--config", str(config))
    assert current.exit_code == 2 and "a newer socialcrm upgraded it" in current.output
    assert invoke("db", "upgrade", "--config", str(config)).exit_code == 2
    assert revisions_in(store_url) == ["0002"]


# --- [store] schema ---

@pytest.mark.postgres
def test_two_installations_in_one_postgresql_database_do_not_see_each_other(pg_url, write_store_config,
                                                                            mention_json, write_mentions):
    brand_a = write_store_config(pg_url, "brand_a", folder="a")
    brand_b = write_store_config(pg_url, "brand_b", folder="b")
    write_mentions(brand_a.parent / "mentions.jsonl", [mention_json("1", "@Brightwave my bill is wrong"),
                                                      mention_json("2", "@Brightwave no signal since noon")])
    write_mentions(brand_b.parent / "mentions.jsonl", [mention_json("3", "@Brightwave how do I port my number?")])
    for config in (brand_a, brand_b):
        result = invoke("run", "--once", "--config", str(config))
        assert result.exit_code == 0, result.output

    def ids(config: Path) -> set[str]:
        listed = invoke("records", "--json", "--config", str(config))
        assert listed.exit_code == 0, listed.output
        return {json.loads(line)["id"] for line in listed.output.splitlines()}

    assert ids(brand_a) == {"x:1", "x:2"} and ids(brand_b) == {"x:3"}
    engine = create_engine(pg_url)
    try:
        with engine.connect() as conn:
            placed = set(conn.execute(text(
                "SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema NOT IN "
                "('pg_catalog', 'information_schema')")).all())
    finally:
        engine.dispose()
    ours = {*LAYOUT.tables, migrating.VERSION_TABLE}
    assert placed == {(schema, name) for schema in ("brand_a", "brand_b") for name in ours}  # nothing in public
    erased = invoke("erase", "--author", "user1", "--network", "x", "--yes", "--config", str(brand_a))
    assert erased.exit_code == 0, erased.output
    assert ids(brand_a) == {"x:2"} and ids(brand_b) == {"x:3"}
    unschemed = write_store_config(pg_url, folder="public")
    assert invoke("status", "--config", str(unschemed)).exit_code == 2  # no socialcrm in public
    for config in (brand_a, brand_b):
        current = invoke("db", "current", "--json", "--config", str(config))
        assert current.exit_code == 0 and json.loads(current.output)["status"] == "current"


@pytest.mark.postgres
def test_read_only_commands_never_create_a_schema(pg_url, write_store_config):
    config = write_store_config(pg_url, "not_there")
    for command in (["status"], ["db", "current"]):
        result = invoke(*command, "--config", str(config))
        assert result.exit_code in (1, 2), result.output
    status = invoke("status", "--config", str(config))
    assert "schema not_there ([store] schema) does not exist" in status.output
    engine = create_engine(pg_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM pg_namespace WHERE nspname = 'not_there'")).scalar() == 0
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_a_schema_the_user_may_not_create_says_how_to_fix_it(pg_url, pg_admin):
    role = f"socialcrm_plain_{uuid.uuid4().hex[:8]}"
    with pg_admin.connect() as conn:
        conn.execute(text(f'CREATE ROLE "{role}" LOGIN'))
    try:
        url = make_url(pg_url).set(username=role).render_as_string(hide_password=False)
        with pytest.raises(StoreError) as raised:
            Store(url, schema="brand_a")
        message = str(raised.value)
        assert "cannot create schema brand_a ([store] schema): permission denied" in message
        assert "CREATE SCHEMA brand_a AUTHORIZATION" in message
    finally:
        with pg_admin.connect() as conn:
            conn.execute(text(f'DROP ROLE "{role}"'))


@pytest.mark.parametrize(("url", "schema", "said"), [
    ("postgresql://postgres@127.0.0.1:5432/test", "Brand-A", "[store] schema: 'Brand-A' is not a schema name "
                                                             "socialcrm accepts: lowercase letters"),
    ("postgresql://postgres@127.0.0.1:5432/test", "pg_brand", "[store] schema: 'pg_brand' is not a schema name"),
    ("sqlite:///socialcrm.db", "brand_a", "[store] schema: a schema is PostgreSQL's, and url is sqlite"),
])
def test_a_bad_schema_setting_names_the_file_and_field(write_store_config, url, schema, said):
    config = write_store_config(url, schema)
    result = invoke("check", "--config", str(config))
    assert result.exit_code == 2
    assert f"socialcrm.toml {said}" in result.output, result.output
    with pytest.raises(StoreError, match="schema"):
        Store(url, schema=schema)


def test_db_history_lists_the_shipped_revisions_without_a_database(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./socialcrm.toml here
    result = invoke("db", "history")
    assert result.exit_code == 0, result.output
    shipped = migrating.history()
    assert [r.id for r in shipped][0] == "0001"
    assert result.output.splitlines() == [f"{r.id}  {r.title}" + ("  (head)" if r == shipped[-1] else "")
                                          for r in shipped]
    assert not list(tmp_path.iterdir())  # nothing was created
