"""hackernews source: stories and comments from the HN Search API (Algolia), newest first.

``GET {api}/search_by_date?query=Q&tags=(story,comment)&numericFilters=created_at_i>=S,created_at_i<=U
&hitsPerPage=N&page=P``, one query per term (Algolia requires every word of a query), the terms being
the brand's name and keywords unless ``queries`` lists them. No key is needed; the service allows
10,000 requests an hour from one address and sends no rate-limit headers, so only ``Retry-After`` on a
429 is honoured (through the shared HTTP layer).

The incremental cursor, per query: the ``created_at_i`` watermark (the newest second seen) with the
objectIDs seen at that second, plus the sweep in progress. A sweep asks for the window
``watermark <= created_at_i <= now`` with ``now`` fixed when it starts, so new stories cannot shift
the pages under it, and pages through it with ``page``/``nbPages``. Algolia stops paginating after
1,000 hits; when a window holds more, the sweep narrows its upper bound to the oldest second reached
and starts again at page 0. The watermark moves only when a sweep ends, so a crash mid-sweep resumes
at the page after the last one stored.

Mapping: the objectID is the native id; the text is a story's title, its text and its link, or a
comment's text, HTML turned into plain text with links expanded; ``points`` are likes and
``num_comments`` replies; a comment replies to ``parent_id``. HN has no followers (only karma on the
user page, which would cost a call per author) and no verification: followers stay 0.

    [sources.hn]
    plugin = "hackernews"
    queries = ["Brightwave", "WaveBox"]
"""
from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any, Iterator

from marshmallow import fields, validate

from socialcrm import (
    Author, brand_terms, end_backfill, end_sweep, Engagement, FatalError, hookimpl, html_to_text, ItemError, Mention,
    new_sweep, Page, PageNumberPaginator, paginate, parse_time, quick, RetriableError, Source, SourceSchema, sweep_saw,
    unreachable, whole_count)

API = "https://hn.algolia.com/api/v1"
NETWORK = "hackernews"
ITEM_URL = "https://news.ycombinator.com/item?id={}"
USER_URL = "https://news.ycombinator.com/user?id={}"


class HackerNewsSourceConfig(SourceSchema):
    """The ``[sources.NAME]`` block of a hackernews source."""

    queries = fields.List(fields.String(validate=validate.Length(min=1)), load_default=None)
    tags = fields.String(load_default="(story,comment)", validate=validate.Length(min=1))
    api = fields.Url(load_default=API, require_tld=False, schemes={"http", "https"})
    hits_per_page = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))
    #: How far back the first run reaches; 0 takes all the API gives.
    initial_lookback_hours = fields.Float(load_default=24.0, validate=validate.Range(min=0))


class HackerNewsSource(Source):
    """Hacker News stories and comments that name the brand, from the Algolia HN Search API."""

    name = "hackernews"
    threads = True  # story_id is the thread root, parent_id the parent
    ConfigSchema = HackerNewsSourceConfig

    def __init__(self, config: dict[str, Any], context):
        super().__init__(config, context)
        self.http = context.http()
        self.queries = config["queries"] or brand_terms(context.brand)
        self.api = config["api"].rstrip("/")

    # --- the plugin contract ---

    def check(self) -> str:
        """One search per query, one hit each: proves the API answers and shows what there is."""
        lines = []
        with quick(self.http):
            for query in self.queries:
                body = self._get({"query": query, "tags": self.config["tags"], "hitsPerPage": 1})
                lines.append(f"{query!r}: {body.get('nbHits', 0)} hit(s) on HN ({self.config['tags']})")
        lines.append(f"would fetch: the newest stories and comments matching {', '.join(map(repr, self.queries))}")
        return "\n".join(lines)

    def fetch(self, cursor: Any) -> Iterator[Page]:
        state = self._state(cursor)
        now = int(self.http.clock())
        for query in self.queries:
            stream = state["streams"][query]
            if stream.get("sweep") is None:
                lookback = self.config["initial_lookback_hours"]
                since = stream["watermark"] if stream.get("watermark") is not None \
                    else (max(0, int(now - lookback * 3600)) if lookback else 0)
                stream["sweep"] = new_sweep(since, until=now, page=0, edge_seen=[])
            yield from self._sweep(state, stream, query, end_sweep)

    def backfill(self, since: datetime, cursor: Any = None) -> Iterator[Page]:
        """Page back through every query to ``since``; ``cursor`` resumes an interrupted backfill."""
        state = cursor if isinstance(cursor, dict) and cursor.get("backfill") else {"backfill": True, "streams": {}}
        now = int(self.http.clock())
        for query in self.queries:
            stream = state["streams"].setdefault(query, {"seen": [], "sweep": new_sweep(
                int(since.timestamp()), until=now, page=0, edge_seen=[])})
            if not stream.get("done"):
                yield from self._sweep(state, stream, query, end_backfill)

    # --- sweeps ---

    def _state(self, cursor: Any) -> dict[str, Any]:
        streams = (cursor or {}).get("streams") if isinstance(cursor, dict) else None
        streams = copy.deepcopy(streams) if isinstance(streams, dict) else {}
        return {"v": 1, "streams": {q: streams.get(q) or {"watermark": None, "seen": [], "sweep": None}
                                    for q in self.queries}}

    def _sweep(self, state: dict, stream: dict, query: str, finish) -> Iterator[Page]:
        """Page through the sweep's window (``page``/``nbPages``), narrowing it when Algolia stops
        paginating; ``finish`` ends the stream's sweep once the window is read."""
        sweep = stream["sweep"]
        skip = set(stream.get("seen") or [])
        while True:
            paginator = PageNumberPaginator(lambda body: body["nbPages"], start=sweep["page"])
            narrowed = []

            def page(body: dict, more: bool) -> Page:
                mentions, errors, times = [], [], []
                edge = set(sweep.get("edge_seen") or [])
                for number, hit in enumerate(body["hits"]):
                    try:
                        mention, when = self._mention(hit)
                    except ItemError as exc:
                        object_id = hit.get("objectID") if isinstance(hit, dict) else None
                        errors.append(f"hit {object_id or '#' + str(number)}: {exc}")
                        continue
                    times.append((when, mention.native_id))
                    sweep_saw(sweep, when, mention.native_id)
                    if mention.native_id in skip or mention.native_id in edge:
                        continue
                    mentions.append(mention)
                if more:
                    sweep["page"] = paginator.current
                elif self._narrow(sweep, body["nbPages"], body["nbHits"], times):
                    narrowed.append(True)
                else:
                    finish(stream)
                return Page(mentions, copy.deepcopy(state), errors)

            yield from paginate(lambda number: self._window(query, sweep, number), paginator, page)
            if not narrowed:
                return

    def _window(self, query: str, sweep: dict, number: int) -> dict:
        """Page ``number`` of the sweep's window, its shape checked."""
        body = self._get({"query": query, "tags": self.config["tags"],
                          "numericFilters": f"created_at_i>={sweep['since']},created_at_i<={sweep['until']}",
                          "hitsPerPage": self.config["hits_per_page"], "page": number})
        for name, kind in (("hits", list), ("nbPages", int), ("nbHits", int)):
            if not isinstance(body.get(name), kind):
                raise FatalError(f"hackernews: search_by_date answered without a valid `{name}` "
                                 f"(got {type(body.get(name)).__name__})")
        return body

    def _narrow(self, sweep: dict, pages: int, total: int, times: list[tuple[int, str]]) -> bool:
        """Algolia paginates through the first 1,000 hits only: when the window holds more, narrow it
        to what is older than the oldest second reached and start again at page 0 (True)."""
        reachable = pages * self.config["hits_per_page"]
        if total > reachable and times:
            oldest = min(t for t, _ in times)
            if oldest > sweep["since"]:
                if oldest >= sweep["until"]:
                    oldest = sweep["until"] - 1  # over 1,000 hits in one second: step past it
                sweep["edge_seen"] = sorted(i for t, i in times if t == oldest)
                sweep["until"], sweep["page"] = oldest, 0
                return True
        return False

    # --- mapping ---

    def _mention(self, hit: Any) -> tuple[Mention, int]:
        if not isinstance(hit, dict):
            raise ItemError(None, None, "not an object")
        object_id = hit.get("objectID")
        if not isinstance(object_id, str) or not object_id:
            raise ItemError(None, "objectID", "missing")
        when = hit.get("created_at_i")
        if type(when) is int:
            created = datetime.fromtimestamp(when, tz=timezone.utc)
        else:
            try:
                created = parse_time(hit.get("created_at"))
            except ValueError:
                raise ItemError(None, "created_at_i", "missing (and created_at is not a timestamp either)") from None
            when = int(created.timestamp())
        author = hit.get("author")
        if not isinstance(author, str) or not author:
            raise ItemError(None, "author", "missing")
        tags = hit.get("_tags") if isinstance(hit.get("_tags"), list) else []
        comment = "comment" in tags or (hit.get("comment_text") is not None and not hit.get("title"))
        if comment:
            text = html_to_text(_string(hit, "comment_text"))
        else:
            title, url = _string(hit, "title"), _string(hit, "url")
            parts = [title.strip(), html_to_text(_string(hit, "story_text"))]
            if url:
                parts.append(url)
            text = "\n".join(p for p in parts if p)
        if not text:
            raise ItemError(None, "comment_text" if comment else "title",
                            "missing" if comment else "missing, and no story_text either")
        parent, story = hit.get("parent_id"), hit.get("story_id")
        return Mention(
            network=NETWORK, native_id=object_id, text=text, created_at=created,
            author=Author(id=author, handle=author, name=author, profile_url=USER_URL.format(author)),
            url=ITEM_URL.format(object_id),
            engagement=Engagement(likes=whole_count(hit, "points"), replies=whole_count(hit, "num_comments")),
            reply_to=f"{NETWORK}:{parent}" if comment and type(parent) is int else None,
            conversation=f"{NETWORK}:{story}" if comment and type(story) is int else None,
            raw=hit), when

    # --- HTTP ---

    def _get(self, params: dict[str, Any]) -> dict:
        url = f"{self.api}/search_by_date"
        try:
            response = self.http.get(url, params=params)
        except RetriableError as exc:
            raise unreachable(exc, url, "api") from None
        try:
            data = response.json()
        except ValueError:
            raise FatalError(f"hackernews: {url} did not answer JSON: is `api` the HN Search API?") from None
        if not isinstance(data, dict):
            raise FatalError("hackernews: search_by_date answered with JSON that is not an object")
        return data

    def close(self) -> None:
        self.http.session.close()


def _string(hit: dict, key: str) -> str:
    value = hit.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ItemError(None, key, f"not a string ({type(value).__name__})")
    return value


@hookimpl
def register_sources(register):
    """Register the hackernews source."""
    register(HackerNewsSource)
