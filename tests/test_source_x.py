"""The x source against X API v2 responses shaped as X documents them (tests/payloads/x/)."""
import copy
import json
from datetime import datetime, timedelta, timezone
from http import HTTPStatus
from pathlib import Path

import pytest
import requests
from marshmallow import ValidationError
from responses import matchers

from socialcrm import AuthError, PluginContext
from socialcrm.core.sdk.brand import Brand
from socialcrm.core.engine.config import load_config
from socialcrm.core.sdk.errors import ConfigError
from socialcrm.core.engine.pipeline import Pipeline
from socialcrm.plugins.sources.x import XSource, XSourceConfig, default_query
from socialcrm.testing import FakeClock, KitContext, SourceContract

PAYLOADS = Path(__file__).parent / "payloads" / "x"
API = "https://api.x.com"
SEARCH = f"{API}/2/tweets/search/recent"
MENTIONS = f"{API}/2/users/2244994945/mentions"
LOOKUP = f"{API}/2/users/by/username/TwitterDev"
TOKEN = "AAAA-test-bearer-token-0123456789"
T0 = 1_800_000_000.0
BRAND = Brand(name="Brightwave", handles=["@Brightwave", "@BrightwaveHelp"], keywords=["WaveBox", "Wave Box"])


def load(name):
    return json.loads((PAYLOADS / name).read_text(encoding="utf-8"))


# --- builders: the documented payloads with ids, times and cursors varied ---

BASE = 1900000000000000000


def post(n, text=None, **extra):
    """The documented search result, renumbered: post ``n`` is newer than post ``n - 1``."""
    item = copy.deepcopy(load("search_recent.json")["data"][0])
    item.update(id=str(BASE + n), text=text or f"my WaveBox drops wifi again (#{n})",
                edit_history_tweet_ids=[str(BASE + n)],
                created_at=(datetime(2026, 10, 1, 9, tzinfo=timezone.utc) + timedelta(minutes=n))
                .isoformat().replace("+00:00", ".000Z"))
    item.update(extra)
    return item


def page(posts, next_token=None, users=None, **includes):
    """A search/timeline response around ``posts`` (newest first), with ``meta`` as X computes it."""
    if not posts:
        return {"meta": {"result_count": 0}}  # X leaves out data and includes when nothing matched
    body = copy.deepcopy(load("search_recent.json"))
    body["data"] = posts
    body["includes"] = {"users": users or body["includes"]["users"], **includes}
    ids = sorted((p["id"] for p in posts if isinstance(p, dict)), key=lambda i: (len(i), i))
    body["meta"] = {"newest_id": ids[-1], "oldest_id": ids[0], "result_count": len(posts)}
    if next_token:
        body["meta"]["next_token"] = next_token
    return body


def to_post_naming(body):
    """The same response as the 2.167 API description names it."""
    body = json.loads(json.dumps(body).replace('"referenced_tweets"', '"referenced_posts"')
                      .replace('"retweet_count"', '"repost_count"').replace('"note_tweet"', '"note_post"')
                      .replace('"edit_history_tweet_ids"', '"edit_history_post_ids"'))
    if "tweets" in body.get("includes", {}):
        body["includes"]["posts"] = body["includes"].pop("tweets")
    return body


def make_source(clock=None, **options):
    config = XSourceConfig().load({"bearer_token": TOKEN, **options})
    return XSource(config, KitContext(instance="x", brand=BRAND, secrets=frozenset({TOKEN}),
                                      clock=clock or FakeClock(T0)))


@pytest.fixture
def api(ordered_responses):
    return ordered_responses


def params(**expected):
    return [matchers.query_param_matcher(expected, strict_match=False)]


# --- the recorded examples from X's documentation ---

def test_the_default_query_names_the_brand_and_leaves_out_its_own_posts():
    assert default_query(BRAND.handles, [BRAND.name, *BRAND.keywords]) == (
        '(@Brightwave OR @BrightwaveHelp OR Brightwave OR WaveBox OR "Wave Box") '
        "-from:Brightwave -from:BrightwaveHelp")


def test_the_documented_search_example_becomes_a_complete_mention(api):
    api.get(SEARCH, json=load("search_recent.json"), match=params(
        query=default_query(BRAND.handles, [BRAND.name, *BRAND.keywords]), max_results="100",
        expansions="author_id,referenced_tweets.id,referenced_tweets.id.author_id"))
    source = make_source(mentions=False)
    pages = list(source.fetch(None))
    assert len(pages) == 1 and pages[0].errors == []
    day_ago = datetime.fromtimestamp(T0, tz=timezone.utc) - timedelta(hours=24)
    assert f"start_time={day_ago:%Y-%m-%dT%H%%3A%M%%3A%SZ}" in api.calls[0].request.url  # the first run's reach
    [m] = pages[0].mentions
    assert m.id == "x:1234567890123456789" and m.text == "Just started learning Python and loving it!"
    assert m.created_at == datetime(2024, 1, 15, 10, 30, tzinfo=timezone.utc)
    assert (m.author.id, m.author.handle, m.author.verified, m.author.profile_url) == \
        ("9876543210", "pythondev", False, "https://x.com/pythondev")
    assert (m.engagement.likes, m.engagement.reposts, m.engagement.replies, m.engagement.quotes) == (42, 5, 2, 1)
    assert m.url == "https://x.com/pythondev/status/1234567890123456789"
    assert m.addressed_to_brand is None and m.repost_of is None and m.raw["id"] == "1234567890123456789"
    assert pages[0].cursor == {"search": {"since_id": "1234567890123456789"}}
    sent = api.calls[0].request
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"
    fields = requests.utils.urlparse(sent.url).query
    assert "tweet.fields=" in fields and "public_metrics" in fields and "user.fields=" in fields


def test_the_documented_mentions_timeline_example_is_addressed_to_the_brand(api):
    api.get(LOOKUP, json={"data": {"id": "2244994945", "name": "Twitter Dev", "username": "TwitterDev"}})
    day_ago = (datetime.fromtimestamp(T0, tz=timezone.utc) - timedelta(hours=24)).strftime("%Y-%m-%dT%H:%M:%SZ")
    api.get(MENTIONS, json=load("users_mentions.json"), match=params(max_results="100", start_time=day_ago))
    api.get(MENTIONS, json={"meta": {"result_count": 0}},
            match=params(start_time=day_ago, pagination_token="t3buvdr5pujq9g7bggsnf3ep2ha28"))
    source = make_source(search=False, username="TwitterDev")
    first, last = list(source.fetch(None))
    assert [m.native_id for m in first.mentions] == [
        "1301573587187331074", "1301546240887398401", "1300888112948752389", "1299485505478963200",
        "1296887316556980230"]
    assert all(m.addressed_to_brand is True for m in first.mentions)
    assert first.mentions[0].author.name == "Twitter Dev" and first.mentions[0].text.startswith("Starting today")
    # A first run reaches back 24 hours; its pages resume within that window, and the run ends with
    # the newest id of its first page as the next run's since_id.
    assert first.cursor == {"mentions": {"start_time": day_ago, "until_id": "1296887316556980230",
                                         "newest_id": "1301573587187331074"}}
    assert last.mentions == [] and last.cursor == {"mentions": {"since_id": "1301573587187331074"}}


# --- mapping: reposts, quotes, replies, links, long posts ---

def test_reposts_quotes_replies_and_links_are_mapped(api):
    original = post(1, text="WaveBox 4 is out, details: https://t.co/abc123",
                    entities={"urls": [{"start": 27, "end": 50, "url": "https://t.co/abc123",
                                        "expanded_url": "https://brightwave.example/wavebox-4",
                                        "display_url": "brightwave.example/wavebox-4"}]})
    retweet = post(2, text="RT @Brightwave: WaveBox 4 is out, details: https://t.co/abc123",
                   referenced_tweets=[{"type": "retweeted", "id": original["id"]}])
    quote = post(3, text="@BrightwaveHelp finally! https://t.co/q1",
                 referenced_tweets=[{"type": "quoted", "id": original["id"]}],
                 entities={"urls": [{"start": 24, "end": 40, "url": "https://t.co/q1",
                                     "expanded_url": "https://x.com/Brightwave/status/1900000000000000001"}]})
    reply = post(4, text="@BrightwaveHelp mine still drops", in_reply_to_user_id="777",
                 referenced_tweets=[{"type": "replied_to", "id": original["id"]}],
                 public_metrics={"retweet_count": 0, "reply_count": 0, "like_count": 3, "quote_count": 0,
                                 "bookmark_count": 0, "impression_count": 90})
    long_post = post(5, text="A long thread start…", note_tweet={"text": "A long post about the WaveBox " * 12})
    users = [{"id": "9876543210", "username": "fibre_fan", "name": "Fibre Fan", "verified": False,
              "verified_type": "blue", "public_metrics": {"followers_count": 1520, "following_count": 3,
                                                          "tweet_count": 10, "listed_count": 0}}]
    api.get(SEARCH, json=page([long_post, reply, quote, retweet], users=users, tweets=[original]))
    source = make_source(mentions=False, user_id="777")
    [only] = list(source.fetch(None))
    by_id = {m.native_id: m for m in only.mentions}
    rt = by_id[retweet["id"]]
    assert rt.repost_of == f"x:{original['id']}" and rt.canonical_id == f"x:{original['id']}"
    assert rt.text == "WaveBox 4 is out, details: https://brightwave.example/wavebox-4"  # the original, links expanded
    assert by_id[quote["id"]].quote_of == f"x:{original['id']}"
    assert by_id[quote["id"]].text == "@BrightwaveHelp finally! https://x.com/Brightwave/status/1900000000000000001"
    assert by_id[reply["id"]].reply_to == f"x:{original['id']}" and by_id[reply["id"]].addressed_to_brand is True
    assert by_id[long_post["id"]].text == ("A long post about the WaveBox " * 12)
    author = by_id[reply["id"]].author
    assert (author.followers, author.verified, author.name) == (1520, True, "Fibre Fan")


def test_the_newer_post_naming_is_requested_and_read(api):
    original = post(1, text="the original")
    retweet = post(2, text="RT @a: the original", referenced_tweets=[{"type": "retweeted", "id": original["id"]}],
                   note_tweet={"text": "the whole retweet"})
    body = to_post_naming(page([retweet], tweets=[original]))
    assert "referenced_posts" in body["data"][0] and "posts" in body["includes"]
    api.get(SEARCH, json=body, match=params(expansions="author_id,referenced_posts"))
    source = make_source(mentions=False, naming="post")
    [only] = list(source.fetch(None))
    [m] = only.mentions
    assert m.repost_of == f"x:{original['id']}" and m.text == "the original" and m.engagement.reposts == 5
    query = requests.utils.urlparse(api.calls[0].request.url).query
    assert "post.fields=" in query and "tweet.fields=" not in query


def test_field_parameter_names_can_be_set_one_by_one(api):
    api.get(SEARCH, json=page([post(1)]), match=params(**{"post.fields": "created_at,public_metrics",
                                                          "expansions": "author_id"}))
    source = make_source(mentions=False, fields_parameter="post.fields", fields=["created_at", "public_metrics"],
                         expansions=["author_id"])
    assert len(list(source.fetch(None))) == 1


# --- cursors: first run, incremental run, pages, kill and resume ---

def test_an_incremental_run_asks_only_for_posts_newer_than_the_cursor(api):
    api.get(SEARCH, json=page([]), match=params(since_id=str(BASE + 9)))
    source = make_source(mentions=False)
    assert list(source.fetch({"search": {"since_id": str(BASE + 9)}})) == []
    api.get(SEARCH, json=page([post(11), post(10)]), match=params(since_id=str(BASE + 9)))
    [only] = list(source.fetch({"search": {"since_id": str(BASE + 9)}}))
    assert [m.native_id for m in only.mentions] == [str(BASE + 11), str(BASE + 10)]
    assert only.cursor == {"search": {"since_id": str(BASE + 11)}}


def test_pages_of_a_run_each_resume_right_after_themselves(api):
    since = str(BASE)
    api.get(SEARCH, json=page([post(9), post(8)], next_token="tok1"), match=params(since_id=since))
    api.get(SEARCH, json=page([post(7), post(6)], next_token="tok2"), match=params(since_id=since, next_token="tok1"))
    api.get(SEARCH, json=page([post(5)]), match=params(since_id=since, next_token="tok2"))
    source = make_source(mentions=False)
    pages = list(source.fetch({"search": {"since_id": since}}))
    assert [[m.native_id[-1] for m in p.mentions] for p in pages] == [["9", "8"], ["7", "6"], ["5"]]
    assert pages[0].cursor == {"search": {"since_id": since, "until_id": str(BASE + 8), "newest_id": str(BASE + 9)}}
    assert pages[1].cursor == {"search": {"since_id": since, "until_id": str(BASE + 6), "newest_id": str(BASE + 9)}}
    assert pages[2].cursor == {"search": {"since_id": str(BASE + 9)}}  # newest_id of the run's first page


def test_both_streams_share_one_cursor(api):
    api.get(SEARCH, json=page([post(2)]), match=params(since_id=str(BASE)))
    api.get(MENTIONS, json=page([post(3)]), match=params(since_id=str(BASE + 1)))
    source = make_source(user_id="2244994945")
    pages = list(source.fetch({"search": {"since_id": str(BASE)}, "mentions": {"since_id": str(BASE + 1)}}))
    assert pages[-1].cursor == {"search": {"since_id": str(BASE + 2)}, "mentions": {"since_id": str(BASE + 3)}}
    assert pages[0].mentions[0].addressed_to_brand is None and pages[1].mentions[0].addressed_to_brand is True


X_CONFIG = """
[brand]
name = "Brightwave"
handles = ["@Brightwave"]
keywords = ["WaveBox"]

[store]
url = "sqlite:///store.db"

[sources.x]
bearer_token = "${X_BEARER_TOKEN}"
mentions = false
max_results = 10
"""


def test_killed_mid_run_resumes_through_the_pipeline_with_no_gap(api, write_config, plugins, monkeypatch,
                                                                kill_while_storing, stored_ids):
    monkeypatch.setenv("X_BEARER_TOKEN", TOKEN)
    config = load_config(write_config(X_CONFIG), plugins)
    since = str(BASE)
    first = Pipeline(config, plugins)
    with first.store.page() as tx:  # an earlier run left this cursor
        tx.save_page("x", {"search": {"since_id": since}}, [], [], {})
    api.get(SEARCH, json=page([post(9), post(8)], next_token="tok1"), match=params(since_id=since))
    api.get(SEARCH, json=page([post(7), post(6)], next_token="tok2"), match=params(since_id=since, next_token="tok1"))
    kill_while_storing(first, page=2)
    with pytest.raises(KeyboardInterrupt):
        first.listen()
    assert stored_ids(first) == [str(BASE + 8), str(BASE + 9)]
    assert first.store.get_cursor("x") == {"search": {"since_id": since, "until_id": str(BASE + 8),
                                                      "newest_id": str(BASE + 9)}}
    first.close()

    # The restart asks for what is older than the last stored page and newer than the old since_id.
    api.get(SEARCH, json=page([post(7), post(6)], next_token="tok3"),
            match=params(since_id=since, until_id=str(BASE + 8)))
    api.get(SEARCH, json=page([post(5)]), match=params(since_id=since, until_id=str(BASE + 8), next_token="tok3"))
    again = Pipeline(load_config(config.path, plugins), plugins)
    stats = again.listen()
    assert stats.errors == {} and stats.fetched == 3 and stats.duplicates == 0  # page 2 read twice, nothing more
    assert stored_ids(again) == [str(BASE + n) for n in range(5, 10)]
    assert again.store.get_cursor("x") == {"search": {"since_id": str(BASE + 9)}}
    again.close()


# --- rate limits, auth, malformed payloads ---

def test_a_spent_budget_waits_exactly_until_the_reset_before_any_429(api):
    clock = FakeClock(T0)
    api.get(SEARCH, json=page([post(9)], next_token="tok1"),
            headers={"x-rate-limit-remaining": "0", "x-rate-limit-reset": str(int(T0) + 42)})
    api.get(SEARCH, json=page([post(8)]), match=params(next_token="tok1"))
    source = make_source(clock, mentions=False)
    assert len(list(source.fetch({"search": {"since_id": str(BASE)}}))) == 2
    assert clock.waits == [42.0]


def test_a_429_waits_for_the_reset_header_then_goes_on(api):
    clock = FakeClock(T0)
    api.get(SEARCH, status=429, json={"title": "Too Many Requests"},
            headers={"x-rate-limit-remaining": "0", "x-rate-limit-reset": str(int(T0) + 15)})
    api.get(SEARCH, json=page([post(1)]))
    source = make_source(clock, mentions=False)
    assert len(list(source.fetch(None))) == 1
    assert clock.waits == [15.0]


def test_a_rejected_token_is_an_auth_error_in_plain_words(api):
    api.get(SEARCH, status=401, json={"title": "Unauthorized", "type": "about:blank", "status": 401,
                                      "detail": "Unauthorized"})
    with pytest.raises(AuthError) as info:
        list(make_source(mentions=False).fetch(None))
    message = str(info.value)
    assert "X_BEARER_TOKEN" in message and "did not accept" in message and TOKEN not in message


def test_an_auth_failure_stops_x_and_not_the_other_sources(api, write_config, plugins, monkeypatch, tmp_path,
                                                           mention_json, write_mentions):
    monkeypatch.setenv("X_BEARER_TOKEN", TOKEN)
    write_mentions(tmp_path / "mentions.jsonl", [mention_json("1", "my WaveBox is broken", network="rss")])
    text = X_CONFIG + '\n[sources.file]\nplugin = "jsonl"\npath = "mentions.jsonl"\n'
    pipeline = Pipeline(load_config(write_config(text), plugins), plugins)
    api.get(SEARCH, status=403, json={"title": "Client Forbidden", "reason": "client-not-enrolled"})
    stats = pipeline.listen()
    assert "Project" in stats.errors["x"] and stats.errors["x"].startswith("authentication failed")
    assert stats.records == 1 and "file" not in stats.errors
    pipeline.close()


def test_an_unreadable_post_is_reported_by_id_and_field_and_the_rest_kept(api):
    bad_time = post(3)
    del bad_time["created_at"]
    bad_count = post(2, public_metrics={"like_count": "lots"})
    api.get(SEARCH, json=page([bad_time, bad_count, post(1), "not a post"]))
    [only] = list(make_source(mentions=False).fetch(None))
    assert [m.native_id for m in only.mentions] == [str(BASE + 1)]
    assert only.errors == [f"search: post {BASE + 3}: created_at: missing",
                           f"search: post {BASE + 2}: public_metrics.like_count: expected a count, got 'lots'",
                           "search: data[3]: (post): expected an object"]


def test_a_missing_token_names_the_field_and_the_variable(monkeypatch, write_config, plugins):
    monkeypatch.delenv("X_BEARER_TOKEN", raising=False)
    with pytest.raises(ValidationError) as info:
        XSourceConfig().load({})
    assert "X_BEARER_TOKEN" in info.value.messages["bearer_token"][0]
    with pytest.raises(ConfigError) as config_error:
        load_config(write_config(X_CONFIG.replace('bearer_token = "${X_BEARER_TOKEN}"\n', "")), plugins)
    assert "[sources.x] bearer_token: not set: export X_BEARER_TOKEN" in str(config_error.value)
    monkeypatch.setenv("X_BEARER_TOKEN", TOKEN)  # left out of the block, it is read from the environment
    assert XSourceConfig().load({})["bearer_token"] == TOKEN


# --- backfill and check ---

def test_backfill_walks_back_to_since_and_can_resume(api):
    clock = FakeClock(T0)
    now = datetime.fromtimestamp(T0, tz=timezone.utc)
    since = now - timedelta(days=2)
    start = since.strftime("%Y-%m-%dT%H:%M:%SZ")
    api.get(SEARCH, json=page([post(9), post(8)], next_token="tok1"), match=params(start_time=start))
    api.get(SEARCH, json=page([post(7)]), match=params(start_time=start, next_token="tok1"))
    source = make_source(clock, mentions=False)
    pages = list(source.backfill(since))
    assert [p.cursor for p in pages] == [{"search": {"until_id": str(BASE + 8)}}, {"search": {"done": True}}]
    assert sum(len(p.mentions) for p in pages) == 3
    # Resuming from the first page's cursor asks only for what is older than it.
    api.get(SEARCH, json=page([post(7)]), match=params(start_time=start, until_id=str(BASE + 8)))
    assert len(list(source.backfill(since, pages[0].cursor))) == 1


def test_backfill_beyond_seven_days_is_clamped_to_what_recent_search_holds(api):
    clock = FakeClock(T0)
    now = datetime.fromtimestamp(T0, tz=timezone.utc)
    earliest = (now - timedelta(days=7) + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    api.get(SEARCH, json=page([post(1)]), match=params(start_time=earliest))
    assert len(list(make_source(clock, mentions=False).backfill(now - timedelta(days=30)))) == 1


def test_check_says_what_it_would_fetch_or_what_is_wrong(api):
    api.get(f"{API}/2/users/by/username/xdevelopers", json=load("users_by_username.json"))
    said = make_source(username="@xdevelopers").check()
    assert "bearer token accepted" in said and "@xdevelopers (user id 2244994945)" in said and "recent search" in said
    api.get(f"{API}/2/users/by/username/nobody_here", json={
        "errors": [{"value": "nobody_here", "detail": "Could not find user with username: [nobody_here].",
                    "title": "Not Found Error", "type": "https://api.twitter.com/2/problems/resource-not-found"}]})
    with pytest.raises(Exception, match="X has no account named @nobody_here"):
        make_source(username="nobody_here").check()
    api.get(SEARCH, status=401, json={"title": "Unauthorized"})
    with pytest.raises(AuthError, match="X_BEARER_TOKEN"):
        make_source(mentions=False).check()


def test_the_mentions_timeline_needs_an_account(monkeypatch):
    config = XSourceConfig().load({"bearer_token": TOKEN})
    with pytest.raises(ConfigError, match="username"):
        XSource(config, PluginContext(instance="x", brand=Brand(name="Brightwave")))


# --- the plugin kit's source contract ---

class TestXContract(SourceContract):
    plugin = XSource
    config = {"bearer_token": TOKEN, "mentions": False, "initial_lookback_hours": 0, "max_results": 10}
    invalid_configs = [({"max_results": 5}, "max_results"), ({"naming": "status"}, "naming"),
                       ({"fields_parameter": "toot.fields"}, "fields_parameter"),
                       ({"search": False}, "search")]

    def serve(self, upstream, api):
        def as_post(item):
            post = {"id": str(item.id), "text": item.text, "created_at": item.created_iso, "author_id": item.author_id,
                    "edit_history_tweet_ids": [str(item.id)], "conversation_id": str(item.root or item.id),
                    "public_metrics": {"retweet_count": 0, "reply_count": item.replies, "like_count": item.likes,
                                       "quote_count": 0}}
            if item.reply_to:
                post["referenced_tweets"] = [{"type": "replied_to", "id": str(item.reply_to)}]
            return post

        def search(request):
            # Newest first within since_id/until_id; next_token an offset into that range, as opaque to us.
            since, until = request.params.get("since_id"), request.params.get("until_id")
            found = [i for i in upstream.newest()
                     if (not since or i.id > int(since)) and (not until or i.id < int(until))]
            start = int(request.params.get("next_token") or 0)
            chunk = found[start:start + upstream.page_size]
            if not chunk:
                return 200, {}, json.dumps({"meta": {"result_count": 0}})
            users = {i.author_id: {"id": i.author_id, "username": i.author_handle, "name": i.author_name}
                     for i in chunk}
            meta = {"newest_id": str(chunk[0].id), "oldest_id": str(chunk[-1].id), "result_count": len(chunk)}
            if start + len(chunk) < len(found):
                meta["next_token"] = str(start + len(chunk))
            body = {"data": [as_post(i) for i in chunk], "includes": {"users": list(users.values())}, "meta": meta}
            return 200, {"Content-Type": "application/json"}, json.dumps(body)

        def problem(status):  # X's error shape (Problem)
            return {"Content-Type": "application/json"}, json.dumps(
                {"title": HTTPStatus(status).phrase, "detail": HTTPStatus(status).phrase, "type": "about:blank",
                 "status": status})

        api.add_callback("GET", SEARCH, callback=upstream.guard(search, error_body=problem))


# --- threads: conversation_id is the root, referenced_tweets replied_to the parent ---

def test_a_reply_names_its_conversation_and_parent_and_a_root_post_its_own_thread():
    from socialcrm.plugins.sources.x import post_to_mention
    reply = post(3, conversation_id=str(BASE + 1), referenced_tweets=[{"type": "replied_to", "id": str(BASE + 2)}],
                 in_reply_to_user_id="2244994945")
    root = post(1, conversation_id=str(BASE + 1))
    m = post_to_mention(reply, {}, {}, None, "2244994945")
    assert (m.conversation, m.reply_to, m.addressed_to_brand) == (f"x:{BASE + 1}", f"x:{BASE + 2}", True)
    r = post_to_mention(root, {}, {}, None, None)
    assert (r.conversation, r.reply_to, r.conversation_id) == (f"x:{BASE + 1}", None, f"x:{BASE + 1}")
    legacy = post_to_mention(post(4), {}, {}, None, None)  # asked without conversation_id
    assert legacy.conversation is None and legacy.conversation_id == legacy.id
