"""The store: mentions, records, cursors and the delivery outbox, on SQLAlchemy Core.

One schema (``schema.py``) serves SQLite (the embedded default, in WAL mode) and PostgreSQL; Alembic's
migrations (``migrations/``, run by ``migrating``) own it: a new database is made at head, an older one
is upgraded by ``socialcrm db upgrade``, and opening one that is behind is refused. The
store is split by concern, each module over that schema: ``outbox`` (claims, outcomes, dead letters),
``records`` (the read queries), ``corrections`` (feedback), ``privacy`` (erasure, do-not-engage),
``sinkstate`` (breakers, call counts), ``cursors``, ``quarantine`` (unreadable input) and ``audit``.
``Store`` composes them into the one object callers hold. A page of mentions, the records learned from
it, their outbox rows, its unreadable items and the source's next cursor are written in ONE transaction
(``Store.page``), so a crash either keeps all of a page or none of it. Nothing outside this package touches the database.
"""
from __future__ import annotations

import functools
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from sqlalchemy.exc import IntegrityError

from socialcrm.core.store.conversations import ConversationState
from socialcrm.core.store.corrections import Corrections
from socialcrm.core.store.cursors import Cursors
from socialcrm.core.store.incidents import GroupCache
from socialcrm.core.store.database import Database, create_store_engine
from socialcrm.core.store.migrating import (MigrationFailed, Revision, SchemaState, StoreBehind, Upgrade, history,
                                            ready, schema_state, upgrade_command, upgrade_store)
from socialcrm.core.store.opening import SCHEMA_RULE, StoreError, StoreMissing, is_in_memory, location, \
    refuse_in_memory, schema_problem
from socialcrm.core.store.outbox import Claimed, Outbox, Outcome
from socialcrm.core.store.privacy import Privacy
from socialcrm.core.store.quarantine import Quarantine
from socialcrm.core.store.records import Records
from socialcrm.core.store.sinkstate import SinkStates
from socialcrm.core.store.transaction import Transaction, WriteConflict


def _delegate(concern: str, method: Callable[..., Any]) -> Callable[..., Any]:
    """``Store.<name>``: the concern's method of that name, with its signature and docstring."""

    @functools.wraps(method)
    def forward(self: "Store", *args: Any, **kwargs: Any) -> Any:
        return method(getattr(self, concern), *args, **kwargs)

    return forward


class Store:
    """All reads and writes of socialcrm's data; nothing else touches the database.

    The concerns are attributes (``store.outbox``, ``store.records``, ``store.cursors``,
    ``store.corrections``, ``store.privacy``, ``store.sinks``, ``store.quarantine``), and their methods are
    the store's own too (``store.claim`` is ``store.outbox.claim``), so callers keep one object and one name
    per query.
    """

    def __init__(self, url: str, *, read_only: bool = False, schema: str | None = None, upgrade: bool = False,
                 config_file: str | Path | None = None):
        """Open the store at ``url`` (its tables in PostgreSQL schema ``schema``, when given). A new, empty
        database is created at the schema's head unless ``read_only`` (then it is refused, never created).
        A database whose schema is behind, or that predates migrations, is refused with a ``StoreBehind``
        naming ``socialcrm db upgrade --config CONFIG_FILE``, unless ``upgrade`` (the embedded demo): then
        it is upgraded. Any problem opening it is a ``StoreError`` naming the URL, the cause and the fix."""
        self.db = Database(url, read_only=read_only, schema=schema)
        try:
            ready(self.db, read_only=read_only, upgrade=upgrade, config_file=config_file)
        except BaseException:
            self.db.close()
            raise
        self.outbox = Outbox(self.db)
        self.records = Records(self.db)
        self.cursors = Cursors(self.db)
        self.corrections = Corrections(self.db)
        self.privacy = Privacy(self.db)
        self.sinks = SinkStates(self.db)
        self.quarantine = Quarantine(self.db)
        self._incident_groups = GroupCache()  # decoded incident groups between pages (see store.incidents)

    @property
    def url(self) -> str:
        """The database URL the store was opened on."""
        return self.db.url

    @property
    def backend(self) -> str:
        """The database it runs on: ``sqlite`` or ``postgresql``."""
        return self.db.engine.dialect.name

    def close(self) -> None:
        """Release the connection pool."""
        self.db.close()

    @contextmanager
    def page(self) -> Iterator[Transaction]:
        """One page's unit of work (``with store.page() as tx``): what ``tx`` reads and writes is
        committed together when the block ends, or not at all when it raises. Raises
        ``WriteConflict`` when another writer stored some of the same rows first."""
        tx = None
        try:
            with self.db.begin() as conn:
                tx = Transaction(self.db, conn, self._incident_groups)
                yield tx
        except BaseException as exc:
            if tx is not None:
                tx.rolled_back()
            if isinstance(exc, IntegrityError):
                raise WriteConflict(f"another writer stored some of this page's rows first: {exc.orig}") from exc
            raise
        tx.committed()

    # listen and capture: where sources left off
    get_cursor = _delegate("cursors", Cursors.get_cursor)
    note_poll = _delegate("cursors", Cursors.note_poll)
    source_states = _delegate("cursors", Cursors.source_states)

    # engage: the outbox and its dead letters
    open_deliveries = _delegate("outbox", Outbox.open_deliveries)
    claim = _delegate("outbox", Outbox.claim)
    complete = _delegate("outbox", Outbox.complete)
    release = _delegate("outbox", Outbox.release)
    delivery_counts = _delegate("outbox", Outbox.delivery_counts)
    dead_letters = _delegate("outbox", Outbox.dead_letters)
    dead_letter = _delegate("outbox", Outbox.dead_letter)
    replay_dead = _delegate("outbox", Outbox.replay_dead)

    # engage: sink state (circuit breaker, pauses) and daily call counts
    sink_states = _delegate("sinks", SinkStates.sink_states)
    sink_state = _delegate("sinks", SinkStates.sink_state)
    hold_sink = _delegate("sinks", SinkStates.hold_sink)
    change_sink_state = _delegate("sinks", SinkStates.change_sink_state)
    add_calls = _delegate("sinks", SinkStates.add_calls)
    calls_on = _delegate("sinks", SinkStates.calls_on)

    # reading records
    iter_records = _delegate("records", Records.iter_records)
    get_record = _delegate("records", Records.get_record)
    conversation = _delegate("records", Records.conversation)
    summary = _delegate("records", Records.summary)
    counts = _delegate("records", Records.counts)
    records_page = _delegate("records", Records.records_page)
    record_history = _delegate("records", Records.record_history)
    record_counts = _delegate("records", Records.record_counts)
    record_contents = _delegate("records", Records.record_contents)
    records_by_type = _delegate("records", Records.records_by_type)
    unrouted_count = _delegate("records", Records.unrouted_count)

    # unreadable input: the quarantine
    quarantined = _delegate("quarantine", Quarantine.quarantined)
    quarantined_item = _delegate("quarantine", Quarantine.quarantined_item)
    quarantine_count = _delegate("quarantine", Quarantine.quarantine_count)
    still_unreadable = _delegate("quarantine", Quarantine.still_unreadable)

    # people's corrections
    apply_feedback = _delegate("corrections", Corrections.apply_feedback)
    latest_corrections = _delegate("corrections", Corrections.latest_corrections)

    # privacy: erasure and do-not-engage
    erase_author = _delegate("privacy", Privacy.erase_author)
    add_do_not_engage = _delegate("privacy", Privacy.add_do_not_engage)
    remove_do_not_engage = _delegate("privacy", Privacy.remove_do_not_engage)
    do_not_engage_entries = _delegate("privacy", Privacy.do_not_engage_entries)


__all__ = ["Claimed", "ConversationState", "MigrationFailed", "Outcome", "Revision", "SCHEMA_RULE", "SchemaState",
           "Store", "StoreBehind", "StoreError", "StoreMissing", "Transaction", "Upgrade", "WriteConflict",
           "create_store_engine", "history", "is_in_memory", "location", "refuse_in_memory", "schema_problem",
           "schema_state", "upgrade_command", "upgrade_store"]
