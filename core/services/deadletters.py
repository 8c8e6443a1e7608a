"""Dead letters: deliveries a sink refused for good (or gave up on); listing, showing and replaying them,
as ``socialcrm dlq`` and the API's ``/dead-letters`` both do.

A dead letter is an outbox row in the ``dead`` state. A replay puts rows back to pending with no
attempts counted and audits each under the actor's name.
"""
from __future__ import annotations

from typing import Any, Sequence

from socialcrm.core.store import Store


class NotDeadLetters(LookupError):
    """Some ids asked to be replayed are not dead letters; nothing was replayed."""

    def __init__(self, missing: Sequence[int]):
        self.missing = list(missing)
        super().__init__(f"not dead letters: {', '.join(map(str, self.missing))}; nothing replayed")


def dead_letters(store: Store, sink: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """Dead letters, the most recent first, with each sink's reason (only ``sink``'s when given)."""
    return store.dead_letters(sink=sink, limit=limit)


def outbox_row(store: Store, outbox_id: int) -> dict[str, Any] | None:
    """One outbox row (dead or not: see its ``state``) with its record as the sink receives it and the
    audit entries about it; None when there is no such row."""
    return store.dead_letter(outbox_id)


def replay(store: Store, actor: str, ids: Sequence[int] | None = None, sink: str | None = None,
           now: float | None = None) -> list[int]:
    """Send dead letters again: those with ``ids``, every one of ``sink``, or all of them; returns the ids
    replayed. ``NotDeadLetters`` (and nothing replayed) when any of ``ids`` is not a dead letter."""
    if ids is not None:
        dead = {row["id"] for row in store.dead_letters()}
        missing = [i for i in ids if i not in dead]
        if missing:
            raise NotDeadLetters(missing)
    return store.replay_dead(actor, ids=None if ids is None else list(ids), sink=sink, now=now)


__all__ = ["NotDeadLetters", "dead_letters", "outbox_row", "replay"]
