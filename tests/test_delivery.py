"""The delivery step: one outcome per record, retries with backoff, dead letters, plugin faults."""
from datetime import datetime, timezone

import pytest

from socialcrm import Delivery, RetriableError, Sink
from socialcrm.core.config import SinkConfig
from socialcrm.core.connector import PluginContext
from socialcrm.core.brand import Brand
from socialcrm.core.delivery import Deliverer, backoff_delay
from socialcrm.core.errors import AuthError
from socialcrm.core.model import Record
from socialcrm.core.store import Store

T0 = 1_800_000_000.0


class Clock:
    def __init__(self):
        self.now = T0

    def __call__(self):
        return self.now


class ScriptedSink(Sink):
    """Answers each batch with what the test's ``answer`` function says."""

    name = "scripted"
    max_batch = 10

    def __init__(self, answer):
        super().__init__({}, PluginContext("scripted", Brand("B")))
        self.answer = answer
        self.batches = []

    def send(self, records):
        self.batches.append([r.id for r in records])
        return self.answer(records)


@pytest.fixture
def store(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'd.db'}")
    records = [Record(id=f"x:{i}", network="x", content="c", created_at=datetime(2026, 10, 1, tzinfo=timezone.utc),
                      route=["scripted"]) for i in range(25)]
    with store.begin() as conn:
        store.save_page(conn, "src", None, [], records, {}, now=T0)
    yield store
    store.close()


def deliverer(store, sink, clock, **policy):
    cfg = SinkConfig("scripted", "scripted", {}, max_batch=10, **policy)
    return Deliverer(store, {"scripted": (sink, cfg)}, clock=clock, rng=lambda: 1.0)


def states(store):
    return store.delivery_counts(now=T0)[0]


def test_delivers_in_batches_of_max_batch(store):
    sink = ScriptedSink(lambda rs: [Delivery.delivered(r.id, "ext-" + r.id) for r in rs])
    stats = deliverer(store, sink, Clock()).deliver_due()
    assert [len(b) for b in sink.batches] == [10, 10, 5]
    assert stats.delivered["scripted"] == 25 and states(store)["delivered"] == 25


def test_a_rejected_record_is_dead_lettered_without_holding_up_its_batch(store):
    sink = ScriptedSink(lambda rs: [Delivery.rejected(r.id, "Subject: required") if r.id == "x:3"
                                    else Delivery.delivered(r.id) for r in rs])
    deliverer(store, sink, Clock()).deliver_due()
    row = states(store)
    assert (row["delivered"], row["dead"]) == (24, 1)


def test_retries_back_off_exponentially_then_give_up(store):
    clock = Clock()
    sink = ScriptedSink(lambda rs: [Delivery.retry(r.id, "503 Service Unavailable") for r in rs])
    d = deliverer(store, sink, clock, max_attempts=3, backoff_initial=2.0, backoff_max=100.0)
    d.deliver_due()
    assert len(sink.batches) == 1  # every record of the batch failed: the sink is not hammered further
    clock.now = T0 + 1.9
    d.deliver_due()
    assert len(sink.batches) == 1  # 2 s backoff (jitter at its top) not yet over
    clock.now = T0 + 2.0
    d.deliver_due()
    assert len(sink.batches) == 2
    clock.now = T0 + 2.0 + 3.9  # the second wait doubles to 4 s
    d.deliver_due()
    assert len(sink.batches) == 2
    clock.now = T0 + 2.0 + 4.0
    d.deliver_due()
    # The third attempt of the first batch reaches max_attempts = 3: dead-lettered, and the loop goes on
    # to the next batch, which fails and pauses the sink again.
    assert sink.batches[2] == sink.batches[0] and sink.batches[3][0] == "x:10" and len(sink.batches) == 4
    assert states(store)["dead"] == 10


def test_retry_after_from_the_server_is_a_floor(store):
    clock = Clock()
    sink = ScriptedSink(lambda rs: [Delivery.retry(r.id, "429", retry_after=30) for r in rs])
    d = deliverer(store, sink, clock, backoff_initial=1.0)
    d.deliver_due()
    clock.now = T0 + 29.9
    d.deliver_due()
    assert len(sink.batches) == 1
    clock.now = T0 + 30
    d.deliver_due()
    assert len(sink.batches) == 2


def test_a_missing_outcome_is_retried_not_lost(store):
    sink = ScriptedSink(lambda rs: [Delivery.delivered(r.id) for r in rs[1:]])
    deliverer(store, sink, Clock()).deliver_due()
    row = states(store)
    assert row["retry"] >= 1 and row["delivered"] + row["retry"] == 25


@pytest.mark.parametrize("error", [RuntimeError("plugin bug"), RetriableError("down", retry_after=60),
                                   AuthError("401 bad token")])
def test_a_raising_sink_keeps_every_record_for_retry(store, error):
    def boom(_records):
        raise error
    deliverer(store, ScriptedSink(boom), Clock()).deliver_due()
    row = states(store)
    assert row["retry"] == 10 and row["pending"] == 15 and row["dead"] == 0


def test_backoff_is_capped_and_jittered():
    assert backoff_delay(1, 2, 900, rng=lambda: 1.0) == 2
    assert backoff_delay(4, 2, 900, rng=lambda: 1.0) == 16
    assert backoff_delay(30, 2, 900, rng=lambda: 1.0) == 900
    assert backoff_delay(4, 2, 900, rng=lambda: 0.0) == 8
