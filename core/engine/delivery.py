"""Engage: deliver due outbox rows to each sink in batches, and record every outcome.

A row moves pending -> in_flight (claimed with a lease) -> delivered | retry | dead. A crashed
worker's rows come back when their lease expires; idempotent sinks make the re-send harmless.

Around each sink: a pause when a whole batch failed or the server said when to come back (kept in
the store, read before every batch, and written *before* the HTTP client sleeps a short wait in-line,
so another process or a restart waits too), a circuit breaker (``core.circuit``), and an optional
daily call budget that keeps its last part for P1 records.

A sink with a generator ``send_each(records)`` (one request per record, like the webhook sink) is
sent through it: each outcome is saved as it comes, so a killed process re-sends at most the record
whose answer it had not saved, and the records it yields nothing for (it stopped at a failure) were
not sent and cost no attempt. Other sinks answer a whole batch through ``send``.
"""
from __future__ import annotations

import logging
import math
import random
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Iterator, Sequence

from socialcrm.core.engine.circuit import FAILED, HALF_OPEN, HELD, OK, CircuitBreaker
from socialcrm.core.engine.config import SinkConfig
from socialcrm.core.sdk.connector import Sink
from socialcrm.core.sdk.errors import AuthError, RetriableError
from socialcrm.core.sdk.model import Delivery, DeliveryStatus, Record
from socialcrm.core.store import Claimed, Outcome, Store

log = logging.getLogger(__name__)


def backoff_delay(attempts: int, initial: float, cap: float, rng: Callable[[], float] = random.random) -> float:
    """Seconds to wait after the ``attempts``-th failure: exponential, capped, with jitter in the upper half
    (so waits still grow while retries from many records spread out)."""
    ceiling = min(cap, initial * (2 ** max(attempts - 1, 0)))
    return ceiling * (0.5 + 0.5 * rng())


def utc_day(now: float) -> str:
    """The UTC day (``YYYY-MM-DD``) a Unix time falls on: call budgets reset at UTC midnight."""
    return datetime.fromtimestamp(now, timezone.utc).strftime("%Y-%m-%d")


@dataclass
class DeliveryStats:
    """What one delivery pass did, per sink."""

    delivered: Counter = field(default_factory=Counter)
    retried: Counter = field(default_factory=Counter)
    dead: Counter = field(default_factory=Counter)
    calls: Counter = field(default_factory=Counter)

    def total(self) -> int:
        return sum(self.delivered.values()) + sum(self.retried.values()) + sum(self.dead.values())


class Deliverer:
    """Runs delivery for a set of sink instances over one store."""

    def __init__(self, store: Store, sinks: dict[str, tuple[Sink, SinkConfig]],
                 clock: Callable[[], float] = time.time, rng: Callable[[], float] = random.random):
        self.store = store
        self.sinks = sinks
        self.clock = clock
        self.rng = rng
        self.paused_until: dict[str, float] = {}
        self.breakers = {name: CircuitBreaker(store, name, cfg.breaker_threshold, cfg.breaker_cooldown,
                                              cfg.lease_seconds, self._now)
                         for name, (_sink, cfg) in sinks.items()}
        self._budget_level: dict[str, tuple[str, str]] = {}
        for name, (sink, _cfg) in sinks.items():
            for client in getattr(getattr(sink, "context", None), "http_clients", None) or ():
                client.on_wait = partial(self._hold_in_store, name)

    def _now(self) -> float:
        return self.clock()

    def _hold_in_store(self, name: str, until: float) -> None:
        """The server asked the HTTP client to wait until ``until``: store it before the client sleeps."""
        self.store.hold_sink(name, until, now=self.clock())
        self.paused_until[name] = max(self.paused_until.get(name, 0.0), until)

    def _read_stored_state(self, name: str) -> None:
        """Take the breaker and the hold another loop (or an earlier run) stored for ``name``."""
        row = self.store.sink_state(name)
        self.breakers[name].refresh(row)
        if row and row.get("hold_until"):
            self.paused_until[name] = max(self.paused_until.get(name, 0.0), row["hold_until"])

    def deliver_due(self, max_batches: int | None = None) -> DeliveryStats:
        """Send every row that is due now, sink by sink, batch by batch; returns counts."""
        stats = DeliveryStats()
        for name, (sink, cfg) in self.sinks.items():
            self._deliver_sink(name, sink, cfg, stats, max_batches)
        return stats

    def _deliver_sink(self, name: str, sink: Sink, cfg: SinkConfig, stats: DeliveryStats,
                      max_batches: int | None) -> None:
        breaker = self.breakers[name]
        streams = type(sink).send_each is not Sink.send_each  # the sink defines the optional per-record form
        batches = 0
        while max_batches is None or batches < max_batches:
            self._read_stored_state(name)  # a hold another process stored since the last batch holds here too
            if self.paused_until.get(name, 0) > self.clock():
                return
            priorities = self._allowed_priorities(name, cfg)
            if priorities == ():
                return
            gate = breaker.admit()
            if gate is None:
                return
            probing = gate == HALF_OPEN
            token, claimed = self.store.claim(name, 1 if probing else cfg.max_batch, cfg.lease_seconds,
                                              now=self.clock(), priorities=priorities)
            if not claimed:
                if probing:
                    breaker.release_probe()
                return
            batches += 1
            self._fill_thread_objects(name, [c.record for c in claimed])
            if streams:  # a failed probe, like any first failure, costs its record no attempt
                deliveries, outcomes = self._stream(name, sink, cfg, token, claimed, stats)
                now = self.clock()
            else:
                deliveries, down = self._send(name, sink, cfg, claimed, stats)
                outcomes = self._outcomes(name, cfg, claimed, deliveries, stats, charged=not down)
                now = self.clock()
                if probing and _judge(claimed, deliveries, outcomes) == FAILED:
                    # The probe tests the sink, not the record: a failed probe costs the record no attempt.
                    self.store.release(token, [o.outbox_id for o in outcomes], next_attempt_at=now)
                else:
                    self.store.complete(token, outcomes, now=now)
            scheduled = _scheduled_by_server(claimed, deliveries)
            result = _judge(claimed, deliveries, outcomes, scheduled)
            log.info("sink %s: batch of %d: %s", name, len(claimed),
                     ", ".join(f"{n} {state}" for state, n in sorted(Counter(o.state for o in outcomes).items())))
            hold = self._hold(name, outcomes, scheduled, result, now)
            breaker.record(result, error=next((o.error for o in outcomes if o.error), None), hold_until=hold)
            if result != OK:
                return

    def _hold(self, name: str, outcomes: Sequence[Outcome], scheduled: set[int], result: str,
              now: float) -> float | None:
        """When this sink may be tried again, after a batch; None if at once."""
        waits = [o.next_attempt_at for o in outcomes if o.state == "retry" and o.outbox_id in scheduled]
        hold = max(waits) if waits else None  # the server's word holds for every row of the sink
        if result != OK:
            # Nothing of the batch went through: the sink (not the records) is in trouble, so nothing
            # more goes to it until the earliest retry is due.
            retries = [o.next_attempt_at for o in outcomes if o.state == "retry"]
            if retries:
                hold = max(hold or 0.0, min(retries))
        if hold is None or hold <= now:
            return None
        self.paused_until[name] = max(self.paused_until.get(name, 0.0), hold)
        return hold

    def _allowed_priorities(self, name: str, cfg: SinkConfig) -> Sequence[str] | None:
        """The priorities the call budget still allows today: None (all), ``("P1",)``, or ``()`` (none)."""
        if cfg.daily_call_budget is None:
            return None
        day = utc_day(self.clock())
        used = self.store.calls_on(day).get(name, 0)
        left = cfg.daily_call_budget - used
        reserve = math.ceil(cfg.daily_call_budget * cfg.reserve_for_p1)
        level, allowed = ("open", None) if left > reserve else (("p1", ("P1",)) if left > 0 else ("spent", ()))
        if self._budget_level.get(name) != (day, level):
            self._budget_level[name] = (day, level)
            if level == "p1":
                log.warning("sink %s: %d of today's %d calls used; only P1 records go until the budget resets at "
                            "UTC midnight", name, used, cfg.daily_call_budget)
            elif level == "spent":
                log.warning("sink %s: today's call budget of %d is spent; delivery waits for UTC midnight",
                            name, cfg.daily_call_budget)
        return allowed

    @contextmanager
    def _counting_calls(self, name: str, sink: Sink, cfg: SinkConfig, stats: DeliveryStats) -> Iterator[None]:
        """Count the calls made inside the block: a sink that speaks HTTP through context.http() is
        counted request by request; any other sink as one call per batch."""
        clients = getattr(getattr(sink, "context", None), "http_clients", None)
        calls_before = sum(c.calls for c in clients) if clients else 0
        try:
            yield
        finally:
            made = sum(c.calls for c in clients) - calls_before if clients else 1
            stats.calls[name] += made
            if cfg.daily_call_budget is not None:
                self.store.add_calls(name, utc_day(self.clock()), made)

    def _failed(self, name: str, cfg: SinkConfig, records: Sequence[Any], exc: Exception) -> list[Delivery]:
        """The outcomes of records whose send raised ``exc``: each kept for a retry."""
        if isinstance(exc, RetriableError):
            log.warning("sink %s: batch of %d will be retried: %s", name, len(records), exc)
            return [Delivery.retry(r.id, str(exc), exc.retry_after) for r in records]
        if isinstance(exc, AuthError):
            # Credentials are wrong: nothing is the records' fault, so they wait for a fixed config.
            log.error("sink %s: authentication failed, delivery paused: %s", name, exc)
            self.paused_until[name] = self.clock() + cfg.backoff_max
            return [Delivery.retry(r.id, f"authentication failed: {exc}") for r in records]
        # A plugin bug must not lose records: keep them for a retry.
        log.error("sink %s raised while sending %d records", name, len(records), exc_info=exc)
        return [Delivery.retry(r.id, f"{type(exc).__name__}: {exc}") for r in records]

    def _send(self, name: str, sink: Sink, cfg: SinkConfig, claimed: Sequence[Claimed],
              stats: DeliveryStats) -> tuple[list[Delivery], bool]:
        """The sink's answers for a batch, and whether the sink was down (it raised ``RetriableError``
        for the whole batch: the sink's trouble, which costs the records no attempt)."""
        records = [c.record for c in claimed]
        with self._counting_calls(name, sink, cfg, stats):
            try:
                return sink.send(records), False
            except Exception as exc:  # noqa: BLE001 - every failure becomes a retry, see _failed
                return self._failed(name, cfg, records, exc), isinstance(exc, RetriableError)

    def _stream(self, name: str, sink: Sink, cfg: SinkConfig, token: str, claimed: Sequence[Claimed],
                stats: DeliveryStats) -> tuple[list[Delivery], list[Outcome]]:
        """Send a batch through ``sink.send_each``, saving each outcome as it comes. Returns what the
        sink answered and the outcomes of the rows it was sent (the rows it did not send are handed
        back uncharged, due when the sink may be tried again)."""
        waiting = {c.record.id: c for c in claimed}
        deliveries: list[Delivery] = []
        outcomes: list[Outcome] = []

        def save(answers: Iterable[Delivery], charged: bool | None = None) -> None:
            for delivery in answers:
                item = waiting.pop(delivery.record_id, None)
                if item is None:
                    log.error("sink %s answered for record %s, which it was not sent or already answered", name,
                              delivery.record_id)
                    continue
                now = self.clock()
                # A failure before the sink answered anything of the batch says the sink is down (it
                # feeds the circuit breaker), not that the record is bad: it costs the record no attempt.
                down = not outcomes and delivery.status is DeliveryStatus.RETRY
                outcome = self._outcome(name, cfg, item, delivery, now, stats,
                                        charged=not down if charged is None else charged)
                self.store.complete(token, [outcome], now=now)
                deliveries.append(delivery)
                outcomes.append(outcome)

        with self._counting_calls(name, sink, cfg, stats):
            try:
                save(sink.send_each([c.record for c in claimed]))
            except Exception as exc:  # noqa: BLE001 - every failure becomes a retry, see _failed
                # Which of the rest the failed call carried is unknown: each is charged an attempt,
                # unless the sink had answered nothing yet (it is down).
                save(self._failed(name, cfg, [c.record for c in waiting.values()], exc),
                     charged=not (isinstance(exc, RetriableError) and not outcomes))
        if waiting and not outcomes:
            # It answered nothing: the first record counts as attempted, so a sink that never answers
            # still reaches max_attempts instead of holding its rows forever.
            first = next(iter(waiting.values()))
            save([Delivery.retry(first.record.id, f"sink {name!r} returned no outcome for this record")],
                 charged=True)
        if waiting:
            now = self.clock()
            due = max((o.next_attempt_at or now for o in outcomes if o.state == "retry"), default=now)
            self.store.complete(token, [Outcome(c.outbox_id, "retry", next_attempt_at=due, counts_attempt=False,
                                                error=f"not sent: sink {name!r} stopped at an earlier failure "
                                                      "in this batch")
                                        for c in waiting.values()], now=now)
            stats.retried[name] += len(waiting)
        return deliveries, outcomes

    def _fill_thread_objects(self, name: str, records: Sequence[Record]) -> None:
        """Tell each reply the object its conversation already has in this sink (``Record.thread_object``),
        so the sink adds to it; a reply whose conversation has none there opens a new one, and says why."""
        replies = [r for r in records if r.conversation and r.conversation != r.id]
        if not replies:
            return
        roots = self.store.outbox.conversation_roots(name, {r.conversation for r in replies})
        for record in replies:
            root = roots.get(record.conversation)
            if root is not None and root.state == "delivered" and root.external_id:
                record.thread_object = root.external_id
                continue
            if root is None:
                why = f"has no delivery to {name} (it was not routed there, or was erased)"
            elif root.state == "dead":
                why = f"was rejected by {name} (dead-lettered)"
            elif root.state == "delivered":
                why = f"was delivered to {name} without an id to add to"
            else:
                why = f"is still {root.state.replace('_', ' ')} in {name}"
            record.reasons.append(f"follow-up in conversation {record.conversation}, whose first record {why}: "
                                  "opened as a new object")
            log.info("sink %s: record %s opens a new object: its conversation's first record %s", name, record.id, why)

    def _outcomes(self, name: str, cfg: SinkConfig, claimed: Sequence[Claimed], deliveries: Sequence[Delivery],
                  stats: DeliveryStats, charged: bool = True) -> list[Outcome]:
        by_record: dict[str, Delivery] = {}
        for delivery in deliveries:
            if delivery.record_id in by_record:
                log.error("sink %s answered twice for record %s; keeping the first", name, delivery.record_id)
                continue
            by_record[delivery.record_id] = delivery
        known = {c.record.id for c in claimed}
        for stray in set(by_record) - known:
            log.error("sink %s answered for record %s, which it was not sent", name, stray)
        now = self.clock()
        return [self._outcome(name, cfg, item, by_record.get(item.record.id) or Delivery.retry(
                    item.record.id, f"sink {name!r} returned no outcome for this record"), now, stats, charged)
                for item in claimed]

    def _outcome(self, name: str, cfg: SinkConfig, item: Claimed, delivery: Delivery, now: float,
                 stats: DeliveryStats, charged: bool = True) -> Outcome:
        """What to write back to ``item``'s row, given the sink's answer for its record; a failure that is
        not ``charged`` (the sink was down) is retried without counting toward ``max_attempts``."""
        attempt = item.attempts + 1
        if delivery.status is DeliveryStatus.DELIVERED:
            stats.delivered[name] += 1
            return Outcome(item.outbox_id, "delivered", external_id=delivery.external_id)
        if delivery.status is DeliveryStatus.REJECTED:
            stats.dead[name] += 1
            log.warning("sink %s rejected record %s: %s", name, item.record.id, delivery.error)
            return Outcome(item.outbox_id, "dead", error=f"rejected: {delivery.error}")
        if delivery.retry_after:
            # The server said exactly when to come back (Retry-After, a rate-limit reset): that is
            # a schedule, not a failure, so it is honoured to the second and costs no attempt.
            stats.retried[name] += 1
            return Outcome(item.outbox_id, "retry", error=delivery.error, next_attempt_at=now + delivery.retry_after,
                           counts_attempt=False)
        if attempt >= cfg.max_attempts and charged:
            stats.dead[name] += 1
            log.warning("sink %s: record %s dead-lettered after %d attempts: %s", name, item.record.id,
                        attempt, delivery.error)
            return Outcome(item.outbox_id, "dead", error=f"gave up after {attempt} attempts: {delivery.error}")
        wait = backoff_delay(attempt, cfg.backoff_initial, cfg.backoff_max, self.rng)
        stats.retried[name] += 1
        return Outcome(item.outbox_id, "retry", error=delivery.error, next_attempt_at=now + wait,
                       counts_attempt=charged)


def _scheduled_by_server(claimed: Sequence[Claimed], deliveries: Sequence[Delivery]) -> set[int]:
    """The outbox ids whose record the server said when to send again (``Retry-After``, a reset)."""
    waits = {d.record_id for d in deliveries if d.status is DeliveryStatus.RETRY and d.retry_after}
    return {c.outbox_id for c in claimed if c.record.id in waits}


def _judge(claimed: Sequence[Claimed], deliveries: Sequence[Delivery], outcomes: Sequence[Outcome],
           scheduled: set[int] | None = None) -> str:
    """What a batch says about its sink: OK if the sink answered any record (delivered or rejected it),
    HELD if it asked us to come back at a given time, FAILED if it answered nothing."""
    sent = {c.record.id for c in claimed}
    if any(d.status is not DeliveryStatus.RETRY and d.record_id in sent for d in deliveries):
        return OK
    scheduled = _scheduled_by_server(claimed, deliveries) if scheduled is None else scheduled
    if all(o.state == "retry" and o.outbox_id in scheduled for o in outcomes):
        return HELD
    return FAILED


def delivery_report(store: Store, sinks: Sequence[SinkConfig], max_pending: int,
                    now: float | None = None) -> dict[str, Any]:
    """Delivery health for ``socialcrm status`` (and the API): per sink the rows in each state, the
    oldest undelivered age, the circuit and today's calls; and the backpressure on listening."""
    now = time.time() if now is None else now
    counts = {row["sink"]: row for row in store.delivery_counts(now=now)}
    states = store.sink_states()
    calls = store.calls_on(utc_day(now))
    configured = {cfg.instance: cfg for cfg in sinks}
    rows = []
    for name in sorted(set(counts) | set(configured)):
        row = counts.get(name) or {"sink": name, "pending": 0, "in_flight": 0, "retry": 0, "delivered": 0,
                                   "dead": 0, "oldest_pending_s": None}
        state = states.get(name) or {}
        open_until = state.get("open_until") if state.get("breaker") == "open" else None
        hold = state.get("hold_until")
        cfg = configured.get(name)
        rows.append({**row,
                     "circuit": {"state": state.get("breaker", "closed"), "failures": state.get("failures", 0),
                                 "probe_in_s": round(max(0.0, open_until - now), 1) if open_until else None,
                                 "last_error": state.get("last_error")},
                     "paused_for_s": round(hold - now, 1) if hold and hold > now else None,
                     "calls_today": calls.get(name, 0),
                     "daily_call_budget": cfg.daily_call_budget if cfg else None,
                     "configured": cfg is not None})
    open_rows = store.open_deliveries()
    return {"sinks": rows,
            "backpressure": {"open": open_rows, "max_pending": max_pending, "paused": open_rows >= max_pending},
            "tables": store.counts()}


__all__ = ["Deliverer", "DeliveryStats", "backoff_delay", "delivery_report", "utc_day"]
