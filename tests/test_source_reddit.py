"""The reddit source against Reddit's OAuth API, with Listings and Things shaped as Reddit documents
them (tests/payloads/reddit/)."""
import base64
import copy
import json
from datetime import datetime, timezone
from http import HTTPStatus
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from marshmallow import ValidationError
from responses import matchers

from socialcrm import AuthError
from socialcrm.core.sdk.brand import Brand
from socialcrm.core.engine.config import load_config
from socialcrm.core.engine.pipeline import Pipeline
from socialcrm.plugins.sources.reddit import RedditSource, RedditSourceConfig
from socialcrm.testing import FakeClock, KitContext, SourceContract

PAYLOADS = Path(__file__).parent / "payloads" / "reddit"
TOKEN_URL = "https://www.reddit.com/api/v1/access_token"
SEARCH = "https://oauth.reddit.com/search"
CLIENT_ID, CLIENT_SECRET = "p-jcoLKBynTLew", "gko_LXELoV07ZBNUXrvWZfzE3aI"
T0 = 1_800_000_000.0
W = 1_790_000_000.0  # the watermark most tests start from
BRAND = Brand(name="Brightwave", handles=["@Brightwave", "@BrightwaveHelp"], keywords=["WaveBox"])


def load(name):
    return json.loads((PAYLOADS / name).read_text(encoding="utf-8"))


# --- builders: the documented Listing and Things with ids and times varied ---

def link(n, **extra):
    """Post ``n`` of the documented search result, created ``n`` minutes after the watermark."""
    child = copy.deepcopy(load("search.json")["data"]["children"][0])
    child["data"].update(id=f"p{n:04d}", name=f"t3_p{n:04d}", created_utc=W + 60 * n, created=W + 60 * n,
                         title=f"WaveBox question #{n}",
                         permalink=f"/r/HomeNetworking/comments/p{n:04d}/wavebox_question_{n}/")
    child["data"].update(extra)
    return child


def listing(children, after=None):
    body = copy.deepcopy(load("search.json"))
    body["data"].update(children=children, after=after, dist=len(children))
    return body


def make_source(clock=None, **options):
    config = RedditSourceConfig().load({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                                        "reddit_username": "brightwave_dev", "initial_lookback_hours": 0,
                                        **options})
    secrets = frozenset({CLIENT_ID, CLIENT_SECRET})
    return RedditSource(config, KitContext(instance="reddit", brand=BRAND, secrets=secrets, clock=clock or FakeClock(T0)))


@pytest.fixture
def api(ordered_responses):
    return ordered_responses


def params(**expected):
    return [matchers.query_param_matcher(expected, strict_match=False)]


def token(api, body=None, status=200):
    api.post(TOKEN_URL, json=body if body is not None else load("access_token.json"), status=status)


# --- the documented shapes ---

def test_a_search_result_becomes_a_complete_mention_with_an_app_only_token(api):
    token(api)
    api.get(SEARCH, json=load("search.json"), match=params(q="Brightwave OR BrightwaveHelp OR WaveBox", sort="new",
                                                            type="link", limit="100", raw_json="1"))
    api.get(SEARCH, json=listing([]), match=params(after="t3_1g2h3j4"))
    clock = FakeClock(T0)
    clock.now = 1790000000.0 + 3600  # an hour after the post: inside the first run's 24 hours
    source = make_source(clock, initial_lookback_hours=24)
    only, last = list(source.fetch(None))
    [m] = only.mentions
    assert m.id == "reddit:t3_1g2h3j4" and m.network == "reddit"
    assert m.text == ("Brightwave router drops wifi every evening\n\nSince Tuesday's firmware update my WaveBox 3 "
                      "drops every device at about 9pm & only a reboot brings it back. Anyone else on Brightwave "
                      "seeing this?")
    assert m.created_at == datetime.fromtimestamp(1790000000, tz=timezone.utc)
    assert m.url == ("https://www.reddit.com/r/HomeNetworking/comments/1g2h3j4/"
                     "brightwave_router_drops_wifi_every_evening/")
    assert (m.author.id, m.author.handle, m.author.profile_url) == \
        ("t2_8xwlg", "fibre_fan", "https://www.reddit.com/user/fibre_fan")
    assert (m.engagement.likes, m.engagement.replies, m.engagement.reposts) == (57, 23, 1)
    assert m.addressed_to_brand is None and m.reply_to is None and m.repost_of is None
    assert only.cursor == {"search": {"watermark": clock.now - 24 * 3600, "after": "t3_1g2h3j4",
                                      "newest": 1790000000.0, "newest_seen": ["t3_1g2h3j4"]}}
    assert last.mentions == [] and last.cursor == {"search": {"watermark": 1790000000.0, "seen": ["t3_1g2h3j4"]}}

    sent_token, sent_search = api.calls[0].request, api.calls[1].request
    assert sent_token.headers["Authorization"] == "Basic " + base64.b64encode(
        f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    assert parse_qs(sent_token.body) == {"grant_type": ["client_credentials"]}
    assert sent_search.headers["Authorization"] == "bearer " + load("access_token.json")["access_token"]
    assert sent_search.headers["User-Agent"] == "python:socialcrm:0.1.0 (by /u/brightwave_dev)"


def test_the_brands_own_subreddit_gives_posts_and_comments_addressed_to_it(api):
    token(api)
    api.get("https://oauth.reddit.com/r/Brightwave/new", json=load("r_new.json"))
    api.get("https://oauth.reddit.com/r/Brightwave/comments", json=load("r_comments.json"))
    source = make_source(search=False, watch_subreddits=["r/Brightwave"])
    pages = list(source.fetch(None))
    crosspost, comment = pages[0].mentions[0], pages[1].mentions[0]
    assert crosspost.repost_of == "reddit:t3_1g2h3j4" and crosspost.addressed_to_brand is True
    assert crosspost.text == "Brightwave router drops wifi every evening"
    assert comment.id == "reddit:t1_lq4z8xe" and comment.reply_to == "reddit:t3_1g2k7m1"
    assert comment.text == "Same here since Tuesday, u/BrightwaveHelp any news on a fix?"
    assert comment.url.endswith("/lq4z8xe/") and comment.addressed_to_brand is True
    assert comment.engagement.likes == 4
    assert pages[1].cursor == {"r/Brightwave/new": {"watermark": 1790000300.0, "seen": ["t3_1g2k7m1"]},
                               "r/Brightwave/comments": {"watermark": 1790000600.0, "seen": ["t1_lq4z8xe"]}}


def test_subreddit_search_and_comment_search_are_their_own_streams(api):
    token(api)
    api.get(SEARCH, json=listing([link(1)]), match=params(type="link"))
    api.get(SEARCH, json=load("r_comments.json"), match=params(type="comment"))
    api.get("https://oauth.reddit.com/r/ISP/search", json=listing([link(2)]), match=params(restrict_sr="1", sort="new"))
    source = make_source(search_comments=True, subreddits=["ISP"], query="WaveBox")
    pages = list(source.fetch(None))
    assert list(pages[-1].cursor) == ["search", "search:comments", "r/ISP/search"]
    assert pages[1].mentions[0].addressed_to_brand is True  # it names u/BrightwaveHelp


# --- cursors ---

def test_an_incremental_run_keeps_only_what_is_newer_than_the_watermark(api):
    token(api)
    api.get(SEARCH, json=listing([link(3), link(2), link(0), link(-1)], after="t3_p-001"))
    api.get(SEARCH, json=listing([link(3), link(2), link(0), link(-1)], after="t3_p-001"))
    source = make_source()
    [only] = list(source.fetch({"search": {"watermark": W}}))
    # Things made in the watermark's second are new unless read then; older ones end the run.
    assert [m.native_id for m in only.mentions] == ["t3_p0003", "t3_p0002", "t3_p0000"]
    assert only.cursor == {"search": {"watermark": W + 180, "seen": ["t3_p0003"]}}
    assert "after" not in api.calls[1].request.url
    [again] = list(source.fetch({"search": {"watermark": W, "seen": ["t3_p0000"]}}))
    assert [m.native_id for m in again.mentions] == ["t3_p0003", "t3_p0002"]


def test_pages_follow_after_and_each_resumes_right_after_itself(api):
    token(api)
    api.get(SEARCH, json=listing([link(9), link(8)], after="t3_p0008"))
    api.get(SEARCH, json=listing([link(7), link(6)], after="t3_p0006"), match=params(after="t3_p0008"))
    api.get(SEARCH, json=listing([link(5), link(-3)], after="t3_p-003"), match=params(after="t3_p0006"))
    pages = list(make_source().fetch({"search": {"watermark": W}}))
    assert [len(p.mentions) for p in pages] == [2, 2, 1]
    mid_run = {"watermark": W, "newest": W + 540, "newest_seen": ["t3_p0009"]}
    assert pages[0].cursor == {"search": {**mid_run, "after": "t3_p0008"}}
    assert pages[1].cursor == {"search": {**mid_run, "after": "t3_p0006"}}
    assert pages[2].cursor == {"search": {"watermark": W + 540, "seen": ["t3_p0009"]}}


REDDIT_CONFIG = """
[brand]
name = "Brightwave"
handles = ["@BrightwaveHelp"]

[store]
url = "sqlite:///store.db"

[sources.reddit]
client_id = "${REDDIT_CLIENT_ID}"
client_secret = "${REDDIT_CLIENT_SECRET}"
reddit_username = "brightwave_dev"
limit = 2
"""


def test_killed_mid_run_resumes_through_the_pipeline_with_no_gap(api, write_config, plugins, monkeypatch,
                                                                kill_while_storing, stored_ids):
    monkeypatch.setenv("REDDIT_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("REDDIT_CLIENT_SECRET", CLIENT_SECRET)
    config = load_config(write_config(REDDIT_CONFIG), plugins)
    first = Pipeline(config, plugins)
    with first.store.page() as tx:  # an earlier run left this watermark
        tx.save_page("reddit", {"search": {"watermark": W}}, [], [], {})
    token(api)
    api.get(SEARCH, json=listing([link(9), link(8)], after="t3_p0008"))
    api.get(SEARCH, json=listing([link(7), link(6)], after="t3_p0006"), match=params(after="t3_p0008"))
    kill_while_storing(first, page=2)
    with pytest.raises(KeyboardInterrupt):
        first.listen()
    assert stored_ids(first) == ["t3_p0008", "t3_p0009"]
    first.close()

    token(api)  # a new process gets a new token
    api.get(SEARCH, json=listing([link(7), link(6)], after="t3_p0006"), match=params(after="t3_p0008"))
    api.get(SEARCH, json=listing([link(5), link(-1)], after="t3_p-001"), match=params(after="t3_p0006"))
    again = Pipeline(load_config(config.path, plugins), plugins)
    stats = again.listen()
    assert stats.errors == {} and stats.fetched == 3 and stats.duplicates == 0
    assert stored_ids(again) == [f"t3_p{n:04d}" for n in range(5, 10)]
    assert again.store.get_cursor("reddit") == {"search": {"watermark": W + 540, "seen": ["t3_p0009"]}}
    again.close()


# --- rate limits, tokens, auth, malformed payloads ---

def test_the_ratelimit_headers_make_the_next_call_wait_for_the_reset(api):
    clock = FakeClock(T0)
    token(api)
    api.get(SEARCH, json=listing([link(9)], after="t3_p0009"),
            headers={"X-Ratelimit-Used": "100", "X-Ratelimit-Remaining": "0.0", "X-Ratelimit-Reset": "37"})
    api.get(SEARCH, json=listing([link(-1)]), match=params(after="t3_p0009"))
    pages = list(make_source(clock).fetch({"search": {"watermark": W}}))
    assert [len(p.mentions) for p in pages] == [1, 0]  # the last page only moves the watermark
    assert clock.waits == [37.0]


def test_the_token_is_cached_and_fetched_again_once_on_a_401(api):
    clock = FakeClock(T0)
    token(api)
    api.get(SEARCH, json=listing([link(1)]))
    api.get(SEARCH, status=401, json={"message": "Unauthorized", "error": 401})
    token(api)
    api.get(SEARCH, json=listing([link(2)]))
    source = make_source(clock)
    list(source.fetch(None))
    list(source.fetch({"search": {"watermark": W}}))
    assert [c.request.method for c in api.calls] == ["POST", "GET", "GET", "POST", "GET"]


def test_a_token_that_expired_is_renewed_before_the_call(api):
    clock = FakeClock(T0)
    token(api, {**load("access_token.json"), "expires_in": 3600})
    api.get(SEARCH, json=listing([link(1)]))
    token(api)
    api.get(SEARCH, json=listing([link(2)]))
    source = make_source(clock)
    list(source.fetch(None))
    clock.now += 3600
    list(source.fetch({"search": {"watermark": W}}))
    assert [c.request.method for c in api.calls] == ["POST", "GET", "POST", "GET"]


def test_refused_credentials_are_an_auth_error_in_plain_words(api):
    token(api, {"message": "Unauthorized", "error": 401}, status=401)
    with pytest.raises(AuthError) as info:
        list(make_source().fetch(None))
    assert "REDDIT_CLIENT_ID" in str(info.value) and CLIENT_SECRET not in str(info.value)
    token(api, {"error": "unsupported_grant_type"})
    with pytest.raises(AuthError, match="unsupported_grant_type"):
        list(make_source().fetch(None))


def test_a_second_refusal_after_a_fresh_token_stops_the_source(api):
    token(api)
    api.get("https://oauth.reddit.com/r/secretclub/new", status=403, json={"reason": "private", "error": 403})
    token(api)
    api.get("https://oauth.reddit.com/r/secretclub/new", status=403, json={"reason": "private", "error": 403})
    with pytest.raises(AuthError, match="private"):
        list(make_source(search=False, watch_subreddits=["secretclub"]).fetch(None))


def test_an_unreadable_thing_is_reported_by_name_and_field_and_the_rest_kept(api):
    no_time = link(3)
    del no_time["data"]["created_utc"]
    no_title = link(2)
    del no_title["data"]["title"]
    token(api)
    api.get(SEARCH, json=listing([no_time, no_title, link(1), ["junk"], {"kind": "more", "data": {}}]))
    [only] = list(make_source().fetch(None))
    assert [m.native_id for m in only.mentions] == ["t3_p0001"]
    assert only.errors == ["search: t3_p0003: created_utc: missing", "search: t3_p0002: title: missing",
                           "search: children[3]: (thing): expected an object"]


def test_missing_credentials_name_the_fields_and_the_variables(monkeypatch):
    monkeypatch.delenv("REDDIT_CLIENT_ID", raising=False)
    monkeypatch.delenv("REDDIT_CLIENT_SECRET", raising=False)
    with pytest.raises(ValidationError) as info:
        RedditSourceConfig().load({})
    assert "REDDIT_CLIENT_ID" in info.value.messages["client_id"][0]
    assert "REDDIT_CLIENT_SECRET" in info.value.messages["client_secret"][0]
    with pytest.raises(ValidationError) as typo:
        RedditSourceConfig().load({"client_id": "a", "client_secret": "b", "subreddit": ["x"]})
    assert "subreddit" in typo.value.messages


# --- backfill and check ---

def test_backfill_searches_the_right_window_back_to_since(api):
    clock = FakeClock(T0)
    since = datetime.fromtimestamp(W, tz=timezone.utc)  # about 116 days before the clock's now
    token(api)
    api.get(SEARCH, json=listing([link(9), link(8)], after="t3_p0008"), match=params(t="year", sort="new"))
    api.get(SEARCH, json=listing([link(7), link(-2)], after="t3_p-002"), match=params(t="year", after="t3_p0008"))
    pages = list(make_source(clock).backfill(since))
    assert [len(p.mentions) for p in pages] == [2, 1]
    assert [p.cursor for p in pages] == [{"search": {"after": "t3_p0008"}}, {"search": {"done": True}}]


def test_check_proves_the_credentials_and_says_what_it_would_fetch(api):
    token(api)
    api.get(SEARCH, json=listing([link(1)]), match=params(limit="1"))
    said = make_source(watch_subreddits=["Brightwave"]).check()
    assert said.startswith("client credentials accepted") and "r/Brightwave/new" in said and "1 item" in said


# --- the plugin kit's source contract ---

class TestRedditContract(SourceContract):
    plugin = RedditSource
    config = {"client_id": "kit-client-id", "client_secret": "kit-client-secret-0123", "reddit_username": "kit_dev",
              "initial_lookback_hours": 0, "limit": 3}
    invalid_configs = [({"limit": 0}, "limit"), ({"subreddits": ["not a sub!"]}, "subreddits"),
                       ({"initial_lookback_hours": -1}, "initial_lookback_hours")]

    def native_id(self, item):
        return f"t1_{item.id}" if item.reply_to else f"t3_{item.id}"

    def serve(self, upstream, api):
        def thing(item):
            if item.reply_to:  # a comment: link_id is the post the thread hangs from, parent_id what it answers
                parent = f"t3_{item.root}" if item.reply_to == item.root else f"t1_{item.reply_to}"
                return {"kind": "t1", "data": {
                    "id": str(item.id), "name": f"t1_{item.id}", "body": item.text, "link_id": f"t3_{item.root}",
                    "parent_id": parent, "subreddit": "HomeNetworking", "author": item.author_handle,
                    "author_fullname": f"t2_{item.author_id}", "score": item.likes,
                    "created_utc": item.created_at.timestamp(), "created": item.created_at.timestamp(),
                    "permalink": f"/r/HomeNetworking/comments/{item.root}/post_{item.root}/{item.id}/"}}
            return {"kind": "t3", "data": {
                "id": str(item.id), "name": f"t3_{item.id}", "title": item.text, "selftext": "", "is_self": True,
                "subreddit": "HomeNetworking", "author": item.author_handle, "author_fullname": f"t2_{item.author_id}",
                "score": item.likes, "num_comments": item.replies, "num_crossposts": 0,
                "created_utc": item.created_at.timestamp(), "created": item.created_at.timestamp(),
                "permalink": f"/r/HomeNetworking/comments/{item.id}/post_{item.id}/"}}

        def search(request):
            # Newest first; `after` is the fullname of the last thing of the previous page.
            found = upstream.newest()
            after = request.params.get("after")
            if after:
                found = [i for i in found if i.id < int(after.split("_", 1)[1])]
            limit = int(request.params["limit"])
            chunk = found[:limit]
            body = {"kind": "Listing", "data": {
                "after": self.native_id(chunk[-1]) if len(found) > limit else None, "dist": len(chunk), "modhash": "",
                "geo_filter": "", "children": [thing(i) for i in chunk], "before": None}}
            return 200, {"Content-Type": "application/json"}, json.dumps(body)

        def access_token(request):
            return 200, {"Content-Type": "application/json"}, json.dumps(load("access_token.json"))

        def reddit_error(status):
            return {"Content-Type": "application/json"}, json.dumps({"message": HTTPStatus(status).phrase,
                                                                     "error": status})

        api.add_callback("POST", TOKEN_URL, callback=upstream.guard(access_token, error_body=reddit_error))
        api.add_callback("GET", SEARCH, callback=upstream.guard(search, error_body=reddit_error))


# --- threads: link_id is the post the comment tree hangs from, parent_id what a comment answers ---

def test_a_comment_names_its_post_as_the_conversation_and_a_post_is_its_own():
    from socialcrm.plugins.sources.reddit import thing_to_mention
    [child] = load("r_comments.json")["data"]["children"]
    comment = thing_to_mention(child, 0, set(), set())
    assert (comment.conversation, comment.reply_to) == ("reddit:t3_1g2k7m1", "reddit:t3_1g2k7m1")
    nested = copy.deepcopy(child)
    nested["data"]["parent_id"] = "t1_lq4z000"
    answer = thing_to_mention(nested, 0, set(), set())
    assert (answer.conversation, answer.reply_to) == ("reddit:t3_1g2k7m1", "reddit:t1_lq4z000")
    post_ = thing_to_mention(load("r_new.json")["data"]["children"][0], 0, set(), set())
    assert post_.conversation is None and post_.reply_to is None and post_.conversation_id == post_.canonical_id
