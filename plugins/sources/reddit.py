"""reddit source: posts and comments about the brand, through Reddit's OAuth API with an app-only token.

    [sources.reddit]
    plugin = "reddit"
    client_id = "${REDDIT_CLIENT_ID}"
    client_secret = "${REDDIT_CLIENT_SECRET}"
    reddit_username = "brightwave_dev"      # the app's developer, named in the User-Agent Reddit asks for
    subreddits = ["HomeNetworking", "ISP"]  # searched for the brand as well as all of Reddit
    watch_subreddits = ["Brightwave"]       # the brand's own community: every new post and comment

Authentication is Reddit's application-only OAuth (client credentials): the token is fetched from
``https://www.reddit.com/api/v1/access_token`` with the app's id and secret, kept until it expires,
and fetched again once if Reddit answers 401/403. Every request carries a descriptive User-Agent.

Streams: ``/search`` across Reddit (links; comments too with ``search_comments``), ``/r/{sub}/search``
for each of ``subreddits``, and ``/r/{sub}/new`` plus ``/r/{sub}/comments`` for each of
``watch_subreddits``. Listings run newest first and page back with ``after``; the incremental cursor
is a ``created_utc`` watermark per stream (with the fullnames already read in its very second). In the
middle of a run a page's cursor also holds the ``after`` fullname to go on from and the newest time
seen, so an interrupted run resumes after the last stored page and never skips. (``before`` is not
used as the cursor: a listing anchored on a deleted post comes back empty for good.) A first run
reaches back ``initial_lookback_hours`` (24 by default, 0 for all the listing gives), ``max_pages``
pages per run; ``backfill`` goes further back.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterator

from marshmallow import fields, validate

from socialcrm import (
    __version__, AuthError, Author, brand_terms, chain_streams, ConfigError, count, Engagement, EnvSecret, epoch_time,
    FatalError, hookimpl, ItemError, Mention, need, Page, paginate, RateLimitHeaders, Source, SourceSchema,
    StreamCursor, TokenPaginator, utc, Watermark)

#: Where the vendor says how much of its rate limit is left and when it resets.
REDDIT_STYLE = RateLimitHeaders("x-ratelimit-remaining", "x-ratelimit-reset", "delta")

NETWORK = "reddit"
WEB = "https://www.reddit.com"
TOKEN_URL = "https://www.reddit.com/api/v1/access_token"
API = "https://oauth.reddit.com"
_SUBREDDIT = validate.Regexp(r"^(r/)?[A-Za-z0-9_]{2,21}$", error="not a subreddit name")
# Reddit's search time filter: the smallest window that still reaches back to a backfill's start.
_WINDOWS = (("hour", 3600), ("day", 86400), ("week", 7 * 86400), ("month", 31 * 86400), ("year", 366 * 86400))


class RedditSourceConfig(SourceSchema):
    """The ``[sources.NAME]`` block of a reddit source."""

    client_id = EnvSecret("REDDIT_CLIENT_ID")
    client_secret = EnvSecret("REDDIT_CLIENT_SECRET")
    reddit_username = fields.String(load_default=None, allow_none=True, validate=validate.Regexp(r"^(u/)?[\w-]{3,20}$"))
    user_agent = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=10))
    search = fields.Boolean(load_default=True)
    query = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=512))
    search_comments = fields.Boolean(load_default=False)
    subreddits = fields.List(fields.String(validate=_SUBREDDIT), load_default=list)
    watch_subreddits = fields.List(fields.String(validate=_SUBREDDIT), load_default=list)
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=100))
    max_pages = fields.Integer(load_default=10, validate=validate.Range(min=1, max=1000))
    #: How far back the first run reaches; 0 takes all the listing gives (about 1,000 items).
    initial_lookback_hours = fields.Float(load_default=24.0, validate=validate.Range(min=0))


@dataclass(frozen=True)
class _Stream:
    """One listing this source reads."""

    key: str                    # its name in the cursor
    path: str
    params: dict[str, str] = field(default_factory=dict)
    searchable: bool = False    # takes Reddit's search time filter ``t``


class RedditSource(Source):
    """Listens to Reddit: searches for the brand and watches the brand's own subreddits."""

    name = "reddit"
    threads = True  # link_id is the thread root, parent_id the parent
    ConfigSchema = RedditSourceConfig
    secret_fields = ("client_id", "client_secret")

    def __init__(self, config: dict[str, Any], context):
        super().__init__(config, context)
        brand = context.brand
        terms = brand_terms(brand, handles=True)  # people write u/name on Reddit
        self.query = config["query"] or " OR ".join(f'"{t}"' if " " in t else t for t in terms)
        self.watched = {_sub(s).lower() for s in config["watch_subreddits"]}
        self.brand_users = {h.lstrip("@").lower() for h in brand.handles}
        self.streams = self._streams()
        if not self.streams:
            raise ConfigError(f"[sources.{context.instance}] search: nothing to read: set search = true, "
                              f"or list subreddits or watch_subreddits")
        self.http = context.http(rate_limit=REDDIT_STYLE,
                                 secrets=set(context.secrets) | {config["client_id"], config["client_secret"]})
        self.http.session.headers["User-Agent"] = config["user_agent"] or self._user_agent()
        self._token: str | None = None
        self._token_expires = 0.0

    def _user_agent(self) -> str:
        # Reddit asks for "<platform>:<app ID>:<version> (by /u/<username>)" and throttles generic ones.
        who = self.config["reddit_username"]
        by = f"by /u/{who.removeprefix('u/')}" if who else f"listening for {self.context.brand.name}"
        return f"python:socialcrm:{__version__} ({by})"

    def _streams(self) -> list[_Stream]:
        limit = {"limit": str(self.config["limit"]), "raw_json": "1"}
        search = {**limit, "q": self.query, "sort": "new"}
        streams = []
        if self.config["search"]:
            streams.append(_Stream("search", "/search", {**search, "type": "link"}, searchable=True))
            if self.config["search_comments"]:
                streams.append(_Stream("search:comments", "/search", {**search, "type": "comment"}, searchable=True))
        for sub in map(_sub, self.config["subreddits"]):
            streams.append(_Stream(f"r/{sub}/search", f"/r/{sub}/search", {**search, "restrict_sr": "1"},
                                   searchable=True))
        for sub in map(_sub, self.config["watch_subreddits"]):
            streams.append(_Stream(f"r/{sub}/new", f"/r/{sub}/new", limit))
            streams.append(_Stream(f"r/{sub}/comments", f"/r/{sub}/comments", limit))
        return streams

    # --- the Source contract ---

    def fetch(self, cursor: Any) -> Iterator[Page]:
        yield from chain_streams(self.streams, cursor, self._poll)

    def backfill(self, since: datetime, cursor: Any = None) -> Iterator[Page]:
        """Pages from the newest item back to ``since``, per stream; each page's cursor resumes the
        backfill after it. Reddit listings end after about 1,000 items, whatever ``since`` says."""
        cursor = dict(cursor or {})
        floor = utc(since).timestamp()
        age = self.http.clock() - floor
        window = next((name for name, seconds in _WINDOWS if age <= seconds), "all")
        for stream in self.streams:
            state = cursor.get(stream.key) or {}
            if state.get("done"):
                continue
            extra = {"t": window} if stream.searchable else {}
            paginator = TokenPaginator(lambda listing: listing.get("after"), start=state.get("after"))
            for page in paginate(lambda after: self._listing(stream, after, extra), paginator,
                                 lambda listing, more: self._backfill_page(listing, stream, floor, paginator, cursor)):
                cursor = page.cursor
                yield page

    def _backfill_page(self, listing: dict[str, Any], stream: _Stream, floor: float, paginator: TokenPaginator,
                       cursor: dict[str, Any]) -> Page:
        mentions, errors, oldest = self._read(listing, stream)
        mentions = [m for m in mentions if m.created_at.timestamp() >= floor]
        if oldest is not None and oldest < floor:
            paginator.stop()  # reached ``since``
        done = paginator.finished
        return Page(mentions, {**cursor, stream.key: {"done": True} if done else {"after": paginator.current}},
                    errors)

    def check(self) -> str:
        """Get a token and read one item, to prove the app's credentials and the User-Agent work."""
        stream = self.streams[0]
        found = len(self._listing(stream, None, {"limit": "1"}).get("children") or [])
        reads = ", ".join(s.key for s in self.streams)
        return (f"client credentials accepted; would fetch {reads} (query {self.query!r}); "
                f"{stream.key} answered with {found} item(s)")

    def close(self) -> None:
        self.http.session.close()

    # --- polling one listing ---

    def _poll(self, stream: _Stream, cursor: dict[str, Any]) -> Iterator[Page]:
        state = dict(cursor.get(stream.key) or {})
        if state:
            watermark, seen = state.get("watermark"), state.get("seen", [])
        else:  # a first run reaches back initial_lookback_hours (0: as far as the listing goes)
            hours = self.config["initial_lookback_hours"]
            watermark, seen = (self.http.clock() - hours * 3600 if hours else None), []
        mark = Watermark(watermark, seen)
        run = {"newest": state.get("newest"), "newest_seen": state.get("newest_seen", [])}
        position = StreamCursor(cursor, stream.key)
        paginator = TokenPaginator(lambda listing: listing.get("after"), start=state.get("after"))

        def page(listing: dict[str, Any], more: bool) -> Page | None:
            mentions, errors, oldest = self._read(listing, stream)
            # Things made in the watermark's very second may be new: those not seen then are kept.
            mentions = [m for m in mentions if mark.is_new(_when(m), m.native_id)]
            newest = run["newest"]
            if newest is None and mentions:
                newest = run["newest"] = max(_when(m) for m in mentions)  # listings run newest first
            run["newest_seen"] = newest_seen = [*run["newest_seen"],
                                                *(m.native_id for m in mentions if _when(m) == newest)]
            if more and mark.value is not None and oldest is not None and oldest < mark.value:
                paginator.stop()  # reached what the last run took
                more = False
            if more:  # resuming goes on after this page, with the run's watermark and newest time
                new_state = _present(watermark=watermark, seen=seen, after=paginator.current, newest=newest,
                                     newest_seen=newest_seen)
            elif newest is not None:
                at_newest = [*seen, *newest_seen] if newest == watermark else newest_seen
                new_state = _present(watermark=newest, seen=list(dict.fromkeys(at_newest)))
            elif watermark is not None:
                new_state = _present(watermark=watermark, seen=seen)
            else:
                return None  # nothing yet on a first run: stay without a cursor
            return position.move(new_state, mentions, errors)

        yield from paginate(lambda after: self._listing(stream, after), paginator, page,
                            max_pages=self.config["max_pages"])

    def _listing(self, stream: _Stream, after: str | None, extra: dict[str, str] | None = None) -> dict[str, Any]:
        params = {**stream.params, **(extra or {}), **({"after": after} if after else {})}
        body = self._get(stream.path, params)
        listing = body.get("data") if isinstance(body, dict) else None
        if not isinstance(listing, dict) or not isinstance(listing.get("children", []), list):
            raise FatalError(f"{self.context.instance}: {stream.path} did not answer with a Listing "
                             f"(expected data.children to be a list)")
        return listing

    def _read(self, listing: dict[str, Any], stream: _Stream) -> tuple[list[Mention], list[str], float | None]:
        """The listing's readable items, the errors of the others, and the oldest creation time seen."""
        mentions, errors, oldest = [], [], None
        for position, child in enumerate(listing.get("children") or []):
            try:
                mention = thing_to_mention(child, position, self.watched, self.brand_users)
            except ItemError as exc:
                errors.append(f"{stream.key}: {exc}")
                continue
            if mention is None:
                continue
            mentions.append(mention)
            when = mention.created_at.timestamp()
            oldest = when if oldest is None else min(oldest, when)
        return mentions, errors, oldest

    # --- HTTP with the app-only token ---

    def _get(self, path: str, params: dict[str, str]) -> Any:
        for attempt in (1, 2):
            token = self._access_token()
            try:
                response = self.http.get(API + path, params=params, headers={"Authorization": f"bearer {token}"})
                break
            except AuthError as exc:
                self._token = None  # expired or revoked: get a fresh token, once
                if attempt == 2:
                    raise AuthError(f"{exc} -- Reddit refused a fresh app-only token for {path}: the app may be "
                                    f"suspended, or the subreddit is private, quarantined or banned") from None
        try:
            return response.json()
        except ValueError:
            raise FatalError(f"{self.context.instance}: {path} answered with a body that is not JSON") from None

    def _access_token(self) -> str:
        now = self.http.clock()
        if self._token and now < self._token_expires:
            return self._token
        try:
            response = self.http.post(TOKEN_URL, auth=(self.config["client_id"], self.config["client_secret"]),
                                      data={"grant_type": "client_credentials"})
        except AuthError as exc:
            raise AuthError(f"{exc} -- Reddit did not accept the app's credentials: check REDDIT_CLIENT_ID and "
                            f"REDDIT_CLIENT_SECRET (a 'script' or 'web' app from reddit.com/prefs/apps)") from None
        try:
            body = response.json()
        except ValueError:
            body = {}
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            reason = body.get("error") if isinstance(body, dict) else None
            raise AuthError(f"{self.context.instance}: Reddit gave no access token ({reason or 'no reason given'}): "
                            f"check REDDIT_CLIENT_ID and REDDIT_CLIENT_SECRET")
        self._token = token
        self.http.secrets = sorted({*self.http.secrets, token}, key=len, reverse=True)
        lifetime = body.get("expires_in") if isinstance(body.get("expires_in"), (int, float)) else 3600
        self._token_expires = now + max(60.0, float(lifetime) - 60.0)
        return token


def thing_to_mention(child: Any, position: int, watched: set[str], brand_users: set[str]) -> Mention | None:
    """One child of a Listing (``t3`` link or ``t1`` comment) as a Mention; other kinds give None."""
    if not isinstance(child, dict):
        raise ItemError(f"children[{position}]", "(thing)", "expected an object")
    kind = child.get("kind")
    if kind not in ("t1", "t3"):
        return None
    data = child.get("data")
    if not isinstance(data, dict):
        raise ItemError(f"children[{position}]", "data", "expected an object")
    fullname = data.get("name") if isinstance(data.get("name"), str) else None
    if not fullname:
        fullname = f"{kind}_{need(data, 'id', f'children[{position}]')}"
    item = fullname
    created = epoch_time(data.get("created_utc"), item, "created_utc")
    subreddit = data.get("subreddit") if isinstance(data.get("subreddit"), str) else None
    if kind == "t3":
        parts = [need(data, "title", item), _text(data, "selftext", item)]
        link = data.get("url")
        if not data.get("is_self") and isinstance(link, str) and link.startswith("http") and "/comments/" not in link:
            parts.append(link)  # a link post: what it links to is part of what was said
        text = "\n\n".join(p for p in parts if p)
        engagement = Engagement(likes=count(data, "score", item), replies=count(data, "num_comments", item),
                                reposts=count(data, "num_crossposts", item))
        parent = data.get("crosspost_parent")
        repost_of = f"{NETWORK}:{parent}" if isinstance(parent, str) and parent else None
        reply_to = None
        conversation = None  # a post starts its own thread
    else:
        text = need(data, "body", item)
        engagement = Engagement(likes=count(data, "score", item))
        parent = data.get("parent_id")
        reply_to = f"{NETWORK}:{parent}" if isinstance(parent, str) and parent else None
        link = data.get("link_id")  # the post (t3_...) the comment tree hangs from
        conversation = f"{NETWORK}:{link}" if isinstance(link, str) and link else None
        repost_of = None
    author_name = data.get("author") if isinstance(data.get("author"), str) else None
    if author_name in ("[deleted]", ""):
        author_name = None
    author = Author(id=data.get("author_fullname") if isinstance(data.get("author_fullname"), str) else None,
                    handle=author_name, profile_url=f"{WEB}/user/{author_name}" if author_name else None)
    permalink = data.get("permalink")
    url = WEB + permalink if isinstance(permalink, str) and permalink.startswith("/") else None
    addressed = True if subreddit and subreddit.lower() in watched else None
    if addressed is None and brand_users and any(f"u/{u}" in text.lower() for u in brand_users):
        addressed = True
    return Mention(network=NETWORK, native_id=fullname, text=text, created_at=created, author=author, url=url,
                   engagement=engagement, reply_to=reply_to, repost_of=repost_of, addressed_to_brand=addressed,
                   raw={"kind": kind, "data": data}, conversation=conversation)


def _when(mention: Mention) -> float:
    return mention.created_at.timestamp()


def _present(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None and v != []}


def _text(data: dict[str, Any], key: str, item: str) -> str:
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ItemError(item, key, f"expected text, got {type(value).__name__}")
    return value


def _sub(name: str) -> str:
    return name.removeprefix("r/")


@hookimpl
def register_sources(register):
    """Register the reddit source."""
    register(RedditSource)
