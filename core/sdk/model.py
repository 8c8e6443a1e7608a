"""The data that flows through socialcrm: mentions in, records out, one delivery outcome per record.

A ``Mention`` is what a source heard, normalised across networks. A ``Record`` is what learning made
of it and what every sink receives. A ``Delivery`` is a sink's answer for one record.
"""
from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import orjson
from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, validate

RECORD_TYPES = ("case", "query", "rant", "rave", "lead", "rfe", "spam", "news", "other")
NOISE_TYPES = frozenset({"spam", "news"})
#: The type of an incident record: not learned from a post (so not one of RECORD_TYPES) but made when
#: near-identical complaints from many accounts are grouped (``core.engine.incidents``).
INCIDENT_TYPE = "incident"
SENTIMENTS = ("positive", "neutral", "negative")
ACTIONS = ("open_case", "answer", "create_lead", "log_request", "escalate", "thank", "none")
PRIORITIES = ("P1", "P2", "P3", "P4")
MODES = ("reactive", "proactive", "progressive")


def utc(value: datetime) -> datetime:
    """Return ``value`` as an aware UTC datetime (naive values are taken to be UTC already)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def isoformat(value: datetime) -> str:
    """ISO 8601 in UTC with a ``Z`` suffix, the one timestamp format records carry."""
    return utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(slots=True)
class Author:
    """Who said it: the network's user id and handle, display name, reach and profile link."""

    id: str | None = None
    handle: str | None = None
    name: str | None = None
    followers: int = 0
    verified: bool = False
    profile_url: str | None = None
    contact_id: str | None = None  # the CRM contact this author matched, set during learning


@dataclass(slots=True)
class Engagement:
    """How people reacted to a mention when it was fetched."""

    likes: int = 0
    reposts: int = 0
    replies: int = 0
    quotes: int = 0


@dataclass(slots=True)
class Mention:
    """One post, comment, article or reply that a source heard, normalised across networks.

    ``repost_of``, ``reply_to`` (the parent post) and ``quote_of`` hold full mention ids
    (``network:native_id``). ``conversation`` is the id of the thread's root post (``network:root_id``),
    as the network tells it (X ``conversation_id``, Reddit ``link_id``, Bluesky ``reply.root``, ...);
    ``None`` when the source does not know it. ``raw`` keeps the network's own payload for audit and
    reprocessing.
    """

    network: str
    native_id: str
    text: str
    created_at: datetime
    author: Author = field(default_factory=Author)
    url: str | None = None
    lang: str | None = None
    engagement: Engagement = field(default_factory=Engagement)
    reply_to: str | None = None
    quote_of: str | None = None
    repost_of: str | None = None
    addressed_to_brand: bool | None = None
    source: str | None = None
    raw: dict[str, Any] | None = None
    conversation: str | None = None

    @property
    def id(self) -> str:
        """The stable id, ``network:native_id``: the idempotency key everywhere."""
        return f"{self.network}:{self.native_id}"

    @property
    def canonical_id(self) -> str:
        """The id of the content: a repost counts as its original."""
        return self.repost_of or self.id

    @property
    def conversation_id(self) -> str:
        """The conversation this mention belongs to: the root the source named, else (a reply whose root
        is unknown) its parent, else (a post that starts a thread) its own canonical id."""
        return self.conversation or self.reply_to or self.canonical_id


@dataclass(slots=True)
class Sentiment:
    """A sentiment label with its score in [-1, 1]."""

    label: str = "neutral"
    score: float = 0.0


@dataclass(slots=True)
class Influence:
    """Reach and engagement folded into a 0-100 score and a tier (low, medium, high, top)."""

    score: int = 0
    tier: str = "low"


@dataclass(slots=True)
class IncidentSummary:
    """What an incident record groups: how many member posts from how many accounts, the first and
    last post's time, the terms they share and a few example posts (``{"id", "author", "content"}``)."""

    posts: int
    accounts: int
    first_at: datetime
    last_at: datetime
    terms: list[str] = field(default_factory=list)
    examples: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; timestamps as ISO 8601 UTC strings."""
        return {"posts": self.posts, "accounts": self.accounts, "first_at": isoformat(self.first_at),
                "last_at": isoformat(self.last_at), "terms": list(self.terms),
                "examples": [dict(e) for e in self.examples]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "IncidentSummary":
        """Rebuild a summary from ``to_dict`` output."""
        data = dict(data)
        for name in ("first_at", "last_at"):
            data[name] = utc(datetime.fromisoformat(data[name].replace("Z", "+00:00")))
        return cls(**data)


@dataclass(slots=True)
class Record:
    """What learning made of one mention, and what every sink receives.

    ``id`` is derived from the mention (``network:native_id``) and is the idempotency key for every
    sink. ``reasons`` says in plain words which terms, scores and rules decided each field.
    ``conversation`` is the id of the thread's root post (a post that starts a thread is its own
    conversation); ``parent`` the post it answers, if any; ``by_brand`` is true for the brand's own reply
    (sinks write it as an agent's public comment).

    ``thread_object`` is not stored: the host sets it for one sink just before ``send``. It is the id, in
    that sink, of the object the conversation already has (the external id its first record was delivered
    with), so a record with a ``thread_object`` is a *follow-up* that updates that object instead of
    opening another; ``None`` means open a new one (``reasons`` then says why, when it is a reply).

    ``incident`` is the id of the incident record a grouped complaint belongs to; an incident record
    itself has ``type = "incident"`` (``INCIDENT_TYPE``) and its ``incident_summary``.
    """

    id: str
    network: str
    content: str
    created_at: datetime
    author: Author = field(default_factory=Author)
    source: str | None = None
    url: str | None = None
    lang: str | None = None
    type: str = "other"
    sentiment: Sentiment = field(default_factory=Sentiment)
    action: str = "none"
    influence: Influence = field(default_factory=Influence)
    priority: str = "P4"
    mode: str = "proactive"
    route: list[str] = field(default_factory=list)
    team: str | None = None
    reasons: list[str] = field(default_factory=list)
    fraud: bool = False
    reposts: int = 0
    engagement: Engagement = field(default_factory=Engagement)
    confidence: float = 0.5  # how sure learning is of type and sentiment, 0-1
    conversation: str | None = None
    parent: str | None = None
    by_brand: bool = False
    thread_object: str | None = None

    @property
    def is_followup(self) -> bool:
        """True when this record updates the object its conversation already has in the sink at hand."""
        return self.thread_object is not None
    incident: str | None = None
    incident_summary: IncidentSummary | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; timestamps as ISO 8601 UTC strings."""
        # Built by hand rather than with dataclasses.asdict, which deep-copies every value and was
        # the single largest cost of the whole workflow in bench/pipeline.py.
        a, s, i, e = self.author, self.sentiment, self.influence, self.engagement
        return {
            "id": self.id, "network": self.network, "content": self.content,
            "created_at": isoformat(self.created_at),
            "author": {"id": a.id, "handle": a.handle, "name": a.name, "followers": a.followers,
                       "verified": a.verified, "profile_url": a.profile_url, "contact_id": a.contact_id},
            "source": self.source, "url": self.url, "lang": self.lang, "type": self.type,
            "sentiment": {"label": s.label, "score": s.score}, "action": self.action,
            "influence": {"score": i.score, "tier": i.tier}, "priority": self.priority, "mode": self.mode,
            "route": list(self.route), "team": self.team, "reasons": list(self.reasons), "fraud": self.fraud,
            "reposts": self.reposts, "confidence": self.confidence,
            "conversation": self.conversation, "parent": self.parent, "by_brand": self.by_brand,
            "incident": self.incident,
            "incident_summary": self.incident_summary.to_dict() if self.incident_summary else None,
            "engagement": {"likes": e.likes, "reposts": e.reposts, "replies": e.replies, "quotes": e.quotes},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Record":
        """Rebuild a record from ``to_dict`` output."""
        data = dict(data)
        data.pop("thread_object", None)  # per sink and per send, never stored
        data["created_at"] = utc(datetime.fromisoformat(data["created_at"].replace("Z", "+00:00")))
        data["author"] = Author(**data.get("author") or {})
        data["sentiment"] = Sentiment(**data.get("sentiment") or {})
        data["influence"] = Influence(**data.get("influence") or {})
        data["engagement"] = Engagement(**data.get("engagement") or {})
        if data.get("incident_summary"):
            data["incident_summary"] = IncidentSummary.from_dict(data["incident_summary"])
        return cls(**data)


class DeliveryStatus(str, enum.Enum):
    """What a sink did with one record."""

    DELIVERED = "delivered"
    RETRY = "retry"
    REJECTED = "rejected"


@dataclass(slots=True, frozen=True)
class Delivery:
    """A sink's outcome for one record: delivered (with the external id), retry later, or rejected.

    Build one with ``Delivery.delivered``, ``Delivery.retry`` or ``Delivery.rejected``.
    """

    record_id: str
    status: DeliveryStatus
    external_id: str | None = None
    error: str | None = None
    retry_after: float | None = None

    @classmethod
    def delivered(cls, record_id: str, external_id: str | None = None) -> "Delivery":
        """The system of record holds it; ``external_id`` is its id there (a Case number, ticket id)."""
        return cls(record_id, DeliveryStatus.DELIVERED, external_id=external_id)

    @classmethod
    def retry(cls, record_id: str, error: str, retry_after: float | None = None) -> "Delivery":
        """A transient failure; ``retry_after`` is the wait in seconds the system asked for, if any."""
        return cls(record_id, DeliveryStatus.RETRY, error=error, retry_after=retry_after)

    @classmethod
    def rejected(cls, record_id: str, reason: str) -> "Delivery":
        """Rejected for good (invalid field, missing data): the record goes to the dead-letter queue."""
        return cls(record_id, DeliveryStatus.REJECTED, error=reason)


class SkippedItem(str):
    """An item a source could not read: a string (``"where: reason"``, as ``Page.errors`` has always held)
    that also carries what the host needs to quarantine it.

    ``reason`` says what is wrong, ``where`` where the item was (``line 7``, the network's id), and
    ``payload`` the item as received, as text: bytes are decoded with ``errors="backslashreplace"`` (so
    undecodable input such as lone surrogates survives), anything else but a string is written as JSON.
    The host keeps it in the quarantine, where ``socialcrm quarantine replay`` reads the payload again
    as a mention in socialcrm's JSON shape (``MentionSchema``).
    """

    reason: str
    where: str | None
    payload: str | None

    def __new__(cls, reason: str, where: str | None = None, payload: Any = None) -> "SkippedItem":
        item = super().__new__(cls, f"{where}: {reason}" if where else reason)
        item.reason, item.where, item.payload = reason, where, payload_text(payload)
        return item

    @classmethod
    def of(cls, problem: "str | SkippedItem") -> "SkippedItem":
        """``problem`` as a SkippedItem: a plain string (a plugin that keeps no payload) becomes the reason."""
        return problem if isinstance(problem, SkippedItem) else cls(str(problem))


def payload_text(payload: Any) -> str | None:
    """A raw payload as the quarantine keeps it: text as is, bytes decoded with ``backslashreplace``,
    anything else as JSON."""
    if payload is None or isinstance(payload, str):
        return payload
    if isinstance(payload, (bytes, bytearray)):
        return bytes(payload).decode("utf-8", errors="backslashreplace")
    return json.dumps(payload, ensure_ascii=False, default=str)


@dataclass(slots=True)
class Page:
    """One page a source fetched: its mentions and the cursor to resume from after them.

    ``errors`` lists the items of the page that could not be read, each a plain string naming where it
    was and why, or a ``SkippedItem`` (a string too) that also keeps the raw payload. The host counts
    them in the run summary and keeps each in the quarantine (``socialcrm quarantine list``).
    """

    mentions: list[Mention]
    cursor: Any
    errors: list[str] = field(default_factory=list)

    def skipped(self) -> list[SkippedItem]:
        """Every unreadable item of the page as a ``SkippedItem`` (plain strings become its reason)."""
        return [SkippedItem.of(problem) for problem in self.errors]


# --- validation of mentions given as JSON (the jsonl source, webhooks, the contract kit) ---


class AuthorSchema(Schema):
    """An author as JSON."""

    class Meta:
        unknown = EXCLUDE

    id = fields.String(allow_none=True, load_default=None)
    handle = fields.String(allow_none=True, load_default=None)
    name = fields.String(allow_none=True, load_default=None)
    followers = fields.Integer(load_default=0, validate=validate.Range(min=0))
    verified = fields.Boolean(load_default=False)
    profile_url = fields.String(allow_none=True, load_default=None)

    @post_load
    def make(self, data, **_):
        return Author(**data)


class EngagementSchema(Schema):
    """Engagement counts as JSON."""

    class Meta:
        unknown = EXCLUDE

    likes = fields.Integer(load_default=0, validate=validate.Range(min=0))
    reposts = fields.Integer(load_default=0, validate=validate.Range(min=0))
    replies = fields.Integer(load_default=0, validate=validate.Range(min=0))
    quotes = fields.Integer(load_default=0, validate=validate.Range(min=0))

    @post_load
    def make(self, data, **_):
        return Engagement(**data)


class MentionSchema(Schema):
    """A mention as JSON: ``network``, ``id`` (the native id), ``text``, ``created_at`` are required."""

    class Meta:
        unknown = EXCLUDE

    network = fields.String(required=True, validate=validate.Regexp(r"^[a-z0-9_-]+$"))
    native_id = fields.String(required=True, data_key="id", validate=validate.Length(min=1))
    text = fields.String(required=True)
    created_at = fields.AwareDateTime(required=True, default_timezone=timezone.utc)
    url = fields.String(allow_none=True, load_default=None)
    lang = fields.String(allow_none=True, load_default=None)
    author = fields.Nested(AuthorSchema, load_default=None)
    engagement = fields.Nested(EngagementSchema, load_default=None)
    reply_to = fields.String(allow_none=True, load_default=None)
    quote_of = fields.String(allow_none=True, load_default=None)
    repost_of = fields.String(allow_none=True, load_default=None)
    conversation = fields.String(allow_none=True, load_default=None)
    addressed_to_brand = fields.Boolean(allow_none=True, load_default=None)

    @post_load
    def make(self, data, **_):
        data["created_at"] = utc(data["created_at"])
        data["author"] = data["author"] or Author()
        data["engagement"] = data["engagement"] or Engagement()
        return Mention(**data)


_MENTION_SCHEMA = MentionSchema()
_NETWORK = re.compile(r"^[a-z0-9_-]+$")
_OPTIONAL_TEXT = ("url", "lang", "reply_to", "quote_of", "repost_of", "conversation")
_AUTHOR_TEXT = ("id", "handle", "name", "profile_url")
_COUNTS = ("likes", "reposts", "replies", "quotes")


def _plain_count(value: Any) -> bool:
    return type(value) is int and value >= 0


def _fast_mention(obj: dict[str, Any]) -> Mention | None:
    """Build a mention straight from a well-formed object, or return None to let the schema decide.

    Sources hand over tens of thousands of mentions a minute and almost all are well-formed; checking
    the common shape directly costs a tenth of a schema load. Anything unusual (a missing field, a
    string count, an extra nesting) falls back to ``MentionSchema``, which alone produces the errors,
    so both paths accept exactly the same mentions (tests/test_model.py holds them to it).
    """
    network, native_id, text, created = obj.get("network"), obj.get("id"), obj.get("text"), obj.get("created_at")
    if not (type(network) is str and _NETWORK.match(network) and type(native_id) is str and native_id
            and type(text) is str and type(created) is str):
        return None
    for key in _OPTIONAL_TEXT:
        value = obj.get(key)
        if value is not None and type(value) is not str:
            return None
    addressed = obj.get("addressed_to_brand")
    if addressed is not None and type(addressed) is not bool:
        return None
    try:
        when = datetime.fromisoformat(created)
    except ValueError:
        return None
    if when.tzinfo is None or len(created) < 19:
        return None  # the schema decides about naive or partial timestamps
    author_obj, author = obj.get("author"), Author()
    if author_obj is not None:
        if type(author_obj) is not dict:
            return None
        for key in _AUTHOR_TEXT:
            value = author_obj.get(key)
            if value is not None and type(value) is not str:
                return None
        followers, verified = author_obj.get("followers", 0), author_obj.get("verified", False)
        if not _plain_count(followers) or type(verified) is not bool:
            return None
        author = Author(author_obj.get("id"), author_obj.get("handle"), author_obj.get("name"), followers,
                        verified, author_obj.get("profile_url"))
    engagement_obj, engagement = obj.get("engagement"), Engagement()
    if engagement_obj is not None:
        if type(engagement_obj) is not dict:
            return None
        counts = [engagement_obj.get(key, 0) for key in _COUNTS]
        if not all(_plain_count(c) for c in counts):
            return None
        engagement = Engagement(*counts)
    return Mention(network=network, native_id=native_id, text=text, created_at=when.astimezone(timezone.utc),
                   author=author, url=obj.get("url"), lang=obj.get("lang"), engagement=engagement,
                   reply_to=obj.get("reply_to"), quote_of=obj.get("quote_of"), repost_of=obj.get("repost_of"),
                   addressed_to_brand=addressed, raw=obj, conversation=obj.get("conversation"))


def mention_from_json(obj: Any) -> Mention:
    """Validate a JSON object as a mention; raises ``ValidationError`` naming each bad field."""
    if not isinstance(obj, dict):
        raise ValidationError({"_schema": ["a mention must be a JSON object"]})
    mention = _fast_mention(obj)
    if mention is None:
        mention = _MENTION_SCHEMA.load(obj)
        mention.raw = obj
    return mention


def read_mention(raw: bytes | str, where: str | None = None) -> "Mention | SkippedItem":
    """A mention from its JSON text (``MentionSchema``'s shape), or the ``SkippedItem`` saying why it is
    unreadable (not JSON, undecodable bytes, a missing or bad field), located at ``where`` and carrying
    ``raw``. The jsonl source reads its lines with it, the quarantine its replays."""
    try:
        return mention_from_json(orjson.loads(raw))
    except orjson.JSONDecodeError as exc:  # undecodable bytes ("surrogates not allowed") land here too
        return SkippedItem(f"not JSON ({exc.msg} at column {exc.colno})", where, raw)
    except ValidationError as exc:
        return SkippedItem(describe_validation_error(exc), where, raw)


def describe_validation_error(error: ValidationError) -> str:
    """Flatten marshmallow's nested messages into ``field.sub: message`` text."""
    return "; ".join(f"{path}: {msg}" for path, msg in flatten_messages(error.messages))


def flatten_messages(messages: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Walk marshmallow's error dict and yield (dotted field path, message) pairs."""
    out: list[tuple[str, str]] = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = prefix if key == "_schema" else (f"{prefix}.{key}" if prefix else str(key))
            out.extend(flatten_messages(value, name))
    elif isinstance(messages, list):
        for item in messages:
            out.extend(flatten_messages(item, prefix))
    else:
        out.append((prefix or "(record)", str(messages)))
    return out


__all__ = [
    "ACTIONS", "Author", "Delivery", "DeliveryStatus", "Engagement", "Influence", "Mention",
    "IncidentSummary", "INCIDENT_TYPE", "MentionSchema", "MODES", "NOISE_TYPES", "Page", "PRIORITIES", "RECORD_TYPES",
    "Record", "SENTIMENTS", "Sentiment", "SkippedItem", "describe_validation_error", "flatten_messages",
    "mention_from_json", "payload_text", "read_mention",
]
