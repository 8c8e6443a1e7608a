"""What ``socialcrm check`` finds beyond a valid file: whether the store opens, and what the config
leaves out (no sources, no sinks, no routes), said as warnings rather than failures."""
from __future__ import annotations

from socialcrm.core.engine.config import Config
from socialcrm.core.services.runtime import opened_store
from socialcrm.core.store import StoreMissing, is_in_memory, location


def store_health(config: Config) -> str:
    """One line on the config's store: ``store: sqlite at PATH: reachable, schema ok``, or that it has no
    socialcrm tables yet. Opens it read-only (nothing is created); a ``StoreError`` when it cannot be opened."""
    backend, where = location(config.store_url)
    try:
        with opened_store(config, read_only=True):
            pass
    except StoreMissing:
        return f"store: {backend} at {where}: no socialcrm database yet (`socialcrm run` creates it)"
    return f"store: {backend} at {where}: reachable, schema ok"


def config_warnings(config: Config) -> list[str]:
    """What the config leaves out that a working installation needs, each with what it means."""
    warnings = []
    if not config.sources:
        warnings.append("no sources configured (add a [sources.NAME] block): nothing is listened to")
    if not config.sinks:
        warnings.append("no sinks configured (add a [sinks.NAME] block): records are stored but delivered nowhere")
    if not config.routes:
        warnings.append("no routes configured (add a [[routes]] block): no record is sent to any sink")
    if is_in_memory(config.store_url):
        warnings.append("the store is in memory ([store] url): `run`, `serve` and `backfill` refuse it, since "
                        "everything would be lost when they exit")
    return warnings
