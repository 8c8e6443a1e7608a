"""The records API: filters, cursor pagination, one record with its history, feedback."""
from __future__ import annotations

import json

from sqlalchemy import select

from socialcrm.core.store import testrows
from socialcrm.core.store.schema import audit, feedback, outbox


def _mention(mention_json, native_id, text, when="2026-09-20T10:00:00Z", handle=None, network="x"):
    m = mention_json(native_id, text, network=network, created_at=when)
    if handle:
        m["author"]["handle"] = handle
    return m


def _seed(api, mention_json):
    api.listen([
        _mention(mention_json, "1", "@BrightwaveHelp my WaveBox doesn't work since the update, help #outage",
                 "2026-09-20T09:00:00Z", handle="alice"),
        _mention(mention_json, "2", "Thanks @Brightwave, the new WaveBox is amazing #love", "2026-09-20T10:00:00Z"),
        _mention(mention_json, "3", "I am so angry at Brightwave, worst service ever #outage", "2026-09-20T11:00:00Z",
                 handle="Bob"),
        _mention(mention_json, "4", "thinking of switching to Brightwave, how much is the business plan?",
                 "2026-09-20T12:00:00Z"),
        _mention(mention_json, "5", "Anyone knows if the WaveBox supports wifi 7? any advice",
                 "2026-09-20T13:00:00Z", network="reddit"),
        _mention(mention_json, "6", "Ñandú says the WaveBox crashed again, doesn't work", "2026-09-20T14:00:00Z"),
    ])


def _ids(response):
    assert response.status_code == 200, response.json
    return [r["id"] for r in response.json["items"]]


def test_records_newest_first_with_reasons(api, mention_json):
    _seed(api, mention_json)
    response = api.client.get("/records", headers=api.auth("read"))
    assert _ids(response) == ["x:6", "reddit:5", "x:4", "x:3", "x:2", "x:1"]
    first = response.json["items"][-1]
    assert first["type"] == "case" and first["route"] == ["desk"] and first["reasons"]
    assert first["created_at"].startswith("2026-09-20T09:00:00") and first["author"]["handle"] == "alice"
    assert response.json["next_cursor"] is None


def test_records_filters(api, mention_json):
    _seed(api, mention_json)
    get = lambda **q: _ids(api.client.get("/records", query_string=q, headers=api.auth("read")))  # noqa: E731
    assert get(type="rant") == ["x:3"]
    assert set(get(type="rant,rave")) == {"x:2", "x:3"}
    everything = api.client.get("/records", headers=api.auth("read")).json["items"]
    assert get(sentiment="negative") == [r["id"] for r in everything if r["sentiment"]["label"] == "negative"]
    assert "x:3" in get(sentiment="negative") and get(sentiment="negative", network="reddit") == []
    assert get(network="reddit") == ["reddit:5"]
    assert get(author="@BOB") == ["x:3"] and get(author="alice") == ["x:1"]
    assert set(get(route="sales")) == {"x:4"}
    assert "x:4" not in get(route="desk") and "x:1" in get(route="desk")
    assert get(team="care") == get(route="desk")
    assert get(q="OUTAGE") == ["x:3", "x:1"]
    assert get(q="ñandú") == ["x:6"]  # non-ASCII text: matched exactly, case-folded
    assert get(q="100%") == []
    assert get(since="2026-09-20T11:00:00Z", until="2026-09-20T13:00:00Z") == ["x:4", "x:3"]
    assert get(since="2026-09-20T13:00:00+02:00") == get(since="2026-09-20T11:00:00Z")
    assert get(priority="P2,P1") == [r["id"] for r in everything if r["priority"] in ("P1", "P2")] != []


def test_cursor_pagination_is_stable_while_records_arrive(api, mention_json):
    # Five records in the same second: the id breaks the tie, so no page repeats or skips one.
    api.listen([_mention(mention_json, str(n), f"WaveBox doesn't work {n}", "2026-09-20T10:00:00Z")
                for n in range(10, 15)])
    seen, cursor = [], None
    page = api.client.get("/records", query_string={"limit": 2}, headers=api.auth("read"))
    seen += _ids(page)
    cursor = page.json["next_cursor"]
    api.listen([_mention(mention_json, "99", "WaveBox doesn't work, newest", "2026-09-21T10:00:00Z")])
    while cursor:
        page = api.client.get("/records", query_string={"limit": 2, "cursor": cursor}, headers=api.auth("read"))
        seen += _ids(page)
        cursor = page.json["next_cursor"]
    assert seen == ["x:14", "x:13", "x:12", "x:11", "x:10"]
    filtered = api.client.get("/records", query_string={"limit": 1, "q": "doesn't work 1"}, headers=api.auth("read"))
    assert _ids(filtered) == ["x:14"] and filtered.json["next_cursor"]


def test_bad_cursor_and_filters_name_the_field(api):
    response = api.client.get("/records", query_string={"cursor": "not-a-cursor"}, headers=api.auth("read"))
    assert response.status_code == 422 and "cursor" in response.json["errors"]
    response = api.client.get("/records", query_string={"type": "complaint", "limit": 0, "since": "yesterday"},
                              headers=api.auth("read"))
    assert response.status_code == 422
    assert set(response.json["errors"]) == {"type[0]", "limit", "since"}  # the list item is named
    assert response.json["code"] == 422 and response.json["status"] == "Unprocessable Entity"
    assert "type" in response.json["message"]
    # Issue #15: a misspelt filter is an error, not a silently ignored filter; a cache-buster still passes.
    unknown = api.client.get("/records", query_string={"typo": "x"}, headers=api.auth("read"))
    assert unknown.status_code == 422 and list(unknown.json["errors"]) == ["typo"]
    cache_buster = api.client.get("/records", query_string={"_": "1700000000"}, headers=api.auth("read"))
    assert cache_buster.status_code == 200


def test_one_record_with_deliveries_and_feedback(api, mention_json):
    _seed(api, mention_json)
    api.pipeline.deliver()
    response = api.client.get("/records/x:1", headers=api.auth("read"))
    assert response.status_code == 200
    body = response.json
    assert body["record"]["id"] == "x:1" and any("route 'support'" in r for r in body["record"]["reasons"])
    [delivery] = body["deliveries"]
    assert delivery["sink"] == "desk" and delivery["state"] == "delivered" and delivery["attempts"] == 1
    assert body["feedback"] == []
    missing = api.client.get("/records/x:nope", headers=api.auth("read"))
    assert missing.status_code == 404 and missing.json["errors"] == {"record_id": ["no such record"]}


def test_record_ids_with_slashes(api, mention_json):
    api.listen([_mention(mention_json, "https://example.org/post/1", "WaveBox doesn't work", network="rss")])
    response = api.client.get("/records/rss:https://example.org/post/1", headers=api.auth("read"))
    assert response.status_code == 200 and response.json["record"]["network"] == "rss"
    fixed = api.client.post("/records/rss:https://example.org/post/1/feedback", json={"type": "query"},
                            headers=api.auth("write"))
    assert fixed.status_code == 200 and fixed.json["record"]["type"] == "query"


def test_feedback_corrects_audits_and_keeps_the_route_unless_asked(api, mention_json):
    _seed(api, mention_json)
    response = api.client.post("/records/x:3/feedback", json={"type": "case", "sentiment": "neutral",
                                                              "note": "a real fault, said angrily"},
                               headers=api.auth("write"))
    assert response.status_code == 200, response.json
    body = response.json
    assert body["record"]["type"] == "case" and body["record"]["sentiment"]["label"] == "neutral"
    assert body["changes"] == {"type": ["rant", "case"], "sentiment": ["negative", "neutral"]}
    assert body["added_sinks"] == [] and body["record"]["route"] == ["desk"]
    assert any(r == "corrected by desk: type rant -> case, sentiment negative -> neutral"
               for r in body["record"]["reasons"])
    rows = testrows.rows(api.store, select(feedback).order_by(feedback.c.id))
    [entry] = testrows.rows(api.store, select(audit).where(audit.c.action == "record.feedback"))
    assert [(r["field"], json.loads(r["old_value"]), json.loads(r["new_value"]), r["who"], r["text"]) for r in rows] == [
        ("type", "rant", "case", "desk", "a real fault, said angrily"),
        ("sentiment", "negative", "neutral", "desk", "a real fault, said angrily")]
    assert rows[0]["at"] == api.NOW and entry["actor"] == "desk"
    assert json.loads(entry["detail"])["record_id"] == "x:3"
    # the stored columns follow, so filters see the correction
    assert _ids(api.client.get("/records", query_string={"type": "case"}, headers=api.auth("read"))).count("x:3") == 1
    detail = api.client.get("/records/x:3", headers=api.auth("read")).json
    assert [(f["field"], f["old_value"], f["new_value"]) for f in detail["feedback"]] == [
        ("type", "rant", "case"), ("sentiment", "negative", "neutral")]


def test_feedback_reroute_adds_and_cancels_deliveries(api, mention_json):
    _seed(api, mention_json)
    response = api.client.post("/records/x:1/feedback", json={"type": "lead", "reroute": True},
                               headers=api.auth("write"))
    assert response.status_code == 200, response.json
    body = response.json
    assert body["record"]["route"] == ["sales"] and body["added_sinks"] == ["sales"]
    assert body["cancelled_sinks"] == ["desk"] and body["changes"]["route"] == [["desk"], ["sales"]]
    rows = testrows.tuples(api.store, select(outbox.c.sink, outbox.c.state).where(outbox.c.record_id == "x:1"))
    assert rows == [("sales", "pending")]
    api.pipeline.deliver()
    lines = (api.tmp_path / "out" / "sales.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines].count("x:1") == 1


def test_feedback_sets_the_route_outright_and_delivered_rows_stay(api, mention_json):
    _seed(api, mention_json)
    api.pipeline.deliver()
    response = api.client.post("/records/x:1/feedback", json={"route": ["sales", "sales"]}, headers=api.auth("write"))
    body = response.json
    assert body["record"]["route"] == ["sales"] and body["added_sinks"] == ["sales"]
    assert body["cancelled_sinks"] == []  # desk had it already: a sent delivery is history, not undone
    bad = api.client.post("/records/x:1/feedback", json={"route": ["crm"]}, headers=api.auth("write"))
    assert bad.status_code == 422 and bad.json["errors"] == {"route": ["no enabled sink named 'crm'"]}


def test_feedback_input_errors(api, mention_json):
    _seed(api, mention_json)
    post = lambda body, scope="write": api.client.post("/records/x:1/feedback", json=body,  # noqa: E731
                                                       headers=api.auth(scope))
    assert post({}).json["errors"] == {"type": ["give at least one of type, sentiment, route"]}
    response = post({"type": "complaint", "sentiment": "meh", "colour": "red"})
    assert response.status_code == 422 and set(response.json["errors"]) == {"type", "sentiment", "colour"}
    assert post({"route": ["desk"], "reroute": True}).json["errors"] == {
        "reroute": ["give route (the sinks) or reroute (re-run the rules), not both"]}
    assert post({"type": "case"}, scope="read").status_code == 403
    assert api.client.post("/records/x:nope/feedback", json={"type": "case"},
                           headers=api.auth("write")).status_code == 404
    not_json = api.client.post("/records/x:1/feedback", data="type=case", headers=api.auth("write"),
                               content_type="text/plain")
    assert not_json.status_code in (415, 422) and not_json.json["message"]
