"""The command line as people use it: log options on either side of the sub-command, what a foreground
run says, and ``records`` with its filters and relative times."""
import json
import logging
import os
import shlex
import signal
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from socialcrm.core.cli.context import Context
from socialcrm.core.cli.main import main
from socialcrm.core.cli.times import parse_since

NOW = datetime(2026, 10, 3, 15, 30, tzinfo=timezone.utc)
BROKEN = "my WaveBox is broken, please fix"  # a case: routed to desk, team care
SLOW_WIFI = "the wifi is a bit slow tonight"  # other: no route


@pytest.fixture
def root_level():
    """The root logger's level, restored after the test (the options set it for the process)."""
    root = logging.getLogger()
    before = root.level
    yield root
    root.setLevel(before)


@pytest.mark.parametrize("args, level", [
    (["--log-level", "DEBUG", "check"], logging.DEBUG),
    (["check", "--log-level", "DEBUG"], logging.DEBUG),
    (["check", "-v"], logging.INFO),
    (["-vv", "check"], logging.DEBUG),
    (["--log-level", "ERROR", "check", "--log-level", "INFO"], logging.INFO),  # the later one wins
    (["-v", "check", "--log-level", "ERROR"], logging.ERROR),
])
def test_log_level_works_before_and_after_the_sub_command(write_config, root_level, args, level):
    result = CliRunner().invoke(main, [*args, "--config", str(write_config())])
    assert result.exit_code == 0, result.output
    assert root_level.level == level


def test_log_options_reach_the_commands_of_nested_groups(write_config, root_level):
    result = CliRunner().invoke(main, ["sinks", "test", "nosuch", "-v", "--config", str(write_config())])
    assert "no such option" not in result.output
    assert "has no [sinks.nosuch] block" in result.output and root_level.level == logging.INFO


def test_run_in_the_foreground_says_what_it_polls_and_logs_each_poll(
        tmp_path, write_config, mention_json, write_mentions, root_level, caplog):
    write_mentions(tmp_path / "mentions.jsonl", [mention_json("1", BROKEN)])
    stop = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)

    class StopAfterFirstPoll(logging.Handler):
        def emit(self, record):
            if record.getMessage().startswith("polled "):
                os.kill(os.getpid(), signal.SIGINT)  # the run's own Ctrl-C handler stops it

    handler = StopAfterFirstPoll()
    logging.getLogger("socialcrm").addHandler(handler)
    try:
        with caplog.at_level(logging.INFO):
            result = CliRunner().invoke(main, ["run", "--config", str(write_config()), "-v"])
    finally:
        logging.getLogger("socialcrm").removeHandler(handler)
        signal.signal(signal.SIGINT, stop[0])
        signal.signal(signal.SIGTERM, stop[1])
    assert result.exit_code == 0, result.output
    assert "polling: file (jsonl, every 300s)" in result.output
    assert "delivering to: desk (jsonl), sales (jsonl); store sqlite" in result.output
    assert "polled file: 1 mentions, 1 new records, 0 duplicates" in caplog.messages


@pytest.fixture
def stored(tmp_path, write_config, mention_json, write_mentions):
    """Three records: a case two hours ago, one yesterday, and an unrouted "other" three days ago."""
    write_mentions(tmp_path / "mentions.jsonl", [
        mention_json("1", BROKEN, created_at="2026-10-03T13:30:00Z"),
        mention_json("2", BROKEN + " again", created_at="2026-10-02T09:00:00Z"),
        mention_json("3", SLOW_WIFI, created_at="2026-09-30T12:00:00Z"),
    ])
    config = str(write_config())
    assert CliRunner().invoke(main, ["run", "--once", "--config", config]).exit_code == 0
    return config


def ids(stored, *args):
    result = CliRunner().invoke(main, ["records", "--json", "--config", stored, *args], obj=Context(now=lambda: NOW))
    assert result.exit_code == 0, result.output
    return [json.loads(line)["id"] for line in result.output.splitlines()]


def test_records_filters_by_priority_team_and_route(stored):
    assert ids(stored) == ["x:1", "x:2", "x:3"]
    assert ids(stored, "--priority", "P2") == ["x:1", "x:2"]
    assert ids(stored, "--priority", "P4") == ["x:3"]
    assert ids(stored, "--priority", "p2", "--type", "Case") == ["x:1", "x:2"]  # as people type them
    assert ids(stored, "--team", "care") == ["x:1", "x:2"]
    assert ids(stored, "--route", "desk") == ["x:1", "x:2"]
    assert ids(stored, "--route", "none") == ["x:3"]
    assert ids(stored, "--route", "none", "--type", "case") == []


def test_records_since_takes_relative_times(stored):
    assert ids(stored, "--since", "2h") == ["x:1"]
    assert ids(stored, "--since", "90m") == []
    assert ids(stored, "--since", "today") == ["x:1"]
    assert ids(stored, "--since", "yesterday") == ["x:1", "x:2"]
    assert ids(stored, "--since", "3d") == ["x:1", "x:2"]
    assert ids(stored, "--since", "1w") == ["x:1", "x:2", "x:3"]
    assert ids(stored, "--since", "2026-10-02") == ["x:1", "x:2"]
    assert ids(stored, "--since", "2026-10-02T10:00:00+02:00") == ["x:1", "x:2"]


def test_records_since_that_is_no_time_is_an_error_with_examples(stored):
    result = CliRunner().invoke(main, ["records", "--since", "last tuesday", "--config", stored])
    assert result.exit_code == 2
    assert "'last tuesday' is not a time: give 30m, 2h, 3d, 1w, today, yesterday" in result.output


def test_records_shows_the_record_id(stored):
    result = CliRunner().invoke(main, ["records", "--config", stored])
    assert result.exit_code == 0, result.output
    header = result.output.splitlines()[1]
    assert header.split("┃")[1].strip() == "id"
    assert "x:1" in result.output and "x:3" in result.output


def test_an_unknown_record_type_is_an_error_listing_the_types(stored):
    result = CliRunner().invoke(main, ["records", "--type", "bogus", "--config", stored])
    assert result.exit_code == 2
    assert "'bogus' is not one of 'case', 'query', 'rant', 'rave', 'lead', 'rfe', 'spam', 'news', 'other'" \
        in result.output


def test_parse_since_reads_against_the_given_now():
    assert parse_since("2h", NOW) == datetime(2026, 10, 3, 13, 30, tzinfo=timezone.utc)
    assert parse_since("yesterday", NOW) == datetime(2026, 10, 2, tzinfo=timezone.utc)
    assert parse_since(" Today ", NOW) == datetime(2026, 10, 3, tzinfo=timezone.utc)
    with pytest.raises(ValueError, match="not a time"):
        parse_since("soon", NOW)


def _demo_hint(out_dir):
    result = CliRunner().invoke(main, ["demo", "--dir", out_dir])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    return lines[lines.index(next(line for line in lines if " records --config " in line)):]


def test_the_demo_hint_works_as_printed_when_socialcrm_is_not_on_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    command, activate = _demo_hint("demo")
    assert command.strip().split()[0].endswith("/bin/socialcrm")
    assert activate.startswith("(or activate the environment first, source ")
    assert activate.endswith("/bin/activate, and type plain socialcrm)")
    ran = subprocess.run(shlex.split(command), cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    assert "case" in ran.stdout


def test_the_demo_hint_says_plain_socialcrm_when_it_is_on_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", f"{Path(sys.prefix) / 'bin'}:/usr/bin:/bin")
    assert _demo_hint("demo") == ["  socialcrm records --config demo/socialcrm.toml --type case"]
