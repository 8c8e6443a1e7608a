"""The delivery step: one outcome per record, retries with backoff, dead letters, plugin faults."""
from datetime import datetime, timezone

import pytest

from socialcrm import Delivery, RetriableError, Sink
from socialcrm.core.engine.config import SinkConfig
from socialcrm.core.sdk.connector import PluginContext
from socialcrm.core.sdk.brand import Brand
from socialcrm.core.engine.delivery import Deliverer, backoff_delay
from socialcrm.core.sdk.errors import AuthError
from socialcrm.core.sdk.model import DeliveryStatus, Record
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
    with store.page() as tx:
        tx.save_page("src", None, [], records, {}, now=T0)
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
    # The third attempt of the first batch reaches max_attempts = 3: dead-lettered. A batch the sink
    # answered none of ends the pass (the sink is in trouble); the next pass goes on to the next batch.
    assert sink.batches[2] == sink.batches[0] and len(sink.batches) == 3
    assert states(store)["dead"] == 10
    d.deliver_due()
    assert sink.batches[3][0] == "x:10" and len(sink.batches) == 4


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


# --- the circuit breaker ---

def failing_then(clock, ok_after):
    """A sink that fails every batch (503) until the clock passes ``ok_after``."""
    def answer(records):
        if clock.now < ok_after:
            return [Delivery.retry(r.id, "503 Service Unavailable") for r in records]
        return [Delivery.delivered(r.id) for r in records]
    return answer


def test_the_circuit_opens_after_consecutive_failed_batches_then_probes_and_closes(store):
    clock = Clock()
    sink = ScriptedSink(failing_then(clock, ok_after=T0 + 100))
    d = deliverer(store, sink, clock, backoff_initial=1.0, backoff_max=1.0, breaker_threshold=3, breaker_cooldown=30)
    for step in range(3):
        clock.now = T0 + step * 1.0
        d.deliver_due()
    assert len(sink.batches) == 3
    state = store.sink_states()["scripted"]
    assert state["breaker"] == "open" and state["failures"] == 3 and state["open_until"] == T0 + 2 + 30
    clock.now = T0 + 31.9  # every row is due again, but the circuit is open: nothing is sent
    d.deliver_due()
    assert len(sink.batches) == 3
    clock.now = T0 + 32
    d.deliver_due()  # the probe: ONE record, which fails; the circuit opens for another cool-down
    assert len(sink.batches[3]) == 1 and store.sink_states()["scripted"]["breaker"] == "open"
    probe = store.dead_letter(1)
    assert probe["attempts"] == 3 and probe["state"] == "retry"  # a failed probe costs the record no attempt
    clock.now = T0 + 61.9
    d.deliver_due()
    assert len(sink.batches) == 4
    clock.now = T0 + 62
    d.deliver_due()  # the second probe fails too
    assert sink.batches[4] == ["x:0"] and store.dead_letter(1)["attempts"] == 3
    clock.now = T0 + 100
    d.deliver_due()  # the third probe succeeds, the circuit closes and everything flows in full batches
    assert [len(b) for b in sink.batches[5:]] == [1, 10, 10, 4]
    assert store.sink_states()["scripted"]["breaker"] == "closed" and states(store)["delivered"] == 25


def test_an_open_circuit_survives_a_restart(store, tmp_path):
    clock = Clock()
    sink = ScriptedSink(failing_then(clock, ok_after=T0 + 1000))
    d = deliverer(store, sink, clock, backoff_initial=0.1, backoff_max=0.1, breaker_threshold=2, breaker_cooldown=600)
    d.deliver_due()
    clock.now += 1
    d.deliver_due()
    assert len(sink.batches) == 2
    # A new process: a new store connection and a new Deliverer with no memory of the failures.
    again = Store(store.url)
    restarted = deliverer(again, sink, clock, breaker_threshold=2, breaker_cooldown=600)
    clock.now += 60
    restarted.deliver_due()
    assert len(sink.batches) == 2
    again.close()


def test_a_retry_after_is_honoured_exactly_and_costs_no_attempt(store):
    clock = Clock()
    sink = ScriptedSink(lambda rs: [Delivery.retry(r.id, "429", retry_after=2) for r in rs])
    d = deliverer(store, sink, clock, backoff_initial=60.0, max_attempts=2, breaker_threshold=1)
    for _ in range(5):
        d.deliver_due()
        clock.now += 2
    assert len(sink.batches) == 5  # exactly every 2 s, not the 60 s backoff; never dead after 2 attempts
    assert states(store)["dead"] == 0 and store.sink_states()["scripted"]["breaker"] == "closed"
    assert store.dead_letter(1)["attempts"] == 0


def test_only_one_of_several_loops_takes_the_half_open_probe(store_url):
    from socialcrm.core.engine.circuit import CircuitBreaker
    setup = Store(store_url)
    setup.change_sink_state("crm", lambda row: {"breaker": "open", "failures": 5, "open_until": T0}, now=T0)
    admitted = []

    def loop():
        mine = Store(store_url)
        breaker = CircuitBreaker(mine, "crm", 5, 60, 30, clock=lambda: T0 + 1)
        breaker.refresh(mine.sink_states()["crm"])
        admitted.append(breaker.admit())
        mine.close()

    import threading
    threads = [threading.Thread(target=loop) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert admitted.count("half_open") == 1 and admitted.count(None) == 5
    assert setup.sink_states()["crm"]["probe_until"] == T0 + 1 + 30
    setup.close()


# --- the daily call budget ---

def test_a_nearly_spent_budget_lets_only_p1_records_through_until_the_next_utc_day(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'budget.db'}")
    clock = Clock()  # T0 is 2027-01-15 08:00 UTC

    def save(ids, priority):
        records = [Record(id=f"x:{i}", network="x", content="c", priority=priority, route=["scripted"],
                          created_at=datetime(2026, 10, 1, tzinfo=timezone.utc)) for i in ids]
        with store.page() as tx:
            tx.save_page("src", None, [], records, {}, now=clock.now)

    save(range(20), "P3")
    sink = ScriptedSink(lambda rs: [Delivery.delivered(r.id) for r in rs])
    cfg = SinkConfig("scripted", "scripted", {}, max_batch=1, daily_call_budget=10, reserve_for_p1=0.3)
    d = Deliverer(store, {"scripted": (sink, cfg)}, clock=clock, rng=lambda: 1.0)
    d.deliver_due()
    assert len(sink.batches) == 7  # 3 of the 10 calls are kept for P1
    save(range(100, 105), "P1")
    d.deliver_due()
    assert [b[0] for b in sink.batches[7:]] == ["x:100", "x:101", "x:102"]  # then the budget is spent
    d.deliver_due()
    assert len(sink.batches) == 10 and store.calls_on("2027-01-15") == {"scripted": 10}
    clock.now = 1_800_000_000.0 + 16 * 3600  # 00:00 UTC the next day
    d.deliver_due()
    assert len(sink.batches) == 17 and sink.batches[10] == ["x:103"]
    store.close()


# --- per-record sinks: outcomes saved as they come, records not sent cost no attempt ---

class StreamingSink(ScriptedSink):
    """A per-record sink: ``send_each`` yields each record's outcome as its request is answered and stops
    at the first failure, as the webhook sink does. ``answer(record)`` is that record's outcome; before
    each request it notes how many outcomes the store already holds."""

    def __init__(self, answer, store):
        super().__init__(answer)
        self.store = store
        self.saved_before = []

    def send_each(self, records):
        self.batches.append([r.id for r in records])
        for record in records:
            row = self.store.delivery_counts(now=T0)[0]
            self.saved_before.append(row["delivered"] + row["dead"] + row["retry"])
            delivery = self.answer(record)
            yield delivery
            if delivery.status is DeliveryStatus.RETRY:
                return


def attempts(store, outbox_id):
    return store.dead_letter(outbox_id)["attempts"]


def test_a_per_record_sink_has_each_outcome_saved_before_its_next_request(store):
    sink = StreamingSink(lambda r: Delivery.delivered(r.id, "ext-" + r.id), store)
    deliverer(store, sink, Clock()).deliver_due()
    assert sink.saved_before[:10] == list(range(10))  # record n goes once the n before it are saved
    assert [len(b) for b in sink.batches] == [10, 10, 5] and states(store)["delivered"] == 25


def test_a_sink_that_defines_no_send_each_gets_whole_batches_through_send(store):
    """The SDK's ``Sink.send_each`` is optional: a sink that keeps the base class's is sent through ``send``."""
    sink = ScriptedSink(lambda batch: [Delivery.delivered(r.id) for r in batch])
    deliverer(store, sink, Clock()).deliver_due()
    assert [len(b) for b in sink.batches] == [10, 10, 5] and states(store)["delivered"] == 25


def test_records_a_per_record_sink_did_not_send_cost_no_attempt(store):
    sink = StreamingSink(lambda r: Delivery.retry(r.id, "503 Service Unavailable") if r.id == "x:3"
                         else Delivery.delivered(r.id), store)
    deliverer(store, sink, Clock(), max_attempts=3).deliver_due()
    row = states(store)
    assert (row["delivered"], row["retry"], row["dead"]) == (3 + 15, 7, 0)  # the pass went on to the next batches
    assert attempts(store, 4) == 1  # x:3 was sent and failed after the sink answered others: one attempt
    not_sent = store.dead_letter(5)
    assert (not_sent["state"], not_sent["attempts"]) == ("retry", 0)
    assert not_sent["last_error"] == "not sent: sink 'scripted' stopped at an earlier failure in this batch"


def test_a_long_outage_of_a_per_record_sink_dead_letters_nothing_even_with_max_attempts_1(store):
    clock = Clock()
    sink = StreamingSink(lambda r: Delivery.retry(r.id, "503 Service Unavailable") if clock.now < T0 + 300
                         else Delivery.delivered(r.id), store)
    d = deliverer(store, sink, clock, max_attempts=1, backoff_initial=1.0, backoff_max=4.0, breaker_threshold=5,
                  breaker_cooldown=10)
    while states(store)["delivered"] < 25:
        assert clock.now < T0 + 400, states(store)
        d.deliver_due()
        clock.now += 1.0
    assert states(store)["dead"] == 0 and len(sink.batches) > 10  # the outage was tried through, and outlasted
    assert store.sink_states()["scripted"]["breaker"] == "closed"


def test_a_list_sink_that_raises_for_its_batch_is_down_and_costs_no_attempt(store):
    clock = Clock()

    def down(_records):
        raise RetriableError("503 Service Unavailable")
    d = deliverer(store, ScriptedSink(down), clock, max_attempts=1, backoff_initial=1.0, backoff_max=1.0,
                  breaker_threshold=50)
    for _ in range(5):
        d.deliver_due()
        clock.now += 1.0
    assert states(store)["dead"] == 0 and attempts(store, 1) == 0
    assert store.sink_states()["scripted"]["failures"] == 5
