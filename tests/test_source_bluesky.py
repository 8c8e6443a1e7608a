"""The bluesky source against XRPC answers shaped exactly as the atproto lexicons define them.

Every body a test serves goes through ``LEXICONS.check`` first (the official lexicons in
../shared/specs/bluesky/lexicons; references to lexicons that folder lacks are not checked), so a
payload that drifts from the lexicons fails the test that serves it.
"""
import json
import os
from datetime import datetime, timezone
from pathlib import Path

import pytest
from marshmallow import ValidationError
from responses import matchers

from socialcrm.core.sdk.brand import Brand
from socialcrm.core.engine.config import load_config
from socialcrm.core.sdk.errors import AuthError, ConfigError, FatalError
from socialcrm.core.engine.pipeline import Pipeline
from socialcrm.plugins.sources.bluesky import BlueskySource, expand_links
from socialcrm.testing import FakeClock, KitContext, SourceContract

HERE = Path(__file__).parent
PAYLOADS = HERE / "payloads" / "bluesky"
SPECS = HERE.parent.parent / "shared" / "specs" / "bluesky" / "lexicons"
PDS = "https://bsky.social/xrpc/"
APPVIEW = "https://public.api.bsky.app/xrpc/"
T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z
PASSWORD = "abcd-efgh-ijkl-mnop"
BRAND_DID = "did:plc:brightwave0000000000000a"


# --- the lexicons ---

class Lexicons:
    """A small checker for atproto lexicon shapes: required fields, no unknown fields, types, unions."""

    def __init__(self, *roots):
        self.docs = {}
        for root in roots:
            for path in Path(root).rglob("*.json"):
                doc = json.loads(path.read_text(encoding="utf-8"))
                self.docs[doc["id"]] = doc

    def _resolve(self, ref, current):
        lex, _, name = ref.partition("#")
        doc = self.docs.get(lex or current)
        return (lex or current), (doc["defs"].get(name or "main") if doc else None)

    def check(self, value, schema, where="$", current=""):
        problems = []
        kind = schema.get("type")
        if kind == "ref":
            lex, target = self._resolve(schema["ref"], current)
            return self.check(value, target, where, lex) if target else []
        if kind == "union":
            if not isinstance(value, dict) or "$type" not in value:
                return [f"{where}: a union member needs $type"]
            wanted = value["$type"] if "#" in value["$type"] else value["$type"] + "#main"
            refs = [r if "#" in r else r + "#main" for r in schema["refs"]]
            refs = [f"{current}{r}" if r.startswith("#") else r for r in refs]
            if wanted not in refs:
                return [f"{where}: $type {value['$type']} is not one of {schema['refs']}"]
            lex, target = self._resolve(wanted, current)
            return self.check(value, target, where, lex) if target else []
        if kind in ("object", "params"):
            if not isinstance(value, dict):
                return [f"{where}: expected an object"]
            props = schema.get("properties", {})
            problems += [f"{where}.{k}: required" for k in schema.get("required", []) if k not in value]
            problems += [f"{where}.{k}: not in the lexicon" for k in value if k not in props and k != "$type"]
            for key, sub in props.items():
                if key in value and not (value[key] is None and key in schema.get("nullable", [])):
                    problems += self.check(value[key], sub, f"{where}.{key}", current)
            return problems
        if kind == "record":
            return self.check(value, schema["record"], where, current)
        if kind == "array":
            if not isinstance(value, list):
                return [f"{where}: expected an array"]
            for i, item in enumerate(value):
                problems += self.check(item, schema["items"], f"{where}[{i}]", current)
            return problems
        if kind == "string":
            if not isinstance(value, str):
                return [f"{where}: expected a string"]
            if schema.get("format") == "datetime" and not _rfc3339(value):
                return [f"{where}: {value!r} is not an RFC 3339 datetime"]
            return []
        if kind == "integer":
            return [] if type(value) is int else [f"{where}: expected an integer"]
        if kind == "boolean":
            return [] if type(value) is bool else [f"{where}: expected a boolean"]
        if kind == "unknown":
            # Records inside views (postView.record, notification.record) are checked as their $type says.
            if isinstance(value, dict) and value.get("$type") in self.docs:
                return self.check(value, self.docs[value["$type"]]["defs"]["main"], where, value["$type"])
            return []
        return []

    def output(self, nsid, body):
        if nsid not in self.docs:  # a lexicon shared/specs does not carry is not checked here
            return []
        schema = self.docs[nsid]["defs"]["main"]["output"]["schema"]
        return self.check(body, schema, nsid, nsid)


def _rfc3339(text):
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).tzinfo is not None
    except ValueError:
        return False


if not SPECS.is_dir():  # the specs live beside the repository (shared/), as CI lays them out
    if os.environ.get("CI", "").lower() == "true":
        raise RuntimeError(f"the Bluesky lexicons are missing at {SPECS}")
    pytest.skip(f"the Bluesky lexicons are not at {SPECS}", allow_module_level=True)
LEXICONS = Lexicons(SPECS)


# --- builders, shaped by the lexicons ---

def payload(name):
    return json.loads((PAYLOADS / name).read_text(encoding="utf-8"))


def author(n):
    return {"did": f"did:plc:member{n:020d}", "handle": f"member{n}.bsky.social", "displayName": f"Member {n}",
            "labels": [], "createdAt": "2024-02-01T10:00:00.000Z"}


def post(rkey, text, created, indexed=None, by=1, likes=0, **record):
    """A postView with an app.bsky.feed.post record."""
    record = {"$type": "app.bsky.feed.post", "text": text, "createdAt": created, "langs": ["en"], **record}
    return {"uri": f"at://did:plc:member{by:020d}/app.bsky.feed.post/{rkey}", "cid": f"bafyrei{rkey}",
            "author": author(by), "record": record, "replyCount": 1, "repostCount": 2, "likeCount": likes,
            "quoteCount": 0, "indexedAt": indexed or created, "labels": []}


def search(posts, cursor=None):
    body = {"posts": posts}
    if cursor:
        body["cursor"] = cursor
    return body


def profiles(*numbers, followers=100):
    return {"profiles": [{**author(n), "followersCount": followers * n, "followsCount": 3, "postsCount": 9}
                         for n in numbers]}


def notification(rkey, reason, text, indexed, by=7, **record):
    created = indexed
    body = {"$type": "app.bsky.feed.post", "text": text, "createdAt": created, **record}
    return {"uri": f"at://did:plc:member{by:020d}/app.bsky.feed.post/{rkey}", "cid": f"bafyrei{rkey}",
            "author": author(by), "reason": reason, "record": body, "isRead": False, "indexedAt": indexed}


@pytest.fixture
def api(ordered_responses):
    return ordered_responses


def answer(api, nsid, body, status=200, host=PDS, method="GET", params=None, headers=None):
    """Serve ``body`` for one call of ``nsid``, after checking a success body against the lexicon."""
    if status == 200:
        problems = LEXICONS.output(nsid, body)
        assert not problems, f"the test's own {nsid} payload breaks the lexicon: {problems}"
    match = [matchers.query_param_matcher(params, strict_match=False)] if params else []
    return api.add(method, host + nsid, json=body, status=status, headers=headers, match=match)


def login(api, body=None):
    return answer(api, "com.atproto.server.createSession", body or payload("createSession.json"), method="POST")


def make(config=None, clock=None, brand=None):
    options = {"identifier": "brightwave.bsky.social", "app_password": PASSWORD, "queries": ["Brightwave"],
               "notifications": False, **(config or {})}
    options = {k: v for k, v in options.items() if v is not None}
    clock = clock or FakeClock(T0)
    context = KitContext("bluesky", brand or Brand("Brightwave", keywords=["WaveBox"]), secrets=frozenset({PASSWORD}),
                         clock=clock)
    return BlueskySource(BlueskySource.ConfigSchema().load(options), context), clock


def ids(pages):
    return [m.native_id.rsplit("/", 1)[-1] for p in pages for m in p.mentions]


# --- the lexicons and the recorded example ---

def test_the_fixture_payloads_match_the_lexicons_and_the_checker_can_fail():
    assert LEXICONS.output("com.atproto.server.createSession", payload("createSession.json")) == []
    assert LEXICONS.output("com.atproto.server.refreshSession", payload("refreshSession.json")) == []
    assert LEXICONS.output("app.bsky.feed.searchPosts", payload("searchPosts.docs-example.json")) == []
    assert LEXICONS.output("app.bsky.actor.getProfiles", payload("getProfiles.docs-example.json")) == []
    broken = payload("searchPosts.docs-example.json")
    del broken["posts"][0]["record"]["createdAt"]
    broken["posts"][1]["author"]["followers"] = 3
    assert LEXICONS.output("app.bsky.feed.searchPosts", broken) == [
        "app.bsky.feed.searchPosts.posts[0].record.createdAt: required",
        "app.bsky.feed.searchPosts.posts[1].author.followers: not in the lexicon"]


def test_the_documented_posts_become_complete_mentions_and_records(api, write_config, plugins):
    answer(api, "app.bsky.feed.searchPosts", payload("searchPosts.docs-example.json"), host=APPVIEW,
           params={"q": "Brightwave", "sort": "latest", "limit": "100"})
    answer(api, "app.bsky.actor.getProfiles", payload("getProfiles.docs-example.json"), host=APPVIEW,
           params={"actors": "did:plc:u5cwb2mwiv2bfq53cjufe6yn"})
    answer(api, "app.bsky.feed.searchPosts", search([]), host=APPVIEW, params={"cursor": "3"})
    path = write_config("""
        [brand]
        name = "Brightwave"
        [store]
        url = "sqlite:///store.db"
        [sources.bluesky]
        queries = ["Brightwave"]
        initial_lookback_hours = 0
    """)
    pipeline = Pipeline(load_config(path, plugins), plugins)
    pages = []
    stats = pipeline.listen(on_page=lambda name, page: pages.append(page))
    assert stats.errors == {} and stats.fetched == 3 and stats.records == 3
    facets, reply, quote = pages[0].mentions
    assert facets.id == "bluesky:at://did:plc:u5cwb2mwiv2bfq53cjufe6yn/app.bsky.feed.post/3k4duaz5vfs2b"
    assert facets.text == ("\u2728 example mentioning @atproto.com to share the URL \U0001F468\u200d\u2764\ufe0f"
                           "\u200d\U0001F468 https://en.wikipedia.org/wiki/CBOR.")
    assert facets.created_at == datetime(2023, 8, 8, 1, 3, 41, 157302, tzinfo=timezone.utc)
    assert facets.url == "https://bsky.app/profile/atproto.com/post/3k4duaz5vfs2b"
    assert (facets.author.id, facets.author.handle, facets.author.name, facets.author.followers,
            facets.author.verified, facets.author.profile_url) == (
        "did:plc:u5cwb2mwiv2bfq53cjufe6yn", "atproto.com", "AT Protocol Developers", 152311, True,
        "https://bsky.app/profile/atproto.com")
    assert (facets.engagement.likes, facets.engagement.reposts, facets.engagement.replies,
            facets.engagement.quotes) == (31, 5, 2, 1)
    assert (facets.reply_to, facets.quote_of, facets.repost_of, facets.lang) == (None, None, None, None)
    assert reply.reply_to == "bluesky:at://did:plc:u5cwb2mwiv2bfq53cjufe6yn/app.bsky.feed.post/3k43tv4rft22g"
    assert quote.quote_of == "bluesky:at://did:plc:u5cwb2mwiv2bfq53cjufe6yn/app.bsky.feed.post/3k44deefqdk2g"
    record = pipeline.store.get_record(facets.id)
    assert record.author.followers == 152311 and record.author.verified and record.engagement.likes == 31
    assert record.url == facets.url and record.source == "bluesky"
    assert pipeline.store.get_cursor("bluesky")["streams"]["search:Brightwave"]["watermark"] == \
        "2023-08-08T01:03:41.157302Z"
    pipeline.close()


def test_link_facets_replace_shortened_link_text_by_utf8_byte_offsets():
    text = "caf\u00e9 \u2615 see example.com/status/inc... now"
    start = len("caf\u00e9 \u2615 see ".encode())
    facets = [{"index": {"byteStart": start, "byteEnd": start + len("example.com/status/inc...")},
               "features": [{"$type": "app.bsky.richtext.facet#link",
                             "uri": "https://example.com/status/incidents/4412"}]},
              {"index": {"byteStart": 900, "byteEnd": 950},  # out of range: ignored, not fatal
               "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://x.invalid"}]}]
    assert expand_links(text, facets) == "caf\u00e9 \u2615 see https://example.com/status/incidents/4412 now"


# --- runs, pages and the cursor ---

def test_first_run_pages_back_then_the_next_run_reads_only_newer_posts(api):
    login(api)
    answer(api, "app.bsky.feed.searchPosts", search([
        post("3c", "Brightwave outage again", "2027-01-15T07:30:00.000Z", likes=4),
        post("3b", "Brightwave @brightwave.bsky.social help", "2027-01-15T07:00:00.000Z", by=2,
             reply={"root": {"uri": f"at://{BRAND_DID}/app.bsky.feed.post/3a0", "cid": "bafyreiroot"},
                    "parent": {"uri": f"at://{BRAND_DID}/app.bsky.feed.post/3a0", "cid": "bafyreiroot"}})],
        cursor="c1"),
        params={"q": "Brightwave", "sort": "latest", "limit": "100", "since": "2027-01-14T08:00:00.000Z"})
    answer(api, "app.bsky.actor.getProfiles", profiles(1, 2))
    answer(api, "app.bsky.feed.searchPosts", search([post("3a", "Brightwave is fine", "2027-01-15T06:00:00.000Z")]),
           params={"cursor": "c1", "since": "2027-01-14T08:00:00.000Z"})
    answer(api, "app.bsky.actor.getProfiles", profiles(1))
    source, clock = make()
    pages = list(source.fetch(None))
    assert [ids([p]) for p in pages] == [["3c", "3b"], ["3a"]]
    first, second = pages[0].mentions
    assert first.author.followers == 100 and second.author.followers == 200
    assert second.addressed_to_brand is True and second.reply_to.endswith("/3a0")  # a reply to the brand
    assert first.addressed_to_brand is None and first.engagement.likes == 4 and first.lang == "en"
    stream = pages[0].cursor["streams"]["search:Brightwave"]
    assert stream["watermark"] is None and stream["sweep"]["cursor"] == "c1"  # mid-sweep: not promoted yet
    cursor = pages[-1].cursor
    assert cursor["streams"]["search:Brightwave"] == {
        "watermark": "2027-01-15T07:30:00.000000Z", "seen": ["at://did:plc:member00000000000000000001/"
                                                              "app.bsky.feed.post/3c"], "sweep": None}
    # The next run asks from the watermark; the post at the watermark instant comes back and is dropped.
    api.reset()
    login(api)
    answer(api, "app.bsky.feed.searchPosts", search([
        post("3d", "Brightwave fixed it", "2027-01-15T07:45:00.000Z"),
        post("3c", "Brightwave outage again", "2027-01-15T07:30:00.000Z")]),
        params={"since": "2027-01-15T07:30:00.000Z"})
    answer(api, "app.bsky.actor.getProfiles", profiles(1))
    again = list(make()[0].fetch(json.loads(json.dumps(cursor))))
    assert ids(again) == ["3d"]
    assert again[-1].cursor["streams"]["search:Brightwave"]["watermark"] == "2027-01-15T07:45:00.000000Z"


def test_a_stored_page_cursor_the_api_refuses_restarts_the_sweep_instead_of_failing_every_poll(api):
    login(api)
    answer(api, "app.bsky.feed.searchPosts", {"error": "InvalidRequest", "message": "malformed cursor"}, status=400,
           params={"cursor": "stale"})
    answer(api, "app.bsky.feed.searchPosts", search([post("3a", "Brightwave", "2027-01-15T07:00:00.000Z")]))
    answer(api, "app.bsky.actor.getProfiles", profiles(1))
    cursor = {"v": 1, "streams": {"search:Brightwave": {"watermark": None, "seen": [], "sweep": {
        "since": "2027-01-14T08:00:00.000000Z", "cursor": "stale", "top": None, "top_seen": []}}}}
    pages = list(make()[0].fetch(cursor))
    assert ids(pages) == ["3a"] and "cursor" not in api.calls[-2].request.params


def test_sort_time_is_the_earlier_of_created_and_indexed(api):
    login(api)
    # A post dated in the future by its client sorts at its indexedAt, as the AppView does.
    answer(api, "app.bsky.feed.searchPosts", search([
        post("3f", "Brightwave from the future", "2030-01-01T00:00:00.000Z", indexed="2027-01-15T07:50:00.000Z")]))
    answer(api, "app.bsky.actor.getProfiles", profiles(1))
    (page,) = list(make()[0].fetch(None))
    assert page.cursor["streams"]["search:Brightwave"]["watermark"] == "2027-01-15T07:50:00.000000Z"


def test_notifications_stop_at_the_watermark_and_map_mentions_replies_quotes_reposts(api):
    login(api)
    answer(api, "app.bsky.notification.listNotifications", {"notifications": [
        notification("n4", "mention", "@brightwave.bsky.social my WaveBox is dead", "2027-01-15T07:40:00.000Z"),
        notification("n3", "quote", "look at this", "2027-01-15T07:30:00.000Z",
                     embed={"$type": "app.bsky.embed.record", "record": {
                         "uri": f"at://{BRAND_DID}/app.bsky.feed.post/b1", "cid": "bafyreib1"}}),
        {"uri": "at://did:plc:member00000000000000000008/app.bsky.feed.repost/r1", "cid": "bafyreir1",
         "author": author(8), "reason": "repost", "reasonSubject": f"at://{BRAND_DID}/app.bsky.feed.post/b1",
         "record": {"$type": "app.bsky.feed.repost", "createdAt": "2027-01-15T07:20:00.000Z",
                    "subject": {"uri": f"at://{BRAND_DID}/app.bsky.feed.post/b1", "cid": "bafyreib1"}},
         "isRead": True, "indexedAt": "2027-01-15T07:20:00.000Z"}], "cursor": "n-c1"},
        params={"limit": "100", "reasons": ["mention", "reply", "quote", "repost"]})
    answer(api, "app.bsky.actor.getProfiles", profiles(7, 8))
    answer(api, "app.bsky.notification.listNotifications", {"notifications": [
        notification("n1", "reply", "thanks!", "2027-01-14T07:00:00.000Z")], "cursor": "n-c2"},
        params={"cursor": "n-c1"})  # older than the first run's reach (24 h): the sweep ends here
    source, _ = make({"search": False, "notifications": True,
                      "notification_reasons": ["mention", "reply", "quote", "repost"]})
    pages = list(source.fetch(None))
    mention, quote, repost = [m for p in pages for m in p.mentions]
    assert mention.addressed_to_brand and mention.author.followers == 700 and mention.text.startswith("@brightwave")
    assert quote.quote_of == f"bluesky:at://{BRAND_DID}/app.bsky.feed.post/b1"
    assert repost.repost_of == quote.quote_of and repost.text == ""
    assert repost.url == f"https://bsky.app/profile/{BRAND_DID}/post/b1"
    assert pages[-1].cursor["streams"]["notifications"]["watermark"] == "2027-01-15T07:40:00.000000Z"


def test_a_crash_mid_run_rereads_at_most_one_page_through_the_pipeline(api, write_config, plugins, monkeypatch):
    class Killed(BaseException):
        """The process dies: nothing after this point runs."""

    def die(request):
        raise Killed()

    pages = [search([post("3e", "Brightwave one", "2027-01-15T07:50:00.000Z")], cursor="c1"),
             search([post("3d", "Brightwave two", "2027-01-15T07:40:00.000Z")], cursor="c2"),
             search([post("3c", "Brightwave three", "2027-01-15T07:30:00.000Z")])]
    login(api)
    answer(api, "app.bsky.feed.searchPosts", pages[0])
    answer(api, "app.bsky.actor.getProfiles", profiles(1))
    answer(api, "app.bsky.feed.searchPosts", pages[1], params={"cursor": "c1"})
    api.add_callback("GET", PDS + "app.bsky.actor.getProfiles", callback=die)  # dies reading page 2
    path = write_config("""
        [brand]
        name = "Brightwave"
        [store]
        url = "sqlite:///store.db"
        [sources.bluesky]
        identifier = "brightwave.bsky.social"
        app_password = "${BLUESKY_APP_PASSWORD}"
        queries = ["Brightwave"]
        notifications = false
    """)
    monkeypatch.setenv("BLUESKY_APP_PASSWORD", PASSWORD)
    config = load_config(path, plugins)

    def run():
        pipeline = Pipeline(config, plugins)
        source = pipeline.sources["bluesky"]
        clock = FakeClock(T0)
        source.http.clock, source.http.sleep = clock, clock.sleep
        try:
            assert pipeline.listen().errors == {}
        finally:
            stored = pipeline.store.counts()["mentions"]
            pipeline.close()
        return stored

    with pytest.raises(Killed):
        run()
    assert [c.request.params.get("cursor") for c in api.calls if "searchPosts" in c.request.url] == [None, "c1"]
    api.reset()
    login(api)
    answer(api, "app.bsky.feed.searchPosts", pages[1], params={"cursor": "c1"})  # the one page read again
    answer(api, "app.bsky.actor.getProfiles", profiles(1))
    answer(api, "app.bsky.feed.searchPosts", pages[2], params={"cursor": "c2"})
    answer(api, "app.bsky.actor.getProfiles", profiles(1))
    assert run() == 3  # every post stored once: no gap, no duplicate


def test_backfill_pages_back_to_the_date_and_resumes_from_its_own_cursor(api):
    since = datetime(2027, 1, 10, tzinfo=timezone.utc)
    login(api)
    answer(api, "app.bsky.feed.searchPosts", search([post("3b", "Brightwave", "2027-01-12T07:00:00.000Z")], "b1"),
           params={"q": "Brightwave", "since": "2027-01-10T00:00:00.000Z"})
    answer(api, "app.bsky.actor.getProfiles", profiles(1))
    source, _ = make()
    first = next(iter(source.backfill(since)))
    assert ids([first]) == ["3b"] and first.cursor["backfill"] is True
    api.reset()
    login(api)
    answer(api, "app.bsky.feed.searchPosts", search([post("3a", "Brightwave", "2027-01-11T07:00:00.000Z")]),
           params={"cursor": "b1", "since": "2027-01-10T00:00:00.000Z"})
    answer(api, "app.bsky.actor.getProfiles", profiles(1))
    pages = list(make()[0].backfill(since, cursor=json.loads(json.dumps(first.cursor))))
    assert ids(pages) == ["3a"] and pages[-1].cursor["streams"]["search:Brightwave"]["done"] is True
    assert list(make()[0].backfill(since, cursor=pages[-1].cursor)) == []  # finished: nothing more to ask


# --- rate limits, auth, malformed answers ---

def test_rate_limit_waits_exactly_until_the_reset_header(api):
    login(api)
    reset = str(int(T0) + 42)
    answer(api, "app.bsky.feed.searchPosts", {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"},
           status=429, headers={"RateLimit-Limit": "3000", "RateLimit-Remaining": "0", "RateLimit-Reset": reset,
                                "RateLimit-Policy": "3000;w=300"})
    answer(api, "app.bsky.feed.searchPosts", search([post("3a", "Brightwave", "2027-01-15T07:00:00.000Z")]),
           headers={"RateLimit-Remaining": "0", "RateLimit-Reset": str(int(T0) + 42 + 30)})
    answer(api, "app.bsky.actor.getProfiles", profiles(1))  # the spent budget is waited out before this call
    source, clock = make()
    assert ids(source.fetch(None)) == ["3a"]
    assert clock.waits == [42.0, 30.0]


def test_an_expired_access_token_is_refreshed_and_the_call_repeated(api):
    login(api)
    answer(api, "app.bsky.feed.searchPosts", {"error": "ExpiredToken", "message": "Token has expired"}, status=400)
    refresh = answer(api, "com.atproto.server.refreshSession", payload("refreshSession.json"), method="POST")
    answer(api, "app.bsky.feed.searchPosts", search([]))
    source, _ = make()
    assert list(source.fetch(None))[0].mentions == []
    searches = [c.request for c in api.calls if "searchPosts" in c.request.url]
    assert searches[0].headers["Authorization"].endswith(".access-1.sig")
    assert searches[1].headers["Authorization"].endswith(".access-2.sig")
    assert refresh.calls[0].request.headers["Authorization"].endswith(".refresh-1.sig")


def test_a_refused_refresh_logs_in_again(api):
    login(api)
    answer(api, "app.bsky.feed.searchPosts", {"error": "AuthenticationRequired", "message": "Bad token"}, status=401)
    answer(api, "com.atproto.server.refreshSession", {"error": "ExpiredToken", "message": "Token has expired"},
           status=400, method="POST")
    login(api, {**payload("createSession.json"), "accessJwt": "fresh.access-3.sig"})
    answer(api, "app.bsky.feed.searchPosts", search([]))
    assert list(make()[0].fetch(None))[0].mentions == []
    assert api.calls[-1].request.headers["Authorization"] == "Bearer fresh.access-3.sig"


def test_a_refused_login_is_an_auth_error_naming_the_fields_without_the_password(api):
    answer(api, "com.atproto.server.createSession", {"error": "AuthenticationRequired",
                                                     "message": "Invalid identifier or password"},
           status=401, method="POST")
    source, _ = make()
    with pytest.raises(AuthError) as info:
        list(source.fetch(None))
    message = str(info.value)
    assert "identifier" in message and "app_password" in message and "Invalid identifier or password" in message
    assert PASSWORD not in message


def test_the_public_appview_refusing_search_says_to_log_in(api):
    answer(api, "app.bsky.feed.searchPosts", {"error": "Forbidden"}, status=403, host=APPVIEW)
    source, _ = make({"identifier": None, "app_password": None})
    with pytest.raises(AuthError, match="set identifier and app_password"):
        list(source.fetch(None))


def test_an_unreadable_post_is_reported_by_field_and_the_rest_of_the_page_kept(api):
    login(api)
    bad = post("3b", "Brightwave", "2027-01-15T07:00:00.000Z")
    del bad["record"]["createdAt"]
    worse = post("3c", "Brightwave", "2027-01-15T07:00:00.000Z")
    worse["author"].pop("handle")
    api.add("GET", PDS + "app.bsky.feed.searchPosts",  # served as is: the vendor broke its own lexicon
            json=search([post("3a", "Brightwave ok", "2027-01-15T07:10:00.000Z"), bad, worse,
                         post("3d", "Brightwave ok too", "2027-01-15T07:05:00.000Z")]))
    answer(api, "app.bsky.actor.getProfiles", profiles(1))
    (page,) = list(make()[0].fetch(None))
    assert ids([page]) == ["3a", "3d"]
    assert page.errors == [
        "search item at://did:plc:member00000000000000000001/app.bsky.feed.post/3b: record.createdAt: missing",
        "search item at://did:plc:member00000000000000000001/app.bsky.feed.post/3c: author.handle: missing"]


def test_an_answer_without_posts_is_a_clear_error(api):
    login(api)
    api.add("GET", PDS + "app.bsky.feed.searchPosts", json={"cursor": "x"})
    with pytest.raises(FatalError, match="without a `posts` list"):
        list(make()[0].fetch(None))


# --- config ---

def test_config_names_the_missing_password_and_its_variable():
    with pytest.raises(ValidationError) as info:
        BlueskySource.ConfigSchema().load({"identifier": "brightwave.bsky.social"})
    assert "BLUESKY_APP_PASSWORD" in info.value.messages["app_password"][0]
    with pytest.raises(ValidationError) as info:
        BlueskySource.ConfigSchema().load({"notifications": True})
    assert "notifications" in info.value.messages


def test_a_password_typed_into_the_config_file_is_refused(write_config, plugins):
    path = write_config("""
        [brand]
        name = "Brightwave"
        [sources.bluesky]
        identifier = "brightwave.bsky.social"
        app_password = "abcd-efgh-ijkl-mnop"
    """)
    with pytest.raises(ConfigError, match=r"app_password: write it as app_password = \"\$\{BLUESKY_APP_PASSWORD\}\""):
        Pipeline(load_config(path, plugins), plugins)


def test_a_missing_environment_variable_names_the_field_and_the_variable(write_config, plugins, monkeypatch):
    monkeypatch.delenv("BLUESKY_APP_PASSWORD", raising=False)
    path = write_config("""
        [brand]
        name = "Brightwave"
        [sources.bluesky]
        identifier = "brightwave.bsky.social"
        app_password = "${BLUESKY_APP_PASSWORD}"
    """)
    with pytest.raises(ConfigError, match=r"\[sources.bluesky\] app_password: environment variable "
                                          r"BLUESKY_APP_PASSWORD is not set"):
        load_config(path, plugins)


# --- the plugin kit's contract ---

class TestBlueskyContract(SourceContract):
    plugin = BlueskySource
    config = {"identifier": "brightwave.bsky.social", "app_password": PASSWORD, "queries": ["Brightwave"],
              "notifications": False, "page_size": 3, "initial_lookback_hours": 0, "fetch_profiles": False}
    invalid_configs = [({"page_size": 0}, "page_size"), ({"notification_reasons": ["like"]}, "notification_reasons"),
                       ({"app_password": None}, "app_password")]

    def native_id(self, item):
        return f"at://did:plc:u{item.author_id}/app.bsky.feed.post/{item.id}"

    def serve(self, upstream, api):
        def ref(post_id):  # a strongRef to another post of the network
            item = next(i for i in upstream.items if i.id == post_id)
            return {"uri": self.native_id(item), "cid": f"bafyrei{item.id}"}

        def view(item):
            iso = item.created_at.strftime("%Y-%m-%dT%H:%M:%S.000Z")
            record = {"$type": "app.bsky.feed.post", "text": item.text, "createdAt": iso}
            if item.reply_to:
                record["reply"] = {"root": ref(item.root), "parent": ref(item.reply_to)}
            return {"uri": self.native_id(item), "cid": f"bafyrei{item.id}",
                    "author": {"did": f"did:plc:u{item.author_id}", "handle": item.author_handle,
                               "displayName": item.author_name},
                    "record": record, "likeCount": item.likes, "replyCount": item.replies, "indexedAt": iso}

        def search_posts(request):
            # Newest first, `since` inclusive, an opaque offset cursor: as the AppView pages.
            since = request.params.get("since")
            found = [i for i in upstream.newest()
                     if not since or i.created_at.strftime("%Y-%m-%dT%H:%M:%S.000Z") >= since]
            start = int(request.params.get("cursor") or 0)
            limit = int(request.params["limit"])
            body = {"posts": [view(i) for i in found[start:start + limit]]}
            if start + limit < len(found):
                body["cursor"] = str(start + limit)
            assert not LEXICONS.output("app.bsky.feed.searchPosts", body)
            return 200, {"Content-Type": "application/json"}, json.dumps(body)

        def create_session(request):
            assert json.loads(request.body) == {"identifier": "brightwave.bsky.social", "password": PASSWORD}
            return 200, {"Content-Type": "application/json"}, json.dumps(payload("createSession.json"))

        def xrpc_error(status):  # atproto's error body: {"error": name, "message": text}
            return {"Content-Type": "application/json"}, json.dumps({"error": "Error", "message": f"status {status}"})

        api.add_callback("POST", PDS + "com.atproto.server.createSession",
                         callback=upstream.guard(create_session, xrpc_error))
        api.add_callback("GET", PDS + "app.bsky.feed.searchPosts", callback=upstream.guard(search_posts, xrpc_error))


# --- threads: reply.root is the conversation, reply.parent the post answered ---

def test_a_reply_names_its_root_and_parent(api):
    answer(api, "app.bsky.feed.searchPosts", payload("searchPosts.docs-example.json"), host=APPVIEW,
           params={"q": "Brightwave", "sort": "latest", "limit": "100"})
    answer(api, "app.bsky.feed.searchPosts", search([]), host=APPVIEW, params={"cursor": "3"})
    source, _ = make({"initial_lookback_hours": 0, "fetch_profiles": False, "identifier": None,
                      "app_password": None})
    facets, reply, quote = [m for page in source.fetch(None) for m in page.mentions]
    root = "bluesky:at://did:plc:u5cwb2mwiv2bfq53cjufe6yn/app.bsky.feed.post/3k43tv4rft22g"
    assert (reply.conversation, reply.reply_to) == (root, root)
    assert facets.conversation is None and facets.reply_to is None and facets.conversation_id == facets.id
