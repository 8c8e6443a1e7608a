"""No input is lost silently: unreadable items are quarantined with their payload, counted in the run
summary and in `status`, listed and replayed through `socialcrm quarantine`, and `run --once` says so
in its exit code. The jsonl source reads a last line without a newline once the file is complete."""
import json
import logging
import os

import pytest
from click.testing import CliRunner

from socialcrm import Page, SkippedItem
from socialcrm.core.cli.main import main
from socialcrm.core.sdk.brand import Brand
from socialcrm.core.sdk.connector import PluginContext
from socialcrm.plugins.sources.jsonl import JsonlSource


def source(tmp_path, final_pass=False, **options):
    return JsonlSource({"path": "m.jsonl", "page_size": 10, **options},
                       PluginContext("file", Brand("B"), base_dir=str(tmp_path), final_pass=final_pass))


def line(data) -> bytes:
    return (json.dumps(data) + "\n").encode()


# --- the jsonl source: a last line with no newline ---


def test_a_last_line_without_newline_is_read_once_the_file_has_settled(tmp_path, mention_json, caplog):
    path = tmp_path / "m.jsonl"
    path.write_bytes(line(mention_json("1", "a")) + json.dumps(mention_json("2", "b")).encode())
    written = os.stat(path).st_mtime
    waiting = source(tmp_path, settle_seconds=5)
    waiting.clock = lambda: written + 1  # still within the settle time
    with caplog.at_level(logging.INFO, logger="socialcrm.plugin.file"):
        (page,) = list(waiting.fetch(None))
        assert list(waiting.fetch(page.cursor)) == []  # polled again: still waiting, said only once
    assert [m.native_id for m in page.mentions] == ["1"]
    said = [r for r in caplog.records if "no newline" in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.INFO
    assert "line 2 has no newline yet: waiting for the writer to finish it" in said[0].getMessage()

    waiting.clock = lambda: written + 5  # unchanged for the settle time: complete
    (rest,) = list(waiting.fetch(page.cursor))
    assert [m.native_id for m in rest.mentions] == ["2"] and rest.cursor == {"offset": path.stat().st_size, "line": 2}
    assert list(waiting.fetch(rest.cursor)) == []  # read once, not again


def test_a_final_pass_reads_the_last_line_at_once_and_appended_lines_follow(tmp_path, mention_json):
    path = tmp_path / "m.jsonl"
    path.write_bytes(json.dumps(mention_json("1", "a")).encode())
    final = source(tmp_path, final_pass=True)
    final.clock = lambda: os.stat(path).st_mtime  # not settled: a final pass reads it anyway
    (page,) = list(final.fetch(None))
    assert [m.native_id for m in page.mentions] == ["1"]
    with path.open("ab") as handle:
        handle.write(b"\n" + line(mention_json("2", "b")))
    (more,) = list(final.fetch(page.cursor))
    assert [m.native_id for m in more.mentions] == ["2"] and more.errors == []


def test_run_once_reads_a_last_line_without_newline(write_config, tmp_path, mention_json):
    (tmp_path / "mentions.jsonl").write_text(json.dumps(mention_json("1", "my WaveBox is broken, please fix")))
    result = CliRunner().invoke(main, ["run", "--once", "--config", str(write_config())])
    assert result.exit_code == 0, result.output
    assert "listened: 1 mentions, 1 new records" in result.output


# --- every unreadable kind is quarantined with its payload ---

UNREADABLE = {
    2: (b"{oops\n", "not JSON"),
    3: (None, "text: Missing data for required field."),  # missing text
    4: (None, "created_at: Not a valid datetime."),  # a bad date
    5: (None, "engagement.likes: Must be greater than or equal to 0."),  # a negative count
    6: (b'{"network": "x", "id": "9", "text": "caf\xe9 \xed\xa0\x80", "created_at": "2026-10-01T10:00:00Z"}\n',
        "not JSON (str is not valid UTF-8: surrogates not allowed"),  # undecodable bytes
    7: (None, "text: empty, nothing to read"),
}


@pytest.fixture
def bad_file(tmp_path, mention_json, write_config):
    """A jsonl file with one good mention and one of each unreadable kind; returns the config path."""
    lines = [line(mention_json("1", "my WaveBox is broken, please fix")), UNREADABLE[2][0],
             line({k: v for k, v in mention_json("3", "x").items() if k != "text"}),
             line(mention_json("4", "bad date", created_at="yesterday")),
             line(mention_json("5", "negative", engagement={"likes": -1})), UNREADABLE[6][0],
             line(mention_json("7", "   "))]
    (tmp_path / "mentions.jsonl").write_bytes(b"".join(lines))
    return write_config()


def cli(config, *args, code=0):
    result = CliRunner().invoke(main, [*args, "--config", str(config)])
    assert result.exit_code == code, result.output
    return result.output


def held(config):
    return [json.loads(row) for row in cli(config, "quarantine", "list", "--json").splitlines()]


def test_every_unreadable_kind_is_quarantined_counted_and_makes_run_once_exit_3(bad_file):
    out = cli(bad_file, "run", "--once", code=3)
    assert "listened: 7 mentions, 1 new records" not in out  # the unreadable ones are not mentions
    assert "listened: 2 mentions, 1 new records" in out  # line 7 parsed, but has no text
    assert "; 6 unreadable quarantined" in out and "6 unreadable items quarantined" in out
    rows = sorted(held(bad_file), key=lambda r: r["id"])
    assert [r["location"] for r in rows] == ["line 2", "line 3", "line 4", "line 5", "line 6", "x:7"]
    for row, number in zip(rows, sorted(UNREADABLE)):
        assert row["source"] == "file" and row["state"] == "held"
        assert row["reason"].startswith(UNREADABLE[number][1]), row
    undecodable = json.loads(cli(bad_file, "quarantine", "show", str(rows[4]["id"]), "--json"))
    assert "caf\\xe9 \\xed\\xa0\\x80" in undecodable["payload"]  # the bytes survive, backslash-escaped
    table = cli(bad_file, "quarantine", "list")
    assert "line 2" in table and "not JSON" in table and "x:7" in table
    assert "the quarantine is empty for source other" in cli(bad_file, "quarantine", "list", "--source", "other")
    shown = cli(bad_file, "quarantine", "show", str(rows[0]["id"]))
    assert "where:     line 2" in shown and "{oops" in shown

    status = json.loads(cli(bad_file, "status", "--json"))
    assert status["quarantine"] == {"held": 6}
    assert "quarantine: 6 unreadable items held" in cli(bad_file, "status")

    again = cli(bad_file, "run", "--once")  # nothing new read: a clean run
    assert "0 unreadable quarantined" in again and len(held(bad_file)) == 6


def test_allow_skips_keeps_exit_0(bad_file):
    out = cli(bad_file, "run", "--once", "--allow-skips")
    assert "6 unreadable quarantined" in out


def test_a_failing_source_keeps_exit_1(write_config, tmp_path):
    out = cli(write_config(), "run", "--once", code=1)  # mentions.jsonl does not exist
    assert "source file:" in out


# --- replay ---


def test_replay_reads_an_edited_payload_and_keeps_what_is_still_unreadable(bad_file, tmp_path, mention_json):
    cli(bad_file, "run", "--once", code=3)
    rows = {r["location"]: r for r in held(bad_file)}
    fixed = tmp_path / "fixed.json"
    fixed.write_text(json.dumps(mention_json("2", "@BrightwaveHelp my router is broken again")))
    out = cli(bad_file, "quarantine", "replay", str(rows["line 2"]["id"]), "--payload", str(fixed))
    assert f"item {rows['line 2']['id']}: read as x:2" in out
    assert "line 2" not in {r["location"] for r in held(bad_file)}
    assert json.loads(cli(bad_file, "quarantine", "show", str(rows["line 2"]["id"]), "--json"))["state"] == "replayed"

    out = cli(bad_file, "quarantine", "replay", str(rows["line 4"]["id"]), code=3)  # the stored payload again
    assert "still unreadable, kept: created_at: Not a valid datetime." in out
    kept = json.loads(cli(bad_file, "quarantine", "show", str(rows["line 4"]["id"]), "--json"))
    assert kept["state"] == "held" and kept["replays"] == 1

    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps(mention_json("7", "")))
    out = cli(bad_file, "quarantine", "replay", str(rows["x:7"]["id"]), "--payload", str(empty), code=3)
    assert "still unreadable, kept: text: empty, nothing to read" in out

    delivered = cli(bad_file, "run", "--once")  # the replayed record goes out on the next pass
    assert "delivered 1" in delivered
    records = [json.loads(r) for r in cli(bad_file, "records", "--json").splitlines()]
    assert "x:2" in {r["id"] for r in records}
    assert json.loads(cli(bad_file, "status", "--json"))["quarantine"] == {"held": 5}


def test_replay_refuses_ids_not_held_and_replays_nothing(bad_file):
    cli(bad_file, "run", "--once", code=3)
    first = held(bad_file)[0]["id"]
    out = cli(bad_file, "quarantine", "replay", str(first), "999", code=1)
    assert "not held in the quarantine: 999" in out and len(held(bad_file)) == 6
    assert "say which items" in cli(bad_file, "quarantine", "replay", code=2)
    assert "the quarantine is empty for source nowhere" in cli(bad_file, "quarantine", "replay", "--all",
                                                                   "--source", "nowhere")


def test_a_plain_string_error_is_quarantined_and_says_how_to_replay_it(config, plugins):
    from socialcrm.core.engine.pipeline import ListenStats, Pipeline
    from socialcrm.core.services.quarantine import NO_PAYLOAD, quarantined, replay
    pipeline = Pipeline(config, plugins)
    try:
        stats = ListenStats()
        pipeline.ingest("file", Page([], {"offset": 0}, ["item 7: id: missing"]), stats)
        assert stats.unreadable == 1
        (row,) = quarantined(pipeline.store)
        assert row["reason"] == "item 7: id: missing" and row["location"] is None
        (outcome,) = replay(pipeline, [row["id"]])
        assert not outcome.read and outcome.reason == NO_PAYLOAD
    finally:
        pipeline.close()


def test_a_skipped_item_is_the_string_plugins_always_reported():
    item = SkippedItem("id: missing", "line 3", b"\xff{")
    assert item == "line 3: id: missing" and item.payload == "\\xff{"
    assert Page([], None, ["plain", item]).skipped()[0].reason == "plain"
    assert isinstance(Page([], None, [item]).skipped()[0], SkippedItem)


# --- the API, beside the dead letters ---


def test_the_api_lists_shows_and_replays_the_quarantine(api, mention_json):
    with (api.tmp_path / "mentions.jsonl").open("ab") as handle:
        handle.write(b"{oops\n" + line(mention_json("2", "bad date", created_at="yesterday")))
    assert api.pipeline.listen().unreadable == 2
    metrics = api.client.get("/metrics", headers=api.auth("read")).get_data(as_text=True)
    assert "socialcrm_quarantined_items 2.0" in metrics
    rows = api.client.get("/quarantine", headers=api.auth("read")).json
    assert [r["location"] for r in rows] == ["line 2", "line 1"]  # the most recent first
    broken, bad_date = rows[1]["id"], rows[0]["id"]
    assert api.client.get("/quarantine", query_string={"source": "other"}, headers=api.auth("read")).json == []
    shown = api.client.get(f"/quarantine/{broken}", headers=api.auth("read")).json
    assert shown["payload"] == "{oops\n" and shown["reason"].startswith("not JSON") and shown["state"] == "held"
    assert api.client.get("/quarantine/999", headers=api.auth("read")).status_code == 404

    fixed = json.dumps(mention_json("1", "@BrightwaveHelp my WaveBox is broken"))
    read = api.client.post(f"/quarantine/{broken}/replay", json={"payload": fixed}, headers=api.auth("write"))
    assert read.status_code == 200, read.json
    assert read.json == {"outcomes": [{"id": broken, "read": True, "mention_id": "x:1", "reason": None}]}
    assert api.client.get("/records/x:1", headers=api.auth("read")).status_code == 200
    again = api.client.post(f"/quarantine/{broken}/replay", json={}, headers=api.auth("write"))
    assert again.status_code == 404  # replayed, no longer held

    kept = api.client.post("/quarantine/replay", json={"all": True}, headers=api.auth("write")).json
    assert kept == {"outcomes": [{"id": bad_date, "read": False, "mention_id": None,
                                  "reason": "created_at: Not a valid datetime."}]}
    refused = api.client.post("/quarantine/replay", json={"ids": [bad_date, broken]}, headers=api.auth("write"))
    assert refused.status_code == 422 and refused.json["errors"] == {"ids": [f"{broken} is not held in the quarantine"]}
    both = api.client.post("/quarantine/replay", json={"ids": [bad_date], "all": True}, headers=api.auth("write"))
    assert both.status_code == 422 and both.json["errors"] == {"ids": ["give exactly one of ids, all=true"]}


def test_the_quarantine_keeps_any_bytes_in_the_pages_transaction_on_both_stores(store):
    item = SkippedItem("not JSON", "line 1", b"\x00 nul, \xff, \\ and \xed\xa0\x80")
    with store.page() as tx:
        tx.save_page("file", {"offset": 40}, [], [], {}, skipped=[item])
    (row,) = store.quarantined()
    assert store.quarantined_item(row["id"])["payload"] == "\\x00 nul, \\xff, \\ and \\xed\\xa0\\x80"
    assert store.quarantine_count() == 1 and store.get_cursor("file") == {"offset": 40}
    with pytest.raises(RuntimeError):  # a page that fails keeps none of its quarantine either
        with store.page() as tx:
            tx.save_page("file", {"offset": 80}, [], [], {}, skipped=[SkippedItem("again")])
            raise RuntimeError("crash before the commit")
    assert store.quarantine_count() == 1 and store.get_cursor("file") == {"offset": 40}
