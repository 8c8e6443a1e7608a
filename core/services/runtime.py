"""The running socialcrm a front end (the API, a CLI command) works over: the config, the plugin
manager, the pipeline and its store; and what such a front end asks of it: poll a source now, take in
a page of pushed (webhook) mentions. A command that needs only the store opens it with ``opened_store``.

The types a front end needs (``Config``, ``ApiToken``, ``Pipeline``, ``PluginManager``) are re-exported here, so front ends
import them from this service and never from the engine.
"""
from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

from socialcrm.core.engine.config import ApiToken, Config
from socialcrm.core.engine.pipeline import ListenStats, Pipeline
from socialcrm.core.engine.plugins import PluginManager, default_manager
from socialcrm.core.engine.stores import open_store
from socialcrm.core.sdk.model import Mention, Page
from socialcrm.core.store import Store, WriteConflict, refuse_in_memory

log = logging.getLogger(__name__)

WEBHOOK_CURSOR_PREFIX = "webhook:"
"""Where an inbound webhook's last delivery is kept among the sources' states (``webhook:NAME``)."""


class UnknownSource(LookupError):
    """No ``[sources.NAME]`` block names this source."""


class SourceDisabled(RuntimeError):
    """The source is configured with ``enabled = false``."""


class OutboxFull(RuntimeError):
    """The outbox holds ``store.max_pending`` undelivered rows: nothing more is taken in for now."""


@dataclass
class Runtime:
    """One config's socialcrm: its plugins and its pipeline (with the store). The locks keep polls asked
    for and webhook pages taken in one at a time within this process."""

    config: Config
    plugins: PluginManager
    pipeline: Pipeline
    poll_lock: threading.Lock = field(default_factory=threading.Lock)
    ingest_lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def open(cls, config: Config, plugins: PluginManager | None = None,
             pipeline: Pipeline | None = None) -> "Runtime":
        """The runtime over ``pipeline``, built from ``config`` with the installed plugins when not given
        (whoever opens it closes it with ``close()``). ``ConfigError`` when the ``[api]`` block lacks the
        secrets the API needs."""
        config.require_api()
        plugins = plugins if plugins is not None else default_manager()
        return cls(config=config, plugins=plugins,
                   pipeline=pipeline if pipeline is not None else Pipeline(config, plugins))

    @property
    def store(self) -> Store:
        """The pipeline's store."""
        return self.pipeline.store

    @property
    def enabled_sinks(self) -> set[str]:
        """The names of the sinks that are enabled (the only ones a record can be routed to)."""
        return set(self.pipeline.deliverer.sinks)

    def outbox_full(self) -> bool:
        """Whether the outbox holds ``store.max_pending`` undelivered rows (listening is paused)."""
        return self.store.open_deliveries() >= self.config.max_pending

    def poll_now(self, name: str, scheduled: bool) -> dict[str, Any]:
        """Poll source ``name`` now, or, when ``scheduled`` (a ``run_forever`` loop owns the sources), have
        that loop poll it on its next tick. ``UnknownSource``/``SourceDisabled`` when it cannot be polled."""
        configured = {sc.instance for sc in self.config.sources}
        if name not in configured:
            raise UnknownSource(f"no source named {name!r} (sources: {', '.join(sorted(configured)) or 'none'})")
        if name not in self.pipeline.sources:
            raise SourceDisabled(f"source {name!r} is disabled (enabled = false in [sources.{name}])")
        if scheduled:
            self.pipeline.request_poll(name)
            return {"source": name, "status": "scheduled", "fetched": None, "records": None, "duplicates": None,
                    "error": None}
        stats = ListenStats()
        with self.poll_lock:
            self.pipeline.listen_source(name, self.pipeline.sources[name], stats)
        error = stats.errors.get(name) or ("listening paused: the outbox is full" if stats.paused else None)
        return {"source": name, "status": "done", "fetched": stats.fetched, "records": stats.records,
                "duplicates": stats.duplicates, "error": error}

    def ingest_pushed(self, name: str, mentions: Sequence[Mention]) -> dict[str, int]:
        """Take in mentions pushed to webhook ``name`` through the same capture -> learn -> route -> store
        path as a polled page (a page sent twice makes one record). ``OutboxFull`` when the outbox is full."""
        if self.outbox_full():
            raise OutboxFull("the outbox is full (store.max_pending): send again later")
        stats = ListenStats()
        with self.ingest_lock:
            try:
                self.pipeline.ingest(name, Page(list(mentions), None), stats, cursor_key=WEBHOOK_CURSOR_PREFIX + name)
            except WriteConflict:
                # Another process stored the same mentions between our check and our write: read again,
                # and they count as duplicates.
                stats = ListenStats()
                self.pipeline.ingest(name, Page(list(mentions), None), stats, cursor_key=WEBHOOK_CURSOR_PREFIX + name)
        log.info("webhook %s: %d mentions, %d new records, %d duplicates", name, len(mentions), stats.records,
                 stats.duplicates)
        return {"received": len(mentions), "new_records": stats.records, "duplicates": stats.duplicates}

    def close(self) -> None:
        """Close the pipeline: its plugins and its store."""
        self.pipeline.close()


@contextmanager
def opened_store(config: Config, *, read_only: bool = False) -> Iterator[Store]:
    """The config's store, open for the ``with`` block (a CLI command that needs no plugins uses it).
    ``read_only`` (status, records, dlq list): a database that is not there is a ``StoreError``, never
    created at a mistyped path."""
    store = open_store(config, read_only=read_only)
    try:
        yield store
    finally:
        store.close()


def require_lasting_store(config: Config, command: str) -> None:
    """A ``StoreError`` when ``command`` (run, serve, backfill: what keeps records and deliveries) is
    configured with an in-memory store, which would lose them all when it exits."""
    refuse_in_memory(config.store_url, command)


__all__ = ["ApiToken", "Config", "OutboxFull", "Pipeline", "PluginManager", "Runtime", "SourceDisabled", "UnknownSource",
           "WEBHOOK_CURSOR_PREFIX", "opened_store", "require_lasting_store"]
