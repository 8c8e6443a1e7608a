"""The API's marshmallow schemas: they validate requests and, through flask-smorest, ARE the OpenAPI spec.

Output schemas dump the core's objects (``Record`` and its parts) or plain dicts from the store.
Times stored as Unix seconds are shown as ISO 8601 date-times.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from webargs.fields import DelimitedList

from socialcrm.core.sdk.model import MentionSchema as CoreMentionSchema
from socialcrm.core.sdk.model import RECORD_TYPES, SENTIMENTS, PRIORITIES
from socialcrm.core.sdk.schema import StrictSchema

from .query import QuerySchema

EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2200, 1, 1, tzinfo=timezone.utc)
_WHEN = validate.Range(min=EARLIEST, max=LATEST, error="must be between 1970 and 2200")
_NETWORK = validate.Regexp(r"^[a-z0-9_-]{1,40}$", error="a network name: lower-case letters, digits, - and _")
_HANDLE = validate.Regexp(r"^@?[^\s@][^\s]{0,253}$", error="a handle, e.g. @someone (no spaces)")


Strict = StrictSchema  # input schemas reject unknown fields: a typo is an error, not silently ignored

class Timestamp(fields.DateTime):
    """Unix seconds (as the store keeps them) shown as an ISO 8601 UTC date-time."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        if isinstance(value, (int, float)):
            value = datetime.fromtimestamp(value, timezone.utc)
        return super()._serialize(value, attr, obj, **kwargs)


def when(**kwargs: Any) -> fields.AwareDateTime:
    """An input date-time: with a time zone (UTC assumed when none is given), 1970-2200."""
    return fields.AwareDateTime(default_timezone=timezone.utc, validate=_WHEN, **kwargs)


# --- errors ---


class ErrorSchema(Schema):
    """Every error: the HTTP code and name, a message, and the problems keyed by field name."""

    code = fields.Integer(required=True, metadata={"description": "HTTP status code"})
    status = fields.String(required=True, metadata={"description": "HTTP status name"})
    message = fields.String(required=True, metadata={"description": "What went wrong and what to do"})
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()), required=True,
                         metadata={"description": "Problems by field name (dotted for nested fields)"})


# --- health and plugins ---


class HealthSchema(Schema):
    """Liveness."""

    status = fields.String(required=True)


class PluginSchema(Schema):
    """A source or sink plugin found through the ``socialcrm`` entry points."""

    kind = fields.String(required=True, validate=validate.OneOf(("source", "sink")))
    name = fields.String(required=True)
    plugin = fields.String(required=True, metadata={"description": "The registering plugin (entry point)"})
    distribution = fields.String(allow_none=True, required=True)
    version = fields.String(allow_none=True, required=True)
    summary = fields.String(required=True)


# --- records ---


class RecordAuthorSchema(Schema):
    """Who said it."""

    id = fields.String(allow_none=True)
    handle = fields.String(allow_none=True)
    name = fields.String(allow_none=True)
    followers = fields.Integer()
    verified = fields.Boolean()
    profile_url = fields.String(allow_none=True)
    contact_id = fields.String(allow_none=True, metadata={"description": "The CRM contact it matched"})


class SentimentSchema(Schema):
    """Sentiment label and score in [-1, 1]."""

    label = fields.String(validate=validate.OneOf(SENTIMENTS))
    score = fields.Float()


class InfluenceSchema(Schema):
    """Influence 0-100 and its tier."""

    score = fields.Integer()
    tier = fields.String()


class RecordEngagementSchema(Schema):
    """How people reacted."""

    likes = fields.Integer()
    reposts = fields.Integer()
    replies = fields.Integer()
    quotes = fields.Integer()


class RecordSchema(Schema):
    """A record as every sink receives it, with the reasons for each decision."""

    id = fields.String(required=True)
    network = fields.String(required=True)
    source = fields.String(allow_none=True)
    url = fields.String(allow_none=True)
    created_at = fields.DateTime(required=True)
    author = fields.Nested(RecordAuthorSchema, required=True)
    content = fields.String(required=True)
    lang = fields.String(allow_none=True)
    type = fields.String(required=True)
    sentiment = fields.Nested(SentimentSchema, required=True)
    action = fields.String(required=True)
    influence = fields.Nested(InfluenceSchema, required=True)
    priority = fields.String(required=True)
    mode = fields.String(required=True)
    route = fields.List(fields.String(), required=True)
    team = fields.String(allow_none=True)
    reasons = fields.List(fields.String(), required=True)
    fraud = fields.Boolean(required=True)
    reposts = fields.Integer(required=True)
    engagement = fields.Nested(RecordEngagementSchema, required=True)
    conversation = fields.String(allow_none=True, metadata={"description": "The thread's root post id"})
    parent = fields.String(allow_none=True, metadata={"description": "The post this one answers"})
    by_brand = fields.Boolean(metadata={"description": "The brand's own reply, passed on as an agent comment"})


class RecordQuerySchema(QuerySchema):
    """Filters for the record list; each given filter must hold. Lists are comma-separated."""

    type = DelimitedList(fields.String(validate=validate.OneOf(RECORD_TYPES)))
    sentiment = DelimitedList(fields.String(validate=validate.OneOf(SENTIMENTS)))
    priority = DelimitedList(fields.String(validate=validate.OneOf(PRIORITIES)))
    route = fields.String(validate=validate.Length(min=1, max=100),
                          metadata={"description": "A sink the record is routed to"})
    team = fields.String(validate=validate.Length(min=1, max=100))
    network = fields.String(validate=_NETWORK)
    author = fields.String(validate=_HANDLE, metadata={"description": "Author handle, any case, @ optional"})
    q = fields.String(validate=validate.Length(min=1, max=200), metadata={"description": "Text the content holds"})
    conversation = fields.String(validate=validate.Length(min=1, max=300),
                                 metadata={"description": "Records of this conversation (its root post's id)"})
    parent = fields.String(validate=validate.Length(min=1, max=300),
                           metadata={"description": "Records that answer this post (its id)"})
    since = when(metadata={"description": "Said at or after (ISO 8601)"})
    until = when(metadata={"description": "Said before (ISO 8601)"})
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    cursor = fields.String(validate=validate.Length(min=1, max=1000),
                           metadata={"description": "next_cursor of the previous page"})


class RecordPageSchema(Schema):
    """One page of records, newest first; ``next_cursor`` is null on the last page."""

    items = fields.List(fields.Nested(RecordSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class DeliverySchema(Schema):
    """One outbox row: a record's delivery to one sink."""

    id = fields.Integer(required=True)
    sink = fields.String(required=True)
    state = fields.String(required=True,
                          validate=validate.OneOf(("pending", "in_flight", "retry", "delivered", "dead")))
    attempts = fields.Integer(required=True)
    external_id = fields.String(allow_none=True, required=True)
    last_error = fields.String(allow_none=True, required=True)
    next_attempt_at = Timestamp(required=True)
    created_at = Timestamp(required=True)
    updated_at = Timestamp(required=True)


class FeedbackEntrySchema(Schema):
    """One correction a person made."""

    id = fields.Integer(required=True)
    field = fields.String(required=True)
    old_value = fields.Raw(allow_none=True, required=True)
    new_value = fields.Raw(allow_none=True, required=True)
    text = fields.String(allow_none=True, required=True)
    who = fields.String(required=True)
    at = Timestamp(required=True)


class ConversationSchema(Schema):
    """Where a record's conversation stands: open (the customer spoke last) or answered by the brand,
    when the brand first replied, and the customer's unanswered follow-ups."""

    key = fields.String(required=True)
    state = fields.String(required=True, validate=validate.OneOf(("open", "answered", "resolved")))
    first_record_id = fields.String(required=True)
    opened_at = fields.String(required=True)
    first_response_at = fields.String(allow_none=True, required=True)
    first_response_seconds = fields.Integer(allow_none=True, required=True)
    last_customer_post_at = fields.String(required=True)
    unanswered_followups = fields.Integer(required=True)


class RecordDetailSchema(Schema):
    """A record with its reasons, delivery history, the feedback on it and its conversation's state."""

    record = fields.Nested(RecordSchema, required=True)
    deliveries = fields.List(fields.Nested(DeliverySchema), required=True)
    feedback = fields.List(fields.Nested(FeedbackEntrySchema), required=True)
    conversation = fields.Nested(ConversationSchema, allow_none=True, required=True)


class FeedbackSchema(Strict):
    """Correct a record's type, sentiment or route. ``reroute`` re-runs the routing rules on the corrected
    record; ``route`` sets the sinks outright. Sinks newly routed get deliveries; dropped ones lose those
    not yet sent."""

    type = fields.String(validate=validate.OneOf(RECORD_TYPES))
    sentiment = fields.String(validate=validate.OneOf(SENTIMENTS))
    route = fields.List(fields.String(validate=validate.Length(min=1, max=100)), validate=validate.Length(max=50))
    reroute = fields.Boolean(load_default=False)
    note = fields.String(validate=validate.Length(max=2000), metadata={"description": "Why, for the learning set"})

    @validates_schema
    def _something_to_correct(self, data, **_):
        if not any(k in data for k in ("type", "sentiment", "route")):
            raise ValidationError("give at least one of type, sentiment, route", field_name="type")
        if "route" in data and data.get("reroute"):
            raise ValidationError("give route (the sinks) or reroute (re-run the rules), not both",
                                  field_name="reroute")


class FeedbackResultSchema(Schema):
    """The corrected record and what the correction changed."""

    record = fields.Nested(RecordSchema, required=True)
    changes = fields.Dict(keys=fields.String(), values=fields.List(fields.Raw(allow_none=True)), required=True,
                          metadata={"description": "field -> [old, new]"})
    added_sinks = fields.List(fields.String(), required=True)
    cancelled_sinks = fields.List(fields.String(), required=True)


# --- sources ---


class SourceSchema(Schema):
    """A configured source (polled) or inbound webhook, with its cursor and last poll."""

    name = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(("poll", "webhook")))
    plugin = fields.String(allow_none=True, required=True)
    enabled = fields.Boolean(required=True)
    poll_interval = fields.Float(allow_none=True, required=True, metadata={"description": "Seconds"})
    cursor = fields.Raw(allow_none=True, required=True)
    last_poll_at = Timestamp(allow_none=True, required=True,
                             metadata={"description": "Last poll (for a webhook: last delivery)"})
    last_error = fields.String(allow_none=True, required=True)
    paused = fields.Boolean(required=True, metadata={"description": "Disabled, or held back by a full outbox"})


class PollResultSchema(Schema):
    """What a poll did (``done``), or that the running schedule will poll on its next tick (``scheduled``)."""

    source = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(("done", "scheduled")))
    fetched = fields.Integer(allow_none=True, required=True)
    records = fields.Integer(allow_none=True, required=True)
    duplicates = fields.Integer(allow_none=True, required=True)
    error = fields.String(allow_none=True, required=True)


# --- dead letters ---


class DeadLetterQuerySchema(QuerySchema):
    """Which dead letters."""

    sink = fields.String(validate=validate.Length(min=1, max=100))
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))


class _OutboxRowSchema(Schema):
    """What every outbox row shows: which record, to which sink, how urgent, how often tried."""

    id = fields.Integer(required=True)
    sink = fields.String(required=True)
    record_id = fields.String(required=True)
    type = fields.String(required=True)
    priority = fields.String(required=True)
    attempts = fields.Integer(required=True)


class DeadLetterSchema(_OutboxRowSchema):
    """An outbox row a sink refused for good (or gave up on), with the reason."""

    error = fields.String(allow_none=True, required=True)
    queued_at = Timestamp(required=True)
    dead_at = Timestamp(required=True)


class AuditEntrySchema(Schema):
    """An audit entry."""

    at = Timestamp(required=True)
    actor = fields.String(required=True)
    action = fields.String(required=True)
    detail = fields.Raw(allow_none=True, required=True)


class DeadLetterDetailSchema(_OutboxRowSchema):
    """One outbox row with its record and replay history."""

    state = fields.String(required=True)
    external_id = fields.String(allow_none=True, required=True)
    last_error = fields.String(allow_none=True, required=True)
    next_attempt_at = Timestamp(required=True)
    created_at = Timestamp(required=True)
    updated_at = Timestamp(required=True)
    record = fields.Nested(RecordSchema, required=True)
    audit = fields.List(fields.Nested(AuditEntrySchema), required=True)


class ReplaySchema(Strict):
    """Which dead letters to send again: ``ids``, every one of a ``sink``, or ``all``; exactly one."""

    ids = fields.List(fields.Integer(validate=validate.Range(min=1)), validate=validate.Length(min=1, max=1000))
    sink = fields.String(validate=validate.Length(min=1, max=100))
    all = fields.Boolean()

    @validates_schema
    def _exactly_one(self, data, **_):
        chosen = [k for k in ("ids", "sink") if k in data] + (["all"] if data.get("all") else [])
        if len(chosen) != 1:
            raise ValidationError("give exactly one of ids, sink, all=true", field_name="ids")


class ReplayResultSchema(Schema):
    """The outbox rows put back to pending."""

    replayed = fields.List(fields.Integer(), required=True)


# --- the quarantine ---


class QuarantineQuerySchema(QuerySchema):
    """Which quarantined items."""

    source = fields.String(validate=validate.Length(min=1, max=100))
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))


class QuarantinedSchema(Schema):
    """An item a source could not read, held with where it was and why."""

    id = fields.Integer(required=True)
    source = fields.String(required=True)
    location = fields.String(allow_none=True, required=True)
    reason = fields.String(required=True)
    state = fields.String(required=True)
    replays = fields.Integer(required=True)
    created_at = Timestamp(required=True)
    updated_at = Timestamp(required=True)


class QuarantinedDetailSchema(QuarantinedSchema):
    """One quarantined item with its raw payload (bytes that were not UTF-8 are backslash-escaped)."""

    payload = fields.String(allow_none=True, required=True)
    record_id = fields.String(allow_none=True, required=True)


class QuarantineReplaySchema(Strict):
    """Which quarantined items to read again: ``ids``, or ``all`` (of one ``source`` when given)."""

    ids = fields.List(fields.Integer(validate=validate.Range(min=1)), validate=validate.Length(min=1, max=1000))
    all = fields.Boolean()
    source = fields.String(validate=validate.Length(min=1, max=100))

    @validates_schema
    def _exactly_one(self, data, **_):
        if ("ids" in data) == bool(data.get("all")):
            raise ValidationError("give exactly one of ids, all=true", field_name="ids")
        if "source" in data and "ids" in data:
            raise ValidationError("source goes with all=true, not with ids", field_name="source")


class QuarantineItemReplaySchema(Strict):
    """An edited payload to read instead of the stored one (the stored one when left out)."""

    payload = fields.String(validate=validate.Length(min=1))


class QuarantineOutcomeSchema(Schema):
    """What a replay made of one item: the mention it read, or why it still cannot (and stays held)."""

    id = fields.Integer(required=True)
    read = fields.Boolean(required=True)
    mention_id = fields.String(allow_none=True, required=True)
    reason = fields.String(allow_none=True, required=True)


class QuarantineReplayResultSchema(Schema):
    """Each item's outcome."""

    outcomes = fields.List(fields.Nested(QuarantineOutcomeSchema), required=True)


# --- stats ---


class StatsQuerySchema(QuerySchema):
    """The time range (default: the last 7 days), the bucket, and how many top terms."""

    since = when()
    until = when()
    bucket = fields.String(load_default="day", validate=validate.OneOf(("hour", "day")))
    top = fields.Integer(load_default=10, validate=validate.Range(min=1, max=100))


class CountsSchema(Schema):
    """Counts by type, sentiment and network."""

    total = fields.Integer(required=True)
    type = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    sentiment = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    network = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)


class BucketSchema(CountsSchema):
    """One hour or day."""

    start = fields.String(required=True, metadata={"description": "Bucket start, ISO 8601 UTC"})


class TermCountSchema(Schema):
    """A term and how many records used it."""

    term = fields.String(required=True)
    count = fields.Integer(required=True)


class StatsSchema(Schema):
    """Counts per bucket and in total, and the conversation drivers: top terms and hashtags."""

    since = fields.DateTime(required=True)
    until = fields.DateTime(required=True)
    bucket = fields.String(required=True)
    series = fields.List(fields.Nested(BucketSchema), required=True)
    totals = fields.Nested(CountsSchema, required=True)
    top_terms = fields.List(fields.Nested(TermCountSchema), required=True)
    top_hashtags = fields.List(fields.Nested(TermCountSchema), required=True)
    sample_size = fields.Integer(required=True, metadata={"description": "Records the terms were counted over"})


# --- webhooks in ---


class WebhookHeadersSchema(Schema):
    """The signature headers: ``X-Socialcrm-Signature: sha256=hex(HMAC-SHA256(secret, timestamp + "." + body))``."""

    class Meta:
        unknown = "exclude"

    timestamp = fields.String(data_key="X-Socialcrm-Timestamp", metadata={"description": "Unix seconds"})
    signature = fields.String(data_key="X-Socialcrm-Signature", metadata={"description": "sha256=HEX"})


class WebhookResultSchema(Schema):
    """What the pushed mentions became."""

    received = fields.Integer(required=True)
    new_records = fields.Integer(required=True)
    duplicates = fields.Integer(required=True)


class MentionSchema(CoreMentionSchema):
    """A mention as JSON (the shape sources and the jsonl files use)."""


# --- erasure and do-not-engage ---


class AuthorRefSchema(Strict):
    """One author on one network."""

    network = fields.String(required=True, validate=_NETWORK)
    author = fields.String(required=True, validate=_HANDLE, metadata={"description": "Handle, @ optional"})


class ErasureResultSchema(Schema):
    """How much was removed (the handle itself is not echoed into the audit log)."""

    mentions = fields.Integer(required=True)
    records = fields.Integer(required=True)
    pending_deliveries = fields.Integer(required=True)
    deliveries = fields.Integer(required=True)
    feedback = fields.Integer(required=True)
    audit_redacted = fields.Integer(required=True)


class DoNotEngageEntrySchema(Schema):
    """An author on the do-not-engage list, by salted key (the list keeps no handle)."""

    author_key = fields.String(required=True)
    network = fields.String(allow_none=True, required=True)
    origin = fields.String(required=True, validate=validate.OneOf(("config", "api")))
    added_at = Timestamp(allow_none=True, required=True)
    added_by = fields.String(allow_none=True, required=True)


class DoNotEngageResultSchema(Schema):
    """The author's key, whether the entry is new, and the deliveries not yet sent that were cancelled."""

    author_key = fields.String(required=True)
    added = fields.Boolean(required=True)
    cancelled_deliveries = fields.Integer(required=True)


class AuthorKeySchema(Schema):
    """An author key in the path."""

    author_key = fields.String(required=True, validate=validate.Regexp(r"^[0-9a-f]{64}$"))
