"""mastodon source: hashtag timelines, status search and the brand account's mentions, on any instance.

    [sources.mastodon]
    plugin = "mastodon"
    base_url = "https://mastodon.social"
    access_token = "${MASTODON_ACCESS_TOKEN}"   # optional: needed for notifications, and where the
                                                 # instance keeps timelines or search to its users
    hashtags = ["brightwave", "wavebox"]         # default: the brand's name and keywords
    # search = true                              # full-text search for the brand's terms
    # notifications = true                       # mentions of the token's account (default: on with a token)

Streams: ``GET /api/v1/timelines/tag/{hashtag}`` per hashtag, ``GET /api/v2/search?type=statuses``
per search term, and ``GET /api/v1/notifications?types[]=mention`` for the account the token
belongs to (always addressed to the brand). Each stream's cursor is a ``min_id``: a request with
``min_id`` returns the statuses immediately newer than it, oldest chunk first, so each page's cursor
(the ``min_id`` of the page's ``Link: rel="prev"`` header, or its newest id) resumes right after that
page. A first run walks back from the newest status with ``max_id`` to ``initial_lookback_hours`` ago
(24 by default, 0 for all the instance gives), its pages' cursors resuming that walk, and ends with
the newest id as the ``min_id``; ``backfill`` walks back the same way.

Status ids are local to an instance, so native ids are qualified with the instance's host
(``mastodon.social/103270115826048975``), as are reply, quote and reblog relations. Status content
is HTML: it becomes plain text with mentions and hashtags as written and every other link spelled
out in full (Mastodon shortens the visible text of links).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterator
from urllib.parse import quote, urlsplit

from marshmallow import ValidationError, fields, validate, validates_schema

from socialcrm import (
    AuthError, Author, brand_terms, chain_streams, count, Engagement, EnvSecret, FatalError, hookimpl, html_to_text, HttpFailure,
    id_key, ItemError, iso_time, link_param, Mention, missing_secret_message, need, Page, paginate, RateLimitHeaders,
    RetriableError, Source, SourceSchema, TokenPaginator, unique, utc)

#: Where the vendor says how much of its rate limit is left and when it resets.
MASTODON_STYLE = RateLimitHeaders("x-ratelimit-remaining", "x-ratelimit-reset", "iso")

NETWORK = "mastodon"
ROOT_CACHE_SIZE = 10_000  # thread roots remembered between pages
TOKEN_ENV = "MASTODON_ACCESS_TOKEN"


class MastodonSourceConfig(SourceSchema):
    """The ``[sources.NAME]`` block of a mastodon source."""

    base_url = fields.Url(required=True, require_tld=False)
    access_token = EnvSecret(TOKEN_ENV, required=False)
    hashtags = fields.List(fields.String(validate=validate.Regexp(r"^#?\w+$", error="not a hashtag")),
                           load_default=None, allow_none=True)
    search = fields.Boolean(load_default=False)
    search_terms = fields.List(fields.String(validate=validate.Length(min=1)), load_default=None, allow_none=True)
    notifications = fields.Boolean(load_default=None, allow_none=True)
    limit = fields.Integer(load_default=40, validate=validate.Range(min=1, max=40))
    max_pages = fields.Integer(load_default=10, validate=validate.Range(min=1, max=1000))
    #: How far back the first run reaches; 0 takes all the instance gives.
    initial_lookback_hours = fields.Float(load_default=24.0, validate=validate.Range(min=0))

    @validates_schema
    def _notifications_need_a_token(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("notifications") and not data.get("access_token"):
            raise ValidationError(missing_secret_message("access_token", TOKEN_ENV)
                                  + " (notifications need a user token with the read:notifications scope)",
                                  field_name="access_token")


@dataclass(frozen=True)
class _Stream:
    """One timeline this source reads."""

    key: str                                        # its name in the cursor
    path: str
    params: dict[str, str] = field(default_factory=dict)
    items: Callable[[Any], Any] = lambda body: body  # the list of items in a response body
    notifications: bool = False


class MastodonSource(Source):
    """Listens to one Mastodon instance: hashtags, search, and mentions of the brand's account."""

    name = "mastodon"
    threads = True  # in_reply_to_id is the parent; the context endpoint finds the root
    ConfigSchema = MastodonSourceConfig
    secret_fields = ("access_token",)

    def __init__(self, config: dict[str, Any], context):
        super().__init__(config, context)
        self.base_url = config["base_url"].rstrip("/")
        self.host = urlsplit(self.base_url).netloc.lower()
        token = config["access_token"]
        self.notifications = bool(token) if config["notifications"] is None else config["notifications"]
        self.streams = self._streams(context)
        secrets = set(context.secrets) | ({token} if token else set())
        self.http = context.http(rate_limit=MASTODON_STYLE, secrets=secrets)
        if token:
            self.http.session.headers["Authorization"] = f"Bearer {token}"
        self.roots: dict[str, str] = {}  # status ref -> its thread's root ref, learned from context calls

    def _streams(self, context) -> list[_Stream]:
        limit = {"limit": str(self.config["limit"])}
        brand = context.brand
        tags = self.config["hashtags"]
        if tags is None:
            tags = [re.sub(r"\W", "", t) for t in [brand.name, *brand.keywords]]
        streams = [_Stream(f"tag:{t.lower()}", f"/api/v1/timelines/tag/{quote(t, safe='')}", limit)
                   for t in unique(t.lstrip("#") for t in tags if t.strip("# "))]
        if self.config["search"]:
            for term in unique(self.config["search_terms"] or brand_terms(brand, handles=True)):
                streams.append(_Stream(f"search:{term.lower()}", "/api/v2/search",
                                       {**limit, "q": term, "type": "statuses"},
                                       items=lambda body: body.get("statuses") if isinstance(body, dict) else None))
        if self.notifications:
            streams.append(_Stream("notifications", "/api/v1/notifications", {**limit, "types[]": "mention"},
                                   notifications=True))
        return streams

    # --- the Source contract ---

    def fetch(self, cursor: Any) -> Iterator[Page]:
        yield from chain_streams(self.streams, cursor, self._poll)

    def backfill(self, since: datetime, cursor: Any = None) -> Iterator[Page]:
        """Pages from the newest status back to ``since`` (``max_id`` paging), per stream; each page's
        cursor resumes the backfill after it."""
        cursor = dict(cursor or {})
        since = utc(since)
        for stream in self.streams:
            state = cursor.get(stream.key) or {}
            if state.get("done"):
                continue
            paginator = TokenPaginator(_older, start=state.get("max_id"), more=lambda page: bool(page[1]))
            for page in paginate(lambda max_id: self._page(stream, {"max_id": max_id} if max_id else {}), paginator,
                                 lambda page, more: self._backfill_page(page, stream, since, paginator, cursor)):
                cursor = page.cursor
                yield page

    def _backfill_page(self, page: tuple[Any, list[Any]], stream: _Stream, since: datetime,
                       paginator: TokenPaginator, cursor: dict[str, Any]) -> Page:
        mentions, errors = self._read(page[1], stream)
        older = [m for m in mentions if m.created_at < since]
        mentions = [m for m in mentions if m.created_at >= since]
        if older or len(page[1]) < self.config["limit"]:
            paginator.stop()  # reached ``since``, or a short page: the last
        done = paginator.finished
        return Page(mentions, {**cursor, stream.key: {"done": True} if done else {"max_id": paginator.current}},
                    errors)

    def check(self) -> str:
        """Reach the instance, prove the token (if any) and its notifications scope, and say what would be read."""
        try:
            instance = self.http.get(f"{self.base_url}/api/v2/instance").json()
        except RetriableError as exc:
            raise RetriableError(f"nothing answers at {self.base_url}: is base_url the instance's address? ({exc})",
                                 retry_after=exc.retry_after) from None
        except (FatalError, ValueError) as exc:
            if isinstance(exc, AuthError):
                raise
            raise FatalError(f"{self.base_url} does not answer like a Mastodon instance "
                             f"(GET /api/v2/instance: {exc})") from None
        title = instance.get("title") if isinstance(instance, dict) else None
        said = [f"instance {title or self.host} ({self.base_url})"]
        if self.config["access_token"]:
            account = self._json(self._get("/api/v1/accounts/verify_credentials", {}))
            said.append(f"token accepted for @{account.get('acct')}")
        if self.notifications:
            self._get("/api/v1/notifications", {"limit": "1", "types[]": "mention"})
        said.append("would fetch " + ", ".join(s.key for s in self.streams))
        return "; ".join(said)

    def close(self) -> None:
        self.http.session.close()

    # --- polling one stream ---

    def _poll(self, stream: _Stream, cursor: dict[str, Any]) -> Iterator[Page]:
        state = cursor.get(stream.key) or {}
        if "min_id" in state:
            yield from self._forward(stream, cursor, state["min_id"])
        else:
            yield from self._first_run(stream, cursor, state)

    def _forward(self, stream: _Stream, cursor: dict[str, Any], min_id: str) -> Iterator[Page]:
        """Pages of what is newer than ``min_id``, oldest chunk first, until a short page."""
        run = {"cursor": cursor}

        def page(response: tuple[Any, list[Any]], more: bool) -> Page | None:
            if not response[1]:
                return None
            mentions, errors = self._read(response[1], stream)
            newer = _newer(response)
            if not newer:
                raise FatalError(f"{self.context.instance}: {stream.path} gave items without ids and no Link "
                                 f"header: cannot tell where to go on from")
            run["cursor"] = {**run["cursor"], stream.key: {"min_id": newer}}
            return Page(mentions, run["cursor"], errors)

        paginator = TokenPaginator(_newer, start=min_id, more=lambda page: len(page[1]) >= self.config["limit"])
        yield from paginate(lambda token: self._page(stream, {"min_id": token}), paginator, page,
                            max_pages=self.config["max_pages"])

    def _first_run(self, stream: _Stream, cursor: dict[str, Any], state: dict[str, Any]) -> Iterator[Page]:
        """From the newest status back to ``initial_lookback_hours`` ago (``max_id`` paging); the
        newest id of the first page becomes the ``min_id`` the next runs go forward from."""
        if state:  # resuming an interrupted first run
            floor, max_id, newest = state.get("floor"), state.get("max_id"), state.get("newest")
        else:
            hours = self.config["initial_lookback_hours"]
            floor, max_id, newest = (self.http.clock() - hours * 3600 if hours else None), None, None
        run = {"cursor": cursor, "newest": newest}
        paginator = TokenPaginator(_older, start=max_id, more=lambda page: len(page[1]) >= self.config["limit"])

        def page(response: tuple[Any, list[Any]], more: bool) -> Page | None:
            items = response[1]
            if not items:
                return Page([], {**run["cursor"], stream.key: {"min_id": run["newest"]}}) if run["newest"] else None
            run["newest"] = run["newest"] or _newer(response)
            mentions, errors = self._read(items, stream)
            if floor is not None and any(m.created_at.timestamp() < floor for m in mentions):
                paginator.stop()  # reached initial_lookback_hours ago
            if floor is not None:
                mentions = [m for m in mentions if m.created_at.timestamp() >= floor]
            after = {"min_id": run["newest"]} if paginator.finished else \
                {"max_id": paginator.current, "newest": run["newest"], "floor": floor}
            run["cursor"] = {**run["cursor"], stream.key: after}
            return Page(mentions, run["cursor"], errors)

        yield from paginate(lambda token: self._page(stream, {"max_id": token} if token else {}), paginator, page,
                            max_pages=self.config["max_pages"])

    def _page(self, stream: _Stream, extra: dict[str, str]) -> tuple[Any, list[Any]]:
        response = self._get(stream.path, {**stream.params, **extra})
        items = stream.items(self._json(response))
        if not isinstance(items, list):
            raise FatalError(f"{self.context.instance}: {stream.path} did not answer with a list of "
                             f"{'notifications' if stream.notifications else 'statuses'}")
        return response, items

    def _read(self, items: list[Any], stream: _Stream) -> tuple[list[Mention], list[str]]:
        mentions, errors = [], []
        for position, item in enumerate(items):
            try:
                if not isinstance(item, dict):
                    raise ItemError(f"[{position}]", "(item)", "expected an object")
                if stream.notifications:
                    mention = notification_to_mention(item, self.host)
                    if mention is not None:
                        mentions.append(mention)
                else:
                    mentions.append(status_to_mention(item, self.host))
            except ItemError as exc:
                errors.append(f"{stream.key}: {exc}")
        self._find_roots(mentions)
        return mentions, errors

    def _find_roots(self, mentions: list[Mention]) -> None:
        """Fill in the conversation (thread root) of each reply. A status names only its parent: a
        parent in the page that starts a thread is the root; otherwise ``GET /api/v1/statuses/:id/context``
        (its ``ancestors[0]``) is asked once per unknown parent, and every ancestor it lists is cached."""
        in_page = {m.id: m for m in mentions}
        for mention in sorted(mentions, key=lambda m: m.created_at):
            parent_ref = mention.reply_to
            if not parent_ref or mention.conversation:
                continue
            parent = in_page.get(parent_ref)
            if parent is not None and parent.reply_to is None:
                mention.conversation = parent.id
            elif parent is not None and parent.conversation:
                mention.conversation = parent.conversation
            else:
                mention.conversation = self.roots.get(parent_ref) or self._ask_root(mention)

    def _ask_root(self, reply: Mention) -> str | None:
        status_id = reply.native_id.split("/", 1)[1]
        path = f"/api/v1/statuses/{quote(status_id, safe='')}/context"
        try:
            body = self._json(self._get(path, {}))
        except HttpFailure as exc:
            self.log.warning("%s: the thread root of %s is unknown (%s): its conversation is keyed by its "
                             "parent %s", self.context.instance, reply.id, exc, reply.reply_to)
            return None
        ancestors = body.get("ancestors") if isinstance(body, dict) else None
        ids = [_ref(self.host, a.get("id")) for a in ancestors or [] if isinstance(a, dict)]
        if not ids or ids[0] is None:
            return None
        if len(self.roots) > ROOT_CACHE_SIZE:
            self.roots.clear()
        for ancestor in filter(None, ids):
            self.roots[ancestor] = ids[0]
        return ids[0]

    def _get(self, path: str, params: dict[str, str]):
        try:
            return self.http.get(self.base_url + path, params=params)
        except AuthError as exc:
            raise AuthError(f"{exc} -- {self._explain(exc, path)}", response=exc.response) from None

    def _explain(self, exc: AuthError, path: str) -> str:
        if not self.config["access_token"]:
            return (f"{self.host} keeps {path} to signed-in users: give the source a token with "
                    f"access_token = \"${{{TOKEN_ENV}}}\"")
        if exc.status == 403:
            scope = "read:notifications" if "notifications" in path else "read"
            return f"{self.host} accepted the token but it lacks the {scope} scope"
        return f"{self.host} did not accept the access token in {TOKEN_ENV} (revoked, or from another instance?)"

    def _json(self, response) -> Any:
        try:
            return response.json()
        except ValueError:
            raise FatalError(f"{self.context.instance}: {urlsplit(response.url).path} answered with a body "
                             f"that is not JSON") from None


def notification_to_mention(notification: dict[str, Any], host: str) -> Mention | None:
    """A ``mention`` notification as a Mention addressed to the brand; other types give None."""
    nid = need(notification, "id", "notification ?")
    if notification.get("type") != "mention":
        return None
    status = need(notification, "status", f"notification {nid}", dict)
    mention = status_to_mention(status, host)
    mention.addressed_to_brand = True
    return mention


def status_to_mention(status: dict[str, Any], host: str) -> Mention:
    """A Status as a Mention; ``ItemError`` names the field that could not be read."""
    sid = need(status, "id", "status ?")
    item = f"status {sid}"
    created = iso_time(status.get("created_at"), item, "created_at")
    account = need(status, "account", item, dict)
    reblog = status.get("reblog")
    if reblog is not None and not isinstance(reblog, dict):
        raise ItemError(item, "reblog", "expected a status")
    said = reblog or status  # a reblog's own content is empty: it carries its original's
    text = status_text(said, item if said is status else f"{item} reblog")
    quote_id = None
    quote = status.get("quote")
    if isinstance(quote, dict):
        quoted = quote.get("quoted_status")
        quote_id = quoted.get("id") if isinstance(quoted, dict) else quote.get("quoted_status_id")
    lang = said.get("language") if isinstance(said.get("language"), str) else None
    url = next((u for u in (status.get("url"), said.get("url"), status.get("uri")) if isinstance(u, str) and u), None)
    return Mention(
        network=NETWORK, native_id=f"{host}/{sid}", text=text, created_at=created,
        author=account_to_author(account, item), url=url, lang=lang,
        engagement=Engagement(likes=count(status, "favourites_count", item),
                              reposts=count(status, "reblogs_count", item),
                              replies=count(status, "replies_count", item),
                              quotes=count(status, "quotes_count", item)),
        reply_to=_ref(host, status.get("in_reply_to_id")), quote_of=_ref(host, quote_id),
        repost_of=_ref(host, reblog.get("id") if reblog else None), raw=status)


def account_to_author(account: dict[str, Any], item: str) -> Author:
    """A Mastodon Account as an Author. Mastodon verifies links, not people: ``verified`` means the
    account has at least one profile link the instance verified (``fields[].verified_at``)."""
    account_id = need(account, "id", item)
    acct = account.get("acct") if isinstance(account.get("acct"), str) else account.get("username")
    name = account.get("display_name") or account.get("username")
    profile_fields = account.get("fields") if isinstance(account.get("fields"), list) else []
    return Author(id=account_id, handle=acct if isinstance(acct, str) else None,
                  name=name if isinstance(name, str) else None,
                  followers=count(account, "followers_count", item, "account."),
                  verified=any(isinstance(f, dict) and f.get("verified_at") for f in profile_fields),
                  profile_url=account.get("url") if isinstance(account.get("url"), str) else None)


def status_text(status: dict[str, Any], item: str) -> str:
    """The words of a status: its content warning, then its HTML content as text (or the plain ``text``
    a deleted status comes back with)."""
    spoiler = status.get("spoiler_text") if isinstance(status.get("spoiler_text"), str) else ""
    content = status.get("content")
    if content is None and isinstance(status.get("text"), str):
        body = status["text"]
    elif isinstance(content, str):
        body = html_to_text(content)
    else:
        raise ItemError(item, "content", "missing" if content is None else "expected HTML text")
    return f"{spoiler}\n\n{body}".strip() if spoiler else body


def _newer(page: tuple[Any, list[Any]]) -> str | None:
    """Where the statuses newer than a page start: its ``Link: rel="prev"`` ``min_id``, else its newest id."""
    return link_param(page[0], "prev", "min_id") or max(_ids(page[1]), key=id_key, default=None)


def _older(page: tuple[Any, list[Any]]) -> str | None:
    """Where the statuses older than a page start: its ``Link: rel="next"`` ``max_id``, else its oldest id."""
    return link_param(page[0], "next", "max_id") or min(_ids(page[1]), key=id_key, default=None)


def _ref(host: str, status_id: Any) -> str | None:
    return f"{NETWORK}:{host}/{status_id}" if isinstance(status_id, str) and status_id else None


def _ids(items: list[Any]) -> list[str]:
    return [i["id"] for i in items if isinstance(i, dict) and isinstance(i.get("id"), str)]


@hookimpl
def register_sources(register):
    """Register the mastodon source."""
    register(MastodonSource)
