"""slack sink: an alert per record as a Block Kit message, through an incoming webhook or a bot token.

    [sinks.alerts]
    plugin = "slack"
    webhook_url = "${SLACK_WEBHOOK_URL}"      # an incoming webhook: posts to the channel it was made for
    # or, with a bot token that has chat:write and is a member of the channel:
    # token = "${SLACK_BOT_TOKEN}"
    # channel = "C0123456789"

Slack has no idempotency key. The sink keeps each delivered message's ``ts`` (the message id; with a
webhook, which returns none, the record id) and never posts a record twice within one process. A
record whose post reached Slack but whose answer was lost (a crash, a timeout after Slack wrote it)
can be posted again after a restart.

With a bot token, a follow-up (``Record.thread_object`` is the ``ts`` its conversation's first message got)
is posted as a reply in that message's thread (``thread_ts``). An incoming webhook returns no ``ts``, so
there a follow-up is a message of its own.
"""
from __future__ import annotations

import re
from typing import Sequence
from urllib.parse import urlsplit

import requests
from marshmallow import ValidationError, fields, validate, validates_schema

from socialcrm import (
    AuthError, Delivery, FatalError, hookimpl, parse_retry_after, Record, ResponseAction, RetriableError, Sink,
    StrictSchema)

from . import _render as render

_TS = re.compile(r"^\d+\.\d+$")  # a message's ts, "1503435956.000247"
#: Web API error codes (``ok: false``) and what the sink does with them.
RETRY_CODES = frozenset({"rate_limited", "ratelimited", "internal_error", "fatal_error", "service_unavailable",
                         "request_timeout", "team_added_to_org"})
AUTH_CODES = frozenset({"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive",
                        "missing_scope", "no_permission", "not_allowed_token_type", "ekm_access_denied",
                        "access_denied", "org_login_required", "two_factor_setup_required"})
#: Codes that mean this message cannot be posted as it is; it goes to the dead-letter queue.
REJECT_CODES = frozenset({"channel_not_found", "not_in_channel", "is_archived", "msg_too_long", "no_text",
                          "too_many_attachments", "invalid_blocks", "invalid_blocks_format", "invalid_arguments",
                          "invalid_arg_name", "invalid_array_arg", "invalid_charset", "invalid_form_data",
                          "invalid_post_type", "missing_post_type", "invalid_json", "json_not_object",
                          "restricted_action", "restricted_action_read_only_channel", "cannot_reply_to_message",
                          "duplicate_channel_not_found", "upgrade_required", "as_user_not_supported"})
#: Incoming-webhook error bodies that mean the webhook itself is gone or forbidden (a config problem).
WEBHOOK_AUTH_CODES = frozenset({"no_service", "no_team", "team_disabled", "invalid_token", "action_prohibited"})
HINTS = {
    "invalid_auth": "the token is not valid: copy it again from the app's OAuth & Permissions page",
    "not_authed": "no token reached Slack: check token",
    "token_revoked": "the token was revoked: reinstall the app and use the new token",
    "token_expired": "the token expired: rotate it",
    "account_inactive": "the app's user or workspace was deactivated",
    "missing_scope": "the token lacks a scope: add chat:write to the bot and reinstall the app",
    "not_allowed_token_type": "use a bot token (xoxb-...) for chat.postMessage",
    "channel_not_found": "no such channel, or the bot cannot see it: use the channel ID (C...) and invite the bot",
    "not_in_channel": "the bot is not a member of the channel: /invite it there",
    "is_archived": "the channel is archived",
    "no_service": "the webhook was removed or the app uninstalled: create a new incoming webhook",
    "invalid_token": "the webhook URL is not valid: copy it again from the app's Incoming Webhooks page",
    "action_prohibited": "an admin restriction forbids this webhook from posting there",
    "channel_is_archived": "the webhook's channel is archived",
}
# Block Kit limits (Slack's block reference): header text 150, section text 3000, 10 fields of 2000,
# 10 context elements, button text 75, URLs 3000.
HEADER_MAX, SECTION_MAX, FIELD_MAX, CONTEXT_MAX, TEXT_MAX = 150, 3000, 2000, 10, 4000


class SlackSinkConfig(StrictSchema):
    """``webhook_url``, or ``token`` with ``channel``; ``api_url`` only for a Slack-compatible test server."""

    webhook_url = fields.String(load_default=None, allow_none=True)
    token = fields.String(load_default=None, allow_none=True)
    channel = fields.String(load_default=None, allow_none=True)
    api_url = fields.String(load_default="https://slack.com/api")
    timeout = fields.Float(load_default=10.0, validate=validate.Range(min=1))
    max_wait = fields.Float(load_default=30.0, validate=validate.Range(min=0))

    @validates_schema
    def _one_way_in(self, data, **_):
        webhook, token = data.get("webhook_url"), data.get("token")
        if not webhook and not token:
            raise ValidationError('missing: set webhook_url = "${SLACK_WEBHOOK_URL}" (an incoming webhook) or '
                                  'token = "${SLACK_BOT_TOKEN}" with channel (a bot token with chat:write), and '
                                  "export the variable", field_name="token")
        if webhook and token:
            raise ValidationError("set webhook_url or token, not both", field_name="token")
        if webhook and urlsplit(webhook).scheme != "https":
            raise ValidationError("an incoming webhook URL starts with https://", field_name="webhook_url")
        if token and not token.startswith("xox"):
            raise ValidationError("not a Slack token (a bot token starts with xoxb-)", field_name="token")
        if token and not data.get("channel"):
            raise ValidationError("missing: the channel ID (C...) or name the bot posts to", field_name="channel")


class SlackSink(Sink):
    """Posts an alert per record to a Slack channel: a Block Kit card with a link to the post."""

    name = "slack"
    ConfigSchema = SlackSinkConfig
    secret_fields = ("webhook_url", "token")
    # Slack allows about one message per second per channel; small batches keep a pass short.
    max_batch = 20

    def __init__(self, config, context):
        super().__init__(config, context)
        secrets = set(context.secrets) | {config[f] for f in self.secret_fields if config.get(f)}
        if config.get("webhook_url"):
            secrets.add(urlsplit(config["webhook_url"]).path.rsplit("/", 1)[-1])  # the webhook's own token
        # A 429 longer than max_wait is not slept through: the records come back after the wait instead.
        self.http = context.http(timeout=config["timeout"], max_wait=config["max_wait"], secrets=secrets)
        self._posted: dict[str, str] = {}  # record id -> message ts, so a retry in this process never re-posts

    def interpret_response(self, response: requests.Response) -> ResponseAction | None:
        """Slack's own words: a Web API ``ok: false`` with an auth code is an auth failure even with a 200,
        an HTTP 4xx from the Web API means ``api_url`` is wrong, and an incoming webhook that is gone
        (404, ``no_service``, ...) is an auth failure. Other ``ok: false`` codes are read per record by
        ``send`` (a rate-limited 200 hands the rest of the batch back with its wait, never sleeps)."""
        code = _error_code(response)
        hint = f": {HINTS[code]}" if code in HINTS else ""
        status = response.status_code
        if not self.config["token"]:
            if code in WEBHOOK_AUTH_CODES or (status == 404 and code != "channel_not_found"):
                return ResponseAction.AUTH.because(f"Slack incoming webhook: {status} {code}{hint}")
            return None
        if code in AUTH_CODES:
            return ResponseAction.AUTH.because(f"Slack refused the token: {code}{hint}")
        if 400 <= status < 500 and status not in (401, 403, 429):
            return ResponseAction.AUTH.because("Slack Web API answered with an HTTP error: is api_url right?")
        return None

    # --- the hook points: check and send ---

    def check(self) -> str:
        """Bot token: ``auth.test``. Webhook: an empty payload, which Slack refuses without posting."""
        if self.config["token"]:
            data, _ = self._api("auth.test", {})  # an auth code is an AuthError already (interpret_response)
            if not data.get("ok"):
                code = data.get("error", "unknown_error")
                raise AuthError(f"Slack refused the token: {code}: {HINTS.get(code, 'see Slack auth.test errors')}")
            return (f"token works: workspace {data.get('team')} ({data.get('url')}), posting as {data.get('user')} "
                    f"to channel {self.config['channel']}")
        response = self._webhook({})
        code = response.text.strip()
        if response.status_code == 200 or code in ("no_text", "invalid_payload",
                                                   "missing_text_or_fallback_or_attachments"):
            return (f"incoming webhook exists (Slack answered {code or response.status_code} to an empty test "
                    f"payload; nothing was posted)")
        raise self._webhook_problem(response.status_code, code)

    def send(self, records: Sequence[Record]) -> list[Delivery]:
        out: list[Delivery] = []
        for index, record in enumerate(records):
            if record.id in self._posted:
                out.append(Delivery.delivered(record.id, self._posted[record.id]))
                continue
            try:
                delivery = self._post(record)
            except AuthError as exc:
                if not any(d.external_id for d in out):
                    raise  # nothing posted yet: the whole batch waits for fixed credentials
                self.log.error("Slack refused the credentials mid-batch: %s", exc)
                return out + [Delivery.retry(r.id, f"authentication failed: {exc}") for r in records[index:]]
            except RetriableError as exc:
                return out + [Delivery.retry(r.id, str(exc), exc.retry_after) for r in records[index:]]
            out.append(delivery)
            if delivery.external_id:
                self._posted[record.id] = delivery.external_id
            elif delivery.retry_after is not None:  # rate limited: the rest of the batch waits as long
                return out + [Delivery.retry(r.id, delivery.error or "rate limited", delivery.retry_after)
                              for r in records[index + 1:]]
        return out

    # --- posting ---

    def _post(self, record: Record) -> Delivery:
        message = build_message(record)
        if self.config["token"]:
            thread = {"thread_ts": record.thread_object} if _TS.match(record.thread_object or "") else {}
            data, retry_after = self._api("chat.postMessage", {"channel": self.config["channel"], **message,
                                                               **thread, "unfurl_links": False,
                                                               "unfurl_media": False})
            if data.get("ok"):
                return Delivery.delivered(record.id, str(data.get("ts")))
            return self._api_error(record.id, data, retry_after)
        response = self._webhook(message)
        if response.status_code == 200:
            return Delivery.delivered(record.id, record.id)
        code = response.text.strip()
        if response.status_code in (400, 410) or (response.status_code == 404 and code == "channel_not_found"):
            hint = f": {HINTS[code]}" if code in HINTS else ""
            return Delivery.rejected(record.id,
                                     f"Slack webhook refused the message: {response.status_code} {code}{hint}")
        raise self._webhook_problem(response.status_code, code)

    def _api(self, method: str, payload: dict) -> tuple[dict, float | None]:
        """Call a Web API method; return its JSON answer and the Retry-After it carried, if any."""
        url = f"{self.config['api_url'].rstrip('/')}/{method}"
        response = self.http.post(url, json=payload, classify=False,
                                  headers={"Authorization": f"Bearer {self.config['token']}",
                                           "Content-Type": "application/json; charset=utf-8"})
        retry_after = parse_retry_after(response.headers.get("Retry-After"), self.http.clock())
        try:
            return response.json(), retry_after
        except ValueError:
            raise RetriableError(f"Slack {method}: answer was not JSON: {response.text[:100]!r}") from None

    def _api_error(self, record_id: str, data: dict, retry_after: float | None) -> Delivery:
        code = data.get("error", "unknown_error")
        hint = f": {HINTS[code]}" if code in HINTS else ""
        if code in RETRY_CODES:
            return Delivery.retry(record_id, f"Slack chat.postMessage: {code}", retry_after)
        # REJECT_CODES, and codes Slack adds later: resending the same message cannot succeed.
        known = "" if code in REJECT_CODES else " (a code this sink does not know)"
        return Delivery.rejected(record_id, f"Slack chat.postMessage: {code}{hint}{known}")

    def _webhook(self, payload: dict) -> requests.Response:
        return self.http.post(self.config["webhook_url"], json=payload, classify=False)

    def _webhook_problem(self, status: int, code: str) -> Exception:
        """An answer ``interpret_response`` let through that is neither a post nor a refusal of this message."""
        hint = f": {HINTS[code]}" if code in HINTS else ""
        return FatalError(f"Slack incoming webhook: {status} {code}{hint}")


def _error_code(response: requests.Response) -> str:
    """Slack's error code: ``error`` of a Web API ``ok: false`` body, or an incoming webhook's plain-text body."""
    if "json" in response.headers.get("Content-Type", ""):
        try:
            body = response.json()
        except ValueError:
            return ""
        return str(body.get("error") or "") if isinstance(body, dict) and body.get("ok") is False else ""
    return (response.text or "").strip()[:100]


def _escape(text: str) -> str:
    """Slack mrkdwn escaping: only &, < and > have to be escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def build_message(record: Record) -> dict:
    """The Block Kit message for one record, with a plain fallback ``text`` for notifications."""
    who = _escape(render.handle(record))
    profile = render.profile_url(record)
    author = (f"<{profile}|{who}>" if profile else who) + _escape(render.author_details(record))
    fields_ = [("Sentiment", _escape(render.sentiment_line(record))),
               ("Influence", _escape(render.influence_line(record))),
               ("Author", author),
               ("Route", _escape(render.route_line(record))),
               ("Action", _escape(record.action.replace("_", " "))),
               ("Said", record.created_at.strftime("%Y-%m-%d %H:%M UTC"))]
    blocks: list[dict] = [
        {"type": "header", "text": {"type": "plain_text", "emoji": True, "text": render.one_line(
            f"{record.priority} · {render.type_label(record)} · {record.sentiment.label}", HEADER_MAX)}},
        {"type": "section",
         "text": {"type": "mrkdwn", "text": render.cut(_escape(record.content or "(no text)"), SECTION_MAX)},
         "fields": [{"type": "mrkdwn", "text": render.cut(f"*{label}*\n{value}", FIELD_MAX)}
                    for label, value in fields_]},
    ]
    # The reasons, then the record id (for people tracing an alert back, and for audit).
    elements = [{"type": "mrkdwn", "text": render.cut("• " + _escape(reason), FIELD_MAX)}
                for reason in record.reasons[:CONTEXT_MAX - 1]]
    elements.append({"type": "plain_text", "text": render.cut(f"record {record.id}", FIELD_MAX)})
    blocks.append({"type": "context", "elements": elements})
    url = render.post_url(record)
    if url and len(url) <= 3000:
        blocks.append({"type": "actions", "elements": [
            {"type": "button", "action_id": "open_post", "url": url,
             "text": {"type": "plain_text", "text": f"Open the post on {record.network}"[:75]}}]})
    return {"text": render.cut(_escape(render.headline(record, 300)), TEXT_MAX), "blocks": blocks}


@hookimpl
def register_sinks(register):
    """Register the Slack sink."""
    register(SlackSink)
