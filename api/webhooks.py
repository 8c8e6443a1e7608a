"""``POST /webhooks/{name}``: mentions pushed by a network or another tool.

The pusher signs each delivery with the secret in ``[api.webhooks.NAME]``::

    X-Socialcrm-Timestamp: 1767225600
    X-Socialcrm-Signature: sha256=hex(HMAC-SHA256(secret, "1767225600." + raw body))

The signature is the authentication (networks cannot send our bearer tokens). A timestamp more than
``tolerance_seconds`` (five minutes) away from now is refused, so a captured delivery cannot be
replayed later. The body is one mention or a list of them (the ``Mention`` schema); they go through
``Pipeline.ingest``, the same capture -> learn -> route -> store path as a polled page, so a delivery
sent twice makes one record.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import Any

from flask import request
from flask_smorest import Blueprint
from marshmallow import ValidationError

from socialcrm.core.sdk.model import Page, mention_from_json
from socialcrm.core.engine.pipeline import ListenStats
from socialcrm.core.store import WriteConflict

from .auth import public
from .errors import abort, field_errors, summary
from .schemas import MentionSchema, WebhookHeadersSchema, WebhookResultSchema
from .sources import WEBHOOK_CURSOR_PREFIX
from .state import state

log = logging.getLogger(__name__)

blp = Blueprint("webhooks", __name__, description="Mentions pushed in, signed with HMAC-SHA256")

TIMESTAMP_HEADER = "X-Socialcrm-Timestamp"
SIGNATURE_HEADER = "X-Socialcrm-Signature"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header value for ``body`` sent at ``timestamp`` (pushers and tests use it)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def _verify(name: str, headers: dict[str, Any], body: bytes) -> None:
    st = state()
    hook = st.config.api.webhooks[name]
    timestamp, signature = headers.get("timestamp"), headers.get("signature")
    if not timestamp or not signature:
        missing = [h for h, v in ((TIMESTAMP_HEADER, timestamp), (SIGNATURE_HEADER, signature)) if not v]
        abort(401, f"sign the body: send {' and '.join(missing)} (see the webhooks section of the README)",
              {h: ["missing"] for h in missing})
    if not timestamp.isdigit() or len(timestamp) > 12:
        abort(401, f"{TIMESTAMP_HEADER}: give Unix seconds", {TIMESTAMP_HEADER: ["not Unix seconds"]})
    skew = abs(st.clock() - int(timestamp))
    if skew > hook["tolerance_seconds"]:
        log.warning("webhook %s: refused a delivery signed %.0f s away from now (replay or clock skew)", name, skew)
        abort(401, f"{TIMESTAMP_HEADER}: {skew:.0f} s away from the server's clock; at most "
                   f"{hook['tolerance_seconds']} s (a replay, or a clock to fix)",
              {TIMESTAMP_HEADER: ["outside the replay window"]})
    expected = sign(hook["secret"], timestamp, body)
    if not hmac.compare_digest(expected.encode(), signature.strip().encode("utf-8", "surrogateescape")):
        log.warning("webhook %s: refused a delivery with a wrong signature", name)
        abort(401, f"{SIGNATURE_HEADER}: does not match the body (sign timestamp + '.' + raw body with "
                   "HMAC-SHA256 and the shared secret)", {SIGNATURE_HEADER: ["does not match"]})


def _mentions(body: bytes) -> list:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        abort(400, f"body: not JSON ({exc})", {"body": ["not JSON"]})
    items = payload if isinstance(payload, list) else [payload]
    mentions, errors = [], {}
    for number, item in enumerate(items):
        try:
            mentions.append(mention_from_json(item))
        except ValidationError as exc:
            prefix = f"[{number}]" if isinstance(payload, list) else ""
            for field, messages in field_errors(exc.messages).items():
                key = prefix if field == "body" and prefix else (f"{prefix}.{field}" if prefix else field)
                errors.setdefault(key, []).extend(messages)
    if errors:
        abort(422, f"invalid mentions, none stored: {summary(errors)}", errors)
    return mentions


@blp.route("/webhooks/<string(maxlength=100):name>", methods=["POST"])
@public
@blp.arguments(WebhookHeadersSchema, location="headers")
@blp.doc(security=[], requestBody={"required": True, "description": "One mention, or a list of them",
                                   "content": {"application/json": {"schema": {"oneOf": [
                                       {"$ref": "#/components/schemas/Mention"},
                                       {"type": "array", "items": {"$ref": "#/components/schemas/Mention"}}]}}}})
@blp.response(200, WebhookResultSchema)
@blp.alt_response(400, response="BAD_REQUEST")
@blp.alt_response(401, response="UNAUTHORIZED")
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(413, response="REQUEST_ENTITY_TOO_LARGE")
@blp.alt_response(503, response="SERVICE_UNAVAILABLE")
def receive(headers: dict[str, Any], name: str):
    """Take mentions pushed by a network or tool, signed with the webhook's shared secret."""
    st = state()
    if name not in st.config.api.webhooks:
        abort(404, f"no webhook named {name!r} (configure [api.webhooks.{name}] with a secret)",
              {"name": ["no such webhook"]})
    body = request.get_data(cache=True)
    _verify(name, headers, body)
    mentions = _mentions(body)
    if st.store.open_deliveries() >= st.config.max_pending:
        abort(503, "the outbox is full (store.max_pending): send again later", {},
              {"Retry-After": "60"})
    stats = ListenStats()
    with st.ingest_lock:
        try:
            st.pipeline.ingest(name, Page(mentions, None), stats, cursor_key=WEBHOOK_CURSOR_PREFIX + name)
        except WriteConflict:
            # Another process stored the same mentions between our check and our write: read again,
            # and they count as duplicates.
            stats = ListenStats()
            st.pipeline.ingest(name, Page(mentions, None), stats, cursor_key=WEBHOOK_CURSOR_PREFIX + name)
    log.info("webhook %s: %d mentions, %d new records, %d duplicates", name, len(mentions), stats.records,
             stats.duplicates)
    return {"received": len(mentions), "new_records": stats.records, "duplicates": stats.duplicates}


def register_schemas(spec) -> None:
    """Put the ``Mention`` schema in the spec's components, for the request body above."""
    spec.components.schema("Mention", schema=MentionSchema)
