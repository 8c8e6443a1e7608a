"""The do-not-engage list: people whose mentions are kept out of drafts and alerts.

An author is named by network and handle, but the list keeps only a salted HMAC of the two (the
"author key"), so the list itself holds no handle. Entries come from the config (``[privacy]
do_not_engage = ["x:@someone"]``) and from the API's admin endpoint (stored in the ``do_not_engage``
table). Learning still classifies such a mention, for the counts; routing (``routing.route``) sends it
nowhere.
"""
from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache
from typing import TYPE_CHECKING, Collection, Sequence

from socialcrm.core.sdk.model import Record

if TYPE_CHECKING:  # pragma: no cover
    from socialcrm.core.engine.config import PrivacyConfig
    from socialcrm.core.store import Transaction

REASON = "do-not-engage: the author is on the do-not-engage list, so the record goes to no sink"


def normalise_handle(handle: str) -> str:
    """A handle as compared everywhere: no leading ``@``, lower case."""
    return handle.strip().lstrip("@").lower()


def author_key(network: str, handle: str, salt: str) -> str:
    """The salted key of an author: HMAC-SHA256 of ``network:handle`` (hex)."""
    message = f"{network.strip().lower()}:{normalise_handle(handle)}".encode()
    return hmac.new(salt.encode(), message, hashlib.sha256).hexdigest()


@lru_cache(maxsize=8)
def _configured(entries: tuple[str, ...], salt: str) -> frozenset[str]:
    keys = set()
    for entry in entries:
        network, _, handle = entry.partition(":")
        keys.add(author_key(network, handle, salt))
    return frozenset(keys)


def configured_keys(privacy: "PrivacyConfig") -> frozenset[str]:
    """The author keys of the config's ``do_not_engage`` entries (``network:handle``)."""
    return _configured(tuple(privacy.do_not_engage), privacy.hash_salt)


def record_author_key(record: Record, privacy: "PrivacyConfig") -> str | None:
    """The author key of a record's author, or None when the record names no handle."""
    return author_key(record.network, record.author.handle, privacy.hash_salt) if record.author.handle else None


def stored_keys(tx: "Transaction", records: Sequence[Record], privacy: "PrivacyConfig") -> frozenset[str]:
    """The author keys of these records that the store's list holds (the API's admin endpoint adds them),
    read inside the caller's transaction ``tx``."""
    keys = {key for key in (record_author_key(r, privacy) for r in records) if key}
    return frozenset(tx.blocked_authors(keys)) if keys else frozenset()


def hold_back(records: Sequence[Record], privacy: "PrivacyConfig", blocked_keys: Collection[str] = ()) -> int:
    """Empty the route of every record whose author is on the list (the config's entries or
    ``blocked_keys``), with a reason. Returns how many were held back."""
    blocked = configured_keys(privacy) | frozenset(blocked_keys)
    held = 0
    for record in records:
        if blocked and record_author_key(record, privacy) in blocked:
            record.route = []
            record.reasons.append(REASON)
            held += 1
    return held


__all__ = ["REASON", "author_key", "configured_keys", "hold_back", "normalise_handle", "record_author_key",
           "stored_keys"]
