"""The do-not-engage list: people whose mentions are kept out of drafts and alerts.

An author is named by network and handle, but the list keeps only a salted HMAC of the two (the
"author key"), so the list itself holds no handle. Entries come from the config (``[api]
do_not_engage = ["x:@someone"]``) and from the API's admin endpoint (stored in the ``do_not_engage``
table). Learning still classifies such a mention, for the counts; routing sends it nowhere.
"""
from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache
from typing import TYPE_CHECKING, Sequence

from socialcrm.core.sdk.model import Record

if TYPE_CHECKING:  # pragma: no cover
    from socialcrm.core.engine.config import ApiConfig
    from socialcrm.core.store import Store, Transaction

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


def configured_keys(api: "ApiConfig") -> frozenset[str]:
    """The author keys of the config's ``do_not_engage`` entries (``network:handle``)."""
    return _configured(tuple(api.do_not_engage), api.hash_salt)


def hold_back(store: "Store", conn: "Transaction", records: Sequence[Record], api: "ApiConfig") -> int:
    """Empty the route of every record whose author is on the list (config or store), with a reason.

    Runs after routing, inside the transaction that stores the records. Returns how many were held back.
    """
    keys = {r.id: author_key(r.network, r.author.handle, api.hash_salt) for r in records if r.author.handle}
    if not keys:
        return 0
    blocked = (configured_keys(api) & set(keys.values())) | store.blocked_authors(conn, keys.values())
    held = 0
    for record in records:
        if keys.get(record.id) in blocked:
            record.route = []
            record.reasons.append(REASON)
            held += 1
    return held


__all__ = ["REASON", "author_key", "configured_keys", "hold_back", "normalise_handle"]
