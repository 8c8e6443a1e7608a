"""Paging and resumable cursors for sources, declared instead of hand-written.

A source says how to ask for one page and how to read where the next one is; ``paginate`` runs the
loop. The pieces, learned from the Singer SDK's paginators and Airbyte's ``HttpStream``:

- A **paginator** holds the token of the page to ask for next (``current``). After each response,
  ``advance(response)`` reads the next token with ``get_next``; no token (or ``has_more`` false)
  ends the stream, and a next token equal to the current one is refused as a loop
  (``PaginationLoop``) instead of asking for the same page for ever.
- A **watermark** (``Watermark``) is the newest time (or id) a stream has taken, with the ids seen
  at exactly that value, so items that share the watermark's second are neither lost nor taken twice.
- **Ids seen** (``SeenIds``) are the ids a stream took, newest first and bounded, for a stream whose
  items cannot be ordered by time (a feed document re-dates, re-orders or leaves entries undated): an
  item is new when its id is not among them.
- A **sweep** (``new_sweep``, ``sweep_saw``, ``end_sweep``) is one pass from the newest item back to
  the watermark (or, for a backfill, to ``since``). It remembers the newest value it met (``top``,
  ``top_seen``); only when it ends does that value become the watermark, so a run interrupted
  mid-sweep resumes the sweep and never skips the pages between.

Everything serialises to plain JSON (``to_json``/``from_json``) in the layout the built-in sources
have always stored, so cursors written by earlier versions load unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence
from urllib.parse import parse_qs, urlsplit

from socialcrm.core.sdk.errors import FatalError
from socialcrm.core.sdk.model import Page


class PaginationLoop(FatalError):
    """The API answered with the same next-page token it was asked with: following it would never end."""


class Paginator:
    """Where the next page of a stream is. Subclasses implement ``get_next`` (and may ``has_more``).

    ``current`` is the token to send with the next request (``None``: the first page); ``finished``
    turns true once a response said there is nothing after it.
    """

    def __init__(self, start: Any = None, more: Callable[[Any], bool] | None = None):
        self.current = start
        self.finished = False
        self.pages = 0
        self._more = more

    def has_more(self, response: Any) -> bool:
        """Whether there may be a page after ``response``: what the ``more`` callable given says (a
        short page is the last, say); without one, yes, and ``get_next`` finding no token ends it."""
        return self._more(response) if self._more else True

    def get_next(self, response: Any) -> Any:
        """The token that asks for the page after ``response``; ``None`` when there is none."""
        raise NotImplementedError

    def stop(self) -> None:
        """End the stream after the current response: the source found its end itself (it reached its
        watermark), whatever the API says about further pages."""
        self.finished = True

    def advance(self, response: Any) -> None:
        """Move past ``response``: to its next token, or to the end. Refuses a token that repeats."""
        self.pages += 1
        token = self.get_next(response) if self.has_more(response) else None
        if token is None or token == "":
            self.finished = True
            return
        if token == self.current:
            raise PaginationLoop(f"{type(self).__name__}: the API answered page {self.pages} with the same "
                                 f"next-page token it was asked with ({token!r:.80}); stopping instead of "
                                 f"asking for that page again")
        self.current = token


class TokenPaginator(Paginator):
    """The next token is a value in the response body (``meta.next_token``, ``cursor``, ``after``)."""

    def __init__(self, read: Callable[[Any], Any], start: Any = None, more: Callable[[Any], bool] | None = None):
        super().__init__(start, more)
        self._read = read

    def get_next(self, response: Any) -> Any:
        token = self._read(response)
        return token if isinstance(token, (str, int)) and not isinstance(token, bool) else None


class PageNumberPaginator(Paginator):
    """Pages are numbered from ``base`` (0 or 1); ``total_pages(response)`` says how many there are.
    ``start`` is the page to ask for first (a resumed stream's next page)."""

    def __init__(self, total_pages: Callable[[Any], int], start: int | None = None, base: int = 0):
        super().__init__(base if start is None else start)
        self._total = total_pages
        self.base = base

    def get_next(self, response: Any) -> int | None:
        following = self.current + 1
        return following if following - self.base < self._total(response) else None


class LinkHeaderPaginator(Paginator):
    """The next token is a query parameter of a ``Link: <...>; rel="next"`` header (RFC 8288)."""

    def __init__(self, rel: str, param: str, start: Any = None, fallback: Callable[[Any], Any] | None = None):
        super().__init__(start)
        self.rel, self.param, self._fallback = rel, param, fallback

    def get_next(self, response: Any) -> Any:
        return link_param(response, self.rel, self.param) or (self._fallback(response) if self._fallback else None)


def link_param(response: Any, rel: str, param: str) -> str | None:
    """``param`` of the ``rel`` link in a ``requests`` response's ``Link`` header, if there is one."""
    url = (getattr(response, "links", None) or {}).get(rel, {}).get("url")
    values = parse_qs(urlsplit(url).query).get(param) if url else None
    return values[0] if values else None


def paginate(request: Callable[[Any], Any], paginator: Paginator,
             page: Callable[[Any, bool], Page | None], *, max_pages: int | None = None) -> Iterator[Page]:
    """The paging loop: ``request(token)`` for each page, ``page(response, more)`` makes what to yield.

    ``page`` is called after the paginator moved past the response, so it can put the paginator's
    ``current`` (the next token) into the page's cursor, or ``stop()`` it; it returns ``None`` to
    yield nothing for a response. The loop ends when the paginator has no next page or after ``max_pages`` requests.
    """
    while max_pages is None or paginator.pages < max_pages:
        response = request(paginator.current)
        paginator.advance(response)
        made = page(response, not paginator.finished)
        if made is not None:
            yield made
        if paginator.finished:
            return


@dataclass
class Watermark:
    """The newest value (time or sortable id) a stream took, and the ids taken at exactly that value."""

    value: Any = None
    seen: list[str] = field(default_factory=list)

    def is_new(self, when: Any, item_id: str) -> bool:
        """Whether an item made at ``when`` still has to be taken: newer, or a tie not seen yet."""
        return self.value is None or when > self.value or (when == self.value and item_id not in self.seen)

    def raise_to(self, when: Any, ids: Sequence[str]) -> None:
        """Take ``ids`` made at ``when``: a newer value replaces the ties, an equal one adds to them."""
        if when is None or (self.value is not None and when < self.value):
            return
        if when == self.value:
            self.seen = sorted(set(self.seen) | set(ids))
        else:
            self.value, self.seen = when, sorted(set(ids))


class SeenIds:
    """The ids a stream has taken, newest first, bounded: the ids of the latest batch are always kept,
    older ones only up to ``limit`` in all. ``ids`` is the list to store (and to pass back in)."""

    def __init__(self, ids: Sequence[str] | None = None, limit: int = 500):
        self.ids = list(ids or [])
        self.limit = limit
        self._taken = set(self.ids)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._taken

    def take(self, latest: Sequence[str]) -> None:
        """Remember ``latest`` (in its order) ahead of the older ids, dropping the oldest beyond the bound."""
        latest = list(dict.fromkeys(latest))
        taken = set(latest)
        older = [i for i in self.ids if i not in taken]
        self.ids = (latest + older)[:max(self.limit, len(latest))]
        self._taken = set(self.ids)


def sweep_saw(sweep: dict[str, Any], when: Any, item_id: str) -> None:
    """Note an item a sweep met, so the newest one (``top``, with the ids at it in ``top_seen``)
    becomes the watermark when the sweep ends."""
    if sweep["top"] is None or when > sweep["top"]:
        sweep["top"], sweep["top_seen"] = when, [item_id]
    elif when == sweep["top"]:
        sweep["top_seen"].append(item_id)


def new_sweep(since: Any, **bookkeeping: Any) -> dict[str, Any]:
    """A sweep back to ``since`` that has met nothing yet, with the source's own ``bookkeeping`` (its
    page token, its upper bound); stored as JSON in the stream's cursor."""
    return {"since": since, **bookkeeping, "top": None, "top_seen": []}


def end_sweep(stream: dict[str, Any]) -> None:
    """A live sweep stored at ``stream["sweep"]`` reached the watermark: the newest value it met (with the
    ids at that value) becomes ``stream["watermark"]``/``["seen"]``, and the sweep is over."""
    sweep, mark = stream["sweep"], Watermark(stream.get("watermark"), list(stream.get("seen") or []))
    if sweep["top"] is None:
        mark.value = mark.value if mark.value is not None else sweep["since"]
    else:
        mark.raise_to(sweep["top"], sweep["top_seen"])
    stream["watermark"], stream["seen"], stream["sweep"] = mark.value, mark.seen, None


def end_backfill(stream: dict[str, Any]) -> None:
    """A backfill sweep reached ``since``: the stream is done."""
    stream["done"], stream["sweep"] = True, None


class StreamCursor:
    """One stream's part of a cursor shared by several streams (``{stream key: its state}``).

    ``move`` makes the page that takes this stream to a new state, carrying the other streams'
    states along, so the page's cursor resumes every stream.
    """

    def __init__(self, cursor: Any, key: str):
        self.cursor = dict(cursor or {})
        self.key = key
        self.state = self.cursor.get(key) or {}

    def move(self, state: dict[str, Any], mentions: list, errors: list[str]) -> Page | None:
        """The page that moves the stream to ``state`` with ``mentions``; ``None`` when it would carry
        nothing (no mentions, no errors, and the state unchanged), so an idle poll stores nothing."""
        made = None
        if mentions or errors or state != self.state:
            self.cursor = {**self.cursor, self.key: state}
            made = Page(mentions, self.cursor, errors)
        self.state = state
        return made


def chain_streams(streams: Sequence[Any], cursor: Any,
                  poll: Callable[[Any, dict[str, Any]], Iterator[Page]]) -> Iterator[Page]:
    """``poll(stream, cursor)`` for each stream in turn, each page's cursor carried into the next poll,
    so the cursor of any page resumes every stream (those done and the one in progress)."""
    cursor = dict(cursor or {})
    for stream in streams:
        for page in poll(stream, cursor):
            cursor = page.cursor
            yield page


__all__ = ["LinkHeaderPaginator", "PageNumberPaginator", "PaginationLoop", "Paginator", "SeenIds", "StreamCursor",
           "TokenPaginator", "Watermark", "chain_streams", "end_backfill", "end_sweep", "link_param", "new_sweep",
           "paginate", "sweep_saw"]
