"""Conversations end to end over the store: follow-ups, the brand's replies, the records they make and
the queries that find them (issue #16, "Conversations, not posts")."""
import json
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from socialcrm import Author, Mention, Page
from socialcrm.core.cli.main import main
from socialcrm.core.engine.config import load_config
from socialcrm.core.engine.pipeline import ListenStats, Pipeline
from socialcrm.core.sdk.errors import ConfigError
from socialcrm.core.store import Store, upgrade_store
from socialcrm.core.store.schema import outbox
from socialcrm.core.store.testrows import execute_sql, tuples

T0 = datetime(2026, 10, 1, 9, tzinfo=timezone.utc)


def said(native_id, text, minutes, handle="kim", reply_to=None, conversation=None, followers=120):
    return Mention(network="x", native_id=native_id, text=text, created_at=T0 + timedelta(minutes=minutes),
                   author=Author(id=f"id-{handle}", handle=handle, followers=followers), reply_to=reply_to,
                   conversation=conversation)


def brand(native_id, text, minutes, reply_to="x:1"):
    return said(native_id, text, minutes, handle="BrightwaveHelp", reply_to=reply_to, conversation="x:1")


def follow_up(native_id, text, minutes, reply_to="x:1"):
    return said(native_id, text, minutes, reply_to=reply_to, conversation="x:1")


OPENING = said("1", "@BrightwaveHelp my internet is down again, third outage this week", 0)


@pytest.fixture
def pipeline(write_config, base_config, plugins):
    def make(extra=""):
        return Pipeline(load_config(write_config(base_config + extra), plugins), plugins)
    made = []
    yield lambda extra="": made.append(make(extra)) or made[-1]
    for p in made:
        p.close()


def ingest(pipeline, *mentions, cursor=1):
    stats = ListenStats()
    pipeline.ingest("file", Page(list(mentions), cursor), stats)
    return stats


def test_follow_ups_join_the_conversation_and_the_third_unanswered_one_is_at_least_p2(pipeline):
    p = pipeline()
    ingest(p, OPENING, follow_up("2", "hello? anyone there", 5), follow_up("3", "still waiting on this", 10))
    ingest(p, follow_up("4", "this is the third time I ask", 15, reply_to="x:3"), cursor=2)
    records = {r.id: r for r in p.store.iter_records(conversation="x:1")}
    assert sorted(records) == ["x:1", "x:2", "x:3", "x:4"]
    assert (records["x:4"].conversation, records["x:4"].parent) == ("x:1", "x:3")
    assert records["x:1"].parent is None
    third = records["x:4"]
    assert third.priority in ("P1", "P2")
    assert any("rule 7 (follow-ups): the 3rd unanswered follow-up in conversation x:1" in r for r in third.reasons)
    state = p.store.conversation("x:1")
    assert (state.state, state.followups, state.first_record_id) == ("open", 3, "x:1")
    assert state.opened_at == T0 and state.last_customer_post_at == T0 + timedelta(minutes=15)
    assert state.first_response_at is None
    assert [r.id for r in p.store.iter_records(parent="x:3")] == ["x:4"]


def test_the_brands_reply_marks_the_conversation_answered_once_and_a_customer_post_reopens_it(pipeline):
    p = pipeline()
    stats = ingest(p, OPENING, follow_up("2", "hello? anyone there", 5),
                   brand("3", "Sorry to hear that, we're on it: DM us your account number", 12))
    assert stats.own_posts == 1 and stats.brand_replies == 1 and stats.records == 2
    state = p.store.conversation("x:1")
    assert (state.state, state.followups, state.first_response_at) == ("answered", 0, T0 + timedelta(minutes=12))
    ingest(p, brand("4", "Any luck after the reset?", 30, reply_to="x:3"), cursor=2)
    state = p.store.conversation("x:1")
    assert state.answered and state.first_response_at == T0 + timedelta(minutes=12)  # the first reply's time stays
    ingest(p, follow_up("5", "no, it is down again", 40, reply_to="x:4"), cursor=3)
    state = p.store.conversation("x:1")
    assert (state.state, state.followups, state.first_response_at) == ("open", 1, T0 + timedelta(minutes=12))
    assert p.store.get_record("x:3") is None  # brand_replies = "ignore" (the default): no record


def test_brand_replies_as_comments_go_to_the_conversations_sinks_marked_by_brand(pipeline):
    p = pipeline('\n[conversations]\nbrand_replies = "comment"\n')
    ingest(p, OPENING)
    ingest(p, brand("3", "Sorry to hear that, we're on it", 12), cursor=2)
    reply = p.store.get_record("x:3")
    assert reply.by_brand is True and reply.route == ["desk"] and reply.conversation == "x:1"
    assert reply.parent == "x:1" and reply.to_dict()["by_brand"] is True
    assert any("agent comment" in r and "brand_replies" in r for r in reply.reasons)
    assert tuples(p.store, select(outbox.c.record_id, outbox.c.sink, outbox.c.priority)
                  .order_by(outbox.c.id)) == [("x:1", "desk", "P2"), ("x:3", "desk", "P4")]
    assert p.store.get_record("x:1").by_brand is False


def test_other_people_joining_the_thread_are_not_the_customers_follow_ups(pipeline):
    p = pipeline()
    ingest(p, OPENING, said("2", "same here in Leeds", 5, handle="lee", reply_to="x:1", conversation="x:1"),
           said("3", "and here", 6, handle="sam", reply_to="x:1", conversation="x:1"),
           said("4", "me too", 7, handle="ash", reply_to="x:1", conversation="x:1"))
    state = p.store.conversation("x:1")
    assert (state.state, state.followups) == ("open", 0)
    assert all("rule 7" not in r for r in p.store.get_record("x:4").reasons)
    assert p.store.get_record("x:4").conversation == "x:1"


def test_a_brand_post_outside_any_conversation_changes_nothing(pipeline):
    p = pipeline('\n[conversations]\nbrand_replies = "comment"\n')
    stats = ingest(p, said("9", "Our new WaveBox is out today", 0, handle="Brightwave"))
    assert stats.own_posts == 1 and stats.brand_replies == 0 and stats.records == 0
    assert p.store.conversation("x:9") is None


def test_brand_replies_setting_is_checked_by_name(write_config, base_config, plugins):
    with pytest.raises(ConfigError, match=r"conversations.*brand_replies"):
        load_config(write_config(base_config + '\n[conversations]\nbrand_replies = "reply"\n'), plugins)
    config = load_config(write_config(base_config + "\n[learning]\nhigh_reach = 5000\n"), plugins)
    assert config.learning.high_reach == 5000 and config.conversations.brand_replies == "ignore"


def test_a_high_reach_complaint_rises_a_level_with_a_reason(pipeline):
    p = pipeline()
    loud = said("1", "Brightwave is the worst company, absolutely useless", 0, followers=98_000)
    quiet = said("2", "Brightwave is the worst company, absolutely useless!!", 1, handle="lee", followers=12)
    ingest(p, loud, quiet)
    loud_record, quiet_record = p.store.get_record("x:1"), p.store.get_record("x:2")
    assert loud_record.type == quiet_record.type == "rant"
    assert (loud_record.priority, quiet_record.priority) == ("P2", "P3")
    [why] = [r for r in loud_record.reasons if r.startswith("priority ")]
    assert "raised to P2 by rule 6 (reach): a complaint from an author with 98,000 followers (high_reach 10,000)" \
        in why


def test_the_api_filters_by_conversation_and_parent_and_shows_the_conversation_state(api):
    ingest(api.pipeline, OPENING, follow_up("2", "hello? anyone there", 5), brand("3", "we're on it", 12),
           said("7", "my WaveBox is broken, please fix", 20, handle="lee"))
    listed = api.client.get("/records?conversation=x:1", headers=api.auth("read"))
    assert listed.status_code == 200, listed.get_json()
    assert sorted(r["id"] for r in listed.get_json()["items"]) == ["x:1", "x:2"]
    by_parent = api.client.get("/records?parent=x:1", headers=api.auth("read")).get_json()
    assert [r["id"] for r in by_parent["items"]] == ["x:2"]
    detail = api.client.get("/records/x:2", headers=api.auth("read")).get_json()
    assert detail["record"]["conversation"] == "x:1" and detail["record"]["parent"] == "x:1"
    assert detail["conversation"]["state"] == "answered"
    assert detail["conversation"]["first_response_at"] == "2026-10-01T09:12:00Z"
    assert detail["conversation"]["first_response_seconds"] == 720
    lone = api.client.get("/records/x:7", headers=api.auth("read")).get_json()
    assert lone["conversation"]["state"] == "open" and lone["conversation"]["first_response_at"] is None


def test_the_records_command_filters_by_conversation(pipeline, write_config, base_config):
    p = pipeline()
    ingest(p, OPENING, follow_up("2", "hello? anyone there", 5), said("7", "my WaveBox is broken", 20, handle="lee"))
    result = CliRunner().invoke(main, ["records", "--json", "--conversation", "x:1",
                                       "--config", str(write_config(base_config))])
    assert result.exit_code == 0, result.output
    assert sorted(json.loads(line)["id"] for line in result.output.splitlines()) == ["x:1", "x:2"]
    result = CliRunner().invoke(main, ["records", "--json", "--parent", "x:1",
                                       "--config", str(write_config(base_config))])
    assert [json.loads(line)["id"] for line in result.output.splitlines()] == ["x:2"]


def test_an_older_database_gets_the_thread_columns_filled_in(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    store = Store(url)
    execute_sql(store, "DROP TABLE socialcrm_alembic_version")  # made before migrations, then
    execute_sql(store, "DROP INDEX ix_records_conversation")
    execute_sql(store, "DROP INDEX ix_records_parent")
    execute_sql(store, "ALTER TABLE records DROP COLUMN conversation")
    execute_sql(store, "ALTER TABLE records DROP COLUMN parent")
    data = {"id": "x:2", "network": "x", "content": "hello?", "created_at": "2026-10-01T09:05:00Z",
            "conversation": "x:1", "parent": "x:1"}
    older = {"id": "x:1", "network": "x", "content": "down again", "created_at": "2026-10-01T09:00:00Z"}
    for row in (data, older):
        execute_sql(store, "INSERT INTO records (id, network, created_at, type, sentiment, priority, mode, action, "
                           "influence, fraud, route, reposts, data, learned_at) VALUES "
                           f"('{row['id']}', 'x', '2026-10-01 09:00:00.000000', 'case', 'negative', 'P2', "
                           f"'reactive', 'open_case', 10, 0, '[]', 0, '{json.dumps(row)}', 0)")
    store.close()
    upgrade_store(url)  # `socialcrm db upgrade`
    upgraded = Store(url)
    assert sorted(r.id for r in upgraded.iter_records(conversation="x:1")) == ["x:1", "x:2"]
    assert [r.id for r in upgraded.iter_records(parent="x:1")] == ["x:2"]
    upgraded.close()


def test_erasing_the_customer_erases_the_conversations_they_opened(pipeline):
    from socialcrm.core.services.erasure import erase_author
    p = pipeline()
    ingest(p, OPENING, follow_up("2", "hello? anyone there", 5), said("7", "my WaveBox is broken", 20, handle="lee"))
    erase_author(p.store, p.config, "x", "@kim", "dpo")
    assert p.store.conversation("x:1") is None and p.store.conversation("x:7") is not None
