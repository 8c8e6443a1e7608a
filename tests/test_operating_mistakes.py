"""An operating mistake ends a command with one plain line naming the cause and the fix, a non-zero
exit and no traceback; each command asks only for what it needs (issue #15, items 2, 3 and 5)."""
from __future__ import annotations

import socket
import sqlite3
import sys
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from socialcrm import Sink, StrictSchema, hookimpl
from socialcrm.core.cli.context import Context
from socialcrm.core.cli.main import main

MINIMAL = """
[brand]
name = "Brightwave"

[store]
url = "{url}"
"""

API_BLOCK = """
[[api.tokens]]
name = "reader"
token = "${SOCIALCRM_UNSET_READ_TOKEN}"
scopes = ["read"]
"""


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def said_once(result, exit_code: int, *fragments: str) -> str:
    """The result's one line of output (click's ``Error: `` prefix taken off), after checking the exit
    code, that each fragment is in it, and that no traceback was printed."""
    assert result.exit_code == exit_code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def store_config(write_config):
    """A config whose ``[store] url`` is the one given (and optionally more text after it)."""
    def write(url: str, more: str = "") -> str:
        return str(write_config(MINIMAL.format(url=url) + more))
    return write


# --- opening the store ---

def test_a_sqlite_file_in_a_missing_folder_names_the_folder(store_config, tmp_path):
    config = store_config(f"sqlite:///{tmp_path}/no/such/dir/socialcrm.db")
    said_once(invoke("run", "--once", "--config", config), 2, f"no such folder {tmp_path}/no/such/dir for the "
              "SQLite file", "[store] url")


def test_an_unreachable_postgresql_names_host_port_and_hides_the_password(store_config):
    config = store_config("postgresql://socialcrm:hunter2secret@127.0.0.1:5439/test")
    line = said_once(invoke("run", "--once", "--config", config), 2, "cannot connect to 127.0.0.1:5439",
                     "socialcrm:***@127.0.0.1:5439/test")
    assert "hunter2secret" not in line


def test_an_unsupported_scheme_says_which_are(store_config):
    said_once(invoke("run", "--once", "--config", store_config("mysql://root@127.0.0.1/crm")), 2,
              "unsupported scheme mysql:// (socialcrm supports sqlite:/// and postgresql://)")


def test_a_missing_postgresql_driver_names_the_extra(store_config, monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg now fails, as when it is not installed
    said_once(invoke("run", "--once", "--config", store_config("postgresql://postgres@127.0.0.1:5432/test")), 2,
              "PostgreSQL driver missing: pip install 'socialcrm[postgres]'")


def test_a_table_of_our_name_that_is_not_ours_is_refused(store_config, tmp_path):
    path = tmp_path / "theirs.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE records (id INTEGER PRIMARY KEY, invoice TEXT)")
    said_once(invoke("run", "--once", "--config", store_config(f"sqlite:///{path}")), 2,
              "table `records` exists but is not socialcrm's (columns id, invoice)", "use another database")


@pytest.mark.parametrize("url", ["sqlite:///", "sqlite://"])
@pytest.mark.parametrize("command", [["run", "--once"], ["serve", "--port", "0"], ["backfill", "file",
                                                                                   "--since", "2024-01-01"]])
def test_an_in_memory_store_is_refused_where_a_lasting_one_is_needed(store_config, url, command):
    more = '\n[sources.file]\nplugin = "jsonl"\npath = "mentions.jsonl"\n'
    said_once(invoke(*command, "--config", store_config(url, more)), 2, "is in memory",
              f"`socialcrm {command[0]}` needs a lasting store")


@pytest.mark.parametrize("command", [["status"], ["records"], ["dlq", "list"]])
def test_read_only_commands_never_create_a_database_at_a_mistyped_path(store_config, tmp_path, command):
    mistyped = tmp_path / "socialcmr.db"
    said_once(invoke(*command, "--config", store_config(f"sqlite:///{mistyped}")), 2,
              f"no socialcrm database at {mistyped} (run `socialcrm run` first, or check [store] url)")
    assert not mistyped.exists()


# --- each command validates what it needs ---

@pytest.mark.parametrize("command", [["status", "--json"], ["records", "--json"]])
def test_status_and_records_run_without_the_api_token_secrets(store_config, tmp_path, monkeypatch, command):
    monkeypatch.delenv("SOCIALCRM_UNSET_READ_TOKEN", raising=False)
    config = store_config(f"sqlite:///{tmp_path}/socialcrm.db", API_BLOCK)
    created = invoke("run", "--once", "--config", config)
    assert created.exit_code == 0, created.output
    result = invoke(*command, "--config", config)
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output


def test_serve_needs_the_api_token_secrets_and_names_the_variable(store_config, tmp_path, monkeypatch):
    monkeypatch.delenv("SOCIALCRM_UNSET_READ_TOKEN", raising=False)
    result = invoke("serve", "--port", "0", "--config",
                    store_config(f"sqlite:///{tmp_path}/socialcrm.db", API_BLOCK))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert ("socialcrm.toml [api] tokens.0.token: environment variable SOCIALCRM_UNSET_READ_TOKEN is not set "
            "(export SOCIALCRM_UNSET_READ_TOKEN=...) (needed to start the API)") in result.output


def test_serve_on_a_port_in_use_says_so_in_one_line(store_config, tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = invoke("serve", "--port", str(port), "--no-schedule", "--config",
                        store_config(f"sqlite:///{tmp_path}/socialcrm.db"))
    said_once(result, 1, f"port {port} on 127.0.0.1 is in use (another socialcrm serve?): pick another with "
                         "--port or [api] port")


@pytest.mark.parametrize("content, problem", [
    ('{"text": "love it", "sentiment": "positive"}\n{"text": "broken\n', "line 2: not JSON"),
    ('{"text": "love it", "sentiment": "positive"}\n\n{"text": "no label"}\n', "line 3: needs a JSON object with "
                                                                              "text and one of sentiment"),
    ('["text", "sentiment"]\n', "line 1: needs a JSON object"),
])
def test_a_bad_training_file_names_the_file_and_line(tmp_path, content, problem):
    data = tmp_path / "labelled.jsonl"
    data.write_text(content, encoding="utf-8")
    said_once(invoke("train", "--data", str(data), "--base", "none", "--output", str(tmp_path / "model")), 1,
              f"{data} {problem}", "nothing trained")
    assert not (tmp_path / "model").exists()


# --- check checks ---

def test_check_connects_to_the_store_and_says_so(write_config, tmp_path):
    config = str(write_config())
    (tmp_path / "mentions.jsonl").touch()
    assert invoke("run", "--once", "--config", config).exit_code == 0
    result = invoke("check", "--config", config)
    assert result.exit_code == 0, result.output
    assert f"store: sqlite at {tmp_path / 'socialcrm.db'}: reachable, schema ok" in result.output
    assert "warning" not in result.output


def test_check_before_the_first_run_creates_nothing(write_config, tmp_path):
    result = invoke("check", "--config", str(write_config()))
    assert result.exit_code == 0, result.output
    assert f"store: sqlite at {tmp_path / 'socialcrm.db'}: no socialcrm database yet" in result.output
    assert not (tmp_path / "socialcrm.db").exists()


def test_check_warns_about_a_config_with_no_sources_sinks_or_routes(store_config, tmp_path):
    result = invoke("check", "--config", store_config(f"sqlite:///{tmp_path}/socialcrm.db"))
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning: ")]
    assert [w.split(" (")[0] for w in warnings] == ["warning: no sources configured", "warning: no sinks configured",
                                                    "warning: no routes configured"]


def test_check_fails_on_a_store_it_cannot_open(store_config):
    result = invoke("check", "--config", store_config("postgresql://postgres@127.0.0.1:5439/test"))
    assert result.exit_code == 2 and "Traceback" not in result.output
    valid, error = result.output.strip().splitlines()
    assert valid.endswith("valid: 0 sources, 0 sinks, 0 routes, store postgresql")
    assert error.startswith("Error: store postgresql://postgres@127.0.0.1:5439/test: cannot connect to "
                            "127.0.0.1:5439: ") and error.endswith("check that the server runs and [store] url")


# --- sources test and sinks test make a real check ---

SINKS = """
[brand]
name = "Brightwave"

[sinks.crm]
plugin = "webhook"
url = "{url}"
secret = "s3cret-key"

[sinks.archive]
plugin = "jsonl"
path = "{path}"

[sinks.screen]
plugin = "console"
"""


def test_a_webhook_sink_at_a_dead_port_fails_with_the_connection_error(write_config, tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as bound:  # bound, not listening: refused
        bound.bind(("127.0.0.1", 0))
        port = bound.getsockname()[1]
        config = write_config(SINKS.format(url=f"http://127.0.0.1:{port}/v1/records", path="out/records.jsonl"))
        result = invoke("sinks", "test", "crm", "--config", str(config))
    said_once(result, 1, "sink crm (webhook) FAILED: the service could not be reached",
              f"127.0.0.1:{port} cannot be reached", "check `url`")


def test_a_webhook_sink_that_answers_is_ok(write_config, fake_crm):
    config = write_config(SINKS.format(url=fake_crm.url, path="out/records.jsonl"))
    result = invoke("sinks", "test", "crm", "--config", str(config))
    assert result.exit_code == 0, result.output
    assert "sink crm (webhook): ok" in result.output and "answered a signed HEAD" in result.output
    assert fake_crm.count == 0  # the check created nothing


def test_a_jsonl_sink_under_an_unwritable_path_fails_naming_it(write_config, tmp_path):
    (tmp_path / "blocker").write_text("a file, where the folder should be")
    target = tmp_path / "blocker" / "out" / "records.jsonl"
    result = invoke("sinks", "test", "archive", "--config", str(write_config(SINKS.format(url="http://x.test/",
                                                                                          path=target))))
    said_once(result, 1, "sink archive (jsonl) FAILED: a local file or folder cannot be used", f"cannot write {target}")


def test_a_jsonl_sink_says_it_has_nothing_to_call_and_checked_the_path(write_config, tmp_path):
    result = invoke("sinks", "test", "archive", "--config",
                    str(write_config(SINKS.format(url="http://x.test/", path="out/records.jsonl"))))
    assert result.exit_code == 0, result.output
    assert f"jsonl: nothing to call; checked that {tmp_path / 'out' / 'records.jsonl'} is writable" in result.output
    assert not (tmp_path / "out" / "records.jsonl").exists()


def test_the_console_sink_says_it_has_nothing_to_call(write_config):
    result = invoke("sinks", "test", "screen", "--config",
                    str(write_config(SINKS.format(url="http://x.test/", path="out/records.jsonl"))))
    assert result.exit_code == 0 and "console: nothing to call" in result.output, result.output


def test_a_jsonl_source_whose_file_is_missing_fails_naming_it(write_config, tmp_path):
    result = invoke("sources", "test", "file", "--config", str(write_config()))
    said_once(result, 1, "source file (jsonl) FAILED: a local file or folder cannot be used",
              f"cannot read {tmp_path / 'mentions.jsonl'}")



class QuietSink(Sink):
    """Delivers nowhere; keeps the SDK's default ``check()``."""

    name = "quiet"

    class ConfigSchema(StrictSchema):
        """No options."""

    def send(self, records):
        return []


def test_a_plugin_with_no_check_is_said_to_have_nothing_to_call(write_config, plugins):
    plugins.register(SimpleNamespace(register_sinks=hookimpl(lambda register: register(QuietSink))),
                     name="quiet_plugin")
    config = write_config('[brand]\nname = "Brightwave"\n\n[sinks.nowhere]\nplugin = "quiet"\n')
    result = CliRunner().invoke(main, ["sinks", "test", "nowhere", "--config", str(config)], obj=Context(plugins))
    assert result.exit_code == 0, result.output
    assert "quiet: nothing to call: the plugin defines no check(), so nothing was tried" in result.output


@pytest.mark.postgres
def test_postgresql_read_only_opens_an_empty_database_as_missing_and_refuses_foreign_tables(pg_url, store_config):
    from sqlalchemy import create_engine, text
    config = store_config(pg_url)
    said_once(invoke("status", "--config", config), 2, "no socialcrm database at postgresql+psycopg://")
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE outbox (id integer PRIMARY KEY, parcel text)"))
    engine.dispose()
    said_once(invoke("run", "--once", "--config", config), 2,
              "table `outbox` exists but is not socialcrm's (columns id, parcel)")


# --- a source that fails at run time ---

def test_a_sources_missing_file_during_run_is_one_line_with_no_traceback(store_config, tmp_path, caplog):
    config = store_config(f"sqlite:///{tmp_path}/socialcrm.db", f"""
[sources.sample]
plugin = "jsonl"
path = "{tmp_path}/gone.jsonl"
""")
    with caplog.at_level("ERROR"):
        result = invoke("run", "--once", "--config", config)
    assert result.exit_code == 1 and "Traceback" not in result.output
    failures = [r for r in caplog.records if r.name == "socialcrm.core.engine.pipeline"]
    assert len(failures) == 1 and failures[0].exc_info is None
    message = failures[0].getMessage()
    assert "source sample failed" in message and "gone.jsonl" in message and "[sources.sample]" in message
