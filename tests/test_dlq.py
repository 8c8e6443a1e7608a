"""Dead letters through the CLI: `socialcrm dlq list|show|replay`, and replay after a config fix delivers."""
import json
from datetime import datetime, timezone

import pytest
from click.testing import CliRunner

from socialcrm import Record
from socialcrm.core.cli.main import main
from socialcrm.core.store import Outcome, Store, testrows
from socialcrm.core.store.schema import audit

CONFIG = """
[brand]
name = "Brightwave"
handles = ["@BrightwaveHelp"]

[store]
url = "sqlite:///store.db"

[sources.file]
plugin = "jsonl"
path = "mentions.jsonl"

[sinks.crm]
plugin = "webhook"
url = "{url}"
secret = "${{CRM_SECRET}}"

[sinks.archive]
plugin = "jsonl"
path = "archive.jsonl"

[[routes]]
name = "everything"
sinks = ["crm", "archive"]
"""


@pytest.fixture
def setup(tmp_path, fake_crm, mention_json, write_mentions, monkeypatch):
    """Three mentions and a config whose webhook URL has the wrong path; returns (config path, runner)."""
    monkeypatch.setenv("CRM_SECRET", "s3cret-key")
    write_mentions(tmp_path / "mentions.jsonl",
                   [mention_json(str(i), f"@BrightwaveHelp my router is broken, ticket {i}") for i in range(3)])
    path = tmp_path / "socialcrm.toml"
    path.write_text(CONFIG.format(url=fake_crm.url.replace("/v1/records", "/v1/cases")))
    runner = CliRunner()

    def cli(*args, code=0):
        result = runner.invoke(main, [*args, "--config", str(path)])
        assert result.exit_code == code, result.output
        return result.output
    return path, cli


def dead(cli, *extra):
    return [json.loads(line) for line in cli("dlq", "list", "--json", *extra).splitlines()]


def test_replay_after_a_config_fix_delivers_the_dead_letters_once_each(setup, fake_crm):
    path, cli = setup
    assert "delivered 3, retry 0, dead 3" in cli("run", "--once", code=3)  # records went dead: a bad run
    letters = dead(cli)
    assert sorted(d["record_id"] for d in letters) == ["x:0", "x:1", "x:2"]
    assert {d["sink"] for d in letters} == {"crm"}
    assert letters[0]["error"] == 'rejected: 404 Not Found: {"error": "no such endpoint /v1/cases"}'
    table = cli("dlq", "list")
    assert "no such endpoint /v1/cases" in table and "x:1" in table
    shown = cli("dlq", "show", str(letters[0]["id"]))
    assert "no such endpoint /v1/cases" in shown and letters[0]["record_id"] in shown and '"content"' in shown

    path.write_text(path.read_text().replace("/v1/cases", "/v1/records"))  # the fix
    first = letters[-1]["id"]
    assert "replayed 1 dead letter;" in cli("dlq", "replay", str(first), "--actor", "ops@brightwave")
    assert "delivered 1, retry 0, dead 0" in cli("run", "--once")
    assert "replayed 2 dead letters" in cli("dlq", "replay", "--sink", "crm", "--actor", "ops@brightwave")
    assert "delivered 2, retry 0, dead 0" in cli("run", "--once")
    assert dead(cli) == [] and "no dead letters" in cli("dlq", "list")
    figures = fake_crm.figures(["x:0", "x:1", "x:2"])
    assert (figures["received"], figures["duplicates"], figures["lost"]) == (3, 0, 0)

    # Each replay left an audit entry: who, which row, and what had gone wrong.
    history = json.loads(cli("dlq", "show", str(first), "--json"))
    assert history["state"] == "delivered" and history["external_id"].startswith("crm-")
    [entry] = history["audit"]
    assert entry["actor"] == "ops@brightwave" and entry["action"] == "dlq.replay"
    assert entry["detail"]["error"] == letters[-1]["error"] and entry["detail"]["attempts"] == 1
    store = Store(f"sqlite:///{path.parent / 'store.db'}")
    assert testrows.count(store, audit) == 3
    store.close()


def test_replay_resets_attempts_and_all_replays_every_sink(setup, tmp_path):
    path, cli = setup
    cli("run", "--once", code=3)
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    # a dead letter of another sink, given up on after 10 attempts
    testrows.execute_sql(store, "UPDATE outbox SET state='dead', attempts=10, last_error='gave up' "
                                "WHERE sink='archive' AND record_id='x:0'")
    assert len(dead(cli)) == 4 and [d["record_id"] for d in dead(cli, "--sink", "archive")] == ["x:0"]
    assert "replayed 4 dead letters" in cli("dlq", "replay", "--all")
    counts = {row["sink"]: row for row in store.delivery_counts()}
    assert counts["crm"]["pending"] == 3 and counts["archive"]["pending"] == 1
    archive_row = store.dead_letter(2)  # x:0 -> archive
    assert (archive_row["state"], archive_row["attempts"], archive_row["last_error"]) == ("pending", 0, None)
    assert "no dead letters to replay" in cli("dlq", "replay", "--all")
    store.close()


def test_replay_refuses_unclear_or_wrong_selections(setup):
    _path, cli = setup
    cli("run", "--once", code=3)
    assert "say which dead letters to replay" in cli("dlq", "replay", code=2)
    assert "say which dead letters to replay" in cli("dlq", "replay", "1", "--all", code=2)
    delivered_archive_row = 2  # outbox row 2 is x:0 -> archive, delivered
    out = cli("dlq", "replay", "1", str(delivered_archive_row), code=1)
    assert f"not dead letters: {delivered_archive_row}" in out and "nothing replayed" in out
    assert len(dead(cli)) == 3
    assert "no outbox row 999" in cli("dlq", "show", "999", code=1)
    assert "no dead letters for sink archive" in cli("dlq", "list", "--sink", "archive")


def test_dead_letters_replay_and_call_counts_on_sqlite_and_postgres(store):
    now = 1_800_000_000.0
    batch = [Record(id=f"x:{i}", network="x", content="c", route=["crm"], priority="P2",
                    created_at=datetime(2026, 10, 1, tzinfo=timezone.utc)) for i in range(3)]
    with store.page() as tx:
        tx.save_page("src", None, [], batch, {}, now=now)
    token, claimed = store.claim("crm", 10, 60, now=now)
    store.complete(token, [Outcome(claimed[0].outbox_id, "dead", error="rejected: 422 title required"),
                           Outcome(claimed[1].outbox_id, "dead", error="gave up after 10 attempts: 503"),
                           Outcome(claimed[2].outbox_id, "delivered", external_id="C-3")], now=now + 1)
    letters = store.dead_letters(sink="crm")
    assert {d["record_id"]: d["error"] for d in letters} == {"x:0": "rejected: 422 title required",
                                                             "x:1": "gave up after 10 attempts: 503"}
    assert store.dead_letters(sink="other") == []
    assert store.replay_dead("ops", ids=[claimed[0].outbox_id, claimed[2].outbox_id], now=now + 2) == [
        claimed[0].outbox_id]  # a delivered row is left alone
    shown = store.dead_letter(claimed[0].outbox_id)
    assert (shown["state"], shown["attempts"], shown["record"]["id"]) == ("pending", 0, "x:0")
    assert shown["audit"][0]["detail"]["error"] == "rejected: 422 title required"
    assert store.replay_dead("ops", now=now + 3) == [claimed[1].outbox_id]
    assert len(store.claim("crm", 10, 60, now=now + 3)[1]) == 2  # both go out again

    store.add_calls("crm", "2027-01-15", 3)
    store.add_calls("crm", "2027-01-15", 4)
    store.add_calls("crm", "2027-01-16", 1)
    assert store.calls_on("2027-01-15") == {"crm": 7} and store.calls_on("2027-01-16") == {"crm": 1}
