"""Follow-ups through the host: the outbox keeps a conversation in order per sink, and the deliverer tells
each sink the object the conversation already has there (``Record.thread_object``)."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import responses

from socialcrm import Delivery, Sink
from socialcrm.core.engine.config import SinkConfig
from socialcrm.core.engine.delivery import Deliverer
from socialcrm.core.sdk.brand import Brand
from socialcrm.core.sdk.connector import PluginContext
from socialcrm.core.sdk.model import Author, Record

T0 = 1_800_000_000.0


class Desk(Sink):
    """A sink that opens one object per new record and adds follow-ups to the object they name."""

    name = "desk"
    max_batch = 10

    def __init__(self, refuse: frozenset[str] = frozenset()):
        super().__init__({}, PluginContext("desk", Brand("B")))
        self.refuse = refuse
        self.batches: list[list[tuple[str, str | None]]] = []
        self.objects: dict[str, list[str]] = {}  # object id -> record ids added to it, in order
        self.reasons: dict[str, list[str]] = {}

    def send(self, records):
        self.batches.append([(r.id, r.thread_object) for r in records])
        out = []
        for r in records:
            self.reasons[r.id] = list(r.reasons)
            if r.id in self.refuse:
                out.append(Delivery.rejected(r.id, "Subject: required"))
            elif r.thread_object:
                self.objects[r.thread_object].append(r.id)
                out.append(Delivery.delivered(r.id, f"comment-{r.id}"))
            else:
                self.objects[f"obj-{r.id}"] = [r.id]
                out.append(Delivery.delivered(r.id, f"obj-{r.id}"))
        return out


def rec(n: int, conversation: int | None = None, priority: str = "P3", handle: str = "amy") -> Record:
    own = f"x:{n}"
    return Record(id=own, network="x", content=f"post {n}", created_at=datetime(2026, 10, 1, tzinfo=timezone.utc),
                  author=Author(id=handle, handle=handle), priority=priority, route=["desk"],
                  conversation=f"x:{conversation}" if conversation else own,
                  parent=f"x:{conversation}" if conversation else None)


def save(store, *records):
    with store.page() as tx:
        tx.save_page("src", None, [], list(records), {}, now=T0)


def deliver(store, sink, batches=None):
    cfg = SinkConfig("desk", "desk", {}, max_batch=10)
    return Deliverer(store, {"desk": (sink, cfg)}, clock=lambda: T0, rng=lambda: 1.0).deliver_due(batches)


def test_a_followup_waits_for_its_conversations_object_then_is_added_to_it(store):
    # The replies are P1 and would be claimed before their P4 root: the outbox holds them back.
    save(store, rec(1, priority="P4"), rec(2, conversation=1, priority="P1"), rec(3, conversation=1, priority="P1"),
         rec(4, priority="P1"))
    token, claimed = store.claim("desk", 10, 60, now=T0)
    assert sorted(c.record.id for c in claimed) == ["x:1", "x:4"], "follow-ups wait while their root is open"
    store.release(token, [c.outbox_id for c in claimed], next_attempt_at=T0)
    sink = Desk()
    deliver(store, sink)
    assert sink.batches[0] == [("x:4", None), ("x:1", None)]
    assert sink.batches[1] == [("x:2", "obj-x:1"), ("x:3", "obj-x:1")]
    assert sink.objects == {"obj-x:1": ["x:1", "x:2", "x:3"], "obj-x:4": ["x:4"]}
    assert store.delivery_counts(now=T0)[0]["delivered"] == 4


def test_a_followup_whose_root_was_rejected_opens_a_new_object_and_says_why(store):
    save(store, rec(1), rec(2, conversation=1))
    sink = Desk(refuse=frozenset({"x:1"}))
    deliver(store, sink)
    assert sink.batches == [[("x:1", None)], [("x:2", None)]]
    assert "obj-x:2" in sink.objects
    assert any("whose first record was rejected by desk" in reason and "opened as a new object" in reason
               for reason in sink.reasons["x:2"])


def test_a_followup_whose_root_was_erased_or_never_routed_here_opens_a_new_object(store):
    save(store, rec(1, handle="gone"), rec(2, conversation=1, handle="stays"))
    store.erase_author("x", "gone", actor="test", author_hash="h", now=T0)
    sink = Desk()
    deliver(store, sink)
    assert sink.batches == [[("x:2", None)]]
    assert any("has no delivery to desk (it was not routed there, or was erased)" in reason
               for reason in sink.reasons["x:2"])


def test_thread_object_is_per_send_and_never_stored():
    reply = rec(2, conversation=1)
    reply.thread_object = "obj-x:1"
    assert reply.is_followup and "thread_object" not in reply.to_dict()
    assert not Record.from_dict({**reply.to_dict(), "thread_object": "stale"}).is_followup
    assert Record.from_dict(reply.to_dict()).by_brand is False


# --- the event sinks: webhook, jsonl and console say what a follow-up is ---

WEBHOOK = "https://crm.example.com/hooks/socialcrm"


def _followup_record() -> Record:
    reply = rec(2, conversation=1)
    reply.thread_object = "crm-obj-1"
    return reply


@responses.activate
def test_the_webhook_names_the_event_and_the_conversation_and_keeps_the_record_id_as_idempotency_key():
    from socialcrm.plugins.sinks.webhook import WebhookSink, WebhookSinkConfig

    responses.post(WEBHOOK, json={"id": "crm-obj-1"})
    responses.post(WEBHOOK, json={"id": "crm-comment-2"})
    sink = WebhookSink(WebhookSinkConfig().load({"url": WEBHOOK, "secret": "s3cret-key", "attempts": 1}),
                       PluginContext("crm", Brand("B")))
    deliveries = sink.send([rec(1), _followup_record()])
    assert [d.external_id for d in deliveries] == ["crm-obj-1", "crm-comment-2"]
    first, second = (json.loads(c.request.body) for c in responses.calls)
    assert (first["event"], first["conversation"], first["thread_object"]) == ("record.created", "x:1", None)
    assert (second["event"], second["conversation"], second["thread_object"]) == (
        "conversation.updated", "x:1", "crm-obj-1")
    assert [c.request.headers["X-Socialcrm-Event"] for c in responses.calls] == ["record.created",
                                                                                 "conversation.updated"]
    assert responses.calls[1].request.headers["Idempotency-Key"] == "x:2"


def test_jsonl_lines_carry_the_same_fields_and_a_resent_followup_is_not_written_twice(tmp_path):
    from socialcrm.plugins.sinks.jsonl import JsonlSink, JsonlSinkConfig

    def sink():
        return JsonlSink(JsonlSinkConfig().load({"path": "out.jsonl", "fsync": False}),
                         PluginContext("archive", Brand("B"), base_dir=str(tmp_path)))
    sink().send([rec(1), _followup_record()])
    sink().send([_followup_record()])
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [(line["id"], line["event"], line["conversation"], line["thread_object"]) for line in lines] == [
        ("x:1", "record.created", "x:1", None), ("x:2", "conversation.updated", "x:1", "crm-obj-1")]


def test_the_console_line_of_a_followup_says_which_conversation_it_updates(capsys):
    from socialcrm.plugins.sinks.console import ConsoleSink, ConsoleSinkConfig

    ConsoleSink(ConsoleSinkConfig().load({}), PluginContext("screen", Brand("B"))).send([rec(1), _followup_record()])
    root, reply = capsys.readouterr().out.splitlines()
    assert "conversation" not in root
    assert reply.endswith("post 2 (conversation.updated x:1 on crm-obj-1)")
