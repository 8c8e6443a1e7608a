"""Erasure and the do-not-engage list: what the API's admin endpoints and ``socialcrm erase`` do.

An erasure removes everything held about one author on one network (mentions, records, their
deliveries and feedback) and is audited by a salted key and counts, never the handle. The
do-not-engage list keeps a person's mentions out of every sink; its entries come from the config
(``[privacy] do_not_engage``) and from the store (added through the API).
"""
from __future__ import annotations

import logging
from typing import Any

from socialcrm.core.engine.config import Config
from socialcrm.core.engine.donotengage import author_key, configured_keys
from socialcrm.core.store import Store

log = logging.getLogger(__name__)


class NotOnList(LookupError):
    """No do-not-engage entry has this author key."""


class ConfiguredEntry(ValueError):
    """The do-not-engage entry comes from the config, so only an edit of the config removes it."""


def erase_author(store: Store, config: Config, network: str, handle: str, actor: str, now: float | None = None
                 ) -> dict[str, int]:
    """Erase one author's data and return what was removed, by kind; logs counts, not the handle."""
    key = author_key(network, handle, config.privacy.hash_salt)
    counts = store.erase_author(network, handle, actor, key, now=now)
    log.info("erased an author's data on %s for %s: %s", network, actor, counts)
    return counts


def do_not_engage_list(store: Store, config: Config) -> list[dict[str, Any]]:
    """The whole list by salted key: the config's entries (``origin: config``) not also stored, then the
    stored ones (``origin: api``), the most recent first."""
    stored = [{**row, "origin": "api"} for row in store.do_not_engage_entries()]
    seen = {row["author_key"] for row in stored}
    from_config = [{"author_key": key, "network": None, "origin": "config", "added_at": None, "added_by": None}
                   for key in sorted(configured_keys(config.privacy)) if key not in seen]
    return from_config + stored


def add_to_do_not_engage(store: Store, config: Config, network: str, handle: str, actor: str,
                         now: float | None = None) -> dict[str, Any]:
    """Put an author on the list (their deliveries not yet sent are cancelled); returns the author key,
    whether the entry is new and what was cancelled."""
    key = author_key(network, handle, config.privacy.hash_salt)
    return {"author_key": key, **store.add_do_not_engage(key, network, handle, actor, now=now)}


def remove_from_do_not_engage(store: Store, config: Config, key: str, actor: str, now: float | None = None) -> None:
    """Take the author with ``key`` off the stored list; ``ConfiguredEntry`` when the entry is the config's,
    ``NotOnList`` when there is none."""
    if store.remove_do_not_engage(key, actor, now=now):
        return
    if key in configured_keys(config.privacy):
        raise ConfiguredEntry("this entry comes from the config: remove it from [privacy] do_not_engage")
    raise NotOnList("no such entry on the do-not-engage list")


__all__ = ["ConfiguredEntry", "NotOnList", "add_to_do_not_engage", "do_not_engage_list", "erase_author",
           "remove_from_do_not_engage"]
