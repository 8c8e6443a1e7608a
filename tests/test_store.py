"""The store on SQLite and on the real PostgreSQL server: pages, the outbox, claims and leases."""
import json
import threading
from datetime import datetime, timezone

import pytest
from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text, select

from socialcrm.core.sdk.model import Author, Record, mention_from_json
from socialcrm.core.engine.capture import count_stored_repeats
from socialcrm.core.store import Outcome, Store, WriteConflict, testrows, upgrade_store
from socialcrm.core.store.schema import audit

NOW = 1_800_000_000.0


def make_records(n, sinks=("desk",), start=0):
    return [Record(id=f"x:{i}", network="x", content=f"text {i}", created_at=datetime(2026, 10, 1, tzinfo=timezone.utc),
                   route=list(sinks), priority="P2" if i % 2 else "P3") for i in range(start, start + n)]


def save(store, records, cursor=None, mentions=()):
    with store.page() as tx:
        return tx.save_page("src", cursor, list(mentions), records, {}, now=NOW)


def test_a_page_and_its_cursor_are_one_transaction(store, mention_json):
    mention = mention_from_json(mention_json("1", "hi"))
    with pytest.raises(RuntimeError):
        with store.page() as tx:
            tx.save_page("src", {"offset": 10}, [mention], make_records(1), {}, now=NOW)
            raise RuntimeError("crash before commit")
    assert store.get_cursor("src") is None
    assert store.counts() == {"mentions": 0, "records": 0, "outbox": 0}
    assert save(store, make_records(1), {"offset": 10}, [mention]) == 1
    assert store.get_cursor("src") == {"offset": 10}
    assert store.counts() == {"mentions": 1, "records": 1, "outbox": 1}


def test_claim_marks_rows_in_flight_and_complete_records_outcomes(store):
    save(store, make_records(5, sinks=("desk", "crm")))
    token, claimed = store.claim("desk", 3, lease_seconds=60, now=NOW)
    assert len(claimed) == 3
    assert [c.record.priority for c in claimed] == ["P2", "P2", "P3"]  # higher priority first
    assert store.claim("desk", 10, 60, now=NOW)[1].__len__() == 2  # the other two only
    outcomes = [Outcome(claimed[0].outbox_id, "delivered", external_id="500A"),
                Outcome(claimed[1].outbox_id, "retry", error="503", next_attempt_at=NOW + 30),
                Outcome(claimed[2].outbox_id, "dead", error="rejected: bad")]
    assert store.complete(token, outcomes, now=NOW) == 3
    counts = {row["sink"]: row for row in store.delivery_counts(now=NOW + 5)}
    assert counts["desk"]["delivered"] == 1 and counts["desk"]["retry"] == 1 and counts["desk"]["dead"] == 1
    assert counts["crm"]["pending"] == 5 and counts["crm"]["oldest_pending_s"] == 5
    assert store.claim("desk", 10, 60, now=NOW + 10)[1] == []  # the retry is not due yet
    assert len(store.claim("desk", 10, 60, now=NOW + 31)[1]) == 1


def test_an_expired_lease_is_claimed_again_and_the_old_claim_cannot_write(store):
    save(store, make_records(2))
    old_token, first = store.claim("desk", 10, lease_seconds=60, now=NOW)
    assert store.claim("desk", 10, 60, now=NOW + 59)[1] == []  # still leased
    new_token, again = store.claim("desk", 10, 60, now=NOW + 61)  # the first worker died
    assert [c.outbox_id for c in again] == [c.outbox_id for c in first]
    stale = store.complete(old_token, [Outcome(c.outbox_id, "dead", error="late") for c in first], now=NOW + 62)
    assert stale == 0
    assert store.complete(new_token, [Outcome(c.outbox_id, "delivered") for c in again], now=NOW + 62) == 2


def test_concurrent_delivery_loops_never_claim_the_same_row(store_url):
    setup = Store(store_url)
    save(setup, make_records(400))
    claimed_ids: list[list[int]] = [[], [], [], []]

    def loop(slot):
        store = Store(store_url)
        while True:
            token, rows = store.claim("desk", 7, 60, now=NOW)
            if not rows:
                break
            claimed_ids[slot].extend(r.outbox_id for r in rows)
            store.complete(token, [Outcome(r.outbox_id, "delivered") for r in rows], now=NOW)
        store.close()

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [i for ids in claimed_ids for i in ids]
    assert len(every) == len(set(every)) == 400
    assert setup.delivery_counts()[0]["delivered"] == 400
    setup.close()


def test_reposts_update_the_stored_record(store):
    save(store, make_records(1))
    with store.page() as tx:
        tx.save_page("src", None, [], [], {"x:0": 3}, now=NOW)
    assert store.get_record("x:0").reposts == 3
    assert store.get_record("x:404") is None


def test_summary_and_filters(store):
    records = make_records(3)
    records[0].type = "lead"
    save(store, records)
    summary = store.summary()
    assert summary["type"] == {"lead": 1, "other": 2}
    assert summary["route"] == {"desk": 3}
    assert [r.id for r in store.iter_records(type_="lead")] == ["x:0"]
    assert list(store.iter_records(since=datetime(2027, 1, 1, tzinfo=timezone.utc))) == []


def test_claims_and_the_backlog_count_read_only_open_rows_through_their_index(tmp_path):
    """The outbox keeps every delivered row as history: a claim that scanned it all would slow down
    with every record ever delivered. SQLite must plan both hot queries on the partial index."""
    from sqlalchemy import event
    store = Store(f"sqlite:///{tmp_path / 'plan.db'}")
    plans = {}

    @event.listens_for(testrows.engine(store), "before_cursor_execute")
    def explain(conn, cursor, statement, parameters, context, executemany):
        if "FROM outbox" in statement and not executemany:
            rows = cursor.connection.execute("EXPLAIN QUERY PLAN " + statement, parameters).fetchall()
            plans[" ".join(statement.split()[:2])] = " / ".join(row[3] for row in rows)

    save(store, make_records(3))
    store.claim("desk", 10, lease_seconds=60, now=NOW)
    store.open_deliveries()
    store.close()
    claim_plan = plans["UPDATE outbox"]
    assert "ix_outbox_open" in claim_plan and "TEMP B-TREE" not in claim_plan and "SCAN outbox" not in claim_plan
    assert "ix_outbox_open" in plans["SELECT count(*)"]


def test_a_saved_page_reads_back_exactly(store, mention_json):
    """Pages are written in bulk, around the ORM's per-row processing: what comes back must be what went in."""
    mention = mention_from_json(mention_json("7", "the router blinks red"))
    record = make_records(1)[0]
    record.fraud, record.team = True, "billing"
    save(store, [record], mentions=[mention])
    stored = store.get_record(record.id)
    assert stored.to_dict() == record.to_dict()
    assert [r.id for r in store.iter_records(since=datetime(2026, 9, 30, tzinfo=timezone.utc))] == [record.id]
    assert list(store.iter_records(since=datetime(2026, 10, 2, tzinfo=timezone.utc))) == []
    assert store.summary()["type"] == {record.type: 1}


def test_near_identical_posts_are_counted_across_pages(store):
    """The fingerprint table remembers who posted what between pages (first page inserts, later ones update):
    the store keeps the counts, the engine's capture stage counts."""
    with store.page() as tx:
        assert count_stored_repeats(tx, [("fp-a", "x:u1"), ("fp-a", "x:u2"), (None, "x:u3")], now=NOW) == [0, 1, 0]
    with store.page() as tx:
        assert count_stored_repeats(tx, [("fp-a", "x:u3"), ("fp-a", "x:u1"), ("fp-b", "x:u1")], now=NOW + 1) == [2, 2, 0]
    with store.page() as tx:
        assert count_stored_repeats(tx, [("fp-a", "x:u4"), ("fp-b", "x:u2")], now=NOW + 2) == [3, 1]


def _dead_letter(store, sinks=("desk",)):
    """One record by @carol whose delivery to the first sink went dead; returns its outbox id."""
    records = make_records(1, sinks=sinks)
    records[0].author = Author(id="7", handle="carol")
    save(store, records)
    token, [claimed] = store.claim(sinks[0], 1, lease_seconds=60, now=NOW)
    store.complete(token, [Outcome(claimed.outbox_id, "dead", error="rejected: 422 title required")], now=NOW)
    return claimed.outbox_id


def test_audit_entries_name_what_they_are_about_and_erasure_redacts_them(store):
    """An audit entry's record, outbox row and sink are columns (the record a foreign key), so history is
    found by index and erasing the record strips the entry before the record goes (PostgreSQL checks)."""
    outbox_id = _dead_letter(store)
    assert store.replay_dead("ops", ids=[outbox_id], now=NOW + 1) == [outbox_id]
    [entry] = testrows.rows(store, select(audit))
    assert (entry["record_id"], entry["outbox_id"], entry["sink"]) == ("x:0", outbox_id, "desk")
    [shown] = store.dead_letter(outbox_id)["audit"]
    assert shown["action"] == "dlq.replay" and shown["detail"]["error"] == "rejected: 422 title required"
    counts = store.erase_author("x", "@Carol", "dpo", "key-of-carol", now=NOW + 2)
    assert counts["records"] == 1 and counts["audit_redacted"] == 1
    redacted, erasure = testrows.rows(store, select(audit).order_by(audit.c.id))
    assert (redacted["record_id"], redacted["outbox_id"], redacted["sink"]) == (None, None, None)
    assert json.loads(redacted["detail"]) == {"redacted": "the author's data was erased"}
    assert erasure["action"] == "author.erase" and erasure["author_key"] == "key-of-carol"


def test_an_old_layout_database_opens_with_its_audit_history_found(store_url):
    """A database whose audit table predates the subject columns gets them from `socialcrm db upgrade`, filled
    from the detail."""
    store = Store(store_url)
    outbox_id = _dead_letter(store)
    engine = testrows.engine(store)
    testrows.execute_sql(store, "DROP TABLE socialcrm_alembic_version")  # made before migrations
    audit.drop(engine)
    old = Table("audit", MetaData(), Column("id", Integer, primary_key=True, autoincrement=True),
                Column("at", Float, nullable=False), Column("actor", String(255), nullable=False),
                Column("action", String(64), nullable=False), Column("detail", Text))
    old.create(engine)
    with engine.begin() as conn:
        conn.execute(old.insert(), [
            {"at": NOW, "actor": "ops", "action": "dlq.replay", "detail": json.dumps(
                {"outbox_id": outbox_id, "sink": "desk", "record_id": "x:0", "attempts": 1, "error": "gave up"})},
            {"at": NOW, "actor": "ops", "action": "dlq.replay", "detail": json.dumps(
                {"outbox_id": 999, "sink": "desk", "record_id": "x:erased", "attempts": 1, "error": "gone"})}])
    store.close()
    upgrade_store(store_url)
    reopened = Store(store_url)
    try:
        [shown] = reopened.dead_letter(outbox_id)["audit"]
        assert shown["actor"] == "ops" and shown["detail"]["error"] == "gave up"
        rows = testrows.tuples(reopened, select(audit.c.record_id, audit.c.outbox_id).order_by(audit.c.id))
        assert rows == [("x:0", outbox_id), (None, 999)]  # a record no longer held is not referenced
        assert reopened.erase_author("x", "carol", "dpo", "key", now=NOW)["audit_redacted"] == 1
    finally:
        reopened.close()


def test_a_page_clashing_with_rows_another_writer_stored_is_a_write_conflict(store, mention_json):
    """Two writers that both read a mention as new: the second page's transaction fails as a whole, saying so."""
    mention = mention_from_json(mention_json("1", "hi"))
    save(store, [], {"offset": 1}, [mention])
    with pytest.raises(WriteConflict, match="another writer stored some of this page's rows first"):
        with store.page() as tx:
            assert tx.known([mention.id], []) == ({mention.id}, set())
            tx.save_page("src", {"offset": 2}, [mention], make_records(1), {}, now=NOW)
    assert store.get_cursor("src") == {"offset": 1} and store.counts()["records"] == 0


def test_records_page_lists_the_unrouted_records(store):
    records = make_records(3)
    records[1].route = []
    save(store, records)
    assert [r.id for r, _ in store.records_page(unrouted=True)] == ["x:1"]
    assert sorted(r.id for r, _ in store.records_page(route="desk")) == ["x:0", "x:2"]


def test_bulk_updates_convert_values_as_sqlalchemy_does(store):
    """Conversations and incident groups are updated through the bulk writer: their times read back as
    the same datetimes (on SQLite its direct path converts them as SQLAlchemy would)."""
    from socialcrm.core.store import ConversationState
    opened = datetime(2026, 10, 1, 8, 20, 33, 120, tzinfo=timezone.utc)
    answered = datetime(2026, 10, 1, 9, 0, tzinfo=timezone.utc)
    state = ConversationState(key="x:1", first_record_id="x:1", opened_at=opened, last_customer_post_at=opened)
    with store.page() as tx:
        tx.save_conversations([state])
    state.first_response_at, state.state = answered, "answered"
    with store.page() as tx:
        tx.save_conversations([state])
    stored = store.conversation("x:1")
    assert (stored.opened_at, stored.first_response_at, stored.state) == (opened, answered, "answered")
    if store.backend == "sqlite":  # the very text SQLAlchemy writes, not the driver's own datetime format
        with store.db.connect() as conn:
            assert conn.exec_driver_sql("SELECT first_response_at FROM conversations").scalar() == \
                "2026-10-01 09:00:00.000000"


@pytest.mark.parametrize("value", [datetime(2026, 10, 1, 8, 20, 33), datetime(2026, 10, 1, 8, 20, 33, 5),
                                   datetime(2026, 10, 1, 8, 20, 33, tzinfo=timezone.utc), datetime(999, 1, 1),
                                   datetime(9999, 12, 31, 23, 59, 59, 999999), datetime(2026, 1, 2).date(), None])
def test_the_bulk_writers_sqlite_datetimes_are_sqlalchemys_text(value):
    from sqlalchemy.dialects import sqlite

    from socialcrm.core.store.bulk import BulkWriter
    from socialcrm.core.store.schema import records
    [(_, fast)] = BulkWriter(sqlite.dialect())._processors(records, ("id", "created_at"))
    assert fast(value) == records.c.created_at.type._cached_bind_processor(sqlite.dialect())(value)
