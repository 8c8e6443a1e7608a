"""email sink: one message per record, or one digest per batch, over SMTP (STARTTLS, implicit TLS or plain).

    [sinks.care_mail]
    plugin = "email"
    host = "smtp.example.com"
    port = 587                        # default: 587 for starttls, 465 for ssl, 25 for none
    security = "starttls"             # "starttls" (default), "ssl" (implicit TLS) or "none"
    username = "alerts@example.com"   # leave out for a relay that needs no login
    password = "${SMTP_PASSWORD}"
    from_addr = "socialcrm <alerts@example.com>"
    to = ["care-team@example.com"]
    mode = "each"                     # or "digest": one message per batch, records by priority
    digest_interval = 0               # digest mode: at most one digest every this many seconds

Every message carries a ``Message-ID`` derived from the record id (a digest's from its record ids),
so a message sent again after a crash is recognisably the same message. SMTP has no idempotency key:
within one process a record is never mailed twice; across a restart the same Message-ID lets mail
clients and archives fold the copy away.

A follow-up (``Record.thread_object`` is the Message-ID its conversation's first message went out with)
is mailed as a reply to it: ``In-Reply-To`` and ``References`` name that message and the subject starts with
``Re:``, so mail clients thread the conversation. (A digest is about many conversations and carries no
thread headers.)
"""
from __future__ import annotations

import html
import smtplib
import ssl
import time
from collections import Counter
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Callable, Sequence

from marshmallow import ValidationError, fields, validate, validates_schema

from socialcrm import AuthError, Delivery, DeliveryStatus, Record, RetriableError, Sink, hookimpl, StrictSchema

from . import _render as render

DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
_CONNECTION_TROUBLE = (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, smtplib.SMTPHeloError, OSError)


def message_id(key: str) -> str:
    """``<sha256(key)[:32]@socialcrm>``: the same record always gets the same Message-ID."""
    return f"<{render.record_hash(key)}@socialcrm>"


class EmailSinkConfig(StrictSchema):
    """SMTP server, login, sender, recipients and whether to mail each record or a digest."""

    host = fields.String(required=True, validate=validate.Length(min=1))
    port = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=1, max=65535))
    security = fields.String(load_default="starttls", validate=validate.OneOf(tuple(DEFAULT_PORTS)))
    username = fields.String(load_default=None, allow_none=True)
    password = fields.String(load_default=None, allow_none=True)
    from_addr = fields.String(required=True)
    to = fields.List(fields.String(), required=True, validate=validate.Length(min=1))
    subject_prefix = fields.String(load_default="[socialcrm]")
    mode = fields.String(load_default="each", validate=validate.OneOf(("each", "digest")))
    digest_interval = fields.Float(load_default=0.0, validate=validate.Range(min=0))
    timeout = fields.Float(load_default=30.0, validate=validate.Range(min=1))
    ca_file = fields.String(load_default=None, allow_none=True)

    @validates_schema
    def _addresses_and_login(self, data, **_):
        if data.get("username") and not data.get("password"):
            raise ValidationError('missing: set password = "${SMTP_PASSWORD}" and export SMTP_PASSWORD '
                                  "(the SMTP login's password or app password)", field_name="password")
        if "@" not in parseaddr(data.get("from_addr", ""))[1]:
            raise ValidationError("not an email address (e.g. \"socialcrm <alerts@example.com>\")",
                                  field_name="from_addr")
        bad = [a for a in data.get("to", []) if "@" not in parseaddr(a)[1]]
        if bad:
            raise ValidationError(f"not an email address: {', '.join(bad)}", field_name="to")


class EmailSink(Sink):
    """Mails records to a team over SMTP: readable plain-text and HTML, one message each or a digest."""

    name = "email"
    ConfigSchema = EmailSinkConfig
    secret_fields = ("password",)
    max_batch = 100

    def __init__(self, config, context, clock: Callable[[], float] = time.time):
        super().__init__(config, context)
        self.port = config["port"] or DEFAULT_PORTS[config["security"]]
        self.clock = clock
        self._sent: dict[str, str] = {}  # record id -> Message-ID, so a retry in this process never re-mails
        self._last_digest: float | None = None
        self._secrets = sorted({s for s in (*context.secrets, config.get("password")) if s and len(s) >= 4},
                               key=len, reverse=True)

    # --- the hook points: check and send ---

    def check(self) -> str:
        """Connect, EHLO, STARTTLS if configured, log in if configured, then QUIT."""
        with self._open() as smtp:
            greeting = (smtp.ehlo_resp or b"").decode("utf-8", "replace").splitlines()
            server = greeting[0] if greeting else "the server"
            login = f"logged in as {self.config['username']}" if self.config["username"] else "no login configured"
        return (f"SMTP {self.config['host']}:{self.port} ({self._security_words()}) answered as {server}; {login}; "
                f"mail goes from {self.config['from_addr']} to {', '.join(self.config['to'])}")

    def send(self, records: Sequence[Record]) -> list[Delivery]:
        if not records:
            return []
        if self.config["mode"] == "digest":
            return self._send_digest(list(records))
        return self._send_each(records)

    # --- sending ---

    def _send_each(self, records: Sequence[Record]) -> list[Delivery]:
        out: dict[str, Delivery] = {}
        todo: dict[str, Record] = {}
        for record in records:
            if record.id in self._sent:
                out[record.id] = Delivery.delivered(record.id, self._sent[record.id])
            else:
                todo.setdefault(record.id, record)
        if not todo:
            return list(out.values())
        smtp = self._open()  # AuthError / RetriableError here: nothing was sent, the batch waits as a whole
        try:
            for record in todo.values():
                message = self.compose(record)
                delivery = self._transmit(smtp, message, record.id)
                out[record.id] = delivery
                if delivery.external_id:
                    self._sent[record.id] = delivery.external_id
        except _CONNECTION_TROUBLE as exc:
            reason = self._redact(f"SMTP connection to {self.config['host']}:{self.port} lost: "
                                  f"{type(exc).__name__}: {exc}")
            self.log.warning("%s; %d of %d records wait for a retry", reason,
                             sum(1 for rid in todo if rid not in out), len(todo))
            for record in todo.values():
                out.setdefault(record.id, Delivery.retry(record.id, reason))
        finally:
            _quit(smtp)
        return list(out.values())

    def _send_digest(self, records: list[Record]) -> list[Delivery]:
        now = self.clock()
        interval = self.config["digest_interval"]
        if interval and self._last_digest is not None and now < self._last_digest + interval:
            wait = self._last_digest + interval - now
            when = formatdate(self._last_digest + interval, usegmt=True)
            return [Delivery.retry(r.id, f"held for the next digest at {when}", retry_after=wait) for r in records]
        pending = [r for r in records if r.id not in self._sent]
        out = [Delivery.delivered(r.id, self._sent[r.id]) for r in records if r.id in self._sent]
        if not pending:
            return out
        message = self.compose_digest(pending)
        smtp = self._open()
        try:
            delivery = self._transmit(smtp, message, "digest")
        except _CONNECTION_TROUBLE as exc:
            reason = self._redact(f"SMTP connection to {self.config['host']}:{self.port} lost: "
                                  f"{type(exc).__name__}: {exc}")
            return out + [Delivery.retry(r.id, reason) for r in pending]
        finally:
            _quit(smtp)
        if delivery.status is not DeliveryStatus.DELIVERED:
            return out + [Delivery(r.id, delivery.status, error=delivery.error, retry_after=delivery.retry_after)
                          for r in pending]
        self._last_digest = now
        for record in pending:
            self._sent[record.id] = delivery.external_id
        return out + [Delivery.delivered(r.id, delivery.external_id) for r in pending]

    def _transmit(self, smtp: smtplib.SMTP, message: EmailMessage, record_id: str) -> Delivery:
        """Send one message; classify the server's refusal (4xx: retry later, 5xx: rejected)."""
        mid = message["Message-ID"]
        try:
            refused = smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            detail = "; ".join(f"{addr}: {code} {_text(msg)}" for addr, (code, msg) in exc.recipients.items())
            return self._refusal(record_id, min(codes) if codes else 550, f"every recipient refused: {detail}")
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
            what = "sender refused" if isinstance(exc, smtplib.SMTPSenderRefused) else "message refused"
            return self._refusal(record_id, exc.smtp_code, f"{what}: {exc.smtp_code} {_text(exc.smtp_error)}")
        except smtplib.SMTPNotSupportedError as exc:
            return Delivery.rejected(record_id, f"the server cannot take this message: {exc}")
        if refused:
            self.log.warning("record %s: some recipients refused: %s", record_id,
                             ", ".join(f"{a} ({c})" for a, (c, _) in refused.items()))
        return Delivery.delivered(record_id, mid)

    def _refusal(self, record_id: str, code: int, message: str) -> Delivery:
        message = self._redact(message)
        if 400 <= code < 500:
            return Delivery.retry(record_id, f"SMTP temporary failure: {message}")
        return Delivery.rejected(record_id, f"SMTP: {message}")

    # --- the connection ---

    def _open(self) -> smtplib.SMTP:
        """Connect, EHLO, STARTTLS and log in; raise AuthError for what a person must fix, RetriableError
        for what time may fix."""
        cfg, host, port = self.config, self.config["host"], self.port
        smtp: smtplib.SMTP | None = None
        try:
            if cfg["security"] == "ssl":
                smtp = smtplib.SMTP_SSL(host, port, timeout=cfg["timeout"], context=self._tls())
            else:
                smtp = smtplib.SMTP(host, port, timeout=cfg["timeout"])
            smtp.ehlo()
            if cfg["security"] == "starttls":
                smtp.starttls(context=self._tls())
                smtp.ehlo()
            if cfg["username"]:
                smtp.login(cfg["username"], cfg["password"])
            return smtp
        except smtplib.SMTPAuthenticationError as exc:
            _quit(smtp)
            raise AuthError(self._redact(
                f"{self.context.instance}: the SMTP server {host}:{port} refused the login for "
                f"{cfg['username']!r} ({exc.smtp_code} {_text(exc.smtp_error)}): check username and password "
                f"(SMTP_PASSWORD) in [sinks.{self.context.instance}]")) from None
        except smtplib.SMTPNotSupportedError as exc:
            _quit(smtp)
            raise AuthError(f"{self.context.instance}: {host}:{port} {exc} (security = {cfg['security']!r}, "
                            f"username {'set' if cfg['username'] else 'not set'}): change security or port, "
                            f"or leave out username for a relay that needs no login") from None
        except ssl.SSLCertVerificationError as exc:
            _quit(smtp)
            raise AuthError(f"{self.context.instance}: the TLS certificate of {host}:{port} is not trusted "
                            f"({exc.verify_message}): fix the host name, or set ca_file to the CA that "
                            f"signed it") from None
        except ssl.SSLError as exc:
            _quit(smtp)
            raise AuthError(f"{self.context.instance}: TLS with {host}:{port} failed ({exc.reason}): is port "
                            f"{port} the one for security = {cfg['security']!r}? (587 is usually STARTTLS, 465 "
                            f"implicit TLS)") from None
        except (smtplib.SMTPException, OSError) as exc:
            _quit(smtp)
            raise RetriableError(self._redact(f"{self.context.instance}: cannot reach the SMTP server "
                                              f"{host}:{port}: {type(exc).__name__}: {exc}")) from None

    def _tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.config["ca_file"])

    def _security_words(self) -> str:
        return {"starttls": "STARTTLS", "ssl": "implicit TLS", "none": "no encryption"}[self.config["security"]]

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    # --- composing ---

    def _envelope(self, subject: str, key: str) -> EmailMessage:
        message = EmailMessage()
        message["Subject"] = render.one_line(f"{self.config['subject_prefix']} {subject}".strip(), 200)
        message["From"] = self.config["from_addr"]
        message["To"] = ", ".join(self.config["to"])
        message["Date"] = formatdate(self.clock(), usegmt=True)
        message["Message-ID"] = message_id(key)
        message["Auto-Submitted"] = "auto-generated"
        return message

    def compose(self, record: Record) -> EmailMessage:
        """One record as a message with a plain-text part and an HTML alternative; a follow-up as a reply."""
        thread = _thread_message_id(record)
        message = self._envelope(("Re: " if thread else "") + render.headline(record, 150), record.id)
        message["X-Socialcrm-Record-Id"] = render.one_line(record.id, 200)
        if thread:
            message["In-Reply-To"] = thread
            message["References"] = thread
            message["X-Socialcrm-Conversation"] = render.one_line(record.conversation or "", 200)
        message.set_content(_text_block(record))
        message.add_alternative(_html_page(_html_block(record)), subtype="html")
        return message

    def compose_digest(self, records: list[Record]) -> EmailMessage:
        """Several records in one message, most urgent first."""
        ordered = render.by_priority(records)
        counts = Counter(r.priority for r in ordered)
        summary = ", ".join(f"{counts[p]} {p}" for p in render.PRIORITY_ORDER if counts[p])
        noun = "record" if len(ordered) == 1 else "records"
        message = self._envelope(f"digest: {len(ordered)} {noun} ({summary})",
                                 "digest:" + "\n".join(sorted(r.id for r in ordered)))
        rule = "\n" + "-" * 72 + "\n\n"
        message.set_content(f"{len(ordered)} {noun} ({summary}), most urgent first.\n\n"
                            + rule.join(_text_block(r) for r in ordered))
        body = "".join(f"<section>{_html_block(r)}</section><hr>" for r in ordered)
        message.add_alternative(_html_page(f"<p>{len(ordered)} {noun} ({html.escape(summary)}), most urgent "
                                           f"first.</p><hr>{body}"), subtype="html")
        return message


def _thread_message_id(record: Record) -> str | None:
    """The Message-ID a follow-up answers: its conversation's first message (only a ``<...>`` id is one)."""
    thread = (record.thread_object or "").strip()
    return thread if thread.startswith("<") and thread.endswith(">") and "\n" not in thread else None


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _quit(smtp: smtplib.SMTP | None) -> None:
    """Say QUIT if the line is still up, and close the socket either way."""
    if smtp is None:
        return
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


def _text_block(record: Record) -> str:
    lines = [render.headline(record, 200), ""]
    lines += [f"{label + ':':<11}{value}" for label, value in render.facts(record)]
    url = render.post_url(record)
    if url:
        lines.append(f"{'Post:':<11}{url}")
    lines += ["", "What they said:", ""]
    lines += ["    " + line for line in (record.content or "(no text)").splitlines() or ["(no text)"]]
    if record.reasons:
        lines += ["", "Why:"] + [f"  - {reason}" for reason in record.reasons]
    return "\n".join(lines) + "\n"


def _html_block(record: Record) -> str:
    e = html.escape
    rows = "".join(f"<tr><th align=\"left\" style=\"padding-right:1em\">{e(label)}</th><td>{e(value)}</td></tr>"
                   for label, value in render.facts(record))
    url = render.post_url(record)
    if url:
        rows += f"<tr><th align=\"left\">Post</th><td><a href=\"{e(url)}\">{e(url)}</a></td></tr>"
    content = "<br>".join(e(line) for line in (record.content or "(no text)").splitlines())
    reasons = "".join(f"<li>{e(reason)}</li>" for reason in record.reasons)
    why = f"<h3>Why</h3><ul>{reasons}</ul>" if reasons else ""
    return (f"<h2>{e(render.headline(record, 200))}</h2><table>{rows}</table>"
            f"<h3>What they said</h3><blockquote>{content}</blockquote>{why}")


def _html_page(body: str) -> str:
    return f"<!DOCTYPE html><html><body style=\"font-family:sans-serif\">{body}</body></html>\n"


@hookimpl
def register_sinks(register):
    """Register the email sink."""
    register(EmailSink)


__all__ = ["EmailSink", "EmailSinkConfig", "message_id"]
