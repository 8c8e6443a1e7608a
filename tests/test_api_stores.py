"""The API's store queries on both stores: SQLite (embedded) and PostgreSQL (distributed)."""
from __future__ import annotations

import json

from socialcrm.api.webhooks import sign


def test_the_api_on_each_store(make_api, api_env, store_url, mention_json):
    h = make_api(api_env.replace('url = "sqlite:///socialcrm.db"', f'url = "{store_url}"'))

    def m(native_id, text, when, handle="user", network="x"):
        data = mention_json(native_id, text, network=network, created_at=when)
        data["author"]["handle"] = handle
        return data

    h.listen([m("1", "My WaveBox keeps dropping 100% of the time #outage", "2026-09-20T09:10:00Z", "Gina"),
              m("2", "thinking of switching to Brightwave, how much is the business plan?", "2026-09-20T09:20:00Z"),
              m("3", "Ñandú: WaveBox doesn't work", "2026-09-20T11:00:00Z", "gina", "reddit")])
    get = lambda **q: [r["id"] for r in h.client.get("/records", query_string=q,  # noqa: E731
                                                      headers=h.auth("read")).json["items"]]
    assert get() == ["reddit:3", "x:2", "x:1"]
    assert get(q="100%") == ["x:1"] and get(q="ÑANDÚ") == ["reddit:3"] and get(q="dropping 100%_") == []
    assert get(author="@GINA") == ["reddit:3", "x:1"] and get(route="sales") == ["x:2"]
    page = h.client.get("/records", query_string={"limit": 2}, headers=h.auth("read")).json
    assert get(limit=2, cursor=page["next_cursor"]) == ["x:1"]
    fixed = h.client.post("/records/x:1/feedback", json={"type": "lead", "reroute": True}, headers=h.auth("write"))
    assert fixed.json["added_sinks"] == ["sales"] and fixed.json["cancelled_sinks"] == ["desk"]
    stats = h.client.get("/stats", query_string={"since": "2026-09-20T09:00:00Z", "until": "2026-09-20T12:00:00Z",
                                                 "bucket": "hour"}, headers=h.auth("read")).json
    assert [(b["start"], b["total"]) for b in stats["series"]] == [
        ("2026-09-20T09:00:00Z", 2), ("2026-09-20T10:00:00Z", 0), ("2026-09-20T11:00:00Z", 1)]
    assert stats["series"][0]["type"] == {"lead": 2}
    body = json.dumps(m("w1", "WaveBox doesn't work", "2026-09-20T12:00:00Z")).encode()
    stamp = str(int(h.now))
    headers = {"X-Socialcrm-Timestamp": stamp, "X-Socialcrm-Signature": sign(h.hook_secret, stamp, body)}
    for expected in (1, 0):
        pushed = h.client.post("/webhooks/partner", data=body, headers=headers, content_type="application/json")
        assert pushed.json["new_records"] == expected
    added = h.client.post("/do-not-engage", json={"network": "x", "author": "user"}, headers=h.auth("admin")).json
    assert added["added"] is True and added["cancelled_deliveries"] == 2  # x:2 and x:w1, both pending
    erased = h.client.post("/erasures", json={"network": "x", "author": "gina"}, headers=h.auth("admin")).json
    assert erased["records"] == 1 and erased["feedback"] == 2 and erased["audit_redacted"] == 1
    assert get() == ["x:w1", "reddit:3", "x:2"]
