"""bluesky source: post search and the brand account's mention notifications, over XRPC.

- Search: ``app.bsky.feed.searchPosts`` (``sort=latest``, ``since``, ``cursor``), one query per term,
  because the search service treats ``a OR b`` as ``a AND b AND or``. The terms are the brand's name
  and keywords unless ``queries`` lists them.
- Notifications: ``app.bsky.notification.listNotifications`` for the logged-in account, reasons
  mention, reply and quote by default (``repost`` may be added: a repost becomes a mention with
  ``repost_of`` and no text of its own).
- Auth: with ``identifier`` and an app password, ``com.atproto.server.createSession`` on ``service``
  (default https://bsky.social), ``refreshSession`` when the access token expires (400 ExpiredToken
  or 401), and every call goes through that host. Without them, search goes to the public AppView
  (``public_service``), which may refuse it.
- Followers: a post's author view (profileViewBasic) carries no follower count, so each page's
  authors are looked up with ``app.bsky.actor.getProfiles`` (25 actors a call), since influence
  depends on reach. ``fetch_profiles = false`` skips that and leaves followers at 0.
- Rate limits: the ``RateLimit-Remaining`` / ``RateLimit-Reset`` (Unix seconds) headers atproto
  services send, through the shared HTTP layer.

The incremental cursor, per stream (each query, and the notifications): the newest post time seen
(``watermark``) with the URIs seen at exactly that instant, and while a run pages back through newer
posts, the sweep in progress (the API cursor, the lower bound and the newest time found so far). The
watermark only moves once a sweep reaches it, so a crash mid-sweep resumes that sweep and never skips
the pages between. The time of a search hit is its ``sortAt`` as the AppView computes it: the earlier
of ``createdAt`` and ``indexedAt``; of a notification, its ``indexedAt``.

    [sources.bluesky]
    identifier = "brightwave.bsky.social"
    app_password = "${BLUESKY_APP_PASSWORD}"
    queries = ["Brightwave", "WaveBox"]
"""
from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

from marshmallow import ValidationError, fields, validate, validates_schema

from socialcrm import (
    AuthError, Author, brand_terms, end_backfill, end_sweep, Engagement, EnvSecret, expand_links as expand_spans,
    FatalError, hookimpl, ItemError, Mention, new_sweep, Page, paginate, parse_time, quick, RateLimitHeaders,
    require_env_secret, RetriableError, Source, SourceSchema, stamp, sweep_saw, TokenPaginator, unreachable,
    whole_count)

PDS = "https://bsky.social"
PUBLIC_APPVIEW = "https://public.api.bsky.app"
BLUESKY_RATE_LIMIT = RateLimitHeaders("ratelimit-remaining", "ratelimit-reset", "epoch")
REASONS = ("mention", "reply", "quote", "repost")
PROFILES_PER_CALL = 25  # app.bsky.actor.getProfiles: actors maxLength
NETWORK = "bluesky"
PASSWORD_ENV = "BLUESKY_APP_PASSWORD"


class BlueskySourceConfig(SourceSchema):
    """The ``[sources.NAME]`` block of a bluesky source."""

    queries = fields.List(fields.String(validate=validate.Length(min=1)), load_default=None)
    search = fields.Boolean(load_default=True)
    notifications = fields.Boolean(load_default=None, allow_none=True)
    notification_reasons = fields.List(fields.String(validate=validate.OneOf(REASONS)),
                                       load_default=lambda: ["mention", "reply", "quote"],
                                       validate=validate.Length(min=1))
    accounts = fields.List(fields.String(), load_default=list)
    identifier = fields.String(load_default=None, validate=validate.Length(min=1))
    app_password = EnvSecret(PASSWORD_ENV, required=False)
    service = fields.Url(load_default=PDS, require_tld=False, schemes={"http", "https"})
    public_service = fields.Url(load_default=PUBLIC_APPVIEW, require_tld=False, schemes={"http", "https"})
    lang = fields.String(load_default=None)
    page_size = fields.Integer(load_default=100, validate=validate.Range(min=1, max=100))
    fetch_profiles = fields.Boolean(load_default=True)
    #: How far back the first run reaches; 0 takes all the API gives.
    initial_lookback_hours = fields.Float(load_default=24.0, validate=validate.Range(min=0))

    @validates_schema
    def _credentials_go_together(self, data, **_):
        if data.get("identifier") and not data.get("app_password"):
            raise ValidationError(f"required with identifier: add app_password = \"${{{PASSWORD_ENV}}}\" and "
                                  f"export {PASSWORD_ENV} (an app password from Settings > App passwords)",
                                  field_name="app_password")
        if data.get("app_password") and not data.get("identifier"):
            raise ValidationError("required with app_password: the handle or DID of the account",
                                  field_name="identifier")
        if data.get("notifications") and not data.get("identifier"):
            raise ValidationError("notifications need the account: set identifier and app_password",
                                  field_name="notifications")
        if data.get("search") is False and data.get("notifications") is False:
            raise ValidationError("search and notifications are both off: nothing to fetch", field_name="search")


def _field(obj: Any, path: str) -> Any:
    value: Any = obj
    for key in path.split("."):
        if not isinstance(value, dict) or value.get(key) is None:
            raise ItemError(None, path, "missing")
        value = value[key]
    return value


def _text_field(obj: Any, path: str) -> str:
    value = _field(obj, path)
    if not isinstance(value, str):
        raise ItemError(None, path, f"not a string ({type(value).__name__})")
    return value


def _time_field(obj: Any, path: str) -> datetime:
    value = _field(obj, path)
    try:
        return parse_time(value)
    except ValueError as exc:
        raise ItemError(None, path, str(exc)) from None


def _authority(uri: str) -> str:
    """The repo (DID or handle) of an ``at://`` URI."""
    return uri[len("at://"):].split("/", 1)[0] if uri.startswith("at://") else ""


def expand_links(text: str, facets: Any) -> str:
    """Replace each link facet's (often shortened) text with its full URI; facet indices are UTF-8 bytes."""
    links = []
    for facet in facets if isinstance(facets, list) else []:
        index = facet.get("index") if isinstance(facet, dict) else None
        for feature in (facet.get("features") or []) if isinstance(facet, dict) else []:
            if isinstance(feature, dict) and feature.get("$type") == "app.bsky.richtext.facet#link" \
                    and isinstance(index, dict) and isinstance(feature.get("uri"), str):
                start, end = index.get("byteStart"), index.get("byteEnd")
                if type(start) is int and type(end) is int:
                    links.append((start, end, feature["uri"]))
    return expand_spans(text, links, encoding="utf-8") if links else text


def _mentioned_dids(facets: Any) -> set[str]:
    dids = set()
    for facet in facets if isinstance(facets, list) else []:
        for feature in (facet.get("features") or []) if isinstance(facet, dict) else []:
            if isinstance(feature, dict) and feature.get("$type") == "app.bsky.richtext.facet#mention":
                dids.add(feature.get("did"))
    return dids


def _quoted_uri(embed: Any) -> str | None:
    """The post a record quotes: ``app.bsky.embed.record`` or the record part of ``recordWithMedia``."""
    if not isinstance(embed, dict):
        return None
    kind = embed.get("$type")
    ref = embed.get("record") if kind == "app.bsky.embed.record" else (
        (embed.get("record") or {}).get("record") if kind == "app.bsky.embed.recordWithMedia" else None)
    uri = ref.get("uri") if isinstance(ref, dict) else None
    return uri if isinstance(uri, str) and "/app.bsky.feed.post/" in uri else None


class BlueskySource(Source):
    """Bluesky posts that mention the brand (search) and the brand account's mentions (notifications)."""

    name = "bluesky"
    threads = True  # reply.root and reply.parent
    ConfigSchema = BlueskySourceConfig
    secret_fields = ("app_password",)

    def __init__(self, config: dict[str, Any], context):
        super().__init__(config, context)
        require_env_secret(config, context, "app_password", PASSWORD_ENV)
        self.http = context.http(rate_limit=BLUESKY_RATE_LIMIT)
        self.queries = config["queries"] or brand_terms(context.brand)
        self.notifications = config["notifications"] if config["notifications"] is not None \
            else bool(config["identifier"])
        self.service = config["service"].rstrip("/")
        self.public_service = config["public_service"].rstrip("/")
        self.session: dict[str, str] | None = None
        self.accounts = {a.lstrip("@").lower() for a in config["accounts"]}

    # --- the plugin contract ---

    def check(self) -> str:
        """Log in (when configured), then search once and list one notification."""
        lines = []
        with quick(self.http):
            if self.config["identifier"]:
                session = self._login()
                lines.append(f"logged in to {self.service} as @{session['handle']} ({session['did']})")
            if self.config["search"] and self.queries:
                body = self._search({"q": self.queries[0], "limit": 1, "sort": "latest"})
                lines.append(f"search works ({'through your account' if self.session else 'public AppView'}): "
                             f"{body.get('hitsTotal', len(body.get('posts') or []))} hit(s) for {self.queries[0]!r}")
            if self.notifications:
                self._xrpc("app.bsky.notification.listNotifications", params={"limit": 1})
                lines.append("notifications can be read")
        lines.append("would fetch: " + "; ".join(self._describe()))
        return "\n".join(lines)

    def fetch(self, cursor: Any) -> Iterator[Page]:
        state = self._state(cursor)
        self.log.debug("bluesky: fetching streams %s", ", ".join(state["streams"]))
        for key, kind, query in self._streams():
            stream = state["streams"][key]
            if stream.get("sweep") is None:
                lookback = self.config["initial_lookback_hours"]
                since = stream.get("watermark") or (
                    stamp(self._now() - timedelta(hours=lookback)) if lookback else None)
                stream["sweep"] = new_sweep(since, cursor=None)
            yield from self._sweep(state, stream, kind, query, end_sweep)

    def backfill(self, since: datetime, cursor: Any = None) -> Iterator[Page]:
        """Page back through search (and notifications) to ``since``; ``cursor`` resumes a backfill."""
        state = cursor if isinstance(cursor, dict) and cursor.get("backfill") else {"backfill": True, "streams": {}}
        for key, kind, query in self._streams():
            stream = state["streams"].setdefault(key, {"sweep": new_sweep(stamp(since), cursor=None), "seen": []})
            if stream.get("done"):
                continue
            yield from self._sweep(state, stream, kind, query, end_backfill)

    # --- streams and sweeps ---

    def _streams(self) -> list[tuple[str, str, str | None]]:
        streams = [(f"search:{q}", "search", q) for q in self.queries] if self.config["search"] else []
        if self.notifications:
            streams.append(("notifications", "notifications", None))
        return streams

    def _describe(self) -> list[str]:
        parts = [f"posts matching {q!r} (searchPosts, latest first)" for _, kind, q in self._streams()
                 if kind == "search"]
        if self.notifications:
            parts.append(f"{', '.join(self.config['notification_reasons'])} notifications of "
                         f"{self.config['identifier']}")
        return parts

    def _state(self, cursor: Any) -> dict[str, Any]:
        streams = (cursor or {}).get("streams") if isinstance(cursor, dict) else None
        streams = copy.deepcopy(streams) if isinstance(streams, dict) else {}
        fresh = {key: streams.get(key) or {"watermark": None, "seen": [], "sweep": None}
                 for key, _, _ in self._streams()}
        return {"v": 1, "streams": fresh}

    def _sweep(self, state: dict, stream: dict, kind: str, query: str | None, finish) -> Iterator[Page]:
        """Page through one sweep (the API's ``cursor``); ``finish`` ends the stream's sweep at its end."""
        sweep = stream["sweep"]
        seen = set(stream.get("seen") or [])
        paginator = TokenPaginator(lambda response: response[0].get("cursor") if response[1] else None,
                                   start=sweep["cursor"])
        restarted = []

        def request(cursor: str | None) -> tuple[dict, list]:
            try:
                return self._page(kind, query, sweep["since"], cursor)
            except FatalError as exc:
                if cursor is None or restarted or isinstance(exc, AuthError):
                    raise
                # An API cursor kept from an earlier run may no longer be accepted: start the sweep
                # again from the newest post instead of failing on every poll (the store drops repeats).
                self.log.warning("bluesky: the stored page cursor was refused (%s); starting this sweep again "
                                 "from the newest post", exc)
                restarted.append(cursor)
                sweep["cursor"] = paginator.current = None
                return self._page(kind, query, sweep["since"], None)

        def page(response: tuple[dict, list], more: bool) -> Page:
            mentions, errors = [], []
            for number, item in enumerate(response[1]):
                try:
                    mention, when = self._item(kind, item)
                except ItemError as exc:
                    uri = item.get("uri") if isinstance(item, dict) else None
                    errors.append(f"{kind} item {uri or '#' + str(number)}: {exc}")
                    continue
                if kind == "notifications" and sweep["since"] and when < sweep["since"]:
                    paginator.stop()  # listed newest first: the rest was seen by an earlier sweep
                    continue
                sweep_saw(sweep, when, mention.native_id)
                if mention.native_id in seen:
                    continue
                mentions.append(mention)
            if self.config["fetch_profiles"]:
                self._add_followers(mentions)
            if paginator.finished:
                finish(stream)
            else:
                sweep["cursor"] = paginator.current
            return Page(mentions, copy.deepcopy(state), errors)

        yield from paginate(request, paginator, page)

    def _page(self, kind: str, query: str | None, since: str | None, cursor: str | None) -> tuple[dict, list]:
        if kind == "search":
            params: dict[str, Any] = {"q": query, "sort": "latest", "limit": self.config["page_size"]}
            if since:
                params["since"] = since[:23] + "Z"  # milliseconds, rounded down
            if self.config["lang"]:
                params["lang"] = self.config["lang"]
            if cursor:
                params["cursor"] = cursor
            body = self._search(params)
            items = body.get("posts")
            if not isinstance(items, list):
                raise FatalError("bluesky: searchPosts answered without a `posts` list")
            return body, items
        params = {"limit": self.config["page_size"], "reasons": list(self.config["notification_reasons"])}
        if cursor:
            params["cursor"] = cursor
        body = self._xrpc("app.bsky.notification.listNotifications", params=params)
        items = body.get("notifications")
        if not isinstance(items, list):
            raise FatalError("bluesky: listNotifications answered without a `notifications` list")
        return body, items

    # --- mapping ---

    def _item(self, kind: str, item: Any) -> tuple[Mention, str]:
        if not isinstance(item, dict):
            raise ItemError(None, None, "not an object")
        if kind == "search":
            uri = _text_field(item, "uri")
            created = _time_field(item, "record.createdAt")
            indexed = _time_field(item, "indexedAt")
            engagement = Engagement(likes=whole_count(item, "likeCount"), reposts=whole_count(item, "repostCount"),
                                    replies=whole_count(item, "replyCount"), quotes=whole_count(item, "quoteCount"))
            mention = self._mention(uri, item["record"], item.get("author"), engagement, None, created)
            return mention, stamp(min(created, indexed))
        uri = _text_field(item, "uri")
        reason = _text_field(item, "reason")
        indexed = _time_field(item, "indexedAt")
        record = _field(item, "record")
        if reason == "repost":
            subject = _text_field(item, "record.subject.uri")
            created = _time_field(item, "record.createdAt")
            author = self._author(item.get("author"))
            mention = Mention(network=NETWORK, native_id=uri, text="", created_at=created, author=author,
                              url=f"https://bsky.app/profile/{_authority(subject)}/post/{subject.rsplit('/', 1)[-1]}",
                              repost_of=f"{NETWORK}:{subject}",
                              addressed_to_brand=True, raw=item)
            return mention, stamp(indexed)
        created = _time_field(item, "record.createdAt")
        mention = self._mention(uri, record, item.get("author"), Engagement(), True, created, raw=item)
        return mention, stamp(indexed)

    def _mention(self, uri: str, record: Any, author_view: Any, engagement: Engagement, addressed: bool | None,
                 created: datetime, raw: dict | None = None) -> Mention:
        text = _text_field({"record": record}, "record.text")
        author = self._author(author_view)
        text = expand_links(text, record.get("facets"))
        external = (record.get("embed") or {}).get("external") if isinstance(record.get("embed"), dict) else None
        if isinstance(external, dict) and isinstance(external.get("uri"), str) and external["uri"] not in text:
            text = f"{text}\n{external['uri']}".strip()
        reply = record.get("reply") if isinstance(record.get("reply"), dict) else {}
        parent = (reply.get("parent") or {}).get("uri") if isinstance(reply.get("parent"), dict) else None
        root = (reply.get("root") or {}).get("uri") if isinstance(reply.get("root"), dict) else None
        quoted = _quoted_uri(record.get("embed"))
        langs = record.get("langs")
        if addressed is None:
            addressed = self._addresses_brand(record, parent, quoted) or None
        rkey = uri.rsplit("/", 1)[-1]
        return Mention(
            network=NETWORK, native_id=uri, text=text, created_at=created, author=author,
            url=f"https://bsky.app/profile/{author.handle}/post/{rkey}",
            lang=langs[0] if isinstance(langs, list) and langs and isinstance(langs[0], str) else None,
            engagement=engagement, reply_to=f"{NETWORK}:{parent}" if isinstance(parent, str) else None,
            quote_of=f"{NETWORK}:{quoted}" if quoted else None, addressed_to_brand=addressed,
            raw=raw if raw is not None else {"uri": uri, "record": record, "author": author_view},
            conversation=f"{NETWORK}:{root}" if isinstance(root, str) else None)

    def _author(self, view: Any) -> Author:
        did = _text_field({"author": view}, "author.did")
        handle = _text_field({"author": view}, "author.handle")
        shown = did if handle == "handle.invalid" else handle
        verification = view.get("verification") if isinstance(view.get("verification"), dict) else {}
        return Author(id=did, handle=handle, name=view.get("displayName") or handle,
                      verified=verification.get("verifiedStatus") == "valid",
                      profile_url=f"https://bsky.app/profile/{shown}")

    def _brand_ids(self) -> set[str]:
        ids = set(self.accounts)
        if self.session:
            ids |= {self.session["did"].lower(), self.session["handle"].lower()}
        return ids

    def _addresses_brand(self, record: dict, parent: str | None, quoted: str | None) -> bool:
        """A post addresses the brand when it @-mentions, replies to or quotes one of its accounts."""
        ids = self._brand_ids()
        if not ids:
            return False
        mentioned = {d.lower() for d in _mentioned_dids(record.get("facets")) if isinstance(d, str)}
        targets = {_authority(u).lower() for u in (parent, quoted) if isinstance(u, str)}
        return bool(ids & (mentioned | targets))

    def _add_followers(self, mentions: list[Mention]) -> None:
        """Fill in follower counts (and verification) from the authors' full profiles."""
        dids = sorted({m.author.id for m in mentions if m.author.id})
        profiles: dict[str, dict] = {}
        for start in range(0, len(dids), PROFILES_PER_CALL):
            body = self._xrpc("app.bsky.actor.getProfiles", params={"actors": dids[start:start + PROFILES_PER_CALL]},
                              public=not self.config["identifier"])
            for profile in body.get("profiles") or []:
                if isinstance(profile, dict) and isinstance(profile.get("did"), str):
                    profiles[profile["did"]] = profile
        for mention in mentions:
            profile = profiles.get(mention.author.id or "")
            if profile:
                mention.author.followers = whole_count(profile, "followersCount")
                verification = profile.get("verification")
                if isinstance(verification, dict) and verification.get("verifiedStatus") == "valid":
                    mention.author.verified = True

    # --- XRPC and the session ---

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.http.clock(), tz=timezone.utc)

    def _search(self, params: dict[str, Any]) -> dict:
        if self.config["identifier"]:
            return self._xrpc("app.bsky.feed.searchPosts", params=params)
        try:
            return self._xrpc("app.bsky.feed.searchPosts", params=params, public=True)
        except AuthError as exc:
            raise AuthError(f"bluesky: the public AppView ({self.public_service}) refused an unauthenticated search "
                            f"({exc}); set identifier and app_password to search through your account") from None

    def _xrpc(self, nsid: str, *, params: dict | None = None, body: dict | None = None,
              public: bool = False, token: str | None = None) -> dict:
        """One XRPC call; with a session, an expired access token is refreshed once and the call repeated."""
        base = self.public_service if public else self.service
        url = f"{base}/xrpc/{nsid}"
        for attempt in (1, 2):
            headers = {}
            if token:
                headers["Authorization"] = f"Bearer {token}"
            elif not public:
                headers["Authorization"] = f"Bearer {self._login()['accessJwt']}"
            try:
                response = self.http.request("POST" if body is not None or token else "GET", url, params=params,
                                             json=body, headers=headers, classify=False)
            except AuthError:
                if attempt == 1 and not public and not token:
                    self._refresh()
                    continue
                raise
            except RetriableError as exc:
                raise unreachable(exc, url, "public_service" if public else "service") from None
            error, message = _xrpc_error(response)
            if response.status_code == 400 and error == "ExpiredToken" and attempt == 1 and not public and not token:
                self._refresh()
                continue
            if response.status_code >= 400:
                raise FatalError(f"bluesky: {nsid} answered {response.status_code} {error or response.reason}: "
                                 f"{self.http.redact(message or '')}".rstrip(": "))
            try:
                data = response.json()
            except ValueError:
                raise FatalError(f"bluesky: {nsid} answered with something that is not JSON") from None
            if not isinstance(data, dict):
                raise FatalError(f"bluesky: {nsid} answered with JSON that is not an object")
            return data
        raise AuthError(f"bluesky: {nsid} still refused after a fresh login")  # pragma: no cover - loop exits above

    def _login(self) -> dict[str, str]:
        if self.session:
            return self.session
        identifier = self.config["identifier"]
        url = f"{self.service}/xrpc/com.atproto.server.createSession"
        try:
            response = self.http.post(url, json={"identifier": identifier, "password": self.config["app_password"]},
                                      classify=False)
        except AuthError as exc:
            raise AuthError(f"bluesky: {self.service} refused the login for {identifier!r} ({exc}): check "
                            f"`identifier` and the app password in `app_password` (e.g. ${{{PASSWORD_ENV}}}); "
                            f"an account password or a revoked app password is refused") from None
        except RetriableError as exc:
            raise unreachable(exc, url, "service") from None
        if response.status_code >= 400:
            error, message = _xrpc_error(response)
            raise AuthError(f"bluesky: login for {identifier!r} refused: {response.status_code} {error}: {message}"
                            + (" (the account needs a second factor: use an app password instead)"
                               if error == "AuthFactorTokenRequired" else ""))
        try:
            data = response.json()
        except ValueError:
            raise FatalError(f"bluesky: createSession on {self.service} did not answer JSON: is `service` an "
                             f"atproto PDS?") from None
        self.session = self._keep_session(data, "createSession")
        self.log.info("bluesky: logged in as %s", self.session["handle"])
        return self.session

    def _refresh(self) -> None:
        """Trade the refresh token for new tokens; when that is refused too, log in again."""
        session, self.session = self.session, None
        if session is None:
            return
        try:
            data = self._xrpc("com.atproto.server.refreshSession", token=session["refreshJwt"])
            self.session = self._keep_session(data, "refreshSession")
            self.log.info("bluesky: session refreshed")
        except (AuthError, FatalError) as exc:
            self.log.info("bluesky: refreshing the session failed (%s); logging in again", exc)

    def _keep_session(self, data: Any, what: str) -> dict[str, str]:
        try:
            session = {k: _text_field(data, k) for k in ("accessJwt", "refreshJwt", "handle", "did")}
        except ItemError as exc:
            raise FatalError(f"bluesky: {what} answered without {exc}") from None
        # The tokens are secrets too: keep them out of every message the HTTP layer writes.
        self.http.secrets = sorted({*self.http.secrets, session["accessJwt"], session["refreshJwt"]},
                                   key=len, reverse=True)
        return session

    def close(self) -> None:
        self.http.session.close()


def _xrpc_error(response) -> tuple[str, str]:
    """The ``error`` and ``message`` of an XRPC error body (empty strings when there are none)."""
    if response.status_code < 400:
        return "", ""
    try:
        data = response.json()
    except ValueError:
        return "", (response.text or "")[:200]
    if not isinstance(data, dict):
        return "", ""
    return str(data.get("error") or ""), str(data.get("message") or "")


@hookimpl
def register_sources(register):
    """Register the bluesky source."""
    register(BlueskySource)
