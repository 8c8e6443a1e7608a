"""The mastodon source against a Mastodon instance's REST API, with Status, Account, Notification and
Search shaped as Mastodon documents them (tests/payloads/mastodon/)."""
import copy
import html
import json
import re
from datetime import datetime, timedelta, timezone
from http import HTTPStatus
from pathlib import Path

import pytest
import requests
from marshmallow import ValidationError
from responses import matchers

from socialcrm import AuthError, RetriableError
from socialcrm.core.sdk.brand import Brand
from socialcrm.core.engine.config import load_config
from socialcrm.core.sdk.errors import FatalError
from socialcrm.core.engine.pipeline import Pipeline
from socialcrm.plugins.sources.mastodon import MastodonSource, MastodonSourceConfig, html_to_text
from socialcrm.testing import FakeClock, KitContext, SourceContract

PAYLOADS = Path(__file__).parent / "payloads" / "mastodon"
BASE = "https://mastodon.social"
TAG = f"{BASE}/api/v1/timelines/tag/brightwave"
NOTIFICATIONS = f"{BASE}/api/v1/notifications"
SEARCH = f"{BASE}/api/v2/search"
TOKEN = "ZA-Yj3aBD8U8Cm7lKUp-lm9O9BmDgdhHzDeqsY8tlL0"
T0 = 1_800_000_000.0
FIRST = 110000000000000000
BRAND = Brand(name="Brightwave", handles=["@Brightwave"], keywords=["WaveBox"])


def load(name):
    return json.loads((PAYLOADS / name).read_text(encoding="utf-8"))


# --- builders: the documented Status with ids, times and Link headers varied ---

def status(n, content=None, **extra):
    """The documented Status, renumbered: status ``n`` is newer than status ``n - 1``."""
    item = copy.deepcopy(load("timelines_tag.json")[0])
    sid = str(FIRST + n)
    item.update(id=sid, uri=f"{BASE}/users/Gargron/statuses/{sid}", url=f"{BASE}/@Gargron/{sid}",
                content=content or f"<p>my <a href=\"{BASE}/tags/wavebox\" class=\"mention hashtag\">#<span>WaveBox"
                                   f"</span></a> drops wifi again ({n})</p>",
                created_at=(datetime(2026, 10, 1, 9, tzinfo=timezone.utc) + timedelta(minutes=n))
                .isoformat().replace("+00:00", ".000Z"))
    item.update(extra)
    return item


def link(url, items):
    """The ``Link`` header Mastodon sends with a page of ``items`` (newest first)."""
    ids = sorted((i["id"] for i in items), key=lambda i: (len(i), i))
    return {"Link": f'<{url}?max_id={ids[0]}>; rel="next", <{url}?min_id={ids[-1]}>; rel="prev"'}


def make_source(clock=None, **options):
    options = {"base_url": BASE, "hashtags": ["brightwave"], "initial_lookback_hours": 0, **options}
    config = MastodonSourceConfig().load(options)
    context = KitContext(instance="mastodon", brand=BRAND, secrets=frozenset({TOKEN}), clock=clock or FakeClock(T0))
    return MastodonSource(config, context)


@pytest.fixture
def api(ordered_responses):
    return ordered_responses


def params(**expected):
    return [matchers.query_param_matcher(expected, strict_match=False)]


# --- the documented examples ---

def test_the_documented_status_becomes_a_complete_mention(api):
    statuses = load("timelines_tag.json")
    api.get(TAG, json=statuses, headers=link(TAG, statuses), match=params(limit="40"))
    [only] = list(make_source().fetch(None))
    [m] = only.mentions
    assert m.id == "mastodon:mastodon.social/103270115826048975"
    assert m.text == ('"I lost my inheritance with one wrong digit on my sort code"\n\n'
                      "https://www.theguardian.com/money/2019/dec/07/"
                      "i-lost-my-193000-inheritance-with-one-wrong-digit-on-my-sort-code")
    assert m.created_at == datetime(2019, 12, 8, 3, 48, 33, 901000, tzinfo=timezone.utc) and m.lang == "en"
    assert (m.author.id, m.author.handle, m.author.name, m.author.followers, m.author.verified,
            m.author.profile_url) == ("1", "Gargron", "Eugen", 322930, True, "https://mastodon.social/@Gargron")
    assert (m.engagement.likes, m.engagement.reposts, m.engagement.replies) == (11, 6, 5)
    assert m.url == "https://mastodon.social/@Gargron/103270115826048975"
    assert m.reply_to is None and m.repost_of is None and m.addressed_to_brand is None
    assert only.cursor == {"tag:brightwave": {"min_id": "103270115826048975"}}
    assert "Authorization" not in api.calls[0].request.headers  # hashtags need no token here


def test_the_documented_notifications_give_mentions_addressed_to_the_brand(api):
    notes = load("notifications.json")
    api.get(NOTIFICATIONS, json=notes, headers=link(NOTIFICATIONS, notes), match=params(**{"types[]": "mention"}))
    source = make_source(hashtags=[], access_token=TOKEN)
    [only] = list(source.fetch(None))
    [m] = only.mentions  # the favourite is not a mention
    assert m.text == "@trwnh sup!" and m.addressed_to_brand is True
    assert m.reply_to == "mastodon:mastodon.social/103186038209478945"
    assert m.author.handle == "zsc" and m.author.followers == 44 and m.author.verified is False
    assert only.cursor == {"notifications": {"min_id": "34975861"}}  # notification ids, not status ids
    assert api.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_the_documented_search_result_is_read_with_its_content_warning(api):
    api.get(SEARCH, json=load("search_v2.json"), match=params(q="cats", type="statuses"))
    [only] = list(make_source(hashtags=[], search=True, search_terms=["cats"]).fetch(None))
    texts = [m.text for m in only.mentions]
    assert texts == ["cats\ncats never change", "Cats\n\nCats are inherently good at self-care.\n\n#cats"]
    assert only.cursor == {"search:cats": {"min_id": "103085519055545958"}}
    assert only.mentions[0].author.handle == "catstar@catgram.jp"


def test_reblogs_quotes_and_html_are_mapped(api):
    original = status(1, content="<p>WaveBox 4 is here &amp; it&#39;s fast: <a href=\"https://brightwave.example/"
                                 "wavebox-4\" rel=\"nofollow\"><span class=\"invisible\">https://</span><span class="
                                 "\"ellipsis\">brightwave.example/wave</span><span class=\"invisible\">box-4</span>"
                                 "</a></p>")
    boost = status(2, content="", reblog=original, favourites_count=0, reblogs_count=0, replies_count=0, url=None)
    quote = status(3, content="<p>finally!<br>about time</p>",
                   quote={"state": "accepted", "quoted_status": original})
    shallow = status(4, quote={"state": "accepted", "quoted_status_id": "999"}, spoiler_text="router talk")
    items = [shallow, quote, boost]
    api.get(TAG, json=items, headers=link(TAG, items))
    by_id = {m.native_id.split("/")[1]: m for m in list(make_source().fetch(None))[0].mentions}
    rebloged = by_id[boost["id"]]
    assert rebloged.repost_of == f"mastodon:mastodon.social/{original['id']}"
    assert rebloged.text == "WaveBox 4 is here & it's fast: https://brightwave.example/wavebox-4"
    assert rebloged.url == original["url"]
    assert by_id[quote["id"]].quote_of == f"mastodon:mastodon.social/{original['id']}"
    assert by_id[quote["id"]].text == "finally!\nabout time"
    assert by_id[shallow["id"]].quote_of == "mastodon:mastodon.social/999"
    assert by_id[shallow["id"]].text.startswith("router talk\n\nmy #WaveBox drops wifi again")


def test_html_is_text_with_mentions_as_written_and_links_in_full():
    html = ('<p><span class="h-card"><a href="https://mastodon.social/@BrightwaveHelp" class="u-url mention">@'
            '<span>BrightwaveHelp</span></a></span> help!</p><p>see <a href="https://status.example/x?a=1&amp;b=2">'
            '<span class="invisible">https://</span>status.example/x…</a> &lt;3</p>')
    assert html_to_text(html) == "@BrightwaveHelp help!\n\nsee https://status.example/x?a=1&b=2 <3"
    assert html_to_text("plain words") == "plain words"


# --- cursors ---

def test_an_incremental_run_asks_for_what_is_newer_than_min_id(api):
    api.get(TAG, json=[], match=params(min_id=str(FIRST + 9)))
    assert list(make_source().fetch({"tag:brightwave": {"min_id": str(FIRST + 9)}})) == []


def test_pages_move_forward_by_min_id_and_each_resumes_right_after_itself(api):
    first_page, second_page = [status(12), status(11)], [status(13)]
    api.get(TAG, json=first_page, headers=link(TAG, first_page), match=params(min_id=str(FIRST + 10), limit="2"))
    api.get(TAG, json=second_page, headers=link(TAG, second_page), match=params(min_id=str(FIRST + 12)))
    pages = list(make_source(limit=2).fetch({"tag:brightwave": {"min_id": str(FIRST + 10)}}))
    assert [[m.native_id[-2:] for m in p.mentions] for p in pages] == [["12", "11"], ["13"]]
    assert [p.cursor for p in pages] == [{"tag:brightwave": {"min_id": str(FIRST + 12)}},
                                         {"tag:brightwave": {"min_id": str(FIRST + 13)}}]


def test_a_first_run_walks_back_to_its_lookback_then_goes_forward_from_the_newest(api):
    clock = FakeClock(T0)
    clock.now = datetime(2026, 10, 1, 9, 39, tzinfo=timezone.utc).timestamp()  # 30 minutes after status 9
    newer, older = [status(9), status(8)], [status(7), status(-100)]
    api.get(TAG, json=newer, headers=link(TAG, newer), match=params(limit="2"))
    api.get(TAG, json=older, headers=link(TAG, older), match=params(max_id=str(FIRST + 8)))
    pages = list(make_source(clock, limit=2, initial_lookback_hours=1).fetch(None))
    assert [[m.native_id[-1] for m in p.mentions] for p in pages] == [["9", "8"], ["7"]]  # -100 is too old
    assert [p.cursor for p in pages] == [
        {"tag:brightwave": {"max_id": str(FIRST + 8), "newest": str(FIRST + 9), "floor": clock.now - 3600}},
        {"tag:brightwave": {"min_id": str(FIRST + 9)}}]


def test_without_a_link_header_the_newest_id_is_the_cursor(api):
    api.get(TAG, json=[status(5), status(7), status(6)])
    [only] = list(make_source().fetch({"tag:brightwave": {"min_id": str(FIRST + 4)}}))
    assert only.cursor == {"tag:brightwave": {"min_id": str(FIRST + 7)}}


MASTODON_CONFIG = """
[brand]
name = "Brightwave"
handles = ["@Brightwave"]

[store]
url = "sqlite:///store.db"

[sources.mastodon]
base_url = "https://mastodon.social"
hashtags = ["brightwave"]
limit = 2
"""


def test_killed_mid_run_resumes_through_the_pipeline_with_no_gap(api, write_config, plugins, monkeypatch,
                                                                kill_while_storing, stored_ids):
    monkeypatch.delenv("MASTODON_ACCESS_TOKEN", raising=False)
    config = load_config(write_config(MASTODON_CONFIG), plugins)
    first = Pipeline(config, plugins)
    with first.store.page() as tx:  # an earlier run left this cursor
        tx.save_page("mastodon", {"tag:brightwave": {"min_id": str(FIRST)}}, [], [], {})
    pages = [[status(2), status(1)], [status(4), status(3)], [status(5)]]
    api.get(TAG, json=pages[0], headers=link(TAG, pages[0]), match=params(min_id=str(FIRST)))
    api.get(TAG, json=pages[1], headers=link(TAG, pages[1]), match=params(min_id=str(FIRST + 2)))
    kill_while_storing(first, page=2)
    with pytest.raises(KeyboardInterrupt):
        first.listen()
    assert stored_ids(first) == [f"mastodon.social/{FIRST + n}" for n in (1, 2)]
    first.close()

    api.get(TAG, json=pages[1], headers=link(TAG, pages[1]), match=params(min_id=str(FIRST + 2)))
    api.get(TAG, json=pages[2], headers=link(TAG, pages[2]), match=params(min_id=str(FIRST + 4)))
    again = Pipeline(load_config(config.path, plugins), plugins)
    stats = again.listen()
    assert stats.errors == {} and stats.fetched == 3 and stats.duplicates == 0
    assert stored_ids(again) == [f"mastodon.social/{FIRST + n}" for n in range(1, 6)]
    assert again.store.get_cursor("mastodon") == {"tag:brightwave": {"min_id": str(FIRST + 5)}}
    again.close()


# --- rate limits, auth, malformed payloads, config ---

def test_a_spent_budget_waits_until_the_iso_reset_time(api):
    clock = FakeClock(T0)
    reset = datetime.fromtimestamp(T0 + 25, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    first_page = [status(2), status(1)]
    api.get(TAG, json=first_page, headers={**link(TAG, first_page), "X-RateLimit-Limit": "300",
                                           "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset})
    api.get(TAG, json=[status(3)], match=params(min_id=str(FIRST + 2)))
    assert len(list(make_source(clock, limit=2).fetch({"tag:brightwave": {"min_id": str(FIRST)}}))) == 2
    assert clock.waits == [25.0]


def test_a_rejected_token_and_a_missing_one_are_auth_errors_in_plain_words(api):
    api.get(NOTIFICATIONS, status=401, json={"error": "The access token is invalid"})
    with pytest.raises(AuthError) as info:
        list(make_source(hashtags=[], access_token=TOKEN).fetch(None))
    assert "did not accept the access token in MASTODON_ACCESS_TOKEN" in str(info.value)
    assert TOKEN not in str(info.value)
    api.get(TAG, status=401, json={"error": "The access token is invalid"})
    with pytest.raises(AuthError, match="keeps /api/v1/timelines/tag/brightwave to signed-in users"):
        list(make_source().fetch(None))
    api.get(NOTIFICATIONS, status=403, json={"error": "This action is outside the authorized scopes"})
    with pytest.raises(AuthError, match="lacks the read:notifications scope"):
        list(make_source(hashtags=[], access_token=TOKEN).fetch(None))


def test_an_unreadable_status_is_reported_by_id_and_field_and_the_rest_kept(api):
    no_account = status(3)
    del no_account["account"]
    bad_time = status(2, created_at="yesterday")
    bad_count = status(4, favourites_count="many")
    items = [bad_count, no_account, bad_time, status(1)]
    api.get(TAG, json=items, headers=link(TAG, items))
    [only] = list(make_source().fetch(None))
    assert [m.native_id for m in only.mentions] == [f"mastodon.social/{FIRST + 1}"]
    assert only.errors == [
        f"tag:brightwave: status {FIRST + 4}: favourites_count: expected a count, got 'many'",
        f"tag:brightwave: status {FIRST + 3}: account: missing",
        f"tag:brightwave: status {FIRST + 2}: created_at: not an ISO 8601 timestamp: 'yesterday'"]


def test_notifications_without_a_token_name_the_field_and_the_variable(monkeypatch):
    monkeypatch.delenv("MASTODON_ACCESS_TOKEN", raising=False)
    with pytest.raises(ValidationError) as info:
        MastodonSourceConfig().load({"base_url": BASE, "notifications": True})
    assert "MASTODON_ACCESS_TOKEN" in info.value.messages["access_token"][0]
    with pytest.raises(ValidationError) as missing:
        MastodonSourceConfig().load({})
    assert "base_url" in missing.value.messages
    monkeypatch.setenv("MASTODON_ACCESS_TOKEN", TOKEN)
    source = make_source()  # a token in the environment turns notifications on
    assert [s.key for s in source.streams] == ["tag:brightwave", "notifications"]


def test_hashtags_default_to_the_brand_name_and_keywords():
    assert [s.key for s in make_source(hashtags=None).streams] == ["tag:brightwave", "tag:wavebox"]


# --- backfill and check ---

def test_backfill_walks_back_by_max_id_to_since(api):
    since = datetime(2026, 10, 1, 9, 5, tzinfo=timezone.utc)  # status 5's time
    newer, older = [status(9), status(8)], [status(7), status(4)]
    api.get(TAG, json=newer, headers=link(TAG, newer), match=params(limit="2"))
    api.get(TAG, json=older, headers=link(TAG, older), match=params(max_id=str(FIRST + 8)))
    pages = list(make_source(limit=2).backfill(since))
    assert [[m.native_id[-1] for m in p.mentions] for p in pages] == [["9", "8"], ["7"]]
    assert [p.cursor for p in pages] == [{"tag:brightwave": {"max_id": str(FIRST + 8)}},
                                         {"tag:brightwave": {"done": True}}]


def test_check_reaches_the_instance_and_proves_the_token(api):
    api.get(f"{BASE}/api/v2/instance", json=load("instance_v2.json"))
    api.get(f"{BASE}/api/v1/accounts/verify_credentials", json=load("verify_credentials.json"))
    api.get(NOTIFICATIONS, json=[], match=params(limit="1"))
    said = make_source(access_token=TOKEN).check()
    assert "instance Mastodon" in said and "token accepted for @trwnh" in said
    assert "would fetch tag:brightwave, notifications" in said


def test_check_explains_an_unknown_instance(api):
    api.get("https://nowhere.example/api/v2/instance", body=requests.ConnectionError("no such host"))
    source = make_source(base_url="https://nowhere.example")
    source.http.max_attempts = 1
    with pytest.raises(RetriableError, match="nothing answers at https://nowhere.example"):
        source.check()
    api.get("https://blog.example/api/v2/instance", status=404, body="<html>Not Found</html>")
    with pytest.raises(FatalError, match="does not answer like a Mastodon instance"):
        make_source(base_url="https://blog.example").check()


# --- the plugin kit's source contract ---

KIT_BASE = "https://social.example"


class TestMastodonContract(SourceContract):
    plugin = MastodonSource
    config = {"base_url": KIT_BASE, "hashtags": ["brightwave"], "initial_lookback_hours": 0, "limit": 3,
              "access_token": "kit-token-0123456789", "notifications": False}
    invalid_configs = [({"base_url": "not a url"}, "base_url"), ({"limit": 41}, "limit"),
                       ({"hashtags": ["two words"]}, "hashtags"), ({"base_url": None}, "base_url")]

    def native_id(self, item):
        return f"social.example/{item.id}"

    def serve(self, upstream, api):
        url = f"{KIT_BASE}/api/v1/timelines/tag/brightwave"

        def as_status(item):
            account = {"id": item.author_id, "username": item.author_handle, "acct": item.author_handle,
                       "display_name": item.author_name, "url": f"{KIT_BASE}/@{item.author_handle}",
                       "followers_count": 10, "following_count": 1, "statuses_count": 5, "fields": [], "emojis": []}
            return {"id": str(item.id), "created_at": item.created_iso, "content": f"<p>{html.escape(item.text)}</p>",
                    "spoiler_text": "", "visibility": "public", "language": "en", "sensitive": False,
                    "uri": f"{KIT_BASE}/users/{item.author_handle}/statuses/{item.id}",
                    "url": f"{KIT_BASE}/@{item.author_handle}/{item.id}", "account": account, "reblog": None,
                    "in_reply_to_id": str(item.reply_to) if item.reply_to else None, "replies_count": item.replies, "reblogs_count": 0,
                    "favourites_count": item.likes, "mentions": [], "tags": [], "emojis": [], "media_attachments": []}

        def timeline(request):
            # max_id pages back from the newest; min_id returns the chunk immediately newer than it.
            limit = int(request.params.get("limit", 20))
            if request.params.get("min_id"):
                chunk = list(reversed(upstream.after(int(request.params["min_id"]), limit)))
            else:
                max_id = request.params.get("max_id")
                chunk = upstream.before(int(max_id) if max_id else None, limit)
            headers = {"Content-Type": "application/json"}
            if chunk:
                headers.update(link(url, [{"id": str(i.id)} for i in chunk]))
            return 200, headers, json.dumps([as_status(i) for i in chunk])

        def mastodon_error(status):
            return {"Content-Type": "application/json"}, json.dumps({"error": HTTPStatus(status).phrase})

        def context(request):
            # A status's ancestors, oldest first: a thread's root comes first.
            status_id = int(request.path_url.split("/")[-2])
            item = next(i for i in upstream.items if i.id == status_id)
            ancestors = [i for i in upstream.items if item.root is not None and i.id in (item.root, item.reply_to)]
            return 200, {"Content-Type": "application/json"}, json.dumps(
                {"ancestors": [as_status(i) for i in ancestors], "descendants": []})

        api.add_callback("GET", url, callback=upstream.guard(timeline, error_body=mastodon_error))
        api.add_callback("GET", re.compile(rf"{re.escape(KIT_BASE)}/api/v1/statuses/\d+/context"), callback=context)


# --- threads: in_reply_to_id is the parent, the context endpoint finds an unknown root ---

def context_of(*ancestors):
    """``GET /api/v1/statuses/:id/context`` as Mastodon documents it: ancestors oldest first."""
    return {"ancestors": [status(n) for n in ancestors], "descendants": []}


def test_replies_carry_their_parent_and_root_with_one_context_call_per_unknown_parent(api):
    root, answer = status(1), status(2, in_reply_to_id=str(FIRST + 1))
    # Two replies to a status the page does not hold: its root is asked for once.
    far_a, far_b = status(3, in_reply_to_id=str(FIRST - 5)), status(4, in_reply_to_id=str(FIRST - 5))
    statuses = [far_b, far_a, answer, root]
    api.get(TAG, json=statuses, headers=link(TAG, statuses), match=params(limit="40"))
    api.get(f"{BASE}/api/v1/statuses/{FIRST + 3}/context", json=context_of(-9, -5))
    [only] = list(make_source().fetch(None))
    by_n = {m.native_id.rsplit("/", 1)[1]: m for m in only.mentions}
    ref = lambda n: f"mastodon:mastodon.social/{FIRST + n}"  # noqa: E731
    assert (by_n[str(FIRST + 1)].reply_to, by_n[str(FIRST + 1)].conversation) == (None, None)
    assert (by_n[str(FIRST + 2)].reply_to, by_n[str(FIRST + 2)].conversation) == (ref(1), ref(1))
    for n in (3, 4):
        assert (by_n[str(FIRST + n)].reply_to, by_n[str(FIRST + n)].conversation) == (ref(-5), ref(-9))
    assert by_n[str(FIRST + 1)].conversation_id == ref(1)


def test_the_roots_found_are_cached_across_pages(api):
    source = make_source(limit=1)
    first, second = [status(3, in_reply_to_id=str(FIRST - 5))], [status(4, in_reply_to_id=str(FIRST - 5))]
    api.get(TAG, json=first, headers=link(TAG, first), match=params(min_id=str(FIRST + 2)))
    api.get(f"{BASE}/api/v1/statuses/{FIRST + 3}/context", json=context_of(-9, -5))
    api.get(TAG, json=second, headers=link(TAG, second), match=params(min_id=str(FIRST + 3)))
    api.get(TAG, json=[], match=params(min_id=str(FIRST + 4)))
    pages = list(source.fetch({"tag:brightwave": {"min_id": str(FIRST + 2)}}))
    assert [m.conversation for p in pages for m in p.mentions] == [f"mastodon:mastodon.social/{FIRST - 9}"] * 2


def test_an_unreachable_context_leaves_the_reply_keyed_by_its_parent(api, caplog):
    statuses = [status(3, in_reply_to_id=str(FIRST - 5))]
    api.get(TAG, json=statuses, headers=link(TAG, statuses), match=params(limit="40"))
    api.get(f"{BASE}/api/v1/statuses/{FIRST + 3}/context", status=404, json={"error": "Record not found"})
    [only] = list(make_source().fetch(None))
    [m] = only.mentions
    assert m.conversation is None and m.conversation_id == f"mastodon:mastodon.social/{FIRST - 5}"
    assert "thread root" in caplog.text and m.id in caplog.text
