"""The command line (demo, plugins, records, check, feedback), the API's health endpoint, and a correction
through both doors."""
import json

from click.testing import CliRunner

from socialcrm.api import create_app
from socialcrm.core.cli.main import main
from socialcrm.core.store import Store

SLOW_WIFI = "the wifi is a bit slow tonight"  # learned as "other": P4, no action, no route
CASE_PRIORITY = "priority P2 by rule 4 (support mention): a customer needs help"


def test_demo_runs_the_whole_workflow_on_the_bundled_samples(tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(main, ["demo", "--dir", str(out)])
    assert result.exit_code == 0, result.output
    assert "mentions heard" in result.output and "by type" in result.output and "by route" in result.output
    lines = (out / "helpdesk.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    # the helpdesk gets the support rule's types, and what no rule names but was said to the brand (the
    # demo's [routing] unmatched fallback)
    fell_back = [r for r in records if any("[routing] unmatched fallback -> helpdesk" in x for x in r["reasons"])]
    assert records and {r["type"] for r in records if r not in fell_back} <= {"case", "query", "rant"}
    assert all(r["type"] == "other" and r["mode"] == "reactive" for r in fell_back)
    assert all(r["reasons"] for r in records)
    assert (out / "sales-leads.jsonl").exists() and (out / "trust-and-safety.jsonl").exists()
    again = CliRunner().invoke(main, ["demo", "--dir", str(out)])  # repeatable: starts afresh
    assert again.exit_code == 0
    assert len((out / "helpdesk.jsonl").read_text().splitlines()) == len(lines)


def test_plugins_lists_builtins():
    result = CliRunner().invoke(main, ["plugins", "--json"])
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert {(r["kind"], r["name"]) for r in rows} >= {("source", "jsonl"), ("sink", "jsonl"), ("sink", "console")}
    assert all(r["distribution"] == "socialcrm" for r in rows if r["name"] in ("jsonl", "console"))


def test_check_reports_a_valid_config(write_config):
    result = CliRunner().invoke(main, ["check", "--config", str(write_config())])
    assert result.exit_code == 0 and "valid: 1 sources, 2 sinks, 2 routes, store sqlite" in result.output


def test_health_needs_no_token():
    response = create_app().test_client().get("/health")
    assert response.status_code == 200 and response.json == {"status": "ok"}


def test_feedback_type_case_gives_a_p4_record_a_cases_priority_and_reroute_the_case_route(
        tmp_path, write_config, mention_json, write_mentions):
    config = str(write_config())
    write_mentions(tmp_path / "mentions.jsonl", [mention_json("1", SLOW_WIFI)])
    runner = CliRunner()
    assert runner.invoke(main, ["run", "--once", "--config", config]).exit_code == 0
    store = Store(f"sqlite:///{tmp_path / 'socialcrm.db'}")
    try:
        learned = store.get_record("x:1")
        assert (learned.type, learned.priority, learned.action, learned.route) == ("other", "P4", "none", [])
        corrected = runner.invoke(main, ["feedback", "x:1", "--type", "case", "--who", "ana", "--config", config])
        assert corrected.exit_code == 0, corrected.output
        assert corrected.output.strip() == "x:1: type other -> case (so priority P4 -> P2, action none -> open_case)"
        record = store.get_record("x:1")
        assert (record.type, record.priority, record.action, record.route) == ("case", "P2", "open_case", [])
        assert record.reasons[-2:] == ["corrected by ana: type other -> case",
                                       f"{CASE_PRIORITY} (recomputed after the correction by ana)"]
        rerouted = runner.invoke(main, ["feedback", "x:1", "--reroute", "--who", "ana", "--config", config])
        assert rerouted.exit_code == 0, rerouted.output
        assert rerouted.output.strip() == "x:1: route [] -> ['desk']"
        record = store.get_record("x:1")
        assert (record.priority, record.route, record.team) == ("P2", ["desk"], "care")
        assert record.reasons[-1] == "route 'support': type is case -> desk, team care"
    finally:
        store.close()
    assert runner.invoke(main, ["run", "--once", "--config", config]).exit_code == 0
    [delivered] = [json.loads(line) for line in (tmp_path / "out" / "desk.jsonl").read_text().splitlines()]
    assert (delivered["id"], delivered["priority"]) == ("x:1", "P2")


def test_feedback_through_the_api_recomputes_priority_and_reroutes_the_same_way(api, mention_json):
    api.listen([mention_json("1", SLOW_WIFI)])
    post = lambda body: api.client.post("/records/x:1/feedback", json=body, headers=api.auth("write"))  # noqa: E731
    corrected = post({"type": "case"})
    assert corrected.status_code == 200, corrected.json
    record = corrected.json["record"]
    assert (record["type"], record["priority"], record["action"], record["route"]) == ("case", "P2", "open_case", [])
    assert record["reasons"][-1] == f"{CASE_PRIORITY} (recomputed after the correction by desk)"
    assert corrected.json["changes"] == {"type": ["other", "case"]}  # what a person said, kept for learning
    rerouted = post({"type": "case", "reroute": True}).json
    assert rerouted["record"]["route"] == ["desk"] and rerouted["record"]["team"] == "care"
    assert rerouted["changes"] == {"route": [[], ["desk"]]} and rerouted["added_sinks"] == ["desk"]
