"""The quarantine: items sources could not read, listed, shown and replayed, as ``socialcrm quarantine``
does (and dead letters' counterpart on the listening side).

An unreadable item (broken JSON, undecodable bytes, a missing or bad field, an empty text) is held with
its raw payload and the reason. A replay reads the payload again as a mention in socialcrm's JSON
shape (``MentionSchema``), or reads an edited payload given instead, and takes it in through the same
capture -> learn -> route -> store path as a polled page, marking the item replayed in that same
transaction. An item still unreadable stays held with the new reason.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from socialcrm.core.engine.pipeline import Pipeline, unreadable_items
from socialcrm.core.sdk.model import Page, SkippedItem, payload_text, read_mention
from socialcrm.core.store import Store

NO_PAYLOAD = "the source kept no payload for this item: replay it with an edited one (--payload FILE)"


class NotQuarantined(LookupError):
    """Some ids asked to be replayed are not held in the quarantine; nothing was replayed."""

    def __init__(self, missing: Sequence[int]):
        self.missing = list(missing)
        super().__init__(f"not in the quarantine: {', '.join(map(str, self.missing))}; nothing replayed")


@dataclass
class ReplayOutcome:
    """What a replay made of one quarantined item: the mention id it read, or why it still cannot."""

    id: int
    mention_id: str | None = None
    reason: str | None = None

    @property
    def read(self) -> bool:
        """Whether the item was read (and is no longer held)."""
        return self.mention_id is not None


def quarantined(store: Store, source: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """The items held, the most recent first, with where they were and why (only ``source``'s when given)."""
    return store.quarantined(source=source, limit=limit)


def quarantined_item(store: Store, item_id: int) -> dict[str, Any] | None:
    """One quarantined item (held or replayed: see its ``state``) with its raw payload; None when unknown."""
    return store.quarantined_item(item_id)


def count(store: Store) -> int:
    """How many items the quarantine holds."""
    return store.quarantine_count()


def replay(pipeline: Pipeline, ids: Sequence[int] | None = None, payload: bytes | str | None = None,
           source: str | None = None) -> list[ReplayOutcome]:
    """Read quarantined items again: those with ``ids``, else every held one (of ``source`` when given).

    ``payload`` replaces the stored payload (one id only: the user edited it). ``NotQuarantined`` (and
    nothing replayed) when any of ``ids`` is not held."""
    store = pipeline.store
    if ids:
        rows = [store.quarantined_item(i) for i in ids]
        missing = [i for i, row in zip(ids, rows) if row is None or row["state"] != "held"]
        if missing:
            raise NotQuarantined(missing)
    else:
        rows = [store.quarantined_item(row["id"]) for row in store.quarantined(source=source)]
    if payload is not None and len(rows) != 1:
        raise ValueError("an edited payload replaces one item's: give exactly one id with it")
    return [_replay_one(pipeline, row, payload) for row in rows]


def _replay_one(pipeline: Pipeline, row: dict[str, Any], payload: bytes | str | None) -> ReplayOutcome:
    text = payload if payload is not None else row["payload"]
    edited = payload_text(payload)
    if text is None:
        pipeline.store.still_unreadable(row["id"], NO_PAYLOAD, None)
        return ReplayOutcome(row["id"], reason=NO_PAYLOAD)
    item = read_mention(text, row["location"])
    if isinstance(item, SkippedItem):
        pipeline.store.still_unreadable(row["id"], item.reason, edited)
        return ReplayOutcome(row["id"], reason=item.reason)
    readable, skipped = unreadable_items(Page([item], None))
    if skipped:
        pipeline.store.still_unreadable(row["id"], skipped[0].reason, edited)
        return ReplayOutcome(row["id"], reason=skipped[0].reason)
    pipeline.ingest(row["source"], Page(readable, None), store_cursor=False, replayed={row["id"]: item.id})
    return ReplayOutcome(row["id"], mention_id=item.id)


__all__ = ["NO_PAYLOAD", "NotQuarantined", "ReplayOutcome", "count", "quarantined", "quarantined_item", "replay"]
