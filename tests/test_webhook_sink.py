"""The generic webhook sink: signed JSON POSTs, the record id as Idempotency-Key, errors classified."""
import hashlib
import hmac
import json
import time
from datetime import datetime, timezone

import pytest
import responses
from marshmallow import ValidationError

from socialcrm import DeliveryStatus, PluginContext, Record
from socialcrm.core.sdk.brand import Brand
from socialcrm.core.engine.config import SinkConfig, load_config
from socialcrm.core.engine.delivery import Deliverer, utc_day
from socialcrm.core.sdk.errors import AuthError, ConfigError
from socialcrm.core.store import Store
from socialcrm.plugins.sinks.webhook import WebhookSink, WebhookSinkConfig, sign
from socialcrm.testing import SinkContract

SECRET = "s3cret-key"
URL = "https://crm.example.com/hooks/socialcrm"


def record(i, **extra):
    return Record(id=f"x:{i}", network="x", content=f"my router is broken #{i}", priority="P2",
                  created_at=datetime(2026, 10, 1, tzinfo=timezone.utc), route=["crm"], **extra)


def make_sink(url, **options):
    """A webhook sink that hands every failure straight to the outbox (no in-line retries or waits),
    unless ``options`` say otherwise."""
    config = WebhookSinkConfig().load({"url": url, "secret": SECRET, "timeout": 0.3, "attempts": 1, "max_wait": 0,
                                       **options})
    return WebhookSink(config, PluginContext("crm", Brand("Brightwave")))


def test_each_record_is_posted_signed_with_its_id_as_idempotency_key(fake_crm):
    sink = make_sink(fake_crm.url)
    first = sink.send([record(1), record(2)])
    assert [(d.record_id, d.status, d.external_id) for d in first] == [
        ("x:1", DeliveryStatus.DELIVERED, "crm-1"), ("x:2", DeliveryStatus.DELIVERED, "crm-2")]
    # A re-send (after a crash, say) gets the same object back and creates nothing.
    again = sink.send([record(1)])
    assert again[0].external_id == "crm-1"
    assert fake_crm.count == 2 and fake_crm.created["x:1"] == 1 and fake_crm.replays == 1
    assert [key for _, key, _ in fake_crm.requests] == ["x:1", "x:2", "x:1"]


def test_a_wrong_secret_fails_the_receivers_check_and_stops_the_batch(fake_crm):
    config = WebhookSinkConfig().load({"url": fake_crm.url, "secret": "not-the-key"})
    sink = WebhookSink(config, PluginContext("crm", Brand("B")))
    with pytest.raises(AuthError, match="401"):
        sink.send([record(1)])
    assert fake_crm.count == 0


def test_the_signature_covers_timestamp_and_raw_body():
    body = b'{"id":"x:1"}'
    expected = hmac.new(SECRET.encode(), b"1800000000." + body, hashlib.sha256).hexdigest()
    assert sign(SECRET, "1800000000", body) == "sha256=" + expected


def test_a_4xx_rejects_only_that_record_with_the_receivers_reason(fake_crm):
    fake_crm.reject = lambda r: "content: must not contain 'poison'" if "poison" in r["content"] else None
    poison = record(4)
    poison.content = "poison pill"
    result = make_sink(fake_crm.url).send([record(5), poison, record(6)])
    assert [d.status for d in result] == [DeliveryStatus.DELIVERED, DeliveryStatus.REJECTED, DeliveryStatus.DELIVERED]
    assert result[1].error == "422 Unprocessable Entity: {\"error\": \"content: must not contain 'poison'\"}"
    assert "x:4" not in fake_crm.created and fake_crm.count == 2


def test_5xx_429_and_timeouts_leave_the_rest_of_the_batch_for_the_outbox(fake_crm):
    sink = make_sink(fake_crm.url)
    fake_crm.script = [503]
    out = sink.send([record(1), record(2)])
    assert [d.status for d in out] == [DeliveryStatus.RETRY] * 2 and "503" in out[0].error
    assert len(fake_crm.requests) == 1  # no in-line retry: the outbox owns retries
    fake_crm.script = [(429, 2)]
    out = sink.send([record(1), record(2)])
    assert [d.retry_after for d in out] == [2.0, 2.0]
    fake_crm.script = ["hang"]
    started = time.monotonic()
    out = sink.send([record(1)])
    assert out[0].status is DeliveryStatus.RETRY and "Timeout" in out[0].error
    assert time.monotonic() - started < fake_crm.delay  # the configured 0.3 s timeout, not the server's pace
    out = sink.send([record(1), record(2)])
    assert [d.status for d in out] == [DeliveryStatus.DELIVERED] * 2


def test_a_wrong_path_is_a_rejection_naming_the_endpoint(fake_crm):
    out = make_sink(fake_crm.url.replace("/v1/records", "/v1/cases")).send([record(1)])
    assert out[0].status is DeliveryStatus.REJECTED
    assert out[0].error == '404 Not Found: {"error": "no such endpoint /v1/cases"}'


@responses.activate
def test_ratelimit_reset_header_holds_the_next_call_without_sending_it():
    responses.post(URL, json={"id": "A"}, status=201, headers={"RateLimit-Remaining": "0", "RateLimit-Reset": "7"})
    out = make_sink(URL).send([record(1), record(2)])
    assert out[0].status is DeliveryStatus.DELIVERED
    assert out[1].status is DeliveryStatus.RETRY and 6 < out[1].retry_after <= 7
    assert len(responses.calls) == 1


@responses.activate
def test_batch_mode_posts_one_request_and_reads_per_record_results():
    def answer(request):
        ids = [r["id"] for r in json.loads(request.body)["records"]]
        assert request.headers["Idempotency-Key"].startswith("batch-")
        results = [{"record_id": rid, "error": "title: too long"} if rid == "x:2" else {"record_id": rid, "id": f"T-{rid}"}
                   for rid in ids]
        return 200, {}, json.dumps({"results": results})
    responses.add_callback(responses.POST, URL, callback=answer)
    out = make_sink(URL, batch=True).send([record(1), record(2), record(3)])
    assert [(d.status, d.external_id or d.error) for d in out] == [
        (DeliveryStatus.DELIVERED, "T-x:1"), (DeliveryStatus.REJECTED, "title: too long"),
        (DeliveryStatus.DELIVERED, "T-x:3")]
    assert len(responses.calls) == 1


@responses.activate
def test_a_refused_batch_is_resent_record_by_record_so_only_the_bad_one_dies():
    def answer(request):
        body = json.loads(request.body)
        if "records" in body:
            return 422, {}, json.dumps({"error": "record 2: email invalid"})
        if body["id"] == "x:2":
            return 422, {}, json.dumps({"error": "email invalid"})
        return 201, {}, json.dumps({"id": "C-" + body["id"]})
    responses.add_callback(responses.POST, URL, callback=answer)
    out = make_sink(URL, batch=True).send([record(1), record(2), record(3)])
    assert [d.status for d in out] == [DeliveryStatus.DELIVERED, DeliveryStatus.REJECTED, DeliveryStatus.DELIVERED]
    assert len(responses.calls) == 4


@responses.activate
def test_secrets_never_reach_a_rejection_reason():
    responses.post(URL, status=400, json={"error": "bad header Bearer tok-abcdef123 for key s3cret-key"})
    out = make_sink(URL, headers={"Authorization": "Bearer tok-abcdef123"}).send([record(1)])
    assert "tok-abcdef123" not in out[0].error and SECRET not in out[0].error and "***" in out[0].error
    assert responses.calls[0].request.headers["Authorization"] == "Bearer tok-abcdef123"


def test_config_errors_name_the_field_and_what_to_do(write_config, base_config, plugins):
    with pytest.raises(ValidationError) as caught:
        WebhookSinkConfig().load({"url": URL})
    assert "export SOCIALCRM_WEBHOOK_SECRET" in caught.value.messages["secret"][0]
    with pytest.raises(ValidationError, match="set by the sink itself"):
        WebhookSinkConfig().load({"url": URL, "secret": SECRET, "headers": {"Idempotency-Key": "x"}})
    path = write_config(base_config + '\n[sinks.crm]\nplugin = "webhook"\nurl = "ftp://nope"\nsecret = "${NO_SUCH_VAR}"\n'
                                      'timout = 3\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, plugins)
    text = str(caught.value)
    assert "[sinks.crm] secret: environment variable NO_SUCH_VAR is not set" in text
    assert "[sinks.crm] timout: unknown field" in text and "[sinks.crm] url:" in text


def test_the_daily_budget_counts_every_http_call(fake_crm, tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'b.db'}")
    with store.page() as tx:
        tx.save_page("src", None, [], [record(i) for i in range(6)], {}, now=time.time())
    cfg = SinkConfig("crm", "webhook", {}, max_batch=3, daily_call_budget=100)
    fake_crm.script = [503]
    clock = [time.time()]
    deliverer = Deliverer(store, {"crm": (make_sink(fake_crm.url), cfg)}, clock=lambda: clock[0], rng=lambda: 1.0)
    deliverer.deliver_due()  # one failed call, then the sink is held for the 2 s backoff
    clock[0] += 2
    deliverer.deliver_due()
    assert store.delivery_counts()[0]["delivered"] == 6
    assert store.calls_on(utc_day(clock[0])) == {"crm": len(fake_crm.requests)} == {"crm": 7}
    store.close()


def test_short_trouble_is_retried_in_line_and_a_short_retry_after_waited_exactly(fake_crm):
    sink = make_sink(fake_crm.url, attempts=3, max_wait=30)
    waits = []
    sink.http.sleep = waits.append  # record the waits instead of sleeping them
    fake_crm.script = [(429, 2), 503]
    out = sink.send([record(1)])
    assert out[0].status is DeliveryStatus.DELIVERED and fake_crm.count == 1
    assert waits[0] == 2.0 and len(waits) == 2  # Retry-After: 2 exactly, then a backoff after the 503
    assert [status for _, _, status in fake_crm.requests] == [429, 503, 201]


class TestWebhookSinkContract(SinkContract):
    """The kit's checks, against a receiver that honours Idempotency-Key as the module documents."""

    plugin = WebhookSink
    config = {"url": URL, "secret": SECRET}
    invalid_configs = [({"url": "not a url"}, "url"), ({"secret": None}, "secret"), ({"timeout": 0}, "timeout"),
                       ({"attempts": 0}, "attempts")]

    def serve(self, system, api):
        def receive(request):
            timestamp = request.headers["X-Socialcrm-Timestamp"]
            assert request.headers["X-Socialcrm-Signature"] == sign(SECRET, timestamp, request.body)
            body = json.loads(request.body)
            if system.refuses(body["id"]):
                return 422, {}, json.dumps({"error": "content: required"})
            stored, created = system.create(body["id"], body, idempotency_key=request.headers["Idempotency-Key"])
            return (201 if created else 200), {}, json.dumps({"id": stored.id})
        api.add_callback("POST", URL, callback=system.guard(receive), content_type="application/json")
