"""Fault injection against a real CRM on 127.0.0.1 that honours Idempotency-Key (the ``fake_crm`` fixture):
outages, rate limits, a poison record, backpressure, and a delivery process killed with SIGKILL.

Each test logs its figures (records sent, received, duplicates, lost); see them with
``pytest tests/test_faults.py -o log_cli=true --log-cli-level=INFO``.
"""
import json
import logging
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import select

from socialcrm import PluginContext, Record
from socialcrm.core.sdk.brand import Brand
from socialcrm.core.cli.main import main
from socialcrm.core.engine.config import SinkConfig, load_config
from socialcrm.core.engine.delivery import Deliverer
from socialcrm.core.engine.pipeline import Pipeline
from socialcrm.core.store import Store, testrows
from socialcrm.core.store.schema import outbox
from socialcrm.plugins.sinks.webhook import WebhookSink, WebhookSinkConfig

log = logging.getLogger("socialcrm.tests.faults")
T0 = 1_800_000_000.0
SOCIALCRM = Path(sys.executable).with_name("socialcrm")


class Clock:
    def __init__(self):
        self.now = T0

    def __call__(self):
        return self.now


def records(n, poison=None):
    out = []
    for i in range(n):
        text = "poison: this one breaks the CRM" if i == poison else f"my WaveBox keeps dropping, ticket {i}"
        out.append(Record(id=f"x:{i}", network="x", content=text, priority="P2", route=["crm"],
                          created_at=datetime(2026, 10, 1, tzinfo=timezone.utc)))
    return out


def outbox_store(tmp_path, batch):
    store = Store(f"sqlite:///{tmp_path / 'faults.db'}")
    with store.page() as tx:
        tx.save_page("src", None, [], batch, {}, now=T0)
    return store


def webhook(url, timeout=0.2):
    """The webhook sink with in-line retries off: every failure and wait goes through the outbox."""
    config = WebhookSinkConfig().load({"url": url, "secret": "s3cret-key", "timeout": timeout, "attempts": 1,
                                       "max_wait": 0})
    return WebhookSink(config, PluginContext("crm", Brand("Brightwave")))


def deliver_until_done(deliverer, store, clock, total, step, passes):
    """Delivery passes, the clock moved ``step`` seconds between them, until ``total`` rows are delivered."""
    for _ in range(passes):
        deliverer.deliver_due()
        if store.delivery_counts(now=clock.now)[0]["delivered"] == total:
            return
        clock.now += step


def delivered_ids(store):
    return dict(testrows.tuples(store, select(outbox.c.record_id, outbox.c.external_id)
                                .where(outbox.c.state == "delivered")))


def assert_exactly_once(crm, store, sent, name):
    figures = crm.figures(sent)
    log.info("%s: %s", name, json.dumps(figures))
    assert (figures["received"], figures["duplicates"], figures["lost"]) == (len(sent), 0, 0), figures
    # The outbox holds the CRM's own id for every record, re-sent ones included.
    assert delivered_ids(store) == {key: obj["id"] for key, obj in crm.objects.items()}
    return figures


def test_an_outage_of_5xx_and_timeouts_then_recovery_delivers_every_record_exactly_once(fake_crm, tmp_path, caplog):
    batch = records(60)
    store = outbox_store(tmp_path, batch)
    fake_crm.script = [None, None, 500, 503, "timeout", 500, "hang", None, 503, "timeout", 500, 503, 500, "timeout",
                       503, 500, "hang", 500, None, "timeout", 503]
    clock = Clock()
    cfg = SinkConfig("crm", "webhook", {}, max_batch=10, backoff_initial=1.0, backoff_max=8.0, max_attempts=20,
                     breaker_threshold=3, breaker_cooldown=20.0)
    deliverer = Deliverer(store, {"crm": (webhook(fake_crm.url), cfg)}, clock=clock, rng=lambda: 1.0)
    caplog.set_level(logging.INFO, logger="socialcrm.core.engine.circuit")
    deliver_until_done(deliverer, store, clock, len(batch), step=2.0, passes=200)
    assert not fake_crm.script  # the whole outage was played
    figures = assert_exactly_once(fake_crm, store, [r.id for r in batch], "5xx/timeout outage")
    # Each lost response (the CRM stored the record, the answer came too late) was re-sent and answered
    # from the key; more only if a healthy answer also took longer than the 0.2 s timeout on a busy machine.
    assert figures["replayed_keys"] >= 4
    assert "circuit open after 3 failed batches" in caplog.text and "circuit closed" in caplog.text
    assert store.sink_states()["crm"]["breaker"] == "closed"
    store.close()


def test_a_429_with_retry_after_2_holds_every_request_for_two_seconds(fake_crm, tmp_path):
    batch = records(30)
    store = outbox_store(tmp_path, batch)
    fake_crm.script = [(429, 2)]
    clock = Clock()
    cfg = SinkConfig("crm", "webhook", {}, max_batch=10, backoff_initial=0.1)
    deliverer = Deliverer(store, {"crm": (webhook(fake_crm.url), cfg)}, clock=clock, rng=lambda: 1.0)
    deliverer.deliver_due()
    assert len(fake_crm.requests) == 1
    for now in (T0 + 0.5, T0 + 1.0, T0 + 1.999):
        clock.now = now
        deliverer.deliver_due()
        # A restarted process keeps the hold too: it is in the store, not only in memory.
        Deliverer(store, {"crm": (webhook(fake_crm.url), cfg)}, clock=clock).deliver_due()
        assert len(fake_crm.requests) == 1, f"a request was sent {now - T0:.3f} s after the 429"
    clock.now = T0 + 2.0
    deliverer.deliver_due()
    assert len(fake_crm.requests) == 31 and store.dead_letter(1)["attempts"] == 1  # the 429 cost no attempt
    assert_exactly_once(fake_crm, store, [r.id for r in batch], "429 Retry-After 2")
    store.close()


def test_a_short_retry_after_waited_in_line_is_kept_in_the_store_so_a_restart_and_a_second_process_wait_too(
        fake_crm, tmp_path):
    batch = records(30)
    store = outbox_store(tmp_path, batch)
    fake_crm.script = [(429, 6)]  # under max_wait: the HTTP client waits it in-line
    clock = Clock()
    cfg = SinkConfig("crm", "webhook", {}, max_batch=10)

    def inline_webhook():
        config = WebhookSinkConfig().load({"url": fake_crm.url, "secret": "s3cret-key", "timeout": 5, "attempts": 2,
                                           "max_wait": 30})
        sink = WebhookSink(config, PluginContext("crm", Brand("Brightwave")))
        sink.http.clock = clock
        return sink

    waits = []

    def during_the_wait(seconds):
        waits.append(seconds)
        # The wait is in the store before it is slept: a process killed now and restarted 1 s into the
        # wait, and a second `run --once` started just before it ends, send nothing before it is over.
        assert store.sink_states()["crm"]["hold_until"] == T0 + 6
        for clock.now in (T0 + 1.0, T0 + 5.9):
            other = Store(store.url)
            Deliverer(other, {"crm": (inline_webhook(), cfg)}, clock=clock).deliver_due()
            other.close()
            assert len(fake_crm.requests) == 1, f"a request was sent {clock.now - T0:.1f} s after the 429"
        clock.now = T0 + seconds

    sink = inline_webhook()
    sink.http.sleep = during_the_wait
    Deliverer(store, {"crm": (sink, cfg)}, clock=clock).deliver_due()
    assert waits == [6.0]
    assert [status for _, _, status in fake_crm.requests[:2]] == [429, 201] and len(fake_crm.requests) == 31
    assert_exactly_once(fake_crm, store, [r.id for r in batch], "429 Retry-After 6 waited in-line")
    store.close()


def test_a_long_outage_with_max_attempts_3_dead_letters_nothing(fake_crm, tmp_path):
    batch = records(100)
    store = outbox_store(tmp_path, batch)
    fake_crm.script = [503] * 40  # 40 requests in a row fail, far more than max_attempts
    clock = Clock()
    cfg = SinkConfig("crm", "webhook", {}, max_batch=10, max_attempts=3, backoff_initial=1.0, backoff_max=4.0,
                     breaker_cooldown=5.0)
    deliverer = Deliverer(store, {"crm": (webhook(fake_crm.url), cfg)}, clock=clock, rng=lambda: 1.0)
    deliver_until_done(deliverer, store, clock, len(batch), step=1.0, passes=500)
    assert not fake_crm.script  # the whole outage was played
    assert store.delivery_counts(now=clock.now)[0]["dead"] == 0
    assert_exactly_once(fake_crm, store, [r.id for r in batch], "outage, max_attempts = 3")
    store.close()


def test_one_poison_record_in_a_batch_of_50_is_dead_lettered_and_49_delivered(fake_crm, tmp_path):
    batch = records(50, poison=17)
    store = outbox_store(tmp_path, batch)
    fake_crm.reject = lambda r: "content: contains a forbidden word" if "poison" in r["content"] else None
    cfg = SinkConfig("crm", "webhook", {}, max_batch=50)
    stats = Deliverer(store, {"crm": (webhook(fake_crm.url), cfg)}, clock=Clock()).deliver_due()
    assert stats.calls["crm"] == 50 and (stats.delivered["crm"], stats.dead["crm"]) == (49, 1)
    [dead] = store.dead_letters()
    assert dead["record_id"] == "x:17"
    assert dead["error"] == 'rejected: 422 Unprocessable Entity: {"error": "content: contains a forbidden word"}'
    figures = fake_crm.figures([r.id for r in batch])
    log.info("poison record: %s", json.dumps(figures))
    assert (figures["received"], figures["duplicates"], figures["lost"]) == (49, 0, 1)
    store.close()


def test_four_delivery_loops_at_once_send_each_record_once(store_url, fake_crm):
    import threading
    batch = records(300)
    setup = Store(store_url)
    with setup.page() as tx:
        tx.save_page("src", None, [], batch, {}, now=time.time())
    cfg = SinkConfig("crm", "webhook", {}, max_batch=7)
    errors = []

    def loop():
        store = Store(store_url)
        try:
            deliverer = Deliverer(store, {"crm": (webhook(fake_crm.url, timeout=5), cfg)})
            while deliverer.deliver_due(max_batches=1).total():
                pass
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=loop) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    # Not one request twice: the claims never overlapped (idempotency had nothing to absorb).
    assert len(fake_crm.requests) == 300 and fake_crm.replays == 0
    assert_exactly_once(fake_crm, setup, [r.id for r in batch], f"4 loops on {setup.backend}")
    setup.close()


SUBPROCESS_CONFIG = """
[brand]
name = "Brightwave"
handles = ["@BrightwaveHelp"]
keywords = ["WaveBox"]

[store]
url = "sqlite:///store.db"
max_pending = {max_pending}

[sources.file]
plugin = "jsonl"
path = "mentions.jsonl"
page_size = {page_size}

[sinks.crm]
plugin = "webhook"
url = "{url}"
secret = "${{CRM_SECRET}}"
timeout = 2
attempts = 1
max_wait = 0
max_batch = 50
lease_seconds = {lease}
backoff_initial = 0.01
backoff_max = 0.01

[[routes]]
name = "everything"
sinks = ["crm"]
"""


def write_setup(tmp_path, mention_json, write_mentions, url, n, max_pending=100_000, page_size=500, lease=1):
    # One customer's many posts: the same words from as many accounts would read as a copy-paste campaign.
    customer = {"id": "u1", "handle": "user1", "followers": 100}
    write_mentions(tmp_path / "mentions.jsonl",
                   [mention_json(str(i), f"@BrightwaveHelp my WaveBox keeps dropping, ticket {i}", author=customer)
                    for i in range(n)])
    path = tmp_path / "socialcrm.toml"
    path.write_text(SUBPROCESS_CONFIG.format(url=url, max_pending=max_pending, page_size=page_size, lease=lease))
    return path


def wait_for(condition, what, deadline_s=60.0):
    deadline = time.monotonic() + deadline_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)  # polling interval of the wait loop, not a wait for the system


def test_socialcrm_run_killed_with_sigkill_mid_delivery_loses_and_repeats_nothing(fake_crm, tmp_path, mention_json,
                                                                                  write_mentions):
    path = write_setup(tmp_path, mention_json, write_mentions, fake_crm.url, 2000)
    env = {**os.environ, "CRM_SECRET": "s3cret-key"}
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    kills = []

    def start(n):
        err = open(tmp_path / f"run{n}.log", "w")
        return subprocess.Popen([str(SOCIALCRM), "--log-level", "INFO", "run", "--config", str(path)], env=env,
                                stdout=err, stderr=subprocess.STDOUT, cwd=tmp_path)

    for n, point in enumerate((210, 920, 1630)):  # mid-batch (batches are 50), after ~200, ~900, ~1600
        # Killed at an event, not a time: the CRM has stored record `point` and holds its answer back.
        fake_crm.hold_answer_at(point)
        process = start(n)
        try:
            wait_for(lambda: fake_crm.held.is_set() or process.poll() is not None, f"{point} records at the CRM")
            assert process.poll() is None, (tmp_path / f"run{n}.log").read_text()
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
        finally:
            fake_crm.release()
            if process.poll() is None:
                process.kill()
        counts = store.delivery_counts()[0]
        kills.append({"at": fake_crm.count, "in_flight": counts["in_flight"], "delivered": counts["delivered"]})
    process = start(3)
    try:
        wait_for(lambda: store.delivery_counts()[0]["delivered"] == 2000, "every record delivered")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    log.info("SIGKILL points: %s", json.dumps(kills))
    assert any(k["in_flight"] > 0 for k in kills), kills  # the kills left claimed rows behind, as a crash does
    assert [k["at"] for k in kills] == sorted(k["at"] for k in kills) and kills[-1]["at"] < 2000
    assert store.counts()["records"] == 2000
    figures = assert_exactly_once(fake_crm, store, [f"x:{i}" for i in range(2000)], "SIGKILL x3, 2000 records")
    # Each kill cost the record whose answer it never read, sent again and answered from the key; each
    # outcome is saved as it comes, so no other record of the killed batch is sent twice (more only if a
    # healthy answer took longer than the 2 s timeout on a busy machine).
    assert figures["replayed_keys"] >= len(kills)
    assert figures["replayed_keys"] < 50, figures  # under one batch: outcomes are not saved batch by batch
    store.close()


def test_a_down_sink_fills_the_outbox_to_its_bound_then_listening_pauses_and_status_says_so(
        fake_crm, tmp_path, mention_json, write_mentions, plugins, caplog, monkeypatch):
    monkeypatch.setenv("CRM_SECRET", "s3cret-key")
    path = write_setup(tmp_path, mention_json, write_mentions, fake_crm.url, 200, max_pending=60, page_size=50,
                       lease=60)
    path.write_text(path.read_text().replace("backoff_max = 0.01", "backoff_max = 0.01\nbreaker_threshold = 2\n"
                                                                      "breaker_cooldown = 0.2"))
    fake_crm.script = [503] * 10_000  # the CRM is down
    pipeline = Pipeline(load_config(path, plugins), plugins)
    # Delivery runs on a clock the test moves: the 0.2 s cool-down ends when the test says, not when a
    # busy machine happens to get there.
    clock = Clock()
    clock.now = time.time() + 60  # after the rows listening writes (on the wall clock) are due
    pipeline.deliverer.clock = clock
    listened, delivered = pipeline.run_once()
    assert listened.paused and listened.records == 100  # the page that crossed 60 was the last one read
    assert sum(delivered.delivered.values()) == 0 and pipeline.store.counts()["records"] == 100
    assert "outbox holds 100 undelivered rows (store.max_pending = 60): listening paused" in caplog.text
    clock.now += 0.05  # past the first failure's backoff, inside the cool-down
    again, _ = pipeline.run_once()
    assert again.paused and again.fetched == 0  # while full, no page is read at all

    runner = CliRunner()
    status = json.loads(runner.invoke(main, ["status", "--json", "--config", str(path)]).output)
    assert status["backpressure"] == {"open": 100, "max_pending": 60, "paused": True}
    [crm] = status["sinks"]
    assert crm["circuit"]["state"] == "open" and "503" in crm["circuit"]["last_error"]
    assert (crm["pending"] + crm["retry"], crm["delivered"], crm["oldest_pending_s"] >= 0) == (100, 0, True)
    table = runner.invoke(main, ["status", "--config", str(path)]).output
    assert "open (probe" in table and "listening PAUSED" in table

    fake_crm.script = []  # the CRM is back: the probe closes the circuit, the outbox drains, listening resumes
    for _ in range(100):
        if pipeline.store.delivery_counts()[0]["delivered"] == 200:
            break
        clock.now += 1.0  # past the cool-down and every backoff
        pipeline.run_once()
    assert pipeline.store.delivery_counts()[0]["delivered"] == 200, pipeline.store.delivery_counts()
    pipeline.close()
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    assert_exactly_once(fake_crm, store, [f"x:{i}" for i in range(200)], "backpressure outage")
    status = json.loads(runner.invoke(main, ["status", "--json", "--config", str(path)]).output)
    assert status["backpressure"]["paused"] is False and status["sinks"][0]["circuit"]["state"] == "closed"
    store.close()
