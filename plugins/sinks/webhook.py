"""webhook sink: POSTs each record as JSON to a URL, signed, with the record id as its idempotency key.

    [sinks.crm]
    plugin = "webhook"
    url = "https://crm.example.com/hooks/socialcrm"
    secret = "${SOCIALCRM_WEBHOOK_SECRET}"
    timeout = 10          # seconds per request
    attempts = 3          # tries per request before the outbox takes over (5xx, timeouts)
    max_wait = 30         # a Retry-After up to this many seconds is waited in-line; a longer one goes
                          # back to the outbox, which comes back exactly when the receiver said
    batch = false         # true: one POST of {"records": [...]} per batch instead of one per record
    headers = { Authorization = "Bearer ${CRM_TOKEN}" }

Every request carries:

- ``Idempotency-Key``: the record id (in batch mode, a key derived from the batch's record ids), so a
  receiver that honours it creates each record once however often it is re-sent after a crash;
- ``X-Socialcrm-Timestamp``: Unix seconds when it was signed;
- ``X-Socialcrm-Event``: ``record.created``, or ``conversation.updated`` for a follow-up (a record whose
  conversation already has an object at the receiver; the body's ``thread_object`` is that object's id, as
  the receiver answered it, and ``conversation`` the conversation key, the thread's root record id);
- ``X-Socialcrm-Signature: sha256=<hex>``: HMAC-SHA256 with ``secret`` over ``<timestamp>.<raw body>``
  (the timestamp is signed too, so a receiver can refuse replays of old requests).

The body is the record as JSON plus ``event`` and ``thread_object``. A 2xx delivers the record (the external id is the response's ``id``, or ``id_field``); another 4xx
rejects it with the receiver's reason (it goes to the dead-letter queue); 429, 5xx, timeouts and
connection errors are retried in-line (``attempts``, short waits up to ``max_wait``) and then left to
the outbox, honouring ``Retry-After`` and the IETF ``RateLimit-Reset`` header to the second.

In batch mode a 2xx answer may list per-record results, ``{"results": [{"record_id": ..., "id": ...} or
{"record_id": ..., "error": "..."}]}``; without it every record of the batch counts as delivered. A
batch the receiver refuses with a 4xx is re-sent record by record, so only the bad one is rejected.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any, Callable, Iterable, Iterator, Sequence

import requests
from marshmallow import ValidationError, fields, validate, validates

from socialcrm import (Delivery, hookimpl, quick, RateLimitHeaders, Record, RetriableError, safe_url, Sink, StrictSchema,
                       unreachable)

from . import _render as render


SIGNATURE_HEADER = "X-Socialcrm-Signature"
EVENT_HEADER = "X-Socialcrm-Event"
TIMESTAMP_HEADER = "X-Socialcrm-Timestamp"
# The IETF RateLimit header fields (draft-ietf-httpapi-ratelimit-headers): remaining calls, and the
# seconds until the window resets.
IETF_RATELIMIT = RateLimitHeaders("ratelimit-remaining", "ratelimit-reset", "delta")


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header value for ``body`` sent at ``timestamp``: ``sha256=<hex>``."""
    digest = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


class WebhookSinkConfig(StrictSchema):
    """``url`` to POST to, ``secret`` to sign with, ``timeout`` in seconds, in-line ``attempts`` and
    ``max_wait``, ``batch`` mode, extra ``headers``, and ``id_field``, where the receiver's JSON answer
    gives the id it assigned."""

    url = fields.String(required=True, validate=validate.URL(schemes={"http", "https"}, require_tld=False))
    secret = fields.String(required=True, validate=validate.Length(min=8), error_messages={
        "required": "missing: the key requests are signed with; set secret = \"${{SOCIALCRM_WEBHOOK_SECRET}}\" "
                    "and export SOCIALCRM_WEBHOOK_SECRET=..."})
    timeout = fields.Float(load_default=10.0, validate=validate.Range(min=0.01, max=300))
    attempts = fields.Integer(load_default=3, validate=validate.Range(min=1, max=10))
    max_wait = fields.Float(load_default=30.0, validate=validate.Range(min=0, max=3600))
    batch = fields.Boolean(load_default=False)
    headers = fields.Dict(keys=fields.String(), values=fields.String(), load_default=dict)
    id_field = fields.String(load_default="id")

    @validates("headers")
    def _no_reserved_headers(self, value: dict[str, str], **_: Any) -> None:
        reserved = {"idempotency-key", SIGNATURE_HEADER.lower(), TIMESTAMP_HEADER.lower(), "content-type"}
        clash = sorted(k for k in value if k.lower() in reserved)
        if clash:
            raise ValidationError(f"{', '.join(clash)} is set by the sink itself; remove it")


class WebhookSink(Sink):
    """POSTs records as signed JSON to any HTTP endpoint, idempotently by record id."""

    name = "webhook"
    ConfigSchema = WebhookSinkConfig
    secret_fields = ("secret", "headers")
    max_batch = 100

    def __init__(self, config, context):
        super().__init__(config, context)
        self.url = config["url"]
        secrets = set(context.secrets) | {config["secret"], *config["headers"].values()}
        # Short trouble is retried in-line; anything longer is handed to the outbox, whose waits survive
        # a restart and do not hold up the other sinks (attempts = 1, max_wait = 0 leaves it all there).
        self.http = context.http(timeout=config["timeout"], max_attempts=config["attempts"],
                                 max_wait=config["max_wait"], rate_limit=IETF_RATELIMIT, secrets=secrets)

    def check(self) -> str:
        """A signed ``HEAD`` of the URL (no body, so nothing is created): proves the receiver answers, and
        that it takes the secret and headers when it checks them (a 401/403 is an ``AuthError``)."""
        timestamp = str(int(self.http.clock()))
        headers = {**self.config["headers"], TIMESTAMP_HEADER: timestamp,
                   SIGNATURE_HEADER: sign(self.config["secret"], timestamp, b"")}
        try:
            with quick(self.http):
                response = self.http.request("HEAD", self.url, headers=headers, classify=False, allow_redirects=False)
        except RetriableError as exc:
            if exc.status != 501:  # 501: a receiver that takes only POST still answered
                raise unreachable(exc, self.url, "url") from None
            response = exc.response
        return (f"{safe_url(self.url)} answered a signed HEAD with {response.status_code} {response.reason}; "
                "records are POSTed there")

    def send(self, records: Sequence[Record]) -> list[Delivery]:
        if self.config["batch"] and len(records) > 1:
            return list(self._send_batch(records))
        return self._send_each(records)

    def send_each(self, records: Sequence[Record]) -> Iterator[Delivery]:
        """``send`` as a generator, for the outbox: each record's outcome as soon as its request is
        answered (so it is saved before the next request goes), stopping at the first failure; the
        records it yields nothing for were not sent. In batch mode, the batch's outcomes at once."""
        if self.config["batch"] and len(records) > 1:
            yield from self._send_batch(records, each=self._each)
            return
        yield from self._each(records)

    def close(self) -> None:
        self.http.session.close()

    # --- internals ---

    def _send_each(self, records: Sequence[Record]) -> list[Delivery]:
        out = list(self._each(records))
        if len(out) < len(records):
            failed = out[-1]
            out.extend(Delivery.retry(r.id, f"not sent: the receiver failed on {failed.record_id} first",
                                      failed.retry_after) for r in records[len(out):])
        return out

    def _each(self, records: Sequence[Record]) -> Iterator[Delivery]:
        for record in records:
            try:
                response = self._post(_body(_payload(record)), record.id, render.event(record)["event"])
            except RetriableError as exc:
                # The receiver is in trouble: keep the rest of the batch for later rather than pile on.
                yield Delivery.retry(record.id, str(exc), exc.retry_after)
                return
            yield self._outcome(record.id, response)

    def _post(self, body: bytes, key: str, event: str | None = None) -> requests.Response:
        timestamp = str(int(self.http.clock()))
        headers = {**self.config["headers"], "Content-Type": "application/json", "Idempotency-Key": key,
                   **({EVENT_HEADER: event} if event else {}),
                   TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(self.config["secret"], timestamp, body)}
        return self.http.post(self.url, data=body, headers=headers, classify=False, allow_redirects=False)

    def _outcome(self, record_id: str, response: requests.Response) -> Delivery:
        if 200 <= response.status_code < 300:
            return Delivery.delivered(record_id, self._external_id(_json(response)))
        return Delivery.rejected(record_id, self._reason(response))

    def _external_id(self, answer: Any) -> str | None:
        value = answer.get(self.config["id_field"]) if isinstance(answer, dict) else None
        return None if value is None else str(value)

    def _reason(self, response: requests.Response) -> str:
        if 300 <= response.status_code < 400:
            return (f"{response.status_code} redirect to {safe_url(response.headers.get('Location', '?'))}: "
                    "set url to the final address")
        text = " ".join((response.text or "").split())
        text = text[:500] + ("..." if len(text) > 500 else "")
        return self.http.redact(f"{response.status_code} {response.reason}: {text}".rstrip(": "))

    def _send_batch(self, records: Sequence[Record],
                    each: Callable[[Sequence[Record]], Iterable[Delivery]] | None = None) -> Iterable[Delivery]:
        """One POST for the batch; if refused, the records one by one through ``each``."""
        ids = [r.id for r in records]
        key = "batch-" + hashlib.sha256("\n".join(ids).encode("utf-8")).hexdigest()[:40]
        response = self._post(_body({"records": [_payload(r) for r in records]}), key)  # RetriableError: all retry
        if not 200 <= response.status_code < 300:
            # One bad record refuses the whole batch: send each alone, so only that one is dead-lettered.
            self.log.warning("webhook refused a batch of %d (%s); sending its records one by one", len(records),
                             self._reason(response))
            return (each or self._send_each)(records)
        results = _json(response)
        results = results.get("results") if isinstance(results, dict) else None
        if not isinstance(results, list):
            return [Delivery.delivered(rid) for rid in ids]
        answered = {str(item.get("record_id")): item for item in results if isinstance(item, dict)}
        out = []
        for rid in ids:
            item = answered.get(rid)
            if item is None:
                out.append(Delivery.retry(rid, "the receiver's answer did not mention this record"))
            elif item.get("error"):
                out.append(Delivery.rejected(rid, str(item["error"])))
            else:
                out.append(Delivery.delivered(rid, self._external_id(item)))
        return out


def _payload(record: Record) -> dict[str, Any]:
    """The record as JSON with its conversation fields (``event``, ``conversation``, ``thread_object``)."""
    return {**record.to_dict(), **render.event(record)}


def _body(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


@hookimpl
def register_sinks(register):
    register(WebhookSink)
