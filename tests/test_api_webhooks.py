"""Inbound webhooks: HMAC-SHA256 over timestamp + body, a five-minute replay window, the same ingest path,
idempotent deliveries."""
from __future__ import annotations

import json

from socialcrm.api.webhooks import sign
from socialcrm.core.store import testrows
from socialcrm.core.store.schema import mentions, outbox, records


def _post(api, body, secret=None, stamp=None, name="partner", signature=None):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    stamp = str(int(api.now)) if stamp is None else stamp
    headers = {"X-Socialcrm-Timestamp": stamp,
               "X-Socialcrm-Signature": signature or sign(secret or api.hook_secret, stamp, raw)}
    return api.client.post(f"/webhooks/{name}", data=raw, headers=headers, content_type="application/json")


def _count(api, table):
    return testrows.count(api.store, table)


def test_signed_mentions_go_through_capture_learn_route(api, mention_json):
    body = [mention_json("w1", "@BrightwaveHelp my WaveBox doesn't work, help"),
            mention_json("w2", "thinking of switching to Brightwave, how much is the business plan?")]
    response = _post(api, body)
    assert response.status_code == 200, response.json
    assert response.json == {"received": 2, "new_records": 2, "duplicates": 0}
    case = api.store.get_record("x:w1")
    assert case.type == "case" and case.route == ["desk"] and case.source == "partner"
    assert api.store.get_record("x:w2").route == ["sales"]
    stats = api.pipeline.deliver()
    assert stats.delivered == {"desk": 1, "sales": 1}
    # the webhook shows among the sources, with its last delivery
    sources = {s["name"]: s for s in api.client.get("/sources", headers=api.auth("read")).json}
    assert sources["partner"]["kind"] == "webhook" and sources["partner"]["last_poll_at"]
    assert sources["file"]["cursor"] is None  # a webhook never touches a polled source's cursor


def test_the_same_delivery_twice_makes_one_record(api, mention_json):
    body = mention_json("w1", "@BrightwaveHelp my WaveBox doesn't work, help")  # one mention, not a list
    first, again = _post(api, body), _post(api, body)
    assert first.json == {"received": 1, "new_records": 1, "duplicates": 0}
    assert again.status_code == 200 and again.json == {"received": 1, "new_records": 0, "duplicates": 1}
    assert _count(api, records) == 1 and _count(api, mentions) == 1 and _count(api, outbox) == 1


def test_a_wrong_or_missing_signature_is_refused(api, mention_json):
    body = [mention_json("w1", "WaveBox doesn't work")]
    wrong = _post(api, body, secret="another-secret-0123456789abcdef")
    assert wrong.status_code == 401 and wrong.json["errors"] == {"X-Socialcrm-Signature": ["does not match"]}
    raw = json.dumps(body).encode()
    stamp = str(int(api.now))
    tampered = _post(api, raw + b" ", signature=sign(api.hook_secret, stamp, raw))
    assert tampered.status_code == 401
    other_stamp = _post(api, raw, stamp=str(int(api.now) - 1), signature=sign(api.hook_secret, stamp, raw))
    assert other_stamp.status_code == 401  # the timestamp is signed too
    missing = api.client.post("/webhooks/partner", data=raw, content_type="application/json")
    assert missing.status_code == 401
    assert set(missing.json["errors"]) == {"X-Socialcrm-Timestamp", "X-Socialcrm-Signature"}
    garbage = _post(api, body, stamp="yesterday")
    assert garbage.status_code == 401 and garbage.json["errors"] == {"X-Socialcrm-Timestamp": ["not Unix seconds"]}
    assert _count(api, records) == 0


def test_replays_older_than_five_minutes_are_refused(api, mention_json):
    body = [mention_json("w1", "WaveBox doesn't work")]
    stamp = str(int(api.now))
    api.now += 299
    assert _post(api, body, stamp=stamp).status_code == 200
    api.now += 2  # 301 s after signing
    late = _post(api, body, stamp=stamp)
    assert late.status_code == 401 and late.json["errors"] == {"X-Socialcrm-Timestamp": ["outside the replay window"]}
    early = _post(api, body, stamp=str(int(api.now) + 400))  # from the future: a clock to fix
    assert early.status_code == 401


def test_invalid_mentions_are_refused_whole_naming_each_field(api, mention_json):
    good = mention_json("w1", "WaveBox doesn't work")
    bad = {"network": "X!", "id": "", "text": 3}
    response = _post(api, [good, bad])
    assert response.status_code == 422
    errors = response.json["errors"]
    assert {"[1].network", "[1].id", "[1].text", "[1].created_at"} <= set(errors)
    assert "none stored" in response.json["message"] and _count(api, records) == 0
    single = _post(api, {"network": "x", "id": "1", "text": "hi"})
    assert single.json["errors"] == {"created_at": ["Missing data for required field."]}
    not_json = _post(api, b"{nope")
    assert not_json.status_code == 400 and not_json.json["errors"] == {"body": ["not JSON"]}
    scalar = _post(api, b"42")
    assert scalar.status_code == 422 and scalar.json["errors"] == {"body": ["a mention must be a JSON object"]}


def test_unknown_webhook_and_oversized_body(api, mention_json):
    assert _post(api, [], name="nosuch").status_code == 404
    huge = [mention_json(f"w{n}", "WaveBox doesn't work " * 20) for n in range(20)]
    too_big = _post(api, huge)
    assert too_big.status_code == 413
    assert too_big.json["code"] == 413 and too_big.json["status"] == "Request Entity Too Large"
    assert _count(api, records) == 0


def test_a_full_outbox_asks_the_pusher_to_come_back(api, mention_json):
    api.config.max_pending = 1
    assert _post(api, [mention_json("w1", "WaveBox doesn't work")]).status_code == 200
    full = _post(api, [mention_json("w2", "WaveBox doesn't work")])
    assert full.status_code == 503 and full.headers["Retry-After"] == "60"
    assert api.store.get_record("x:w2") is None


def test_do_not_engage_authors_are_learned_but_not_routed(api, mention_json):
    blocked = mention_json("w1", "@BrightwaveHelp my WaveBox doesn't work, help")
    blocked["author"]["handle"] = "@Blocked_By_Config"
    _post(api, [blocked])
    record = api.store.get_record("x:w1")
    assert record.type == "case" and record.route == []
    assert record.reasons[-1].startswith("do-not-engage:") and _count(api, outbox) == 0
