"""The command line (demo, plugins, records, check) and the API's health endpoint."""
import json

from click.testing import CliRunner

from socialcrm.api import create_app
from socialcrm.core.cli.main import main


def test_demo_runs_the_whole_workflow_on_the_bundled_samples(tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(main, ["demo", "--dir", str(out)])
    assert result.exit_code == 0, result.output
    assert "mentions heard" in result.output and "by type" in result.output and "by route" in result.output
    lines = (out / "helpdesk.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert records and {r["type"] for r in records} <= {"case", "query", "rant"}
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
