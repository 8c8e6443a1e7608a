"""The hackernews source against the HN Search API (Algolia), answers shaped as its documentation shows."""
import json
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest
from marshmallow import ValidationError
from responses import matchers

from socialcrm.core.sdk.brand import Brand
from socialcrm.core.engine.config import load_config
from socialcrm.core.sdk.errors import AuthError, FatalError
from socialcrm.core.engine.pipeline import Pipeline
from socialcrm.plugins.sources.hackernews import HackerNewsSource
from socialcrm.testing import FakeClock, KitContext, SourceContract

PAYLOADS = Path(__file__).parent / "payloads" / "hackernews"
URL = "https://hn.algolia.com/api/v1/search_by_date"
T0 = 1_800_000_000  # 2027-01-15T08:00:00Z
HIT_KEYS = {"title", "url", "author", "points", "story_text", "comment_text", "_tags", "num_comments", "objectID",
            "_highlightResult", "created_at", "created_at_i", "story_id", "story_title", "story_url", "parent_id"}


def payload(name):
    return json.loads((PAYLOADS / name).read_text(encoding="utf-8"))


def story(object_id, when, title="Brightwave raises prices", author="alice", points=10, comments=3, url=None,
          text=None):
    return {"title": title, "url": url, "author": author, "points": points, "story_text": text,
            "comment_text": None, "_tags": ["story", f"author_{author}", f"story_{object_id}"],
            "num_comments": comments, "objectID": str(object_id), "story_id": object_id,
            "created_at": datetime.fromtimestamp(when, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "created_at_i": when}


def comment(object_id, when, text, parent, story_id=None, author="bob"):
    story_id = story_id or parent
    return {"author": author, "comment_text": text, "_tags": ["comment", f"author_{author}", f"story_{story_id}"],
            "objectID": str(object_id), "parent_id": parent, "story_id": story_id, "story_title": "Brightwave raises",
            "story_url": None, "points": None, "title": None, "url": None, "story_text": None, "num_comments": None,
            "created_at": datetime.fromtimestamp(when, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "created_at_i": when}


def results(hits, page=0, pages=1, total=None, per_page=100, query="Brightwave"):
    for hit in hits:  # the builders may only use attributes the HN indexer gives hits
        assert set(hit) <= HIT_KEYS, set(hit) - HIT_KEYS
    return {"hits": hits, "page": page, "nbHits": len(hits) if total is None else total, "nbPages": pages,
            "hitsPerPage": per_page, "exhaustiveNbHits": True, "processingTimeMS": 1, "query": query,
            "params": f"query={query}"}


@pytest.fixture
def api(ordered_responses):
    return ordered_responses


def answer(api, body, status=200, headers=None, **params):
    expected = {k: str(v) for k, v in params.items()}
    match = [matchers.query_param_matcher(expected, strict_match=False)] if expected else []
    return api.get(URL, json=body, status=status, headers=headers, match=match)


def make(config=None, clock=None):
    options = {"queries": ["Brightwave"], **(config or {})}
    clock = clock or FakeClock(float(T0))
    context = KitContext("hn", Brand("Brightwave", keywords=["WaveBox"]), clock=clock)
    return HackerNewsSource(HackerNewsSource.ConfigSchema().load(options), context), clock


def ids(pages):
    return [m.native_id for p in pages for m in p.mentions]


# --- the recorded examples ---

def test_the_documented_answers_become_complete_mentions_and_records(api, write_config, plugins):
    answer(api, payload("search_by_date.docs-example.json"), query="Brightwave", tags="(story,comment)",
           numericFilters=f"created_at_i>=0,created_at_i<={T0}", hitsPerPage=100, page=0)
    answer(api, payload("search_by_date.comment.json"), query="WaveBox")
    path = write_config("""
        [brand]
        name = "Brightwave"
        keywords = ["WaveBox"]
        [store]
        url = "sqlite:///store.db"
        [sources.hn]
        plugin = "hackernews"
        initial_lookback_hours = 0
    """)
    pipeline = Pipeline(load_config(path, plugins), plugins)
    pipeline.sources["hn"].http.clock = FakeClock(float(T0))
    pages = []
    stats = pipeline.listen(on_page=lambda name, page: pages.append(page))
    assert stats.errors == {} and stats.records == 2
    (yc,), (sama,) = [p.mentions for p in pages]
    assert (yc.id, yc.text, yc.url, yc.created_at) == (
        "hackernews:1", "Y Combinator\nhttps://ycombinator.com", "https://news.ycombinator.com/item?id=1",
        datetime(2006, 10, 9, 18, 21, 51, tzinfo=timezone.utc))
    assert (yc.author.id, yc.author.handle, yc.author.name, yc.author.followers, yc.author.verified,
            yc.author.profile_url) == ("pg", "pg", "pg", 0, False, "https://news.ycombinator.com/user?id=pg")
    assert (yc.engagement.likes, yc.engagement.replies, yc.reply_to, yc.quote_of, yc.repost_of) == (57, 2, None, None,
                                                                                                    None)
    assert sama.text == '"the rising star of venture capital" -unknown VC eating lunch on SHR'
    assert (sama.reply_to, sama.author.handle, sama.engagement.likes) == ("hackernews:1", "sama", 5)
    record = pipeline.store.get_record("hackernews:15")
    assert record.content == sama.text and record.url == "https://news.ycombinator.com/item?id=15"
    cursor = pipeline.store.get_cursor("hn")["streams"]
    assert cursor["Brightwave"] == {"watermark": 1160418111, "seen": ["1"], "sweep": None}
    pipeline.close()


def test_comment_html_becomes_text_with_links_expanded(api):
    answer(api, results([comment(42, T0 - 60, 'Brightwave is down: <a href="https://status.brightwave.example/'
                                             'incidents/8812" rel="nofollow">https://status.brightwave.example/in...'
                                             '</a><p>Anyone else&#x27;s WaveBox &amp; router?', parent=41)]))
    (page,) = list(make()[0].fetch(None))
    assert page.mentions[0].text == ("Brightwave is down: https://status.brightwave.example/incidents/8812\n"
                                     "Anyone else's WaveBox & router?")
    assert page.mentions[0].reply_to == "hackernews:41"


# --- runs, pages and the cursor ---

def test_first_run_pages_through_then_the_next_run_reads_only_newer_hits(api):
    since = T0 - 24 * 3600
    answer(api, results([story(30, T0 - 100), story(29, T0 - 200)], pages=2, total=3),
           numericFilters=f"created_at_i>={since},created_at_i<={T0}", page=0)
    answer(api, results([comment(28, T0 - 300, "Brightwave again", parent=29)], page=1, pages=2, total=3),
           numericFilters=f"created_at_i>={since},created_at_i<={T0}", page=1)
    pages = list(make()[0].fetch(None))
    assert [ids([p]) for p in pages] == [["30", "29"], ["28"]]
    assert pages[0].cursor["streams"]["Brightwave"]["sweep"]["page"] == 1  # mid-sweep: resumes at page 1
    cursor = json.loads(json.dumps(pages[-1].cursor))
    assert cursor["streams"]["Brightwave"] == {"watermark": T0 - 100, "seen": ["30"], "sweep": None}
    api.reset()
    # The next run asks from the watermark second, inclusive; the hit seen at that second is dropped.
    answer(api, results([story(31, T0 + 50), story(30, T0 - 100)]),
           numericFilters=f"created_at_i>={T0 - 100},created_at_i<={T0 + 600}", page=0)
    again = list(make(clock=FakeClock(T0 + 600))[0].fetch(cursor))
    assert ids(again) == ["31"]
    assert again[-1].cursor["streams"]["Brightwave"]["watermark"] == T0 + 50


def test_a_mid_sweep_cursor_stored_by_an_earlier_version_resumes_at_its_page(api):
    cursor = {"v": 1, "streams": {"Brightwave": {"watermark": T0 - 1000, "seen": ["5"], "sweep": {
        "since": T0 - 1000, "until": T0, "page": 1, "top": T0 - 100, "top_seen": ["30"], "edge_seen": []}}}}
    answer(api, results([story(28, T0 - 300)], page=1, pages=2, total=101),
           numericFilters=f"created_at_i>={T0 - 1000},created_at_i<={T0}", page=1)
    pages = list(make(clock=FakeClock(T0 + 60))[0].fetch(cursor))
    assert ids(pages) == ["28"]
    assert pages[-1].cursor["streams"]["Brightwave"] == {"watermark": T0 - 100, "seen": ["30"], "sweep": None}


def test_a_window_beyond_the_pagination_limit_is_narrowed_and_read_to_the_end(api):
    # Algolia pages through the first N hits only (1,000 live; 4 here): 6 hits, 2 a page, 2 pages reachable.
    window = f"created_at_i>=0,created_at_i<={T0}"
    answer(api, results([story(6, T0 - 10), story(5, T0 - 20)], pages=2, total=6, per_page=2),
           numericFilters=window, page=0)
    answer(api, results([story(4, T0 - 30), story(3, T0 - 40)], page=1, pages=2, total=6, per_page=2),
           numericFilters=window, page=1)
    narrowed = f"created_at_i>=0,created_at_i<={T0 - 40}"
    answer(api, results([story(3, T0 - 40), story(2, T0 - 50)], pages=1, total=2, per_page=2),
           numericFilters=narrowed, page=0)
    pages = list(make({"hits_per_page": 2, "initial_lookback_hours": 0})[0].fetch(None))
    assert ids(pages) == ["6", "5", "4", "3", "2"]  # each once: the edge second is not read twice
    assert pages[-1].cursor["streams"]["Brightwave"]["watermark"] == T0 - 10


def test_a_crash_mid_run_resumes_at_the_next_page_through_the_pipeline(api, write_config, plugins):
    class Killed(BaseException):
        """The process dies."""

    def die(request):
        raise Killed()

    window = f"created_at_i>={T0 - 24 * 3600},created_at_i<={T0}"
    answer(api, results([story(9, T0 - 10)], pages=3, total=3, per_page=1), numericFilters=window, page=0)
    answer(api, results([story(8, T0 - 20)], page=1, pages=3, total=3, per_page=1), numericFilters=window, page=1)
    api.add_callback("GET", URL, callback=die)  # the process dies while asking for page 2
    path = write_config("""
        [brand]
        name = "Brightwave"
        [store]
        url = "sqlite:///store.db"
        [sources.hn]
        plugin = "hackernews"
        hits_per_page = 1
    """)
    config = load_config(path, plugins)

    def run():
        pipeline = Pipeline(config, plugins)
        clock = FakeClock(float(T0))
        pipeline.sources["hn"].http.sleep, pipeline.sources["hn"].http.clock = clock.sleep, clock
        try:
            assert pipeline.listen().errors == {}
            return pipeline.store.counts()["mentions"]
        finally:
            pipeline.close()

    with pytest.raises(Killed):
        run()
    assert [c.request.params["page"] for c in api.calls] == ["0", "1", "2"]
    api.reset()
    answer(api, results([story(7, T0 - 30)], page=2, pages=3, total=3, per_page=1), numericFilters=window, page=2)
    assert run() == 3  # pages 0 and 1 were kept, page 2 read on restart: no gap, nothing twice
    assert [c.request.params["page"] for c in api.calls] == ["2"]


# --- rate limits, auth, malformed answers ---

def test_a_429_waits_exactly_as_long_as_retry_after(api):
    answer(api, {"message": "Too many requests", "status": 429}, status=429, headers={"Retry-After": "13"})
    answer(api, results([story(1, T0 - 5)]))
    source, clock = make()
    assert ids(source.fetch(None)) == ["1"]
    assert clock.waits == [13.0]


def test_a_refusal_stops_this_source_but_not_the_others(api, write_config, plugins, mention_json, write_mentions,
                                                        tmp_path):
    api.get(URL, status=403, json={"message": "Invalid Application-ID or API key", "status": 403})
    write_mentions(tmp_path / "mentions.jsonl", [mention_json("1", "Brightwave is great")])
    path = write_config("""
        [brand]
        name = "Brightwave"
        [store]
        url = "sqlite:///store.db"
        [sources.hn]
        plugin = "hackernews"
        [sources.file]
        plugin = "jsonl"
        path = "mentions.jsonl"
    """)
    pipeline = Pipeline(load_config(path, plugins), plugins)
    stats = pipeline.listen()
    assert stats.errors["hn"].startswith("authentication failed") and "403" in stats.errors["hn"]
    assert "file" not in stats.errors and pipeline.store.counts()["mentions"] == 1
    pipeline.close()
    api.get(URL, status=401, json={"message": "nope"})
    with pytest.raises(AuthError, match="401"):
        list(make()[0].fetch(None))


def test_unreadable_hits_are_reported_by_field_and_the_rest_of_the_page_kept(api):
    no_id = story(5, T0 - 10)
    del no_id["objectID"]
    no_author = story(4, T0 - 20)
    no_author["author"] = None
    empty = comment(3, T0 - 30, None, parent=1)
    no_time = story(2, T0 - 40)
    del no_time["created_at_i"], no_time["created_at"]
    answer(api, results([story(6, T0 - 5), no_id, no_author, empty, no_time, story(1, T0 - 50)]))
    (page,) = list(make()[0].fetch(None))
    assert ids([page]) == ["6", "1"]
    assert page.errors == ["hit #1: objectID: missing", "hit 4: author: missing", "hit 3: comment_text: missing",
                           "hit 2: created_at_i: missing (and created_at is not a timestamp either)"]


def test_an_answer_without_nb_pages_is_a_clear_error(api):
    answer(api, {"hits": [], "nbHits": 0})
    with pytest.raises(FatalError, match="without a valid `nbPages`"):
        list(make()[0].fetch(None))


def test_config_is_validated_by_name():
    with pytest.raises(ValidationError) as info:
        HackerNewsSource.ConfigSchema().load({"hits_per_page": 0, "api": "not a url", "qeries": ["x"]})
    assert set(info.value.messages) == {"hits_per_page", "api", "qeries"}


# --- the plugin kit's contract ---

class TestHackerNewsContract(SourceContract):
    plugin = HackerNewsSource
    config = {"queries": ["Brightwave"], "hits_per_page": 3, "initial_lookback_hours": 0}
    invalid_configs = [({"hits_per_page": 0}, "hits_per_page"), ({"api": "nowhere"}, "api")]

    def serve(self, upstream, api):
        def hit(i):
            if i.reply_to:  # a comment: story_id is the story the thread hangs from, parent_id what it answers
                return {"title": None, "url": None, "author": i.author_handle, "points": None, "story_text": None,
                        "comment_text": f"<p>{i.text}</p>", "_tags": ["comment", f"author_{i.author_handle}",
                                                                    f"story_{i.root}"],
                        "num_comments": None, "objectID": str(i.id), "story_id": i.root, "parent_id": i.reply_to,
                        "created_at": i.created_iso, "created_at_i": int(i.created_at.timestamp())}
            return {"title": i.text, "url": None, "author": i.author_handle, "points": i.likes, "story_text": None,
                    "comment_text": None, "_tags": ["story", f"author_{i.author_handle}", f"story_{i.id}"],
                    "num_comments": i.replies, "objectID": str(i.id), "story_id": i.id,
                    "created_at": i.created_iso, "created_at_i": int(i.created_at.timestamp())}

        def search_by_date(request):
            low, high = map(int, re.fullmatch(r"created_at_i>=(\d+),created_at_i<=(\d+)",
                                              request.params["numericFilters"]).groups())
            found = [i for i in upstream.newest() if low <= int(i.created_at.timestamp()) <= high]
            per_page, page = int(request.params["hitsPerPage"]), int(request.params["page"])
            hits = [hit(i) for i in found[page * per_page:(page + 1) * per_page]]
            body = results(hits, page=page, pages=-(-len(found) // per_page), total=len(found), per_page=per_page)
            return 200, {"Content-Type": "application/json"}, json.dumps(body)

        api.add_callback("GET", URL, callback=upstream.guard(search_by_date))


# --- threads: story_id is the story a comment hangs from, parent_id what it answers ---

def test_a_comment_names_its_story_as_the_conversation(api):
    answer(api, payload("search_by_date.comment.json"))
    source, _ = make({"initial_lookback_hours": 0})
    [comment] = [m for page in source.fetch(None) for m in page.mentions]
    assert (comment.id, comment.conversation, comment.reply_to) == ("hackernews:15", "hackernews:1", "hackernews:1")


def test_a_story_is_its_own_conversation(api):
    answer(api, payload("search_by_date.docs-example.json"))
    source, _ = make({"initial_lookback_hours": 0})
    [story] = [m for page in source.fetch(None) for m in page.mentions]
    assert story.conversation is None and story.reply_to is None and story.conversation_id == "hackernews:1"
