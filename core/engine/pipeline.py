"""The workflow, listen -> capture -> learn -> engage, in-process over the store.

Each stage is a plain function over a batch (``capture``, ``Learner.learn``, ``route``,
``Deliverer.deliver_due``); ``Pipeline`` wires them to the configured plugins and the store.
"""
from __future__ import annotations

import gc
import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Sequence

from socialcrm.core.engine.capture import capture, count_stored_repeats, fingerprint
from socialcrm.core.engine.conversations import brand_reply_records, conversation_keys, follow
from socialcrm.core.engine.donotengage import stored_keys
from socialcrm.core.engine.incidents import Signatures, group_incidents, incident_record
from socialcrm.core.engine.config import Config
from socialcrm.core.sdk.connector import Sink, Source
from socialcrm.core.engine.delivery import Deliverer, DeliveryStats
from socialcrm.core.sdk.errors import AuthError, ConfigError, FatalError, PluginError, RetriableError
from socialcrm.core.engine.learn import Learner
from socialcrm.core.sdk.model import Mention, Page, Record, SkippedItem
from socialcrm.core.engine.plugins import PluginManager
from socialcrm.core.engine.routing import route, unrouted
from socialcrm.core.engine.stores import open_store
from socialcrm.core.store import ConversationState, Store, Transaction

log = logging.getLogger(__name__)


@dataclass
class ListenStats:
    """What listening did, summed over sources."""

    pages: int = 0
    fetched: int = 0
    stored: int = 0
    records: int = 0
    queued: int = 0
    duplicates: int = 0
    reposts: int = 0
    own_posts: int = 0
    brand_replies: int = 0  # the brand's posts that answered a conversation
    unreadable: int = 0
    #: Records no sink receives although they are not noise (see ``routing.unrouted``).
    unrouted: int = 0
    #: Incidents opened: waves of near-identical complaints grouped into one incident record.
    incidents: int = 0
    by_type: Counter = field(default_factory=Counter)
    errors: dict[str, str] = field(default_factory=dict)
    paused: bool = False


class Pipeline:
    """The configured sources, classifier, routes and sinks over one store."""

    def __init__(self, config: Config, plugins: PluginManager, store: Store | None = None):
        _freeze_startup_objects()
        self.config = config
        self.plugins = plugins
        self.store = store or open_store(config)
        source_classes = plugins.sources()
        sink_classes = plugins.sinks()
        self.sources: dict[str, Source] = {}
        self.poll_intervals: dict[str, float] = {}
        for sc in config.sources:
            if sc.enabled:
                self.sources[sc.instance] = source_classes[sc.plugin].cls(sc.options, config.context(sc.instance))
                self.poll_intervals[sc.instance] = sc.poll_interval
        sinks: dict[str, tuple[Sink, Any]] = {}
        for kc in config.sinks:
            if kc.enabled:
                sinks[kc.instance] = (sink_classes[kc.plugin].cls(kc.options, config.context(kc.instance)), kc)
        self.deliverer = Deliverer(self.store, sinks)
        self.enabled_sinks = set(self.deliverer.sinks)
        self.learner = Learner(config, plugins)
        self.incident_signatures = Signatures()  # the incident groups' signatures, between pages
        self.stop_event = threading.Event()
        self.poll_requests: set[str] = set()  # sources to poll on run_forever's next tick (the API asks)

    # --- listen -> capture -> learn -> store ---

    def listen(self, only: str | None = None, on_page: Callable[[str, Page], None] | None = None) -> ListenStats:
        """Fetch every enabled source (or only one) from its stored cursor, page by page."""
        stats = ListenStats()
        for name, source in self.sources.items():
            if only and name != only:
                continue
            self.listen_source(name, source, stats, on_page)
            if stats.paused:
                break
        return stats

    def listen_source(self, name: str, source: Source, stats: ListenStats,
                      on_page: Callable[[str, Page], None] | None = None) -> None:
        """Fetch one source until it has nothing new, the outbox is full, or it fails."""
        if self._outbox_full():  # a full outbox takes no further page, even the first of a poll
            stats.paused = True
            return
        cursor = self.store.get_cursor(name)
        try:
            for page in source.fetch(cursor):
                self.ingest(name, page, stats)
                if on_page:
                    on_page(name, page)
                if self.stop_event.is_set():
                    break
                if self._outbox_full():
                    stats.paused = True
                    break
        except AuthError as exc:
            stats.errors[name] = f"authentication failed: {exc}"
            log.error("source %s stopped: authentication failed: %s (the other sources go on)", name, exc)
            self.store.note_poll(name, stats.errors[name])
        except RetriableError as exc:
            stats.errors[name] = f"temporary failure: {exc}"
            log.warning("source %s: temporary failure, will try again next poll: %s", name, exc)
            self.store.note_poll(name, stats.errors[name])
        except PluginError:
            raise
        except (FatalError, ConfigError, OSError) as exc:
            # An operating matter (a refused request, a missing or unreadable file): said in one line
            # that names it, without a traceback; the other sources go on.
            stats.errors[name] = f"{type(exc).__name__}: {exc}"
            log.error("source %s failed: %s (fix it, or its config block [sources.%s]; the other sources go on)",
                      name, exc, name)
            self.store.note_poll(name, stats.errors[name])
        except Exception as exc:  # a plugin bug: its traceback is what its author needs
            stats.errors[name] = f"{type(exc).__name__}: {exc}"
            log.exception("source %s failed", name)
            self.store.note_poll(name, stats.errors[name])

    def _outbox_full(self) -> bool:
        open_rows = self.store.open_deliveries()
        if open_rows >= self.config.max_pending:
            log.warning("outbox holds %d undelivered rows (store.max_pending = %d): listening paused "
                        "until the sinks catch up", open_rows, self.config.max_pending)
            return True
        return False

    def ingest(self, source: str, page: Page, stats: ListenStats | None = None,
               cursor_key: str | None = None, store_cursor: bool = True,
               replayed: dict[int, str] | None = None) -> None:
        """Capture, learn and route one page, then store it with its cursor in one transaction.

        The cursor is stored under ``cursor_key`` when given (a backfill keeps its own, apart from
        the source's live cursor), else under the source's name; not at all when ``store_cursor`` is
        False. The page's unreadable items (and mentions with no text to read) are quarantined in the
        same transaction; ``replayed`` marks quarantined items this page reads at last.
        """
        stats = stats if stats is not None else ListenStats()
        readable, skipped = unreadable_items(page)
        for mention in readable:
            mention.source = source
        for problem in skipped:
            log.warning("source %s: quarantined an unreadable item: %s", source, problem)
        with self.store.page() as tx:
            seen_mentions, seen_records = tx.known([m.id for m in readable], [m.canonical_id for m in readable])
            captured = capture(readable, seen_mentions, seen_records, self.config.brand)
            repeats = count_stored_repeats(tx, [(fingerprint(m.text), f"{m.network}:{m.author.id or m.author.handle}")
                                                for m in captured.to_learn])
            followed = follow(captured.to_learn, captured.brand_posts,
                              tx.conversations(conversation_keys(captured.to_learn, captured.brand_posts)),
                              self.config.privacy.hash_salt)
            records = self.learner.learn(captured.to_learn, repeats, followed.followups)
            opened = group_incidents(tx, records, self.config.incidents, self.config.brand,
                                     self.incident_signatures)
            route(records, self.config.routes, self.enabled_sinks, self.config.privacy,
                  stored_keys(tx, records, self.config.privacy), self.config.routing.unmatched)
            incidents = [incident_record(group, members) for group, members in opened]
            comments = self._brand_comments(tx, followed.answers, records)
            tx.save_conversations(followed.changed.values())
            # An incident is saved before its members, so its outbox rows come first.
            queued = tx.save_page((cursor_key or source) if store_cursor else None, page.cursor, captured.new,
                                  [*incidents, *records, *comments], captured.reposts, skipped=skipped,
                                  skipped_from=source, replayed=replayed)
        stats.pages += 1
        stats.fetched += len(page.mentions)
        stats.stored += len(captured.new)
        stats.records += len(records)
        stats.queued += queued
        stats.duplicates += captured.duplicates
        stats.reposts += sum(captured.reposts.values())
        stats.own_posts += captured.own_posts
        stats.brand_replies += len(followed.answers)
        stats.unreadable += len(skipped)
        stats.unrouted += sum(1 for r in records if unrouted(r))
        stats.incidents += len(incidents)
        stats.by_type.update(r.type for r in records)

    def _brand_comments(self, tx: Transaction, answers: Sequence[tuple[Mention, ConversationState]],
                        records: list[Record]) -> list[Record]:
        """With ``[conversations] brand_replies = "comment"``, the brand's replies as ``by_brand`` records
        for the sinks their conversation's first record went to (this page's, else the stored one's)."""
        if self.config.conversations.brand_replies != "comment" or not answers:
            return []
        routes = {r.id: r.route for r in records}
        routes.update(tx.routes_of({state.first_record_id for _, state in answers} - set(routes)))
        return brand_reply_records(answers, routes, self.enabled_sinks)

    # --- engage ---

    def deliver(self) -> DeliveryStats:
        """Deliver everything that is due now."""
        return self.deliverer.deliver_due()

    def run_once(self, on_page: Callable[[str, Page], None] | None = None) -> tuple[ListenStats, DeliveryStats]:
        """Listen to every source until it has nothing new, then deliver everything due.

        Sources are told this is their final pass (``PluginContext.final_pass``): nothing is left
        waiting for a poll that will not come."""
        for source in self.sources.values():
            source.context.final_pass = True
        listened = self.listen(on_page=on_page)
        delivered = self.deliver()
        while listened.paused and delivered.total() and not self.stop_event.is_set():
            more = self.listen(on_page=on_page)  # the outbox drained: go on listening
            _merge(listened, more)
            listened.paused = more.paused
            step = self.deliver()
            for name in ("delivered", "retried", "dead", "calls"):
                getattr(delivered, name).update(getattr(step, name))
            if not step.total():
                break
        return listened, delivered

    def request_poll(self, name: str) -> None:
        """Have ``run_forever`` poll source ``name`` on its next tick rather than at its interval."""
        self.poll_requests.add(name)

    def run_forever(self, tick: float = 1.0) -> None:
        """Poll each source on its interval and deliver between polls, until ``stop_event`` is set."""
        next_poll = {name: 0.0 for name in self.sources}
        while not self.stop_event.is_set():
            now = time.time()
            stats = ListenStats()
            for name, source in self.sources.items():
                if (next_poll[name] <= now or name in self.poll_requests) and not self._outbox_full():
                    self.poll_requests.discard(name)
                    polled = ListenStats()
                    self.listen_source(name, source, polled)
                    if name not in polled.errors:  # a failed poll has logged its own line
                        log.info("polled %s: %d mentions, %d new records, %d duplicates", name, polled.fetched,
                                 polled.records, polled.duplicates)
                    _merge(stats, polled)
                    next_poll[name] = time.time() + self.poll_intervals[name]
            if stats.records:
                log.info("listened: %d new records from %d mentions", stats.records, stats.fetched)
            self.deliver()
            self.stop_event.wait(tick)

    def close(self) -> None:
        """Close every plugin instance and the store."""
        for source in self.sources.values():
            source.close()
        for sink, _ in self.deliverer.sinks.values():
            sink.close()
        self.store.close()


_frozen = False


def _freeze_startup_objects() -> None:
    """Move what is alive when the first pipeline starts (modules, plugins, the config, the lexicons) out
    of the garbage collector's sight, once per process: it lives as long as the process, and each full
    collection scanning it again cost about a twentieth of the workflow's time in bench/pipeline.py.
    Garbage is collected first, so none is kept for good; objects made later are collected as usual."""
    global _frozen
    if not _frozen:
        _frozen = True
        gc.collect()
        gc.freeze()


def unreadable_items(page: Page) -> tuple[list[Mention], list[SkippedItem]]:
    """The page's mentions there is something to read in, and its unreadable items: those the source
    reported, then mentions with an empty ``text`` (a repost needs none: it counts for its original)."""
    readable, skipped = [], page.skipped()
    for mention in page.mentions:
        if mention.text.strip() or mention.repost_of:
            readable.append(mention)
        else:
            skipped.append(SkippedItem("text: empty, nothing to read", mention.id, mention.raw))
    return readable, skipped


#: ListenStats' counters, summed by ``_merge``: every int field, so a counter added later is summed too.
_COUNTERS = tuple(f.name for f in fields(ListenStats) if f.type == "int")


def _merge(into: ListenStats, more: ListenStats) -> None:
    for name in _COUNTERS:
        setattr(into, name, getattr(into, name) + getattr(more, name))
    into.by_type.update(more.by_type)
    into.errors.update(more.errors)
