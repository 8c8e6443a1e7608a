"""rss source: RSS and Atom feeds (news sites, blogs, review sites), with conditional GETs.

Each feed is fetched through the shared HTTP layer with ``If-None-Match`` / ``If-Modified-Since``
from the stored ETag and Last-Modified, so an unchanged feed costs a 304 and yields nothing. The
bytes are handed to feedparser (which never touches the network here), one page per feed.

The cursor, per feed: the ETag and Last-Modified date (the conditional GET's validators), the ids of
the entries already taken (the stream toolkit's ``SeenIds``: the entries of the latest document are
always kept, older ids up to ``max_seen``) and, as ``newest``, the ``Watermark`` of the newest entry
time taken. An entry's id is its ``guid``/``id``, else its link. On a feed's first run only entries
from the last ``initial_lookback_hours`` are taken (0 takes the whole document).

Mapping: network ``rss``; the text is the title, " — ", and the summary as plain text with links
expanded; the author is the entry's writer (RSS ``author``/``dc:creator``, Atom ``author``, the Atom
feed's author) or else the feed itself, named by its title, with the site as profile (feeds have no
followers); the language is the feed's; times are the entry's published (else
updated) time in UTC. A feed that cannot be fetched (404, not a feed) is reported on its page and
the other feeds go on; a feed that refuses access (401/403) stops the source with ``AuthError``.

    [sources.news]
    plugin = "rss"
    feeds = ["https://example.com/feed.xml", "https://reviews.example.org/atom"]
"""
from __future__ import annotations

import copy
import hashlib
import io
from calendar import timegm
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator
from urllib.parse import urlsplit

import feedparser
from marshmallow import fields, validate

from socialcrm import (
    AuthError, Author, FatalError, hookimpl, html_to_text, ItemError, Mention, Page, quick, RetriableError, SeenIds,
    Source, SourceSchema, stamp, unreachable, Watermark)

NETWORK = "rss"
MAX_TEXT = 5000
MAX_ID = 200  # longer ids (some feeds use long URLs) are stored as a digest to fit the store's id column


class RssSourceConfig(SourceSchema):
    """The ``[sources.NAME]`` block of an rss source."""

    feeds = fields.List(fields.Url(require_tld=False, schemes={"http", "https"}), required=True,
                        validate=validate.Length(min=1))
    max_seen = fields.Integer(load_default=500, validate=validate.Range(min=10, max=100_000))
    #: How far back a feed's first run reaches; 0 takes the whole document.
    initial_lookback_hours = fields.Float(load_default=24.0, validate=validate.Range(min=0))


class RssSource(Source):
    """Entries of RSS and Atom feeds, fetched with conditional GETs."""

    name = "rss"
    ConfigSchema = RssSourceConfig

    def __init__(self, config: dict[str, Any], context):
        super().__init__(config, context)
        self.http = context.http()

    # --- the plugin contract ---

    def check(self) -> str:
        """Fetch every feed once (unconditionally) and say what each holds."""
        lines = []
        with quick(self.http):
            for url in self.config["feeds"]:
                response = self._get(url, {})
                parsed = self._parse(url, response)
                title = parsed.feed.get("title") or urlsplit(url).netloc
                lines.append(f"{url}: {title!r}, {len(parsed.entries)} entr{'y' if len(parsed.entries) == 1 else 'ies'}"
                             + (f", ETag {response.headers['ETag']}" if response.headers.get("ETag") else ""))
        lines.append(f"would fetch: new entries of {len(self.config['feeds'])} feed(s), with conditional GETs")
        return "\n".join(lines)

    def fetch(self, cursor: Any) -> Iterator[Page]:
        stored = (cursor or {}).get("feeds") if isinstance(cursor, dict) else None
        stored = copy.deepcopy(stored) if isinstance(stored, dict) else {}
        state = {"v": 1, "feeds": {url: stored.get(url) or {} for url in self.config["feeds"]}}
        for url in self.config["feeds"]:
            feed = state["feeds"][url]
            headers = {}
            if feed.get("etag"):
                headers["If-None-Match"] = feed["etag"]
            if feed.get("last_modified"):
                headers["If-Modified-Since"] = feed["last_modified"]
            try:
                response = self._get(url, headers)
                if response.status_code == 304:
                    self.log.debug("rss: %s unchanged (304)", url)
                    continue
                parsed = self._parse(url, response)
            except (AuthError, RetriableError):
                raise
            except FatalError as exc:
                yield Page([], copy.deepcopy(state), [f"feed {url}: {exc}"])
                continue
            first_run = not feed.get("seen") and not feed.get("etag") and not feed.get("last_modified")
            floor = None
            if first_run and self.config["initial_lookback_hours"]:
                floor = self._now() - timedelta(hours=self.config["initial_lookback_hours"])
            seen = SeenIds(feed.get("seen"), limit=self.config["max_seen"])
            mentions, errors, ids = self._entries(url, parsed, seen, floor)
            seen.take(ids)
            feed.update(seen=seen.ids, etag=response.headers.get("ETag"),
                        last_modified=response.headers.get("Last-Modified"))
            # Feeds re-date and re-order entries, so the ids seen decide what is new; the watermark
            # records the newest entry time taken (its ties are among the ids seen).
            mark = Watermark(feed.get("newest"))
            for mention in mentions:
                mark.raise_to(stamp(mention.created_at), [mention.native_id])
            if mark.value is not None:
                feed["newest"] = mark.value
            yield Page(mentions, copy.deepcopy(state), errors)

    def backfill(self, since: datetime, cursor: Any = None) -> Iterator[Page]:
        """Every entry the feeds still hold that is no older than ``since`` (feeds keep no deeper history)."""
        done = list(cursor.get("done") or []) if isinstance(cursor, dict) else []
        for url in self.config["feeds"]:
            if url in done:
                continue
            try:
                parsed = self._parse(url, self._get(url, {}))
            except (AuthError, RetriableError):
                raise
            except FatalError as exc:
                done.append(url)
                yield Page([], {"backfill": True, "done": list(done)}, [f"feed {url}: {exc}"])
                continue
            mentions, errors, _ = self._entries(url, parsed, SeenIds(), since)
            done.append(url)
            yield Page(mentions, {"backfill": True, "done": list(done)}, errors)

    # --- fetching and parsing ---

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.http.clock(), tz=timezone.utc)

    def _get(self, url: str, headers: dict[str, str]):
        try:
            return self.http.get(url, headers=headers)
        except AuthError as exc:
            raise AuthError(f"rss: {url} refused access ({exc}): the feed needs a login or blocks this "
                            "client", response=exc.response) from None
        except RetriableError as exc:
            raise unreachable(exc, url, "feeds") from None
        except FatalError as exc:
            if exc.status in (404, 410):
                raise FatalError(f"feed not found at {url} ({exc.status}): check the address in `feeds`",
                                 response=exc.response) from None
            raise

    def _parse(self, url: str, response) -> Any:
        headers = {"content-type": response.headers.get("Content-Type", ""), "content-location": response.url or url}
        parsed = feedparser.parse(io.BytesIO(response.content), response_headers=headers)
        if parsed.bozo and not parsed.entries and not parsed.feed.get("title"):
            kind = response.headers.get("Content-Type", "unknown content type").split(";")[0]
            raise FatalError(f"{url} is not an RSS or Atom feed ({kind}; {parsed.get('bozo_exception')})")
        if parsed.bozo:
            self.log.info("rss: %s is not well-formed (%s); reading what it holds", url, parsed.get("bozo_exception"))
        return parsed

    def _entries(self, url: str, parsed: Any, seen: SeenIds, floor: datetime | None
                 ) -> tuple[list[Mention], list[str], list[str]]:
        """The mentions of a parsed feed not yet seen, the unreadable entries, and every entry id in order."""
        feed = parsed.feed
        site = feed.get("link") or url
        feed_title = html_to_text(feed.get("title")) or urlsplit(site).netloc or url
        lang = feed.get("language") or None
        mentions, errors, ids = [], [], []
        for number, entry in enumerate(parsed.entries, start=1):
            try:
                native_id = _entry_id(entry)
                ids.append(native_id)
                if native_id in seen:
                    continue
                created = _entry_time(entry) or self._now()
                if floor is not None and created < floor:
                    continue
                writer = _entry_author(entry, feed)
                author = Author(id=f"{url}#{writer}", handle=writer, name=writer, profile_url=site) if writer \
                    else Author(id=url, handle=feed_title, name=feed_title, profile_url=site)
                mentions.append(Mention(
                    network=NETWORK, native_id=native_id, text=_entry_text(entry), created_at=created,
                    author=author, url=entry.get("link"), lang=lang, raw=_raw(entry, url)))
            except ItemError as exc:
                errors.append(f"feed {url} entry {number}: {exc}")
        return mentions, errors, ids

    def close(self) -> None:
        self.http.session.close()


def _entry_id(entry: Any) -> str:
    value = entry.get("id") or entry.get("link")
    if not isinstance(value, str) or not value.strip():
        raise ItemError(None, "id", "missing (no guid/id and no link)")
    value = value.strip()
    return value if len(value) <= MAX_ID else "sha256:" + hashlib.sha256(value.encode("utf-8")).hexdigest()


def _entry_author(entry: Any, feed: Any) -> str | None:
    """Who wrote the entry: its author's name (RSS ``author``/``dc:creator``, Atom ``author``), else the
    Atom feed's author, which applies to entries naming none. An RSS address without a name is no name."""
    for detail in (entry.get("author_detail"), feed.get("author_detail")):
        name = detail.get("name") if isinstance(detail, dict) else None
        if isinstance(name, str) and name.strip():
            return name.strip()
    author = entry.get("author")
    return author.strip() if isinstance(author, str) and author.strip() and "@" not in author else None


def _entry_time(entry: Any) -> datetime | None:
    for key in ("published_parsed", "updated_parsed"):
        # `in` first: feedparser maps a missing `updated*` to `published*` with a deprecation warning.
        parsed = entry[key] if key in entry else None
        if parsed:
            return datetime.fromtimestamp(timegm(parsed), tz=timezone.utc)
    return None


def _entry_text(entry: Any) -> str:
    title = entry.get("title") or ""
    if (entry.get("title_detail") or {}).get("type") == "text/html":
        title = html_to_text(title)
    summary = entry.get("summary")
    if not summary and entry.get("content"):
        summary = entry["content"][0].get("value")
    summary = html_to_text(summary)
    if summary and title and summary.startswith(title.strip()):
        summary = summary[len(title.strip()):].lstrip(" :—-\n")
    text = " — ".join(part for part in (title.strip(), summary) if part)
    if not text:
        raise ItemError(None, "title and summary", "both missing")
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT - 1] + "\u2026"


def _raw(entry: Any, url: str) -> dict[str, Any]:
    """The entry as stored for audit: the fields feeds carry, without feedparser's parsed time tuples."""
    keep = ("id", "link", "title", "summary", "author", "published", "updated", "tags")
    raw = {k: entry[k] for k in keep if k in entry and entry[k] is not None}
    if "tags" in raw:
        raw["tags"] = [t.get("term") for t in raw["tags"] if isinstance(t, dict)]
    raw["feed"] = url
    return raw


@hookimpl
def register_sources(register):
    """Register the rss source."""
    register(RssSource)
