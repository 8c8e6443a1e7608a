"""x source: the X (Twitter) API v2 recent search and the brand account's mentions timeline.

    [sources.x]
    plugin = "x"
    bearer_token = "${X_BEARER_TOKEN}"
    username = "Brightwave"     # whose mentions timeline to read (default: the brand's first handle)
    # query = "(@Brightwave OR WaveBox) lang:en"   # default: the brand's handles, name and keywords
    # naming = "post"           # field names of X's 2.167 API description (default "tweet", as documented)

Two streams, each with its own ``since_id`` cursor: ``GET /2/tweets/search/recent`` and
``GET /2/users/{id}/mentions`` (the user id is configured or looked up once by username). Within a
run, pages go from the newest post backwards with ``next_token``; the newest id of the run's first
page becomes the next run's ``since_id``. A page's cursor resumes right after it: in the middle of a
run it holds the run's ``since_id``, the page's ``oldest_id`` (the next request's ``until_id``) and
the newest id seen, so a run interrupted after any page goes on where it stopped and never skips.
A first run (no cursor) reaches back ``initial_lookback_hours`` (24 by default; 0 takes all the API
keeps), ``max_pages`` pages per run; ``backfill`` pulls the last seven days.

X has published two names for the same things (``tweet.fields``/``post.fields``,
``referenced_tweets``/``referenced_posts``, ``retweet_count``/``repost_count``, ``includes.tweets``/
``includes.posts``, ``note_tweet``/``note_post``). Responses in either shape are read; requests use
the documented names unless ``naming = "post"`` or the parameters are set one by one.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

from marshmallow import fields, validate, validates_schema, ValidationError

from socialcrm import (
    AuthError, Author, chain_streams, ConfigError, count, Engagement, EnvSecret, expand_links as expand_spans,
    FatalError, hookimpl, id_key, isoformat, ItemError, iso_time, Mention, need, Page, paginate, RateLimitHeaders,
    Source, SourceSchema, spans_of, StreamCursor, TokenPaginator, unique, utc)

#: Where the vendor says how much of its rate limit is left and when it resets.
X_STYLE = RateLimitHeaders("x-rate-limit-remaining", "x-rate-limit-reset", "epoch")

NETWORK = "x"
WEB = "https://x.com"
RECENT_SEARCH_DAYS = 7

NAMINGS = {
    # What X's public documentation and the 2.159 API description use.
    "tweet": {
        "fields_parameter": "tweet.fields",
        "fields": ["author_id", "created_at", "lang", "public_metrics", "entities", "referenced_tweets",
                   "in_reply_to_user_id", "conversation_id", "note_tweet"],
        "expansions": ["author_id", "referenced_tweets.id", "referenced_tweets.id.author_id"],
    },
    # What the 2.167 API description uses for lookup, search and timelines.
    "post": {
        "fields_parameter": "post.fields",
        "fields": ["created_at", "lang", "public_metrics", "entities", "conversation_id", "note_post"],
        "expansions": ["author_id", "referenced_posts"],
    },
}
USER_FIELDS = ["name", "username", "public_metrics", "verified", "verified_type"]
_VERIFIED_TYPES = frozenset({"blue", "business", "government"})


class XSourceConfig(SourceSchema):
    """The ``[sources.NAME]`` block of an x source."""

    bearer_token = EnvSecret("X_BEARER_TOKEN")
    base_url = fields.Url(load_default="https://api.x.com", require_tld=False)
    search = fields.Boolean(load_default=True)
    query = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=4096))
    mentions = fields.Boolean(load_default=True)
    username = fields.String(load_default=None, allow_none=True, validate=validate.Regexp(r"^@?\w{1,50}$"))
    user_id = fields.String(load_default=None, allow_none=True, validate=validate.Regexp(r"^\d{1,19}$"))
    max_results = fields.Integer(load_default=100, validate=validate.Range(min=10, max=100))
    max_pages = fields.Integer(load_default=10, validate=validate.Range(min=1, max=1000))
    #: How far back the first run reaches; 0 takes all the API gives (seven days for recent search).
    initial_lookback_hours = fields.Float(load_default=24.0, validate=validate.Range(min=0))
    naming = fields.String(load_default="tweet", validate=validate.OneOf(sorted(NAMINGS)))
    fields_parameter = fields.String(load_default=None, allow_none=True,
                                     validate=validate.OneOf(["tweet.fields", "post.fields"]))
    fields_ = fields.List(fields.String(), data_key="fields", load_default=None, allow_none=True)
    expansions = fields.List(fields.String(), load_default=None, allow_none=True)
    user_fields = fields.List(fields.String(), load_default=lambda: list(USER_FIELDS))

    @validates_schema
    def _something_to_read(self, data: dict[str, Any], **_: Any) -> None:
        if not data.get("search") and not data.get("mentions"):
            raise ValidationError("both streams are off: set search = true or mentions = true", field_name="search")


@dataclass(frozen=True)
class _Stream:
    """One of the two timelines this source reads."""

    key: str            # its name in the cursor
    path: str           # URL path, with {id} for the user id
    token_param: str    # the request parameter that takes meta.next_token
    addressed: bool     # everything in it is addressed to the brand


SEARCH = _Stream("search", "/2/tweets/search/recent", "next_token", addressed=False)
MENTIONS = _Stream("mentions", "/2/users/{id}/mentions", "pagination_token", addressed=True)


class XSource(Source):
    """Listens to X: recent search for the brand and the mentions timeline of its account."""

    name = "x"
    threads = True  # conversation_id is the thread's root, referenced_tweets replied_to the parent
    ConfigSchema = XSourceConfig
    secret_fields = ("bearer_token",)

    def __init__(self, config: dict[str, Any], context):
        super().__init__(config, context)
        naming = NAMINGS[config["naming"]]
        self.fields_parameter = config["fields_parameter"] or naming["fields_parameter"]
        self.fields = config["fields_"] or naming["fields"]
        self.expansions = config["expansions"] or naming["expansions"]
        self.base_url = config["base_url"].rstrip("/")
        self.username = (config["username"] or next(iter(context.brand.handles), "")).lstrip("@") or None
        self.user_id: str | None = config["user_id"]
        if config["mentions"] and not (self.user_id or self.username):
            raise ConfigError(f"[sources.{context.instance}] username: the mentions timeline needs the brand's "
                              f"X account: set username (or user_id), or give the brand a handle")
        self.query = config["query"] or default_query(context.brand.handles, [context.brand.name,
                                                                              *context.brand.keywords])
        self.streams = [s for s, on in ((SEARCH, config["search"]), (MENTIONS, config["mentions"])) if on]
        token = config["bearer_token"]
        self.http = context.http(rate_limit=X_STYLE, secrets=set(context.secrets) | {token})
        self.http.session.headers["Authorization"] = f"Bearer {token}"

    # --- the Source contract ---

    def fetch(self, cursor: Any) -> Iterator[Page]:
        yield from chain_streams(self.streams, cursor, self._poll)

    def backfill(self, since: datetime, cursor: Any = None) -> Iterator[Page]:
        """Pages from the newest post back to ``since``, per stream; each page's cursor resumes the
        backfill after it. Recent search reaches seven days back, so an older ``since`` is clamped."""
        cursor = dict(cursor or {})
        since = utc(since)
        oldest_allowed = datetime.fromtimestamp(self.http.clock(), tz=timezone.utc) \
            - timedelta(days=RECENT_SEARCH_DAYS) + timedelta(minutes=1)
        for stream in self.streams:
            state = cursor.get(stream.key) or {}
            if state.get("done"):
                continue
            start = since
            if stream is SEARCH and since < oldest_allowed:
                self.log.warning("X recent search reaches back seven days only: backfilling from %s, not %s",
                                 isoformat(oldest_allowed), isoformat(since))
                start = oldest_allowed
            params = {**self._params(), "start_time": isoformat(start)}
            if stream is SEARCH:
                params["query"] = self.query
            if state.get("until_id"):
                params["until_id"] = state["until_id"]
            paginator = TokenPaginator(_next_token)
            for page in paginate(lambda token: self._get(stream, self._with_token(stream, params, token)), paginator,
                                 lambda body, more: self._backfill_page(body, more, stream, cursor)):
                cursor = page.cursor
                yield page

    def _backfill_page(self, body: dict[str, Any], more: bool, stream: _Stream, cursor: dict[str, Any]) -> Page:
        mentions, errors = self._read(body, stream)
        oldest = (body.get("meta") or {}).get("oldest_id") or _oldest_id(body)
        return Page(mentions, {**cursor, stream.key: {"until_id": oldest} if more else {"done": True}}, errors)

    def check(self) -> str:
        """Look the brand account up (or run one small search) to prove the bearer token works."""
        would = []
        if SEARCH in self.streams:
            would.append(f"recent search for {self.query!r}")
        if MENTIONS in self.streams:
            user_id = self._brand_user_id()
            would.append(f"the mentions timeline of @{self.username or '?'} (user id {user_id})")
        else:
            body = self._get(SEARCH, {"query": self.query, "max_results": 10})
            found = (body.get("meta") or {}).get("result_count", len(body.get("data") or []))
            would.append(f"({found} matching posts on the newest page)")
        return "bearer token accepted; would fetch " + " and ".join(would)

    def close(self) -> None:
        self.http.session.close()

    # --- polling one stream ---

    def _poll(self, stream: _Stream, cursor: dict[str, Any]) -> Iterator[Page]:
        state = dict(cursor.get(stream.key) or {})
        since, newest = state.get("since_id"), state.get("newest_id")
        start = state.get("start_time") if state else self._first_run_start(stream)
        params = self._params()
        if stream is SEARCH:
            params["query"] = self.query
        for name, value in (("since_id", since), ("start_time", start), ("until_id", state.get("until_id"))):
            if value:
                params[name] = value
        run, position = {"newest": newest}, StreamCursor(cursor, stream.key)

        def page(body: dict[str, Any], more: bool) -> Page | None:
            meta = body.get("meta") or {}
            run["newest"] = run["newest"] or meta.get("newest_id") or _newest_id(body)  # the run's first page has it
            mentions, errors = self._read(body, stream)
            if more:  # resuming asks for what is older than this page, within the run's bounds
                after = _present(since_id=since, start_time=start, until_id=meta.get("oldest_id") or _oldest_id(body),
                                 newest_id=run["newest"])
            elif run["newest"] or since:
                after = {"since_id": run["newest"] or since}
            else:
                return None  # nothing on a first run: stay without a cursor
            return position.move(after, mentions, errors)

        yield from paginate(lambda token: self._get(stream, self._with_token(stream, params, token)),
                            TokenPaginator(_next_token), page, max_pages=self.config["max_pages"])

    @staticmethod
    def _with_token(stream: _Stream, params: dict[str, Any], token: str | None) -> dict[str, Any]:
        return {**params, **({stream.token_param: token} if token else {})}

    def _first_run_start(self, stream: _Stream) -> str | None:
        """``start_time`` for a first run: ``initial_lookback_hours`` back (0: all the API keeps)."""
        hours = self.config["initial_lookback_hours"]
        if not hours:
            return None
        now = datetime.fromtimestamp(self.http.clock(), tz=timezone.utc)
        start = now - timedelta(hours=hours)
        if stream is SEARCH:
            start = max(start, now - timedelta(days=RECENT_SEARCH_DAYS) + timedelta(minutes=1))
        return isoformat(start)

    def _params(self) -> dict[str, Any]:
        return {"max_results": self.config["max_results"], self.fields_parameter: ",".join(self.fields),
                "expansions": ",".join(self.expansions), "user.fields": ",".join(self.config["user_fields"])}

    def _get(self, stream: _Stream, params: dict[str, Any]) -> dict[str, Any]:
        path = stream.path.format(id=self._brand_user_id()) if "{id}" in stream.path else stream.path
        return self._call(path, params)

    def _call(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        try:
            response = self.http.get(self.base_url + path, params=params)
        except AuthError as exc:
            raise AuthError(f"{exc} -- {explain_auth_failure(exc, path)}", response=exc.response) from None
        try:
            body = response.json()
        except ValueError:
            raise FatalError(f"{self.context.instance}: {path} answered with a body that is not JSON") from None
        if not isinstance(body, dict):
            raise FatalError(f"{self.context.instance}: {path} answered with JSON that is not an object")
        for problem in body.get("errors") or []:
            # Partial errors (a deleted referenced post, a suspended author) come with a 200.
            self.log.debug("X reported a partial error on %s: %s", path, problem)
        return body

    def _brand_user_id(self) -> str:
        if self.user_id:
            return self.user_id
        body = self._call(f"/2/users/by/username/{self.username}", {"user.fields": "id,username,name"})
        data = body.get("data")
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            problems = "; ".join(str(p.get("detail") or p.get("title")) for p in body.get("errors") or []
                                 if isinstance(p, dict))
            raise FatalError(f"[sources.{self.context.instance}] username: X has no account named "
                             f"@{self.username}" + (f" ({problems})" if problems else ""))
        self.user_id = data["id"]
        return self.user_id

    # --- reading a response ---

    def _read(self, body: dict[str, Any], stream: _Stream) -> tuple[list[Mention], list[str]]:
        data = body.get("data") or []
        if not isinstance(data, list):
            raise FatalError(f"{self.context.instance}: {stream.path} answered with 'data' that is not a list")
        includes = body.get("includes") if isinstance(body.get("includes"), dict) else {}
        users = {u["id"]: u for u in includes.get("users") or [] if isinstance(u, dict) and "id" in u}
        posts = {p["id"]: p for p in [*(includes.get("tweets") or []), *(includes.get("posts") or [])]
                 if isinstance(p, dict) and "id" in p}
        addressed = True if stream.addressed else None
        mentions, errors = [], []
        for position, item in enumerate(data):
            try:
                if not isinstance(item, dict):
                    raise ItemError(f"data[{position}]", "(post)", "expected an object")
                mentions.append(post_to_mention(item, users, posts, addressed, self.user_id))
            except ItemError as exc:
                errors.append(f"{stream.key}: {exc}")
        return mentions, errors


def default_query(handles: list[str], words: list[str]) -> str:
    """The brand's handles, name and keywords OR-ed together, leaving out the brand's own posts."""
    handles = unique(h.lstrip("@") for h in handles if h.strip("@ "))
    terms = unique([*(f"@{h}" for h in handles), *(f'"{w}"' if " " in w else w for w in words if w.strip())])
    own = "".join(f" -from:{h}" for h in handles)
    return f"({' OR '.join(terms)}){own}"


def explain_auth_failure(exc: AuthError, path: str) -> str:
    """What a 401 or 403 from X means, in words a person can act on."""
    if exc.status == 403:
        return (f"X accepted the token but refused {path}: the app behind X_BEARER_TOKEN must belong to a "
                f"Project whose access level includes this endpoint")
    return "X did not accept the bearer token: check that X_BEARER_TOKEN holds the app's current Bearer Token"


def post_to_mention(post: dict[str, Any], users: dict[str, dict], posts: dict[str, dict],
                    addressed: bool | None, brand_user_id: str | None) -> Mention:
    """One post (tweet) of a v2 response, in either naming, as a Mention; ``ItemError`` names a bad field."""
    post_id = need(post, "id", "post ?")
    item = f"post {post_id}"
    text = _full_text(post, item)
    created = iso_time(post.get("created_at"), item, "created_at")
    refs_key = "referenced_tweets" if "referenced_tweets" in post else "referenced_posts"
    refs = post.get(refs_key) or []
    if not isinstance(refs, list):
        raise ItemError(item, refs_key, "expected a list")
    relation = {}
    for ref in refs:
        if not isinstance(ref, dict) or not isinstance(ref.get("id"), str):
            raise ItemError(item, f"{refs_key}.id", "expected an object with a text id")
        relation[ref.get("type")] = ref["id"]
    repost_of = relation.get("retweeted")
    if repost_of and repost_of in posts:
        try:  # a repost carries its original's full text, not the truncated "RT @user: ..."
            text = _full_text(posts[repost_of], f"post {repost_of}")
        except ItemError:
            pass  # keep the repost's own text; the original is not what this page is about
    metrics = post.get("public_metrics")
    if metrics is not None and not isinstance(metrics, dict):
        raise ItemError(item, "public_metrics", "expected an object")
    retweets = "retweet_count" if metrics and "retweet_count" in metrics else "repost_count"
    engagement = Engagement(likes=count(metrics, "like_count", item, "public_metrics."),
                            reposts=count(metrics, retweets, item, "public_metrics."),
                            replies=count(metrics, "reply_count", item, "public_metrics."),
                            quotes=count(metrics, "quote_count", item, "public_metrics."))
    author = _author(post.get("author_id"), users, item)
    if addressed is None and brand_user_id and post.get("in_reply_to_user_id") == brand_user_id:
        addressed = True
    lang = post.get("lang") if isinstance(post.get("lang"), str) and post.get("lang") != "und" else None
    url = f"{WEB}/{author.handle}/status/{post_id}" if author.handle else f"{WEB}/i/web/status/{post_id}"
    return Mention(network=NETWORK, native_id=post_id, text=text, created_at=created, author=author, url=url,
                   lang=lang, engagement=engagement,
                   reply_to=_ref(relation.get("replied_to")), quote_of=_ref(relation.get("quoted")),
                   repost_of=_ref(repost_of), addressed_to_brand=addressed, raw=post,
                   conversation=_ref(_text_id(post, "conversation_id", item)))


def expand_links(text: str, entities: Any) -> str:
    """Replace each t.co link in ``text`` with the address it stands for (``expanded_url``)."""
    urls = entities.get("urls") if isinstance(entities, dict) else None
    links = []
    for entity in urls or []:
        if not isinstance(entity, dict):
            continue
        short, full = entity.get("url"), entity.get("unwound_url") or entity.get("expanded_url")
        if isinstance(short, str) and short and isinstance(full, str) and full:
            links += [(start, end, full) for start, end in spans_of(text, short)]
    return expand_spans(text, links)


def _full_text(post: dict[str, Any], item: str) -> str:
    note = post.get("note_tweet") or post.get("note_post")
    if isinstance(note, dict) and isinstance(note.get("text"), str) and note["text"]:
        return expand_links(note["text"], note.get("entities"))  # a long post's full text
    return expand_links(need(post, "text", item), post.get("entities"))


def _author(author_id: Any, users: dict[str, dict], item: str) -> Author:
    if author_id is None:
        return Author()
    if not isinstance(author_id, str):
        raise ItemError(item, "author_id", "expected a text id")
    user = users.get(author_id)
    if user is None:
        return Author(id=author_id)
    metrics = user.get("public_metrics") if isinstance(user.get("public_metrics"), dict) else None
    username = user.get("username") if isinstance(user.get("username"), str) else None
    return Author(id=author_id, handle=username, name=user.get("name") if isinstance(user.get("name"), str) else None,
                  followers=count(metrics, "followers_count", f"user {author_id}", "public_metrics."),
                  verified=user.get("verified") is True or user.get("verified_type") in _VERIFIED_TYPES,
                  profile_url=f"{WEB}/{username}" if username else None)


def _present(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v}


def _next_token(body: dict[str, Any]) -> str | None:
    """``meta.next_token``, when the page also says where it ends (without ``oldest_id`` it cannot resume)."""
    meta = body.get("meta") or {}
    return meta.get("next_token") if meta.get("oldest_id") or _oldest_id(body) else None


def _text_id(post: dict[str, Any], name: str, item: str) -> str | None:
    value = post.get(name)
    if value is not None and not isinstance(value, str):
        raise ItemError(item, name, "expected a text id")
    return value or None


def _ref(post_id: str | None) -> str | None:
    return f"{NETWORK}:{post_id}" if post_id else None


def _ids(body: dict[str, Any]) -> list[str]:
    return [p["id"] for p in body.get("data") or [] if isinstance(p, dict) and isinstance(p.get("id"), str)]


def _newest_id(body: dict[str, Any]) -> str | None:
    return max(_ids(body), key=id_key, default=None)


def _oldest_id(body: dict[str, Any]) -> str | None:
    return min(_ids(body), key=id_key, default=None)


@hookimpl
def register_sources(register):
    """Register the x source."""
    register(XSource)
