"""``socialcrm sinks test NAME``: one harmless call through the configured sink, explained in words."""
from __future__ import annotations

import json
from pathlib import Path

import responses
from click.testing import CliRunner

from socialcrm import PluginContext
from socialcrm.core.cli.main import main

SLACK = Path(__file__).parent / "payloads" / "slack"
TOKEN = "xoxb-2222-3333-cliS3cretToken"
CONFIG = """
[brand]
name = "Brightwave"

[sinks.alerts]
plugin = "slack"
token = "${SLACK_BOT_TOKEN}"
channel = "C1H9RESGL"

[sinks.archive]
plugin = "jsonl"
path = "out/records.jsonl"
"""


def run(write_config, monkeypatch, *args: str):
    monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
    path = write_config(CONFIG)
    return CliRunner().invoke(main, ["sinks", "test", *args, "--config", str(path)])


@responses.activate
def test_a_working_sink_says_what_it_found(write_config, monkeypatch):
    responses.post("https://slack.com/api/auth.test", json=json.loads((SLACK / "auth.test.ok.json").read_text()))
    result = run(write_config, monkeypatch, "alerts")
    assert result.exit_code == 0, result.output
    assert "sink alerts (slack): ok" in result.output
    assert "workspace Subarachnoid Workspace" in result.output and "posting as grace to channel C1H9RESGL" in result.output
    assert responses.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"


@responses.activate
def test_a_refused_credential_is_explained_with_a_non_zero_exit(write_config, monkeypatch):
    responses.post("https://slack.com/api/auth.test",
                   json=json.loads((SLACK / "auth.test.invalid_auth.json").read_text()))
    result = run(write_config, monkeypatch, "alerts")
    assert result.exit_code == 1
    assert "sink alerts (slack) FAILED: the credentials were refused" in result.output
    assert "invalid_auth: the token is not valid" in result.output
    assert TOKEN not in result.output


@responses.activate
def test_an_unreachable_service_is_told_apart_from_a_bad_credential(write_config, monkeypatch):
    responses.post("https://slack.com/api/auth.test", status=503)
    waits, make_http = [], PluginContext.http

    def http_without_sleeping(self, **options):  # the backoff waits are recorded, not slept
        options.setdefault("sleep", waits.append)
        return make_http(self, **options)

    monkeypatch.setattr(PluginContext, "http", http_without_sleeping)
    result = run(write_config, monkeypatch, "alerts")
    assert result.exit_code == 1 and "could not be reached, or is failing right now" in result.output
    assert len(waits) == 4 and len(responses.calls) == 5


def test_an_unknown_sink_name_lists_the_configured_ones(write_config, monkeypatch):
    result = run(write_config, monkeypatch, "desk")
    assert result.exit_code != 0 and "no [sinks.desk] block (sinks: alerts, archive)" in result.output


def test_a_missing_environment_variable_names_itself(write_config, monkeypatch):
    path = write_config(CONFIG)
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    result = CliRunner().invoke(main, ["sinks", "test", "alerts", "--config", str(path)])
    assert result.exit_code == 2
    assert "[sinks.alerts] token: environment variable SLACK_BOT_TOKEN is not set" in result.output
