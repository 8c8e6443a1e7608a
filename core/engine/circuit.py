"""A per-sink circuit breaker, kept in the store so every delivery loop and a restarted process agree.

    closed --(``threshold`` failed batches in a row)--> open
    open --(``cooldown`` seconds later, one loop takes the probe)--> half_open
    half_open --(the probe batch of one record is delivered or rejected)--> closed
    half_open --(the probe fails)--> open, for another cool-down

A batch *fails* when the sink answered none of its records (every one is to be retried) and the
server did not say when to come back. A batch the server held with ``Retry-After`` or a reset header
is neither a failure nor a success: the sink is alive and has told us exactly when to return.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

from socialcrm.core.store import Store

log = logging.getLogger(__name__)

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"

#: What one batch showed about the sink.
OK, FAILED, HELD = "ok", "failed", "held"


class CircuitBreaker:
    """The breaker of one sink. ``admit`` says whether a batch may go (and whether it is the probe);
    ``record`` reports how the batch went. State lives in the store's ``sink_state`` table."""

    def __init__(self, store: Store, sink: str, threshold: int, cooldown: float, probe_lease: float,
                 clock: Callable[[], float]):
        self.store = store
        self.sink = sink
        self.threshold = threshold
        self.cooldown = cooldown
        self.probe_lease = probe_lease
        self.clock = clock
        self.row: dict[str, Any] = {"breaker": CLOSED, "failures": 0}

    def refresh(self, row: dict[str, Any] | None) -> None:
        """Take the state another loop (or an earlier run) stored, as read at the start of a pass."""
        self.row = dict(row) if row else {"breaker": CLOSED, "failures": 0}

    def admit(self) -> str | None:
        """``closed`` (send a full batch), ``half_open`` (send one probe record) or None (hold off)."""
        state = self.row["breaker"]
        if state == CLOSED:
            return CLOSED
        now = self.clock()
        if state == OPEN and (self.row.get("open_until") or 0) > now:
            return None
        if state == HALF_OPEN and (self.row.get("probe_until") or 0) >= now:
            return None  # another loop holds the probe
        took = False

        def take(row: dict[str, Any]) -> dict[str, Any] | None:
            nonlocal took
            # Re-checked under the row lock: of several loops, exactly one takes the probe.
            due = (row["breaker"] == OPEN and (row["open_until"] or 0) <= now) or \
                  (row["breaker"] == HALF_OPEN and (row["probe_until"] or 0) < now)
            if not due:
                return None
            took = True
            return {"breaker": HALF_OPEN, "probe_until": now + self.probe_lease}

        self.row = self.store.change_sink_state(self.sink, take, now=now)
        if took:
            log.info("sink %s: circuit half-open, sending one record to probe it", self.sink)
            return HALF_OPEN
        return CLOSED if self.row["breaker"] == CLOSED else None

    def release_probe(self) -> None:
        """The probe found nothing due to send: stay open, ready to probe when something is due."""
        def back(row: dict[str, Any]) -> dict[str, Any] | None:
            return {"breaker": OPEN, "probe_until": None} if row["breaker"] == HALF_OPEN else None
        self.row = self.store.change_sink_state(self.sink, back, now=self.clock())

    def record(self, result: str, error: str | None = None, hold_until: float | None = None) -> None:
        """Report a batch: ``OK``, ``FAILED`` or ``HELD``; ``hold_until`` is when the sink may be tried
        again (kept in the store so a restarted process waits too)."""
        if result == OK and hold_until is None and self.row["breaker"] == CLOSED and not self.row.get("failures"):
            return  # the common case writes nothing
        now = self.clock()
        before = self.row["breaker"]

        def change(row: dict[str, Any]) -> dict[str, Any]:
            if result == OK:
                return {"breaker": CLOSED, "failures": 0, "open_until": None, "probe_until": None,
                        "hold_until": hold_until}
            if result == HELD:
                if row["breaker"] == HALF_OPEN:  # the probe was told to wait: wait, then probe again
                    return {"breaker": OPEN, "open_until": hold_until, "probe_until": None, "hold_until": hold_until}
                return {"hold_until": hold_until}
            failures = row["failures"] + 1
            values = {"failures": failures, "last_error": error, "hold_until": hold_until}
            if row["breaker"] != CLOSED or failures >= self.threshold:
                values.update(breaker=OPEN, opened_at=now, open_until=now + self.cooldown, probe_until=None)
            return values

        self.row = self.store.change_sink_state(self.sink, change, now=now)
        after = self.row["breaker"]
        if after == OPEN and result == FAILED and before == HALF_OPEN:
            log.info("sink %s: the probe failed (%s); circuit stays open, next probe in %.0f s", self.sink, error,
                     (self.row["open_until"] or now) - now)
        elif after == OPEN and result == FAILED:
            log.warning("sink %s: circuit open after %d failed batches in a row (last: %s); probing again in "
                        "%.0f s", self.sink, self.row["failures"], error, (self.row["open_until"] or now) - now)
        elif after == CLOSED and before != CLOSED:
            log.warning("sink %s: circuit closed, the sink answers again", self.sink)
