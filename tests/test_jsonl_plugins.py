"""The built-in jsonl source and sink."""
import json

from socialcrm.core.sdk.brand import Brand
from socialcrm.core.sdk.connector import PluginContext
from socialcrm.core.sdk.model import Delivery, Record
from socialcrm.plugins.sinks.jsonl import JsonlSink
from socialcrm.plugins.sources.jsonl import JsonlSource


def source(tmp_path, page_size=2):
    return JsonlSource({"path": "m.jsonl", "page_size": page_size},
                       PluginContext("file", Brand("B"), base_dir=str(tmp_path)))


def test_pages_carry_the_cursor_and_resume_exactly(tmp_path, mention_json, write_mentions):
    write_mentions(tmp_path / "m.jsonl", [mention_json(str(i), f"t{i}") for i in range(5)])
    pages = list(source(tmp_path).fetch(None))
    assert [[m.native_id for m in p.mentions] for p in pages] == [["0", "1"], ["2", "3"], ["4"]]
    assert pages[-1].cursor["line"] == 5
    resumed = list(source(tmp_path).fetch(pages[0].cursor))
    assert [m.native_id for p in resumed for m in p.mentions] == ["2", "3", "4"]
    assert list(source(tmp_path).fetch(pages[-1].cursor)) == []


def test_bad_lines_are_reported_by_line_number_and_the_rest_kept(tmp_path, mention_json):
    lines = [json.dumps(mention_json("1", "ok")), "{oops", json.dumps({"network": "x", "text": "no id"}),
             json.dumps(mention_json("2", "ok too"))]
    (tmp_path / "m.jsonl").write_text("\n".join(lines) + "\n")
    (page,) = list(source(tmp_path, page_size=10).fetch(None))
    assert [m.native_id for m in page.mentions] == ["1", "2"]
    assert page.errors[0].startswith("line 2: not JSON")
    assert page.errors[1] == "line 3: id: Missing data for required field.; created_at: Missing data for required field."


def test_a_half_written_last_line_waits_for_the_next_run(tmp_path, mention_json):
    whole = json.dumps(mention_json("1", "a")) + "\n"
    partial = json.dumps(mention_json("2", "b"))
    (tmp_path / "m.jsonl").write_text(whole + partial[:20])
    (page,) = list(source(tmp_path).fetch(None))
    assert [m.native_id for m in page.mentions] == ["1"]
    (tmp_path / "m.jsonl").write_text(whole + partial + "\n")
    (page2,) = list(source(tmp_path).fetch(page.cursor))
    assert [m.native_id for m in page2.mentions] == ["2"]


def test_the_sink_never_writes_a_record_twice_even_across_restarts(tmp_path):
    from datetime import datetime, timezone
    records = [Record(id=f"x:{i}", network="x", content="c", created_at=datetime(2026, 1, 1, tzinfo=timezone.utc))
               for i in range(3)]
    context = PluginContext("out", Brand("B"), base_dir=str(tmp_path))
    first = JsonlSink({"path": "o/r.jsonl", "fsync": False}, context)
    assert first.send(records[:2]) == [Delivery.delivered("x:0", "x:0"), Delivery.delivered("x:1", "x:1")]
    restarted = JsonlSink({"path": "o/r.jsonl", "fsync": True}, context)
    outcomes = restarted.send(records)  # a re-send after a crash, plus one new record
    assert len(outcomes) == 3
    lines = (tmp_path / "o" / "r.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["x:0", "x:1", "x:2"]
