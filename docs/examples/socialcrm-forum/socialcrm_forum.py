"""forum source: posts from a Discourse forum's JSON API, resumable by the last post id stored.

Discourse lists the latest posts across all topics at ``GET /posts.json``, newest first, one page at
a time, and ``before=<id>`` pages back. It has no "since" parameter, so a run walks back from the
newest post until it meets the last post already stored, then hands the new posts to the host
oldest first, each page with the highest post id in it as its cursor. The host stores a page and
its cursor together, so a crash between pages never skips a post and never stores one twice.

    [sources.community]
    plugin = "forum"
    base_url = "https://community.brightwave.example"
    api_key = "${FORUM_API_KEY}"      # optional: a public forum answers without one
    api_username = "system"
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterator
from urllib.parse import urlsplit

from marshmallow import ValidationError, fields, validate, validates_schema

from socialcrm import (Author, Engagement, FatalError, Mention, Page, Source, StrictSchema, TokenPaginator, hookimpl,
                       paginate)

REGULAR_POST = 1  # Discourse post_type: 1 regular, 2 moderator action, 3 small action, 4 whisper


class ForumConfig(StrictSchema):
    """``base_url`` of the forum; ``api_key`` and ``api_username`` together, or neither;
    ``first_run_pages``: how many pages of history the first run reads."""

    base_url = fields.Url(required=True, require_tld=False, schemes={"http", "https"})
    api_key = fields.String(load_default=None, validate=validate.Length(min=1))
    api_username = fields.String(load_default=None, validate=validate.Length(min=1))
    first_run_pages = fields.Integer(load_default=10, validate=validate.Range(min=1, max=1000))

    @validates_schema
    def _key_needs_username(self, data, **_):
        if data.get("api_key") and not data.get("api_username"):
            raise ValidationError("give the user the api_key acts as (Discourse's Api-Username)",
                                  field_name="api_username")
        if data.get("api_username") and not data.get("api_key"):
            raise ValidationError("give the key for api_username (export it and write \"${FORUM_API_KEY}\")",
                                  field_name="api_key")


class ForumSource(Source):
    """Posts from a Discourse forum (GET /posts.json), resumable by the last post id stored."""

    name = "forum"
    ConfigSchema = ForumConfig
    secret_fields = ("api_key",)

    def __init__(self, config: dict[str, Any], context):
        super().__init__(config, context)
        self.base_url = config["base_url"].rstrip("/")
        self.host = urlsplit(self.base_url).hostname
        self.headers = {"Accept": "application/json"}
        if config["api_key"]:
            self.headers.update({"Api-Key": config["api_key"], "Api-Username": config["api_username"]})
        # The shared HTTP layer: timeouts, retries on 5xx, exact waits on 429 Retry-After, redaction.
        self.http = context.http()

    def check(self) -> str:
        posts = self._latest(before=None)
        return f"{self.base_url}: {len(posts)} latest posts readable"

    def fetch(self, cursor: Any) -> Iterator[Page]:
        last_id = (cursor or {}).get("last_id")
        new_posts, page_size = self._walk_back_to(last_id)
        new_posts.reverse()  # oldest first, so every page's cursor covers all the posts before it
        for start in range(0, len(new_posts), page_size):
            chunk = new_posts[start:start + page_size]
            mentions = [self._mention(p) for p in chunk if self._is_readable(p)]
            yield Page(mentions, {"last_id": chunk[-1]["id"]})

    # --- Discourse ---

    def _latest(self, before: int | None) -> list[dict[str, Any]]:
        params = {} if before is None else {"before": before}
        return self.http.get(f"{self.base_url}/posts.json", params=params, headers=self.headers).json()["latest_posts"]

    def _walk_back_to(self, last_id: int | None) -> tuple[list[dict[str, Any]], int]:
        """Posts newer than ``last_id``, newest first, and the page size the forum serves.

        A later run walks back until it meets ``last_id``, however far that is, so nothing is
        skipped; only the first run, with nothing stored yet, stops after ``first_run_pages``.
        """
        posts: list[dict[str, Any]] = []
        sizes = [1]
        # ``before`` is the oldest id of the page just read; an empty page is the forum's first post.
        paginator = TokenPaginator(lambda batch: self._older_than(batch, paginator.current), more=bool)

        def keep(batch: list[dict[str, Any]], more: bool) -> None:
            sizes.append(len(batch))
            fresh = [p for p in batch if last_id is None or p["id"] > last_id]
            posts.extend(fresh)
            if len(fresh) < len(batch):
                paginator.stop()  # reached the posts already stored

        first_run_pages = self.config["first_run_pages"] if last_id is None else None
        # ``paginate`` runs the requests (refusing a ``before`` that repeats); keep() only collects.
        list(paginate(self._latest, paginator, keep, max_pages=first_run_pages))
        if not paginator.finished:
            self.log.info("first run: read %d pages of history (first_run_pages)", paginator.pages)
        return posts, max(sizes)

    def _older_than(self, batch: list[dict[str, Any]], before: int | None) -> int:
        """The ``before`` of the page after ``batch``; the paginator refuses one that repeats."""
        oldest = min(p["id"] for p in batch)
        if before is not None and oldest > before:
            raise FatalError(f"{self.base_url}/posts.json?before={before} answered posts that are not older; "
                             "stopping instead of looping")
        return oldest

    @staticmethod
    def _is_readable(post: dict[str, Any]) -> bool:
        # Whispers and moderator actions are staff-only noise; hidden and deleted posts are gone.
        return (post["post_type"] == REGULAR_POST and not post["hidden"] and not post["deleted_at"]
                and not post["user_deleted"])

    def _mention(self, post: dict[str, Any]) -> Mention:
        created = datetime.fromisoformat(post["created_at"].replace("Z", "+00:00")).astimezone(timezone.utc)
        username = post["username"]
        return Mention(
            network="discourse",
            # Post ids are unique within one forum only: the host name keeps two forums apart.
            native_id=f"{self.host}/{post['id']}",
            text=post["raw"],
            created_at=created,
            author=Author(id=str(post["user_id"]), handle=username,
                          name=post["name"] or post["display_username"] or username,
                          profile_url=f"{self.base_url}/u/{username}"),
            url=f"{self.base_url}{post['post_url']}",
            engagement=Engagement(replies=post["reply_count"], quotes=post["quote_count"]),
            raw=post,
        )


@hookimpl
def register_sources(register):
    """Add the forum source to socialcrm."""
    register(ForumSource)
