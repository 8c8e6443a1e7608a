"""``socialcrm sources test NAME`` and ``socialcrm backfill SOURCE --since DATE``, through the real CLI."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import responses
from click.testing import CliRunner
from responses import matchers

from socialcrm.core.cli.main import main
from socialcrm.core.store import Store

PAYLOADS = Path(__file__).parent / "payloads"
PDS = "https://bsky.social/xrpc/"
HN = "https://hn.algolia.com/api/v1/search_by_date"
PASSWORD = "abcd-efgh-ijkl-mnop"


@pytest.fixture
def api():
    with responses.RequestsMock(assert_all_requests_are_fired=True,
                                registry=responses.registries.OrderedRegistry) as mock:
        yield mock


@pytest.fixture
def feed_server():
    """A 127.0.0.1 server: /rss2sample.xml is the RSS 2.0 specification's sample, anything else 404."""
    sample = (PAYLOADS / "rss" / "rss2sample.xml").read_bytes()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            found = self.path == "/rss2sample.xml"
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", "application/rss+xml" if found else "text/html")
            self.send_header("ETag", '"v1"')
            body = sample if found else b"<h1>Not Found</h1>"
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


CONFIG = """
[brand]
name = "Brightwave"
keywords = ["WaveBox"]

[store]
url = "sqlite:///store.db"

[sources.sky]
plugin = "bluesky"
identifier = "brightwave.bsky.social"
app_password = "${{BLUESKY_APP_PASSWORD}}"
queries = ["Brightwave"]

[sources.hn]
plugin = "hackernews"
queries = ["Brightwave"]
hits_per_page = 1
{hn_extra}

[sources.news]
plugin = "rss"
feeds = ["{feed}"]

[sources.file]
plugin = "jsonl"
path = "mentions.jsonl"
"""


@pytest.fixture
def config(write_config, monkeypatch, feed_server):
    monkeypatch.setenv("BLUESKY_APP_PASSWORD", PASSWORD)

    def write(feed="/rss2sample.xml", hn_extra=""):
        return str(write_config(CONFIG.format(feed=feed_server + feed, hn_extra=hn_extra)))
    return write


def invoke(*args):
    return CliRunner().invoke(main, list(args))


def payload(path):
    return json.loads((PAYLOADS / path).read_text(encoding="utf-8"))


# --- sources test ---

def test_a_working_bluesky_account_says_who_it_is_and_what_it_would_fetch(api, config):
    api.post(PDS + "com.atproto.server.createSession", json=payload("bluesky/createSession.json"),
             match=[matchers.json_params_matcher({"identifier": "brightwave.bsky.social", "password": PASSWORD})])
    api.get(PDS + "app.bsky.feed.searchPosts", json=payload("bluesky/searchPosts.docs-example.json"),
            match=[matchers.query_param_matcher({"q": "Brightwave", "limit": "1", "sort": "latest"})])
    api.get(PDS + "app.bsky.notification.listNotifications", json={"notifications": []})
    result = invoke("sources", "test", "sky", "--config", config())
    assert result.exit_code == 0, result.output
    assert "source sky (bluesky): ok" in result.output
    assert "logged in to https://bsky.social as @brightwave.bsky.social (did:plc:brightwave0000000000000a)" \
        in result.output
    assert "would fetch: posts matching 'Brightwave' (searchPosts, latest first); mention, reply, quote " \
           "notifications of brightwave.bsky.social" in result.output


def test_a_refused_app_password_is_explained_and_fails(api, config):
    api.post(PDS + "com.atproto.server.createSession", status=401,
             json={"error": "AuthenticationRequired", "message": "Invalid identifier or password"})
    result = invoke("sources", "test", "sky", "--config", config())
    assert result.exit_code == 1
    assert "source sky (bluesky) FAILED: the credentials were refused or lack a permission" in result.output
    assert "check `identifier` and the app password in `app_password`" in result.output
    assert PASSWORD not in result.output


def test_an_unknown_host_is_explained_at_once_without_retrying(api, config):
    result = invoke("sources", "test", "hn", "--config", config(hn_extra='api = "https://hn.nowhere.example/v1"'))
    assert result.exit_code == 1
    assert ("source hn (hackernews) FAILED: the service could not be reached, or is failing right now: "
            "hn.nowhere.example cannot be reached (unknown host, refused, or no network): check `api`") \
        in result.output
    assert len(api.calls) == 1  # one attempt: a check answers at once


def test_hacker_news_check_shows_the_hit_counts(api, config):
    api.get(HN, json=payload("hackernews/search_by_date.docs-example.json"),
            match=[matchers.query_param_matcher({"query": "Brightwave", "hitsPerPage": "1"}, strict_match=False)])
    result = invoke("sources", "test", "hn", "--config", config())
    assert result.exit_code == 0, result.output
    assert "'Brightwave': 11 hit(s) on HN ((story,comment))" in result.output


def test_a_feed_that_is_not_there_is_explained(config, feed_server):
    result = invoke("sources", "test", "news", "--config", config(feed="/gone.xml"))
    assert result.exit_code == 1
    assert (f"source news (rss) FAILED: the service refused the request: feed not found at {feed_server}/gone.xml "
            "(404): check the address in `feeds`") in result.output


def test_a_working_feed_shows_its_title_and_entries(config, feed_server):
    result = invoke("sources", "test", "news", "--config", config())
    assert result.exit_code == 0, result.output
    assert f"{feed_server}/rss2sample.xml: 'Liftoff News', 4 entries, ETag \"v1\"" in result.output


def test_an_unknown_source_name_lists_the_configured_ones(config):
    result = invoke("sources", "test", "nope", "--config", config())
    assert result.exit_code != 0
    assert "has no [sources.nope] block (sources: sky, hn, news, file)" in result.output


# --- backfill ---

def _hn_page(object_id, when, page, pages):
    hit = {"title": f"Brightwave story {object_id}", "url": None, "author": "alice", "points": 3,
           "story_text": None, "comment_text": None, "_tags": ["story", "author_alice", f"story_{object_id}"],
           "num_comments": 0, "objectID": str(object_id), "story_id": object_id,
           "created_at": "2027-01-14T10:00:00.000Z", "created_at_i": when}
    return {"hits": [hit], "page": page, "nbHits": pages, "nbPages": pages, "hitsPerPage": 1,
            "processingTimeMS": 1, "query": "Brightwave", "params": "query=Brightwave"}


def test_backfill_pulls_history_resumes_after_an_interruption_and_leaves_the_live_cursor_alone(api, config):
    path = config()
    since = 1_799_539_200  # 2027-01-10T00:00:00Z

    def interrupted(request):
        raise KeyboardInterrupt()

    def page(number):
        return [matchers.query_param_matcher({"page": str(number)}, strict_match=False)]

    api.get(HN, json=_hn_page(103, since + 300_000, 0, 3), match=page(0))
    api.get(HN, json=_hn_page(102, since + 200_000, 1, 3), match=page(1))
    api.add_callback("GET", HN, callback=interrupted)
    result = invoke("backfill", "hn", "--since", "2027-01-10", "--config", path)
    assert result.exit_code == 130 and "interrupted after 2 pages; run the same command again to resume" \
        in result.output
    filters = {c.request.params["numericFilters"].split(",")[0] for c in api.calls}
    assert filters == {f"created_at_i>={since}"}
    api.reset()
    api.get(HN, json=_hn_page(101, since + 100_000, 2, 3), match=page(2))
    result = invoke("backfill", "hn", "--since", "2027-01-10", "--config", path)
    assert result.exit_code == 0, result.output
    assert "resuming the backfill of hn since 2027-01-10T00:00:00Z" in result.output
    assert "backfill of hn since 2027-01-10T00:00:00Z complete: 1 pages, 1 mentions, 1 new records" in result.output
    store = Store(f"sqlite:///{Path(path).parent / 'store.db'}")
    assert store.counts()["mentions"] == 3
    assert store.get_cursor("hn#backfill")["done"] is True
    assert store.get_cursor("hn") is None  # the live cursor is untouched
    store.close()
    again = invoke("backfill", "hn", "--since", "2027-01-10", "--config", path)
    assert again.exit_code == 0 and "already complete (--restart runs it again)" in again.output


def test_backfill_stops_with_a_plain_error_and_keeps_what_it_stored(api, config):
    api.post(PDS + "com.atproto.server.createSession", status=401,
             json={"error": "AuthenticationRequired", "message": "Invalid identifier or password"})
    result = invoke("backfill", "sky", "--since", "2027-01-10", "--config", config())
    assert result.exit_code == 1
    assert "backfill of sky stopped after 0 pages: the credentials were refused or lack a permission" in result.output
    assert "run the same command again to resume" in result.output


def test_a_source_that_cannot_backfill_says_so(config):
    result = invoke("backfill", "file", "--since", "2027-01-10", "--config", config())
    assert result.exit_code == 1 and "source file (jsonl) cannot backfill" in result.output
