"""Stand-ins for the outside world a plugin talks to: a clock, a network's posts, a system of record.

- ``FakeClock`` records the waits the shared HTTP layer asks for instead of sleeping.
- ``Upstream`` is the network a source reads: posts with increasing ids and times, added between
  runs. A test's ``serve`` answers the vendor's endpoint from it (``after``, ``before``, ``newest``).
- ``FakeSystem`` is the system of record a sink writes to. It keeps every object it was asked to
  create, so a second object for the same record shows, and answers as the vendor does: ``create``
  replays by idempotency key, ``upsert`` matches by external id.
- Both can be told to fail (``fail_next``, ``fail_always``) with a ``Fault``: a status with its
  headers, a timeout, a dropped connection, or a response lost after the write happened. A callback
  wrapped in ``guard`` applies those faults before (or, for a lost response, after) it runs.
"""
from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http import HTTPStatus
from typing import Any, Callable

T0 = 1_800_000_000.0  # a fixed "now" so waits computed from reset headers are exact
FIRST_POST_AT = datetime(2026, 10, 1, 9, 0, tzinfo=timezone.utc)

# Plain support chatter with the characters connectors get wrong: an ampersand and angle brackets
# (HTML-rendering APIs escape them), accents and an emoji (encodings), a quote (JSON escaping).
_TEXTS = (
    "My WaveBox keeps dropping wifi every evening, anyone knows a fix?",
    "Support chat closed on me twice & still no refund <sigh>",
    "Thanks @Brightwave, the engineer was brilliant and on time",
    "Would love a \"guest network\" toggle in the WaveBox app",
    "Café has WaveBox fibre now ☕ and it's fast",
    "How do I change the DNS servers on a WaveBox 3?",
    "Thinking of switching from Orbit Fiber, what's the WaveBox price for 500 Mb?",
)


class FakeClock:
    """A clock for ``HttpClient(sleep=..., clock=...)``: ``sleep`` records the wait and moves time on."""

    def __init__(self, now: float = T0):
        self.now = now
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        """Record a wait instead of sleeping."""
        self.waits.append(seconds)
        self.now += seconds


@dataclass(frozen=True)
class Fault:
    """One scripted failure of a fake endpoint. Build with the class methods."""

    kind: str  # "status", "timeout", "connection" or "lost_response"
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def rate_limited(cls, retry_after: float | None = 30) -> "Fault":
        """429 Too Many Requests, with ``Retry-After`` in seconds when given."""
        headers = {} if retry_after is None else {"Retry-After": str(int(retry_after))}
        return cls("status", 429, headers)

    @classmethod
    def server_error(cls, status: int = 503) -> "Fault":
        """A 5xx answer."""
        return cls("status", status)

    @classmethod
    def unauthorized(cls, status: int = 401) -> "Fault":
        """Bad or missing credentials (401), or a missing permission (403)."""
        return cls("status", status)

    @classmethod
    def timeout(cls) -> "Fault":
        """No answer in time: the request may or may not have been seen."""
        return cls("timeout")

    @classmethod
    def connection_error(cls) -> "Fault":
        """The connection failed before the request was sent."""
        return cls("connection")

    @classmethod
    def lost_response(cls) -> "Fault":
        """The write happened, then the response was lost: the case idempotency keys exist for."""
        return cls("lost_response")

    def __str__(self) -> str:
        return f"{self.status} {HTTPStatus(self.status).phrase}" if self.kind == "status" else self.kind


Reply = tuple  # (status, headers, body), what a ``responses`` callback returns
ErrorBody = Callable[[int], tuple[dict[str, str], str]]


def _default_error_body(status: int) -> tuple[dict[str, str], str]:
    return {"Content-Type": "application/json"}, json.dumps({"error": HTTPStatus(status).phrase})


class _Faults:
    """Scripted faults and the ``guard`` that applies them to a ``responses`` callback."""

    def __init__(self) -> None:
        self._next: deque[Fault] = deque()
        self._always: Fault | None = None
        self.calls = 0          # requests that reached a guarded callback
        self.faults_served = 0  # of those, how many got a scripted fault
        self.max_calls = 500    # past this a plugin is looping, not paging

    def fail_next(self, *faults: Fault) -> None:
        """The next requests fail with ``faults``, one each, in order; later ones succeed."""
        self._next.extend(faults)

    def fail_always(self, fault: Fault) -> None:
        """Every request fails with ``fault`` until ``heal()``."""
        self._always = fault

    def heal(self) -> None:
        """Forget every scripted fault."""
        self._next.clear()
        self._always = None

    def guard(self, callback: Callable[[Any], Reply], error_body: ErrorBody | None = None) -> Callable[[Any], Reply]:
        """Wrap a ``responses`` callback so scripted faults reach the plugin.

        ``error_body(status) -> (headers, body)`` shapes error answers as the vendor documents
        them; by default ``{"error": "<reason phrase>"}``.
        """
        import requests  # the plugin under test talks through requests; its errors are what it sees

        shape = error_body or _default_error_body

        def guarded(request: Any) -> Reply:
            self.calls += 1
            if self.calls > self.max_calls:
                raise AssertionError(f"the plugin made more than {self.max_calls} requests to the fake API: "
                                     "does it stop when there is nothing more to read (or after a failure)?")
            fault = self._next.popleft() if self._next else self._always
            if fault is None:
                return callback(request)
            self.faults_served += 1
            if fault.kind == "timeout":
                raise requests.ReadTimeout("the fake server did not answer in time")
            if fault.kind == "connection":
                raise requests.ConnectionError("the fake server refused the connection")
            if fault.kind == "lost_response":
                callback(request)  # the write happens ...
                raise requests.ReadTimeout("the response was lost after the write")  # ... the answer doesn't
            headers, body = shape(fault.status)
            return fault.status, {**headers, **fault.headers}, body

        return guarded


@dataclass(frozen=True)
class UpstreamItem:
    """One post on the fake network, as the kit expects a source to report it."""

    id: int
    text: str
    created_at: datetime
    author_id: str
    author_handle: str
    author_name: str
    likes: int = 0
    replies: int = 0
    reply_to: int | None = None   # the id of the post this one answers
    root: int | None = None       # the id of its thread's first post (set with reply_to)

    @property
    def native_id(self) -> str:
        """The id as a string, the default a source's ``Mention.native_id`` is compared with."""
        return str(self.id)

    @property
    def created_iso(self) -> str:
        """``created_at`` as ISO 8601 UTC with a ``Z``, the way most APIs write it."""
        return self.created_at.strftime("%Y-%m-%dT%H:%M:%SZ")

    def to_mention_json(self, network: str = "x") -> dict[str, Any]:
        """The item in the JSON shape ``socialcrm.core.sdk.model.MentionSchema`` reads."""
        out = {"network": network, "id": self.native_id, "text": self.text, "created_at": self.created_iso,
               "author": {"id": self.author_id, "handle": self.author_handle, "name": self.author_name,
                          "followers": 10},
               "engagement": {"likes": self.likes, "replies": self.replies}}
        if self.reply_to is not None:
            out["reply_to"], out["conversation"] = f"{network}:{self.reply_to}", f"{network}:{self.root}"
        return out


class Upstream(_Faults):
    """The network a source reads, oldest post first. The kit adds posts between runs.

    ``page_size`` is the page size to serve when the vendor, not the client, decides it.
    """

    def __init__(self, page_size: int = 3, first_id: int = 1001) -> None:
        super().__init__()
        self.items: list[UpstreamItem] = []
        self.page_size = page_size
        self._next_id = first_id

    def publish(self, count: int, thread: bool = False) -> list[UpstreamItem]:
        """Add ``count`` new posts, each newer (id and time) than every post before. With ``thread``,
        the first starts a thread and each of the others answers the one before it."""
        added: list[UpstreamItem] = []
        for _ in range(count):
            n = len(self.items)
            # Ids grow by uneven steps, as real ids do, so no source can assume they are contiguous.
            self._next_id += 2 + n % 3
            item = UpstreamItem(
                id=self._next_id, text=_TEXTS[n % len(_TEXTS)] + f" (#{n + 1})",
                created_at=FIRST_POST_AT + timedelta(minutes=7 * n, seconds=n),
                author_id=f"u{500 + n % 4}", author_handle=f"member{n % 4}", author_name=f"Member {n % 4}",
                likes=n % 5, replies=n % 2,
                reply_to=added[-1].id if thread and added else None,
                root=added[0].id if thread and added else None)
            self.items.append(item)
            added.append(item)
        return added

    def after(self, since_id: int | None, limit: int | None = None) -> list[UpstreamItem]:
        """Posts with an id above ``since_id``, oldest first, at most ``limit``."""
        found = [i for i in self.items if since_id is None or i.id > since_id]
        return found[:limit] if limit is not None else found

    def before(self, before_id: int | None, limit: int | None = None) -> list[UpstreamItem]:
        """Posts with an id below ``before_id`` (all when None), newest first, at most ``limit``."""
        found = [i for i in reversed(self.items) if before_id is None or i.id < before_id]
        return found[:limit] if limit is not None else found

    def newest(self, limit: int | None = None) -> list[UpstreamItem]:
        """The newest posts first, at most ``limit``."""
        return self.before(None, limit)

    def since(self, when: datetime, limit: int | None = None) -> list[UpstreamItem]:
        """Posts created after ``when``, oldest first, at most ``limit``."""
        found = [i for i in self.items if i.created_at > when]
        return found[:limit] if limit is not None else found


@dataclass
class StoredObject:
    """One object in the fake system of record: its id there (the sink's external id) and payload."""

    id: str
    record_id: str
    data: Any


class FakeSystem(_Faults):
    """A system of record for sink tests: keeps every object created, refuses what it is told to.

    A test's ``serve`` calls ``create`` (or ``upsert``) from its ``responses`` callback with the
    record id found in the vendor request, and answers the vendor's validation error when
    ``refuses(record_id)`` is true.
    """

    def __init__(self, first_id: int = 90001) -> None:
        super().__init__()
        self.objects: list[StoredObject] = []
        self._by_key: dict[str, StoredObject] = {}
        self._refused: set[str] = set()
        self.refusals_checked = 0
        self._next_id = first_id

    # --- what a test's ``serve`` calls, vendor side ---

    def create(self, record_id: str, data: Any, idempotency_key: str | None = None) -> tuple[StoredObject, bool]:
        """Create an object; a key seen before returns the first object instead (``created`` False)."""
        if idempotency_key is not None and idempotency_key in self._by_key:
            return self._by_key[idempotency_key], False
        obj = StoredObject(str(self._next_id), record_id, data)
        self._next_id += 1
        self.objects.append(obj)
        if idempotency_key is not None:
            self._by_key[idempotency_key] = obj
        return obj, True

    def upsert(self, record_id: str, data: Any) -> tuple[StoredObject, bool]:
        """Create, or update the object already holding ``record_id`` (an upsert by external id)."""
        for obj in self.objects:
            if obj.record_id == record_id:
                obj.data = data
                return obj, False
        return self.create(record_id, data)

    def refuses(self, record_id: str) -> bool:
        """Whether the vendor must refuse this record as invalid (the kit decides)."""
        self.refusals_checked += 1
        return record_id in self._refused

    # --- what the kit calls ---

    def refuse(self, record_id: str) -> None:
        """Make ``refuses(record_id)`` true: the vendor answers a validation error for it."""
        self._refused.add(record_id)

    def holding(self, record_id: str) -> list[StoredObject]:
        """Every object made for ``record_id`` (more than one is a duplicate)."""
        return [o for o in self.objects if o.record_id == record_id]

    def record_ids(self) -> list[str]:
        """The record id of every object held, one entry per object."""
        return [o.record_id for o in self.objects]

