"""The rss source against feeds served by a real HTTP server on 127.0.0.1 (port 0)."""
import email.utils
import hashlib
import json
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
import responses
from marshmallow import ValidationError

from socialcrm.core.sdk.brand import Brand
from socialcrm.core.engine.config import load_config
from socialcrm.core.sdk.errors import AuthError
from socialcrm.core.engine.pipeline import Pipeline
from socialcrm.plugins.sources.rss import RssSource
from socialcrm.testing import FakeClock, KitContext, SourceContract

PAYLOADS = Path(__file__).parent / "payloads" / "rss"
T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z
LAST_MODIFIED = "Fri, 15 Jan 2027 07:00:00 GMT"


class FeedServer:
    """Serves documents by path; honours If-None-Match / If-Modified-Since; records every request."""

    def __init__(self):
        self.docs = {}      # path -> (body bytes, content type, etag or None, last-modified or None)
        self.scripted = {}  # path -> list of (status, headers, body) answered first, in order
        self.requests = []  # (path, headers dict)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append((self.path, dict(self.headers)))
                if server.scripted.get(self.path):
                    status, headers, body = server.scripted[self.path].pop(0)
                    return self._send(status, headers, body)
                if self.path not in server.docs:
                    return self._send(404, {"Content-Type": "text/html"}, b"<h1>Not Found</h1>")
                body, kind, etag, modified = server.docs[self.path]
                if (etag and self.headers.get("If-None-Match") == etag) or (
                        modified and not etag and self.headers.get("If-Modified-Since") == modified):
                    return self._send(304, {"ETag": etag} if etag else {}, b"")
                headers = {"Content-Type": kind}
                if etag:
                    headers["ETag"] = etag
                if modified:
                    headers["Last-Modified"] = modified
                self._send(200, headers, body)

            def _send(self, status, headers, body):
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def url(self, path):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def put(self, path, body, kind="application/rss+xml; charset=utf-8", etag=True, modified=LAST_MODIFIED):
        body = body.encode("utf-8") if isinstance(body, str) else body
        tag = f'"{hashlib.sha1(body).hexdigest()[:12]}"' if etag else None
        self.docs[path] = (body, kind, tag, modified)
        return tag

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    feeds = FeedServer()
    yield feeds
    feeds.close()


def rss(items, title="Brightwave Watch", language="en-us"):
    """An RSS 2.0 document in the shape of the specification's sample, ``items`` as (guid, title, html, when)."""
    entries = "".join(
        f"<item><title>{t}</title><link>https://news.example.com/{g}</link>"
        f"<description><![CDATA[{d}]]></description>"
        f"<pubDate>{email.utils.format_datetime(w, usegmt=True)}</pubDate><guid isPermaLink=\"false\">{g}</guid></item>"
        for g, t, d, w in items)
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>{title}</title>'
            f"<link>https://news.example.com/</link><description>News</description><language>{language}</language>"
            f"{entries}</channel></rss>")


def at(hour, minute=0):
    return datetime(2027, 1, 15, hour, minute, tzinfo=timezone.utc)


def make(feeds, clock=None, **config):
    options = {"feeds": feeds, **config}
    clock = clock or FakeClock(T0)
    source = RssSource(RssSource.ConfigSchema().load(options), KitContext("news", Brand("Brightwave"), clock=clock))
    return source, clock


def ids(pages):
    return [m.native_id for p in pages for m in p.mentions]


# --- the recorded examples ---

def test_the_specification_samples_become_complete_mentions_and_records(server, write_config, plugins):
    server.put("/rss2sample.xml", (PAYLOADS / "rss2sample.xml").read_bytes())
    server.put("/atom.xml", (PAYLOADS / "rfc4287-example.xml").read_bytes(), kind="application/atom+xml")
    path = write_config(f"""
        [brand]
        name = "Brightwave"
        [store]
        url = "sqlite:///store.db"
        [sources.news]
        plugin = "rss"
        feeds = ["{server.url('/rss2sample.xml')}", "{server.url('/atom.xml')}"]
        initial_lookback_hours = 0
    """)
    pipeline = Pipeline(load_config(path, plugins), plugins)
    pages = []
    stats = pipeline.listen(on_page=lambda name, page: pages.append(page))
    assert stats.errors == {} and stats.unreadable == 0 and stats.records == 5
    star, eclipse, engine, laundry = pages[0].mentions
    assert star.id == "rss:http://liftoff.msfc.nasa.gov/2003/06/03.html#item573"
    assert star.text == ("Star City — How do Americans get ready to work with Russians aboard the International "
                         "Space Station? They take a crash course in culture, language and protocol at Russia's "
                         "Star City (http://howe.iki.rssi.ru/GCTC/gctc_e.htm).")
    assert (star.url, star.created_at, star.lang) == (
        "http://liftoff.msfc.nasa.gov/news/2003/news-starcity.asp",
        datetime(2003, 6, 3, 9, 39, 21, tzinfo=timezone.utc), "en-us")
    assert (star.author.id, star.author.handle, star.author.name, star.author.followers, star.author.profile_url) == (
        server.url("/rss2sample.xml"), "Liftoff News", "Liftoff News", 0, "http://liftoff.msfc.nasa.gov/")
    assert eclipse.text.startswith("Sky watchers in Europe") and "(http://science.nasa.gov/headlines/y2003/" \
        "30may_solareclipse.htm)" in eclipse.text  # no title: the summary alone
    assert eclipse.url == "http://liftoff.msfc.nasa.gov/2003/05/30.html#item572"
    (robots,) = pages[1].mentions
    assert (robots.native_id, robots.text, robots.url, robots.created_at, robots.author.name) == (
        "urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a", "Atom-Powered Robots Run Amok — Some text.",
        "http://example.org/2003/12/13/atom03", datetime(2003, 12, 13, 18, 30, 2, tzinfo=timezone.utc), "John Doe")
    record = pipeline.store.get_record(star.id)
    assert record.content == star.text and record.network == "rss" and record.author.handle == "Liftoff News"
    pipeline.close()


# --- conditional GETs, runs and the cursor ---

def test_conditional_gets_skip_unchanged_feeds_and_new_entries_come_once(server):
    url = server.url("/feed")
    first_tag = server.put("/feed", rss([("a1", "Brightwave outage", "<p>Down in <b>Leeds</b></p>", at(7))]))
    source, _ = make([url])
    (page,) = list(source.fetch(None))
    assert ids([page]) == ["a1"] and page.mentions[0].text == "Brightwave outage — Down in Leeds"
    cursor = json.loads(json.dumps(page.cursor))
    assert cursor["feeds"][url] == {"etag": first_tag, "last_modified": LAST_MODIFIED, "seen": ["a1"],
                                    "newest": "2027-01-15T07:00:00.000000Z"}
    assert list(make([url])[0].fetch(cursor)) == []  # 304: nothing to read
    assert server.requests[-1][1]["If-None-Match"] == first_tag
    assert server.requests[-1][1]["If-Modified-Since"] == LAST_MODIFIED
    server.put("/feed", rss([("a2", "Brightwave fixed", "ok now", at(7, 30)),
                             ("a1", "Brightwave outage", "<p>Down in <b>Leeds</b></p>", at(7))]))
    (page,) = list(make([url])[0].fetch(cursor))
    assert ids([page]) == ["a2"] and page.cursor["feeds"][url]["seen"] == ["a2", "a1"]


def test_a_cursor_stored_by_an_earlier_version_resumes_with_its_validators_and_seen_ids(server):
    url = server.url("/feed")
    server.put("/feed", rss([("a2", "Brightwave fixed", "ok now", at(7, 30)),
                             ("a1", "Brightwave outage", "down", at(7))]))
    cursor = {"v": 1, "feeds": {url: {"etag": '"stale"', "last_modified": LAST_MODIFIED, "seen": ["a1"],
                                      "newest": "2027-01-15T07:00:00.000000Z"}}}
    (page,) = list(make([url])[0].fetch(cursor))
    assert ids([page]) == ["a2"] and server.requests[-1][1]["If-None-Match"] == '"stale"'
    assert page.cursor["feeds"][url]["seen"] == ["a2", "a1"]
    assert page.cursor["feeds"][url]["newest"] == "2027-01-15T07:30:00.000000Z"


def test_last_modified_alone_is_sent_back_when_there_is_no_etag(server):
    server.put("/feed", rss([("b1", "Brightwave", "x", at(7))]), etag=False)
    (page,) = list(make([server.url("/feed")])[0].fetch(None))
    assert list(make([server.url("/feed")])[0].fetch(page.cursor)) == []
    assert server.requests[-1][1]["If-Modified-Since"] == LAST_MODIFIED
    assert "If-None-Match" not in server.requests[-1][1]


def test_the_first_run_takes_only_recent_entries_and_the_seen_ids_stay_bounded(server):
    url = server.url("/feed")
    server.put("/feed", rss([("new", "Brightwave today", "x", at(6)),
                             ("old", "Brightwave last year", "x", datetime(2026, 1, 1, tzinfo=timezone.utc))]))
    (page,) = list(make([url])[0].fetch(None))
    assert ids([page]) == ["new"] and page.cursor["feeds"][url]["seen"] == ["new", "old"]  # old: never taken
    cursor = page.cursor
    for n in range(12):  # a feed that shows its 2 newest entries; 14 ids in all, max_seen = 10
        server.put("/feed", rss([(f"n{n}", "Brightwave", "x", at(7, n)), ("new", "Brightwave today", "x", at(6))]))
        (page,) = list(make([url], max_seen=10)[0].fetch(cursor))
        assert ids([page]) == [f"n{n}"]
        cursor = page.cursor
    seen = cursor["feeds"][url]["seen"]
    assert len(seen) == 10 and seen[:2] == ["n11", "new"]


def test_a_crash_after_one_feed_resumes_with_the_next_and_reads_nothing_twice(server, write_config, plugins):
    class Killed(BaseException):
        """The process dies."""

    server.put("/a", rss([("a1", "Brightwave A", "x", at(7))]))
    server.put("/b", rss([("b1", "Brightwave B", "x", at(7))]))
    path = write_config(f"""
        [brand]
        name = "Brightwave"
        [store]
        url = "sqlite:///store.db"
        [sources.news]
        plugin = "rss"
        feeds = ["{server.url('/a')}", "{server.url('/b')}"]
    """)
    config = load_config(path, plugins)

    def run(on_page=None):
        pipeline = Pipeline(config, plugins)
        pipeline.sources["news"].http.clock = FakeClock(T0)
        try:
            assert pipeline.listen(on_page=on_page).errors == {}
            return pipeline.store.counts()["mentions"]
        finally:
            pipeline.close()

    def die(name, page):
        raise Killed()

    with pytest.raises(Killed):
        run(die)  # dies right after feed a's page was stored
    assert [p for p, _ in server.requests] == ["/a"]
    assert run() == 2
    assert [(p, h.get("If-None-Match")) for p, h in server.requests[1:]] == [("/a", server.docs["/a"][2]), ("/b", None)]


# --- failures ---

def test_a_429_waits_exactly_as_long_as_retry_after(server):
    server.put("/feed", rss([("c1", "Brightwave", "x", at(7))]))
    server.scripted["/feed"] = [(429, {"Retry-After": "9"}, b"slow down")]
    source, clock = make([server.url("/feed")])
    assert ids(source.fetch(None)) == ["c1"]
    assert clock.waits == [9.0]


def test_a_feed_that_refuses_access_is_an_auth_error(server):
    server.scripted["/private"] = [(401, {"WWW-Authenticate": "Basic"}, b"login")]
    with pytest.raises(AuthError, match="refused access"):
        list(make([server.url("/private")])[0].fetch(None))


def test_a_missing_feed_or_a_web_page_is_reported_and_the_other_feeds_go_on(server):
    server.put("/page", "<html><body><p>Just a page</p></body></html>", kind="text/html")
    server.put("/good", rss([("d1", "Brightwave", "x", at(7))]))
    pages = list(make([server.url("/gone"), server.url("/page"), server.url("/good")])[0].fetch(None))
    assert ids(pages) == ["d1"]
    assert pages[0].errors == [f"feed {server.url('/gone')}: feed not found at {server.url('/gone')} (404): "
                               "check the address in `feeds`"]
    assert pages[1].errors[0].startswith(f"feed {server.url('/page')}: {server.url('/page')} is not an RSS or Atom "
                                         "feed (text/html")


def test_unreadable_entries_are_reported_by_field_and_the_rest_kept(server):
    server.put("/feed", """<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>
        <item><title>Brightwave one</title><guid isPermaLink="false">e1</guid>
              <pubDate>Fri, 15 Jan 2027 07:00:00 GMT</pubDate></item>
        <item><title>no id, no link</title><pubDate>Fri, 15 Jan 2027 07:00:00 GMT</pubDate></item>
        <item><guid isPermaLink="false">e3</guid><pubDate>Fri, 15 Jan 2027 07:00:00 GMT</pubDate></item>
        <item><title>Brightwave four</title><guid isPermaLink="false">e4</guid></item>
        </channel></rss>""")
    (page,) = list(make([server.url("/feed")])[0].fetch(None))
    assert ids([page]) == ["e1", "e4"]
    assert page.mentions[1].created_at == datetime.fromtimestamp(T0, tz=timezone.utc)  # undated: when it was read
    assert page.errors == [f"feed {server.url('/feed')} entry 2: id: missing (no guid/id and no link)",
                           f"feed {server.url('/feed')} entry 3: title and summary: both missing"]


def test_backfill_takes_what_the_feeds_hold_since_the_date(server):
    server.put("/feed", rss([("f2", "Brightwave", "x", at(7)), ("f1", "Brightwave", "x", at(1))]))
    source, _ = make([server.url("/feed")])
    (page,) = list(source.backfill(at(5)))
    assert ids([page]) == ["f2"] and page.cursor == {"backfill": True, "done": [server.url("/feed")]}
    assert list(source.backfill(at(5), cursor=page.cursor)) == []  # resumed after the last feed: done


def test_config_is_validated_by_name():
    with pytest.raises(ValidationError) as info:
        RssSource.ConfigSchema().load({"feeds": ["ftp://example.com/feed"], "max_seen": 1})
    assert set(info.value.messages) == {"feeds", "max_seen"}
    with pytest.raises(ValidationError) as info:
        RssSource.ConfigSchema().load({})
    assert "feeds" in info.value.messages


# --- the plugin kit's contract ---

class TestRssContract(SourceContract):
    plugin = RssSource
    # Three feeds, each post published on one of them (by id): pages are feeds.
    config = {"feeds": [f"https://feeds.example.com/{n}.xml" for n in range(3)], "initial_lookback_hours": 0}
    invalid_configs = [({"feeds": []}, "feeds"), ({"feeds": ["not a url"]}, "feeds"), ({"max_seen": 0}, "max_seen")]

    def serve(self, upstream, api):
        def feed(number):
            def answer(request):
                items = "".join(
                    f"<item><title>{escape(i.text)}</title><guid isPermaLink=\"false\">{i.id}</guid>"
                    f"<dc:creator>{escape(i.author_handle)}</dc:creator>"
                    f"<pubDate>{email.utils.format_datetime(i.created_at, usegmt=True)}</pubDate></item>"
                    for i in upstream.newest() if i.id % 3 == number)
                body = (f'<?xml version="1.0"?><rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">'
                        f"<channel><title>Feed {number}</title><link>https://feeds.example.com/</link>{items}"
                        f"</channel></rss>").encode()
                etag = f'"{hashlib.sha1(body).hexdigest()[:10]}"'
                if request.headers.get("If-None-Match") == etag:
                    return 304, {"ETag": etag}, b""
                return 200, {"Content-Type": "application/rss+xml", "ETag": etag}, body
            return answer

        for number in range(3):
            api.add_callback(responses.GET, f"https://feeds.example.com/{number}.xml",
                             callback=upstream.guard(feed(number)))
