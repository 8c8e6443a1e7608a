"""Engage: deliver due outbox rows to each sink in batches, and record every outcome.

A row moves pending -> in_flight (claimed with a lease) -> delivered | retry | dead. A crashed
worker's rows come back when their lease expires; idempotent sinks make the re-send harmless.
"""
from __future__ import annotations

import logging
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Sequence

from .config import SinkConfig
from .connector import Sink
from .errors import AuthError, RetriableError
from .model import Delivery, DeliveryStatus
from .store import Claimed, Outcome, Store

log = logging.getLogger(__name__)


def backoff_delay(attempts: int, initial: float, cap: float, rng: Callable[[], float] = random.random) -> float:
    """Seconds to wait after the ``attempts``-th failure: exponential, capped, with jitter in the upper half
    (so waits still grow while retries from many records spread out)."""
    ceiling = min(cap, initial * (2 ** max(attempts - 1, 0)))
    return ceiling * (0.5 + 0.5 * rng())


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

    def deliver_due(self, max_batches: int | None = None) -> DeliveryStats:
        """Send every row that is due now, sink by sink, batch by batch; returns counts."""
        stats = DeliveryStats()
        for name, (sink, cfg) in self.sinks.items():
            batches = 0
            while max_batches is None or batches < max_batches:
                if self.paused_until.get(name, 0) > self.clock():
                    break
                token, claimed = self.store.claim(name, cfg.max_batch, cfg.lease_seconds, now=self.clock())
                if not claimed:
                    break
                batches += 1
                outcomes = self._send(name, sink, cfg, claimed, stats)
                self.store.complete(token, outcomes, now=self.clock())
                if all(o.state == "retry" for o in outcomes):
                    # The whole batch failed: the sink (not the records) is in trouble, so nothing more
                    # goes to it until the earliest retry is due, and a rate limit holds for every row.
                    self.paused_until[name] = min(o.next_attempt_at for o in outcomes)
                    break
        return stats

    def _send(self, name: str, sink: Sink, cfg: SinkConfig, claimed: Sequence[Claimed],
              stats: DeliveryStats) -> list[Outcome]:
        records = [c.record for c in claimed]
        stats.calls[name] += 1
        try:
            deliveries = sink.send(records)
        except RetriableError as exc:
            log.warning("sink %s: batch of %d will be retried: %s", name, len(records), exc)
            if exc.retry_after:
                self.paused_until[name] = self.clock() + exc.retry_after
            deliveries = [Delivery.retry(r.id, str(exc), exc.retry_after) for r in records]
        except AuthError as exc:
            # Credentials are wrong: nothing is the records' fault, so they wait for a fixed config.
            log.error("sink %s: authentication failed, delivery paused: %s", name, exc)
            self.paused_until[name] = self.clock() + cfg.backoff_max
            deliveries = [Delivery.retry(r.id, f"authentication failed: {exc}") for r in records]
        except Exception as exc:  # a plugin bug must not lose records: keep them for a retry
            log.exception("sink %s raised while sending %d records", name, len(records))
            deliveries = [Delivery.retry(r.id, f"{type(exc).__name__}: {exc}") for r in records]
        return self._outcomes(name, cfg, claimed, deliveries, stats)

    def _outcomes(self, name: str, cfg: SinkConfig, claimed: Sequence[Claimed], deliveries: Sequence[Delivery],
                  stats: DeliveryStats) -> list[Outcome]:
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
        outcomes = []
        for item in claimed:
            delivery = by_record.get(item.record.id) or Delivery.retry(
                item.record.id, f"sink {name!r} returned no outcome for this record")
            attempt = item.attempts + 1
            if delivery.status is DeliveryStatus.DELIVERED:
                outcomes.append(Outcome(item.outbox_id, "delivered", external_id=delivery.external_id))
                stats.delivered[name] += 1
            elif delivery.status is DeliveryStatus.REJECTED:
                outcomes.append(Outcome(item.outbox_id, "dead", error=f"rejected: {delivery.error}"))
                stats.dead[name] += 1
                log.warning("sink %s rejected record %s: %s", name, item.record.id, delivery.error)
            elif attempt >= cfg.max_attempts:
                outcomes.append(Outcome(item.outbox_id, "dead",
                                        error=f"gave up after {attempt} attempts: {delivery.error}"))
                stats.dead[name] += 1
            else:
                wait = backoff_delay(attempt, cfg.backoff_initial, cfg.backoff_max, self.rng)
                if delivery.retry_after is not None:
                    wait = max(wait, delivery.retry_after)  # the server's word is a floor, never shortened
                outcomes.append(Outcome(item.outbox_id, "retry", error=delivery.error, next_attempt_at=now + wait))
                stats.retried[name] += 1
        return outcomes
