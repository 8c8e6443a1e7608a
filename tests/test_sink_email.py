"""The email sink against a real SMTP server (aiosmtpd) that each test starts on 127.0.0.1, port 0."""
from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import hashlib
import ipaddress
import ssl
import threading

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
from marshmallow import ValidationError

from socialcrm import AuthError, Author, DeliveryStatus, PluginContext, Record, RetriableError
from socialcrm.core.sdk.brand import Brand
from socialcrm.core.sdk.model import Influence, Sentiment
from socialcrm.plugins.sinks.email import EmailSink, EmailSinkConfig
from socialcrm.testing import SinkContract

USER, PASSWORD = "alerts@brightwave.test", "s3cret-smtp-pass"
# Plain-text AUTH is what the plain-server tests exercise on purpose; aiosmtpd warns about it.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")


class Inbox:
    """An aiosmtpd handler that keeps what it receives; it can hang up on the Nth message."""

    def __init__(self, hang_up_on: int | None = None):
        self.envelopes = []
        self.hang_up_on = hang_up_on
        self.logins = []

    async def handle_DATA(self, server, session, envelope):
        if self.hang_up_on is not None and len(self.envelopes) + 1 == self.hang_up_on:
            server.transport.close()  # the server drops the line mid-session, before answering DATA
            return "421 closing"
        self.envelopes.append(envelope)
        return "250 2.0.0 queued"

    def messages(self):
        return [email.message_from_bytes(e.content, policy=email.policy.default) for e in self.envelopes]

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            USER.encode(), PASSWORD.encode())
        self.logins.append((mechanism, ok))
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself


class SmtpServer:
    """A real SMTP server in a background event loop, listening on 127.0.0.1 at a port the OS picks."""

    def __init__(self, handler, implicit_tls: ssl.SSLContext | None = None, **smtp_options):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

        async def start():
            return await self.loop.create_server(
                lambda: SMTP(handler, hostname="mail.brightwave.test", loop=self.loop, **smtp_options),
                "127.0.0.1", 0, ssl=implicit_tls)

        self.server = asyncio.run_coroutine_threadsafe(start(), self.loop).result(5)
        self.port = self.server.sockets[0].getsockname()[1]

    def stop(self):
        async def stop():
            self.server.close()
        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def servers():
    started = []

    def start(handler, **options):
        server = SmtpServer(handler, **options)
        started.append(server)
        return server
    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1, made for this test run."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert_file, key_file)
    return str(cert_file), server_context


def record(n: int, priority: str = "P2", **extra) -> Record:
    values = dict(
        id=f"x:{n}", network="x", content=f"@BrightwaveHelp my WaveBox <b>{n}</b> & router keep dropping\nagain",
        created_at=dt.datetime(2026, 10, 1, 10, n, tzinfo=dt.timezone.utc),
        author=Author(id=f"u{n}", handle=f"kim{n}", name="Kim Lee", followers=12400, verified=True,
                      profile_url=f"https://x.com/kim{n}"),
        url=f"https://x.com/kim{n}/status/{n}", type="case", sentiment=Sentiment("negative", -0.72),
        action="open_case", influence=Influence(82, "high"), priority=priority, mode="reactive",
        route=["mail"], team="care", reasons=["case term 'keep dropping'", "addressed to @BrightwaveHelp"])
    values.update(extra)
    return Record(**values)


def sink(port: int, **options) -> EmailSink:
    config = {"host": "127.0.0.1", "port": port, "security": "none", "from_addr": "socialcrm <alerts@brightwave.test>",
              "to": ["care@brightwave.test", "lead@brightwave.test"], **options}
    return EmailSink(EmailSinkConfig().load(config), PluginContext(instance="mail", brand=Brand(name="Brightwave")))


def expected_message_id(key: str) -> str:
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@socialcrm>"


def test_each_record_becomes_one_readable_message_with_a_stable_message_id(servers):
    inbox = Inbox()
    server = servers(inbox, authenticator=inbox.authenticate, auth_required=True, auth_require_tls=False)
    mail = sink(server.port, username=USER, password=PASSWORD)

    deliveries = mail.send([record(1, "P1"), record(2), record(3, "P4")])

    assert [d.status for d in deliveries] == [DeliveryStatus.DELIVERED] * 3
    assert [d.external_id for d in deliveries] == [expected_message_id(f"x:{n}") for n in (1, 2, 3)]
    assert inbox.logins and all(ok for _, ok in inbox.logins)
    messages = inbox.messages()
    assert len(messages) == 3
    first = messages[0]
    assert first["Message-ID"] == expected_message_id("x:1")
    assert first["Subject"].startswith("[socialcrm] P1 Case from @kim1: @BrightwaveHelp my WaveBox")
    assert first["From"] == "socialcrm <alerts@brightwave.test>"
    assert first["To"] == "care@brightwave.test, lead@brightwave.test"
    assert first["X-Socialcrm-Record-Id"] == "x:1"
    assert inbox.envelopes[0].rcpt_tos == ["care@brightwave.test", "lead@brightwave.test"]
    plain = first.get_body(("plain",)).get_content()
    html = first.get_body(("html",)).get_content()
    for text in ("Case", "negative (-0.72)", "82/100 (high)", "open case", "@kim1 (Kim Lee) on x, 12,400 followers",
                 "https://x.com/kim1/status/1", "case term 'keep dropping'", "<b>1</b> & router"):
        assert text in plain
    # user content is escaped in HTML; the link to the post is a real link
    assert "&lt;b&gt;1&lt;/b&gt; &amp; router" in html and "<b>1</b>" not in html
    assert '<a href="https://x.com/kim1/status/1">' in html
    assert "<li>case term &#x27;keep dropping&#x27;</li>" in html


def test_accents_and_emoji_survive_subject_and_both_parts(servers):
    inbox = Inbox()
    server = servers(inbox)
    text = "Café has WaveBox fibre now ☕ and it's fast"
    deliveries = sink(server.port).send([record(1, content=text, author=Author(handle="zoë", name="Zoë Ørsted"))])
    assert deliveries[0].status is DeliveryStatus.DELIVERED
    [message] = inbox.messages()
    assert "Café has WaveBox fibre now ☕" in message["Subject"]
    assert text in message.get_body(("plain",)).get_content()
    assert "Zoë Ørsted" in message.get_body(("html",)).get_content()


def test_a_resend_in_the_same_process_does_not_mail_twice(servers):
    inbox = Inbox()
    server = servers(inbox)
    mail = sink(server.port)
    first = mail.send([record(1)])
    again = mail.send([record(1), record(2)])
    assert [d.external_id for d in again] == [first[0].external_id, expected_message_id("x:2")]
    assert [m["X-Socialcrm-Record-Id"] for m in inbox.messages()] == ["x:1", "x:2"]


def test_wrong_password_is_an_auth_error_naming_the_fields_and_never_the_password(servers):
    inbox = Inbox()
    server = servers(inbox, authenticator=inbox.authenticate, auth_required=True, auth_require_tls=False)
    mail = sink(server.port, username=USER, password="wrong-password-123")
    with pytest.raises(AuthError) as failure:
        mail.send([record(1)])
    message = str(failure.value)
    assert "refused the login" in message and "username and password (SMTP_PASSWORD)" in message
    assert "535" in message and "wrong-password-123" not in message
    assert inbox.envelopes == []
    with pytest.raises(AuthError, match="refused the login"):
        mail.check()


def test_a_server_that_hangs_up_mid_session_loses_no_record(servers):
    inbox = Inbox(hang_up_on=2)
    server = servers(inbox)
    deliveries = {d.record_id: d for d in sink(server.port).send([record(1), record(2), record(3)])}
    assert deliveries["x:1"].status is DeliveryStatus.DELIVERED
    assert deliveries["x:2"].status is DeliveryStatus.RETRY and deliveries["x:3"].status is DeliveryStatus.RETRY
    assert "connection to 127.0.0.1" in deliveries["x:2"].error and "lost" in deliveries["x:2"].error
    assert [m["X-Socialcrm-Record-Id"] for m in inbox.messages()] == ["x:1"]


def test_a_server_that_is_down_means_retry_the_whole_batch():
    import socket
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(RetriableError, match="cannot reach the SMTP server 127.0.0.1"):
        sink(port).send([record(1)])


def test_refusals_are_classified_4xx_retry_5xx_rejected(servers):
    class Picky(Inbox):
        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            if address.startswith("full"):
                return "452 4.2.2 mailbox full"
            if address.startswith("nobody"):
                return "550 5.1.1 no such user"
            envelope.rcpt_tos.append(address)
            return "250 OK"

    server = servers(Picky())
    full = sink(server.port, to=["full@brightwave.test"]).send([record(1)])
    gone = sink(server.port, to=["nobody@brightwave.test"]).send([record(1)])
    assert full[0].status is DeliveryStatus.RETRY and "452" in full[0].error
    assert gone[0].status is DeliveryStatus.REJECTED and "550" in gone[0].error


def test_digest_lists_the_batch_by_priority_in_one_message(servers):
    inbox = Inbox()
    server = servers(inbox)
    mail = sink(server.port, mode="digest")
    batch = [record(1, "P3"), record(2, "P1"), record(3, "P2"), record(4, "P1")]
    deliveries = mail.send(batch)
    assert {d.status for d in deliveries} == {DeliveryStatus.DELIVERED}
    assert len({d.external_id for d in deliveries}) == 1
    [digest] = inbox.messages()
    assert digest["Subject"] == "[socialcrm] digest: 4 records (2 P1, 1 P2, 1 P3)"
    assert digest["Message-ID"] == expected_message_id("digest:" + "\n".join(sorted(r.id for r in batch)))
    plain = digest.get_body(("plain",)).get_content()
    order = [plain.index(f"@kim{n}:") for n in (2, 4, 3, 1)]
    assert order == sorted(order)
    html = digest.get_body(("html",)).get_content()
    assert html.count("<section>") == 4


def test_digest_interval_holds_records_for_the_next_digest(servers):
    inbox = Inbox()
    server = servers(inbox)
    now = [1_800_000_000.0]
    mail = sink(server.port, mode="digest", digest_interval=3600)
    mail.clock = lambda: now[0]
    assert mail.send([record(1)])[0].status is DeliveryStatus.DELIVERED
    now[0] += 600
    held = mail.send([record(2)])
    assert held[0].status is DeliveryStatus.RETRY and held[0].retry_after == 3000
    now[0] += 3000
    assert mail.send([record(2), record(3)])[0].status is DeliveryStatus.DELIVERED
    assert [m["Subject"] for m in inbox.messages()] == ["[socialcrm] digest: 1 record (1 P2)",
                                                        "[socialcrm] digest: 2 records (2 P2)"]


def test_starttls_with_a_self_signed_certificate_and_auth(servers, certificate):
    cert_file, server_context = certificate
    inbox = Inbox()
    server = servers(inbox, tls_context=server_context, require_starttls=True, authenticator=inbox.authenticate,
                     auth_required=True)
    mail = sink(server.port, security="starttls", ca_file=cert_file, username=USER, password=PASSWORD)
    assert "STARTTLS" in mail.check() and f"logged in as {USER}" in mail.check()
    assert mail.send([record(1)])[0].status is DeliveryStatus.DELIVERED
    assert len(inbox.messages()) == 1
    untrusted = sink(server.port, security="starttls", username=USER, password=PASSWORD)
    with pytest.raises(AuthError, match="not trusted"):
        untrusted.send([record(2)])


def test_implicit_tls(servers, certificate):
    cert_file, server_context = certificate
    inbox = Inbox()
    server = servers(inbox, implicit_tls=server_context)
    mail = sink(server.port, security="ssl", ca_file=cert_file)
    assert "implicit TLS" in mail.check()
    assert mail.send([record(1)])[0].status is DeliveryStatus.DELIVERED
    assert inbox.messages()[0]["Message-ID"] == expected_message_id("x:1")


def test_check_explains_a_server_without_starttls(servers):
    server = servers(Inbox())
    with pytest.raises(AuthError, match="STARTTLS extension not supported"):
        sink(server.port, security="starttls").check()


def test_config_names_the_missing_password_and_its_environment_variable():
    with pytest.raises(ValidationError) as failure:
        EmailSinkConfig().load({"host": "smtp.example.com", "from_addr": "a@example.com", "to": ["b@example.com"],
                                "username": "a@example.com"})
    assert "SMTP_PASSWORD" in failure.value.messages["password"][0]
    with pytest.raises(ValidationError) as failure:
        EmailSinkConfig().load({"host": "smtp.example.com", "from_addr": "nobody", "to": ["b@example.com"]})
    assert "from_addr" in failure.value.messages
    with pytest.raises(ValidationError) as failure:
        EmailSinkConfig().load({"host": "smtp.example.com", "from_addr": "a@example.com", "to": ["b@example.com"],
                                "colour": "blue"})
    assert "colour" in failure.value.messages
    assert EmailSink.secret_fields == ("password",)


# --- the contract every sink honours (socialcrm.testing), against the real SMTP server ---

class TestEmailSinkContract(SinkContract):
    plugin = EmailSink
    config = {"host": "127.0.0.1", "port": 2525, "security": "none", "username": USER, "password": PASSWORD,
              "from_addr": "socialcrm <alerts@brightwave.test>", "to": ["care@brightwave.test"]}
    invalid_configs = [({"security": "tls"}, "security"), ({"to": []}, "to"), ({"from_addr": "nobody"}, "from_addr"),
                       ({"password": None}, "password"), ({"mode": "weekly"}, "mode")]

    @pytest.fixture(autouse=True)
    def _smtp_server(self, servers):
        self.inbox = Inbox()
        server = servers(self.inbox, authenticator=self.inbox.authenticate, auth_required=True,
                         auth_require_tls=False)
        self.config = {**type(self).config, "port": server.port}

    def stored_record_ids(self):
        # The system of record is the team's mailbox, where a message is identified by its Message-ID
        # (RFC 5322 3.6.4): a copy re-sent with the same Message-ID is the same message, and mail
        # stores fold it away. SMTP itself cannot refuse the second copy.
        by_message_id = {}
        for message in self.inbox.messages():
            by_message_id.setdefault(message["Message-ID"], message["X-Socialcrm-Record-Id"])
        return list(by_message_id.values())


# --- follow-ups: a reply in the conversation's mail thread ---


def test_a_followup_is_mailed_as_a_reply_that_mail_clients_thread(servers):
    inbox = Inbox()
    server = servers(inbox)
    mail = sink(server.port)
    [root] = mail.send([record(1)])
    reply = record(2, conversation="x:1", parent="x:1", thread_object=root.external_id)
    [delivery] = mail.send([reply])
    assert delivery.status is DeliveryStatus.DELIVERED and delivery.external_id == expected_message_id("x:2")
    first, second = inbox.messages()
    assert "In-Reply-To" not in first and "References" not in first
    assert second["In-Reply-To"] == first["Message-ID"] == second["References"]
    assert second["Subject"].startswith("[socialcrm] Re: P2 Case from @kim2")
    assert second["X-Socialcrm-Conversation"] == "x:1"
    again = mail.send([reply])  # the same process never mails a follow-up twice
    assert again[0].external_id == delivery.external_id and len(inbox.messages()) == 2


def test_a_thread_object_that_is_no_message_id_adds_no_header(servers):
    inbox = Inbox()
    server = servers(inbox)
    sink(server.port).send([record(2, conversation="x:1", thread_object="ticket-17\r\nBcc: x@evil.test")])
    [message] = inbox.messages()
    assert "In-Reply-To" not in message and "Bcc" not in message
