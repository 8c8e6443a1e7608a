"""Health, plugins, sources (and polling them), dead letters, stats and metrics."""
from __future__ import annotations

from socialcrm.core.store import Outcome


def _mention(mention_json, native_id, text, when="2026-09-20T10:00:00Z", network="x"):
    return mention_json(native_id, text, network=network, created_at=when)


def test_health(api):
    assert api.client.get("/health").json == {"status": "ok"}


def test_plugins_lists_builtins(api):
    rows = api.client.get("/plugins", headers=api.auth("read")).json
    pairs = {(r["kind"], r["name"]) for r in rows}
    assert {("source", "jsonl"), ("sink", "jsonl"), ("sink", "console")} <= pairs
    jsonl = next(r for r in rows if r == {**r, "kind": "sink", "name": "jsonl"})
    assert jsonl["distribution"] == "socialcrm" and jsonl["summary"]


def test_sources_show_cursor_last_poll_and_error(api, mention_json, write_mentions):
    before = api.client.get("/sources", headers=api.auth("read")).json
    assert before[0] == {"name": "file", "kind": "poll", "plugin": "jsonl", "enabled": True, "poll_interval": 300.0,
                         "cursor": None, "last_poll_at": None, "last_error": None, "paused": False}
    write_mentions(api.tmp_path / "mentions.jsonl", [_mention(mention_json, "1", "WaveBox doesn't work")])
    polled = api.client.post("/sources/file/poll", headers=api.auth("write"))
    assert polled.status_code == 200
    assert polled.json == {"source": "file", "status": "done", "fetched": 1, "records": 1, "duplicates": 0,
                           "error": None}
    after = api.client.get("/sources", headers=api.auth("read")).json[0]
    assert after["cursor"]["line"] == 1 and after["last_poll_at"] and after["last_error"] is None
    (api.tmp_path / "mentions.jsonl").unlink()  # the next poll fails: the error is kept for the operator
    failed = api.client.post("/sources/file/poll", headers=api.auth("write")).json
    assert failed["status"] == "done" and "FileNotFoundError" in failed["error"]
    assert "FileNotFoundError" in api.client.get("/sources", headers=api.auth("read")).json[0]["last_error"]


def test_poll_unknown_disabled_and_scheduled(api):
    missing = api.client.post("/sources/nosuch/poll", headers=api.auth("write"))
    assert missing.status_code == 404 and missing.json["errors"] == {"name": ["no such source"]}
    api.pipeline.sources.pop("file")  # as if enabled = false
    disabled = api.client.post("/sources/file/poll", headers=api.auth("write"))
    assert disabled.status_code == 409 and "enabled = false" in disabled.json["message"]


def test_poll_is_handed_to_the_running_schedule(api_env, write_config, plugins, tmp_path):
    from socialcrm.api import create_app
    from socialcrm.core.engine.config import load_config
    from socialcrm.core.engine.pipeline import Pipeline
    (tmp_path / "mentions.jsonl").touch()
    config = load_config(write_config(api_env), plugins)
    pipeline = Pipeline(config, plugins)
    try:
        client = create_app(config, plugins, pipeline, scheduled=True).test_client()
        response = client.post("/sources/file/poll", headers={"Authorization": "Bearer desk-token-0123456789abcdef"})
        assert response.json["status"] == "scheduled" and response.json["fetched"] is None
        assert pipeline.poll_requests == {"file"}
        # run_forever takes a request on its next tick, well before the source's 300 s interval
        polled, ticks = [], []
        pipeline.listen_source = lambda name, source, stats, on_page=None: polled.append((len(ticks), name))

        def deliver():
            ticks.append(1)
            if len(ticks) == 2:
                client.post("/sources/file/poll", headers={"Authorization": "Bearer desk-token-0123456789abcdef"})
            if len(ticks) == 4:
                pipeline.stop_event.set()
        pipeline.deliver = deliver
        pipeline.run_forever(tick=0)
        # tick 0 polls every source (and takes the first request); tick 1 waits for the interval;
        # tick 2 polls because of the request made during tick 1; tick 3 waits again
        assert polled == [(0, "file"), (2, "file")] and pipeline.poll_requests == set()
    finally:
        pipeline.close()


def _dead_letter(api, mention_json, native_id="1"):
    api.listen([_mention(mention_json, native_id, "WaveBox doesn't work")])
    token, claimed = api.store.claim("desk", 10, 60)
    api.store.complete(token, [Outcome(c.outbox_id, "dead", error="422 subject is required") for c in claimed])
    return claimed[0].outbox_id


def test_dead_letters_list_show_replay(api, mention_json):
    first = _dead_letter(api, mention_json, "1")
    second = _dead_letter(api, mention_json, "2")
    rows = api.client.get("/dead-letters", headers=api.auth("read")).json
    assert [r["id"] for r in rows] == [second, first]
    assert rows[0]["error"] == "422 subject is required" and rows[0]["sink"] == "desk" and rows[0]["attempts"] == 1
    assert api.client.get("/dead-letters", query_string={"sink": "sales"}, headers=api.auth("read")).json == []
    shown = api.client.get(f"/dead-letters/{first}", headers=api.auth("read")).json
    assert shown["record"]["id"] == "x:1" and shown["state"] == "dead" and shown["audit"] == []
    replayed = api.client.post(f"/dead-letters/{first}/replay", headers=api.auth("write"))
    assert replayed.json == {"replayed": [first]}
    assert api.client.get(f"/dead-letters/{first}", headers=api.auth("read")).status_code == 404  # pending again
    assert api.client.post(f"/dead-letters/{first}/replay", headers=api.auth("write")).status_code == 404
    detail = api.client.get("/records/x:1", headers=api.auth("read")).json
    assert detail["deliveries"][0]["state"] == "pending" and detail["deliveries"][0]["attempts"] == 0
    refused = api.client.post("/dead-letters/replay", json={"ids": [second, first]}, headers=api.auth("write"))
    assert refused.status_code == 422 and refused.json["errors"] == {"ids": [f"{first} is not a dead letter"]}
    assert api.client.post("/dead-letters/replay", json={"sink": "desk"}, headers=api.auth("write")).json == {
        "replayed": [second]}
    both = api.client.post("/dead-letters/replay", json={"all": True, "sink": "desk"}, headers=api.auth("write"))
    assert both.status_code == 422 and both.json["errors"] == {"ids": ["give exactly one of ids, sink, all=true"]}
    from sqlalchemy import select

    from socialcrm.core.store import testrows
    from socialcrm.core.store.schema import audit
    actors = testrows.tuples(api.store, select(audit.c.actor, audit.c.action))
    assert actors == [("desk", "dlq.replay"), ("desk", "dlq.replay")]
    assert api.client.get("/dead-letters/999999999999", headers=api.auth("read")).status_code == 404


def test_stats_by_bucket_with_top_terms_and_hashtags(api, mention_json):
    api.listen([
        _mention(mention_json, "1", "My WaveBox router keeps dropping #outage", "2026-09-20T09:10:00Z"),
        _mention(mention_json, "2", "router dropping again, so angry #Outage #fail", "2026-09-20T09:50:00Z"),
        _mention(mention_json, "3", "Thanks @Brightwave, the router is fast now #love", "2026-09-20T11:05:00Z",
                 network="reddit"),
        _mention(mention_json, "4", "old news", "2026-09-10T11:05:00Z"),
    ])
    response = api.client.get("/stats", query_string={"since": "2026-09-20T09:00:00Z", "until": "2026-09-20T12:00:00Z",
                                                      "bucket": "hour", "top": 3}, headers=api.auth("read"))
    assert response.status_code == 200, response.json
    body = response.json
    assert [b["start"] for b in body["series"]] == ["2026-09-20T09:00:00Z", "2026-09-20T10:00:00Z",
                                                    "2026-09-20T11:00:00Z"]
    nine, ten, eleven = body["series"]
    assert nine["total"] == 2 and nine["network"] == {"x": 2} and sum(nine["sentiment"].values()) == 2
    assert ten == {"start": "2026-09-20T10:00:00Z", "total": 0, "type": {}, "sentiment": {}, "network": {}}
    assert eleven["network"] == {"reddit": 1} and eleven["type"] == {"rave": 1}
    assert body["totals"]["total"] == 3 and body["totals"]["network"] == {"x": 2, "reddit": 1}
    assert body["top_terms"][0] == {"term": "router", "count": 3}
    assert {"term": "dropping", "count": 2} in body["top_terms"]
    assert all(t["term"] not in ("wavebox", "brightwave", "the") for t in body["top_terms"])  # brand and stopwords
    assert body["top_hashtags"] == [{"term": "#outage", "count": 2}, {"term": "#fail", "count": 1},
                                    {"term": "#love", "count": 1}]
    assert body["sample_size"] == 3
    daily = api.client.get("/stats", headers=api.auth("read")).json  # default: the 7 days to now, by day
    assert daily["bucket"] == "day" and len(daily["series"]) == 8 and daily["totals"]["total"] == 3


def test_stats_input_errors(api):
    get = lambda **q: api.client.get("/stats", query_string=q, headers=api.auth("read"))  # noqa: E731
    reversed_range = get(since="2026-09-20T00:00:00Z", until="2026-09-19T00:00:00Z")
    assert reversed_range.status_code == 422 and reversed_range.json["errors"] == {"since": ["must be before until"]}
    too_long = get(since="2026-01-01T00:00:00Z", until="2026-09-01T00:00:00Z", bucket="hour")
    assert too_long.status_code == 422 and "bucket=day" in too_long.json["message"]
    assert get(bucket="week").json["errors"] == {"bucket": ["Must be one of: hour, day."]}
    assert "since" in get(since="0001-01-01T00:00:00Z").json["errors"]


def test_metrics(api, mention_json):
    api.listen([_mention(mention_json, "1", "WaveBox doesn't work"),
                _mention(mention_json, "2", "thinking of switching to Brightwave, how much is the business plan?")])
    api.now = 1_790_000_000.0 + 10**9  # rows were queued "now" by the wall clock; make them old
    text = api.client.get("/metrics", headers=api.auth("read"))
    assert text.status_code == 200 and text.content_type.startswith("text/plain")
    body = text.get_data(as_text=True)
    assert 'socialcrm_records{type="case"} 1.0' in body and 'socialcrm_records{type="lead"} 1.0' in body
    assert 'socialcrm_deliveries{sink="desk",state="pending"} 1.0' in body
    assert 'socialcrm_deliveries{sink="sales",state="delivered"} 0.0' in body
    assert "socialcrm_outbox_pending 2.0" in body
    assert 'socialcrm_source_paused{source="file"} 0.0' in body and "socialcrm_sources_paused 0.0" in body
    oldest = next(line for line in body.splitlines()
                  if line.startswith('socialcrm_outbox_oldest_pending_seconds{sink="desk"}'))
    assert float(oldest.split()[-1]) > 1e8
    assert 'socialcrm_api_requests_total{method="GET",route="/metrics"' not in body  # counted after it answers
    again = api.client.get("/metrics", headers=api.auth("read")).get_data(as_text=True)
    assert 'socialcrm_api_requests_total{method="GET",route="/metrics",status="200"} 1.0' in again
    api.config.max_pending = 1
    full = api.client.get("/metrics", headers=api.auth("read")).get_data(as_text=True)
    assert 'socialcrm_source_paused{source="file"} 1.0' in full and "socialcrm_sources_paused 1.0" in full


def test_docs_page_shows_every_operation_and_schema(api):
    spec = api.client.get("/openapi.json").json
    page = api.client.get("/docs")
    assert page.status_code == 200 and page.content_type.startswith("text/html")
    html = page.get_data(as_text=True)
    for path, item in spec["paths"].items():
        for method in item:
            if method != "parameters":
                assert f"<span class=m>{method.upper()}</span><code>{path}</code>" in html
    for name in spec["components"]["schemas"]:
        assert f'id="schema-{name}"' in html
    assert "<code>next_cursor</code>" in html and "``" not in html  # docstring literals rendered as code
    assert "<script" not in html and "http" not in html.split("</style>")[0]  # nothing fetched from elsewhere
