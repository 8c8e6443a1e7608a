"""The HubSpot sink: CRM v3 batch upsert/read/create, multi-status answers, 429 policies, scopes."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest
import responses
from marshmallow import ValidationError
from responses import matchers

from socialcrm import AuthError, Author, DeliveryStatus, Record, RetriableError
from socialcrm.core.sdk.brand import Brand
from socialcrm.core.sdk.model import Influence, Sentiment
from socialcrm.plugins.sinks.hubspot import HubSpotSink, HubSpotSinkConfig
from socialcrm.testing import FakeClock, KitContext, SinkContract

PAYLOADS = Path(__file__).parent / "payloads" / "hubspot"
TICKETS = "https://api.hubapi.com/crm/v3/objects/tickets"
CONTACTS = "https://api.hubapi.com/crm/v3/objects/contacts"
TOKEN = "pat-na1-11111111-2222-3333-4444-s3cretHubSpot"


def payload(name: str) -> dict:
    return json.loads((PAYLOADS / name).read_text())


def trace(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:24]


def record(n: int, priority: str = "P1", **extra) -> Record:
    values = dict(
        id=f"x:{n}", network="x", content=f"@BrightwaveHelp my WaveBox is down again #{n}",
        created_at=dt.datetime(2026, 10, 1, 10, n % 60, tzinfo=dt.timezone.utc),
        author=Author(id=f"u{n}", handle=f"kim{n}", name="Kim Lee", followers=12400,
                      profile_url=f"https://x.com/kim{n}"),
        url=f"https://x.com/kim{n}/status/{n}", type="case", sentiment=Sentiment("negative", -0.6), action="open_case",
        influence=Influence(70, "high"), priority=priority, mode="reactive", route=["desk"],
        reasons=["case term 'down again'"])
    values.update(extra)
    return Record(**values)


def make_sink(clock: FakeClock | None = None, **options) -> HubSpotSink:
    context = KitContext(instance="desk", brand=Brand(name="Brightwave"), clock=clock or FakeClock())
    return HubSpotSink(HubSpotSinkConfig().load({"token": TOKEN, **options}), context)


def sent(url: str) -> list[dict]:
    return [json.loads(c.request.body) for c in responses.calls if c.request.url == url]


@responses.activate
def test_tickets_are_upserted_by_the_unique_property_in_one_call():
    responses.post(f"{TICKETS}/batch/upsert", json=payload("tickets.batch.upsert.200.json"),
                   match=[matchers.header_matcher({"Authorization": f"Bearer {TOKEN}"})])
    deliveries = make_sink().send([record(1), record(2, "P3")])
    assert [(d.record_id, d.status, d.external_id) for d in deliveries] == [
        ("x:1", DeliveryStatus.DELIVERED, "512"), ("x:2", DeliveryStatus.DELIVERED, "513")]
    [body] = sent(f"{TICKETS}/batch/upsert")
    first, second = body["inputs"]
    assert first["idProperty"] == "socialcrm_record_id" and first["id"] == "x:1"
    assert first["objectWriteTraceId"] == trace("x:1")
    props = first["properties"]
    assert props["socialcrm_record_id"] == "x:1" and props["hs_ticket_priority"] == "HIGH"
    assert props["hs_pipeline"] == "0" and props["hs_pipeline_stage"] == "1"
    assert props["subject"] == "P1 Case from @kim1: @BrightwaveHelp my WaveBox is down again #1"
    assert "Sentiment: negative (-0.60)" in props["content"] and "Post: https://x.com/kim1/status/1" in props["content"]
    assert second["properties"]["hs_ticket_priority"] == "MEDIUM"


@responses.activate
def test_a_multi_status_answer_gives_each_record_its_own_outcome():
    responses.post(f"{TICKETS}/batch/upsert", status=207, json=payload("tickets.batch.upsert.207.json"))
    deliveries = {d.record_id: d for d in make_sink().send([record(1), record(2)])}
    assert deliveries["x:1"].status is DeliveryStatus.DELIVERED and deliveries["x:1"].external_id == "512"
    assert deliveries["x:2"].status is DeliveryStatus.REJECTED
    assert deliveries["x:2"].error.startswith("VALIDATION_ERROR: Property values were not valid")
    assert "URGENTISH was not one of the allowed options" in deliveries["x:2"].error


@responses.activate
def test_a_record_hubspot_does_not_mention_is_tried_again():
    answer = payload("tickets.batch.upsert.200.json")
    answer["results"] = answer["results"][:1]
    responses.post(f"{TICKETS}/batch/upsert", json=answer)
    deliveries = {d.record_id: d for d in make_sink().send([record(1), record(2)])}
    assert deliveries["x:1"].status is DeliveryStatus.DELIVERED
    assert deliveries["x:2"].status is DeliveryStatus.RETRY


@responses.activate(registry=responses.registries.OrderedRegistry)
def test_a_refused_batch_that_names_no_input_is_split_so_only_the_bad_record_is_rejected():
    url = f"{TICKETS}/batch/upsert"
    responses.post(url, status=400, json=payload("tickets.batch.upsert.400.json"))
    one = payload("tickets.batch.upsert.200.json")
    one["results"] = one["results"][:1]
    responses.post(url, json=one)
    responses.post(url, status=400, json=payload("tickets.batch.upsert.400.json"))
    deliveries = {d.record_id: d for d in make_sink().send([record(1), record(2)])}
    assert deliveries["x:1"].status is DeliveryStatus.DELIVERED
    assert deliveries["x:2"].status is DeliveryStatus.REJECTED and "PROPERTY_DOESNT_EXIST" in deliveries["x:2"].error
    assert [len(b["inputs"]) for b in sent(url)] == [2, 1, 1]


@responses.activate(registry=responses.registries.OrderedRegistry)
def test_secondly_429_waits_the_window_hubspot_names():
    clock = FakeClock()
    responses.post(f"{TICKETS}/batch/upsert", status=429, json=payload("429.secondly.json"),
                   headers={"X-HubSpot-RateLimit-Interval-Milliseconds": "10000", "X-HubSpot-RateLimit-Max": "100",
                            "X-HubSpot-RateLimit-Remaining": "0"})
    responses.post(f"{TICKETS}/batch/upsert", json=payload("tickets.batch.upsert.200.json"))
    deliveries = make_sink(clock).send([record(1), record(2)])
    assert {d.status for d in deliveries} == {DeliveryStatus.DELIVERED} and clock.waits == [10.0]


@responses.activate
def test_the_daily_limit_sends_the_batch_back_until_midnight_utc():
    clock = FakeClock(now=1_800_000_000.0)  # 2027-01-15 08:00 UTC
    responses.post(f"{TICKETS}/batch/upsert", status=429, json=payload("429.daily.json"))
    with pytest.raises(RetriableError) as failure:
        make_sink(clock).send([record(1)])
    assert failure.value.retry_after == 16 * 3600 and clock.waits == []


@responses.activate
def test_a_hundred_and_thirty_records_make_two_calls():
    def upserted(request):
        inputs = json.loads(request.body)["inputs"]
        results = [{"id": str(1000 + i), "properties": {"socialcrm_record_id": item["id"]},
                    "objectWriteTraceId": item["objectWriteTraceId"], "new": True, "archived": False,
                    "createdAt": "2026-10-01T10:05:00.000Z", "updatedAt": "2026-10-01T10:05:00.000Z"}
                   for i, item in enumerate(inputs)]
        return 200, {}, json.dumps({"status": "COMPLETE", "results": results, "startedAt": "2026-10-01T10:05:00Z",
                                    "completedAt": "2026-10-01T10:05:01Z"})

    responses.add_callback(responses.POST, f"{TICKETS}/batch/upsert", callback=upserted,
                           content_type="application/json")
    deliveries = make_sink().send([record(n) for n in range(130)])
    assert [len(b["inputs"]) for b in sent(f"{TICKETS}/batch/upsert")] == [100, 30]
    assert len(deliveries) == 130 and {d.status for d in deliveries} == {DeliveryStatus.DELIVERED}


@responses.activate
def test_create_mode_reads_by_the_unique_property_and_creates_only_what_is_missing():
    responses.post(f"{TICKETS}/batch/read", status=207, json=payload("tickets.batch.read.207.json"))
    responses.post(f"{TICKETS}/batch/create", status=201, json=payload("tickets.batch.create.201.json"))
    deliveries = {d.record_id: d.external_id for d in make_sink(write="create").send([record(1), record(2)])}
    assert deliveries == {"x:1": "512", "x:2": "514"}
    [read] = sent(f"{TICKETS}/batch/read")
    assert read == {"idProperty": "socialcrm_record_id", "properties": ["socialcrm_record_id"],
                    "inputs": [{"id": "x:1"}, {"id": "x:2"}]}
    [create] = sent(f"{TICKETS}/batch/create")
    assert [i["properties"]["socialcrm_record_id"] for i in create["inputs"]] == ["x:2"]
    assert create["inputs"][0]["objectWriteTraceId"] == trace("x:2")


@responses.activate
def test_create_mode_conflict_means_someone_else_created_it_so_read_again_later():
    responses.post(f"{TICKETS}/batch/read", status=207, json=payload("tickets.batch.read.207.json"))
    responses.post(f"{TICKETS}/batch/create", status=409, json={
        "status": "error", "message": "A ticket with socialcrm_record_id x:2 already exists",
        "correlationId": "aeb5f871-7f07-4993-9211-075dc63e7cbf", "category": "CONFLICT"})
    deliveries = {d.record_id: d for d in make_sink(write="create").send([record(1), record(2)])}
    assert deliveries["x:1"].status is DeliveryStatus.DELIVERED
    assert deliveries["x:2"].status is DeliveryStatus.RETRY and "CONFLICT" in deliveries["x:2"].error


@responses.activate
def test_contacts_are_keyed_by_the_author_so_two_posts_make_one_contact():
    def upserted(request):
        [item] = json.loads(request.body)["inputs"]
        return 200, {}, json.dumps({"status": "COMPLETE", "results": [
            {"id": "901", "properties": {"socialcrm_author": item["id"]}, "objectWriteTraceId": item["objectWriteTraceId"],
             "new": True, "archived": False, "createdAt": "2026-10-01T10:05:00Z", "updatedAt": "2026-10-01T10:05:00Z"}],
            "startedAt": "2026-10-01T10:05:00Z", "completedAt": "2026-10-01T10:05:01Z"})

    responses.add_callback(responses.POST, f"{CONTACTS}/batch/upsert", callback=upserted,
                           content_type="application/json")
    same_author = Author(id="u7", handle="kim", name="Kim Lee", profile_url="https://x.com/kim")
    deliveries = make_sink(object="contacts", id_property="socialcrm_author").send(
        [record(1, author=same_author), record(2, author=same_author)])
    assert [(d.record_id, d.external_id) for d in deliveries] == [("x:1", "901"), ("x:2", "901")]
    [body] = sent(f"{CONTACTS}/batch/upsert")
    assert body["inputs"] == [{"idProperty": "socialcrm_author", "id": "x:u7", "objectWriteTraceId": trace("x:u7"),
                               "properties": {"firstname": "Kim Lee", "website": "https://x.com/kim",
                                              "twitterhandle": "kim", "socialcrm_author": "x:u7"}}]


@responses.activate
def test_check_reads_one_object():
    responses.get(TICKETS, json=payload("tickets.list.200.json"),
                  match=[matchers.query_param_matcher({"limit": "1", "properties": "socialcrm_record_id"})])
    assert make_sink().check().startswith("token works: can read tickets (at least one in the account)")


@responses.activate(registry=responses.registries.OrderedRegistry)
def test_check_explains_a_bad_token_and_a_missing_scope():
    responses.get(TICKETS, status=401, json=payload("401.json"))
    responses.get(TICKETS, status=403, json=payload("403.missing_scopes.json"))
    sink = make_sink()
    with pytest.raises(AuthError, match="check token \\(HUBSPOT_TOKEN\\)") as failure:
        sink.check()
    assert TOKEN not in str(failure.value)
    with pytest.raises(AuthError, match="MISSING_SCOPES \\(HubSpot asks for: tickets\\): give the private app the "
                                        "tickets scope"):
        sink.check()


@responses.activate
def test_a_token_without_write_scope_stops_the_batch():
    responses.post(f"{TICKETS}/batch/upsert", status=403, json=payload("403.missing_scopes.json"))
    with pytest.raises(AuthError, match="scope"):
        make_sink().send([record(1)])


def test_config_names_the_missing_token_and_its_variable():
    with pytest.raises(ValidationError) as failure:
        HubSpotSinkConfig().load({})
    assert "HUBSPOT_TOKEN" in failure.value.messages["token"][0]
    with pytest.raises(ValidationError) as failure:
        HubSpotSinkConfig().load({"token": TOKEN, "object": "deals", "id_property": "Record ID"})
    assert set(failure.value.messages) == {"object", "id_property"}
    assert HubSpotSink.secret_fields == ("token",) and HubSpotSink.max_batch == 100


# --- the contract every sink honours (socialcrm.testing) ---

def hubspot_error(status: int):
    """HubSpot's error bodies for the statuses the kit scripts."""
    json_type = {"Content-Type": "application/json;charset=utf-8"}
    if status == 401:
        return json_type, json.dumps(payload("401.json"))
    if status == 403:
        return json_type, json.dumps(payload("403.missing_scopes.json"))
    if status == 429:
        return json_type, json.dumps(payload("429.secondly.json"))
    return json_type, json.dumps({"status": "error", "message": "internal error",
                                  "correlationId": "aeb5f871-7f07-4993-9211-075dc63e7cbf", "category": "INTERNAL_ERROR"})


class TestHubSpotSinkContract(SinkContract):
    plugin = HubSpotSink
    config = {"token": TOKEN}
    invalid_configs = [({"object": "deals"}, "object"), ({"id_property": "Record ID"}, "id_property"),
                       ({"write": "merge"}, "write"), ({"priority_map": {"P9": "HIGH"}}, "priority_map")]

    def serve(self, system, api):
        def upsert(request):
            results, errors = [], []
            for item in json.loads(request.body)["inputs"]:
                if system.refuses(item["id"]):
                    errors.append({"status": "error", "category": "VALIDATION_ERROR",
                                   "message": "Property values were not valid",
                                   "context": {"objectWriteTraceId": [item["objectWriteTraceId"]]},
                                   "errors": [{"message": "subject is too long", "code": "INVALID_STRING",
                                               "in": "subject"}]})
                    continue
                stored, created = system.upsert(item["id"], item["properties"])
                results.append({"id": stored.id, "properties": item["properties"], "new": created, "archived": False,
                                "createdAt": "2026-10-01T10:05:00Z", "updatedAt": "2026-10-01T10:05:00Z",
                                "objectWriteTraceId": item["objectWriteTraceId"]})
            body = {"status": "COMPLETE", "results": results, "startedAt": "2026-10-01T10:05:00Z",
                    "completedAt": "2026-10-01T10:05:01Z"}
            if errors:
                body.update(numErrors=len(errors), errors=errors)
            return (207 if errors else 200), {"Content-Type": "application/json;charset=utf-8"}, json.dumps(body)

        api.add_callback("POST", f"{TICKETS}/batch/upsert", callback=system.guard(upsert, error_body=hubspot_error))


@responses.activate
def test_a_refusal_carries_hubspots_status_and_answer():
    responses.post(f"{TICKETS}/batch/upsert", status=403, json=payload("403.missing_scopes.json"))
    with pytest.raises(AuthError) as failure:
        make_sink().send([record(1)])
    assert failure.value.status == 403 and failure.value.response.json()["category"] == "MISSING_SCOPES"


# --- follow-ups: a note associated with the conversation's ticket, once ---

NOTES = "https://api.hubapi.com/crm/v3/objects/notes"


@responses.activate
def test_a_followup_becomes_a_note_on_the_conversations_ticket_and_a_resend_adds_none():
    responses.post(f"{NOTES}/search", json=payload("notes.search.empty.json"))
    responses.post(f"{NOTES}/batch/create", json=payload("notes.batch.create.201.json"), status=201)
    reply = record(2, conversation="x:1", parent="x:1", thread_object="512")
    [delivery] = make_sink().send([reply])
    assert (delivery.status, delivery.external_id) == (DeliveryStatus.DELIVERED, "90001")
    assert not any("/tickets" in c.request.url for c in responses.calls), "a follow-up opens no ticket"
    [search] = sent(f"{NOTES}/search")
    assert search["filterGroups"] == [{"filters": [{"propertyName": "socialcrm_record_id", "operator": "IN",
                                                    "values": ["x:2"]}]}]
    [create] = sent(f"{NOTES}/batch/create")
    [note] = create["inputs"]
    assert note["objectWriteTraceId"] == trace("x:2")
    assert note["properties"]["socialcrm_record_id"] == "x:2" and note["properties"]["hs_timestamp"] == "2026-10-01T10:02:00Z"
    assert note["properties"]["hs_note_body"].startswith("@BrightwaveHelp my WaveBox is down again #2")
    assert note["associations"] == [{"to": {"id": "512"}, "types": [{"associationCategory": "HUBSPOT_DEFINED",
                                                                      "associationTypeId": 228}]}]
    responses.replace(responses.POST, f"{NOTES}/search", json=payload("notes.search.found.json"))
    [again] = make_sink().send([reply])  # a new process: the search finds the note
    assert (again.status, again.external_id) == (DeliveryStatus.DELIVERED, "90001")
    assert len(sent(f"{NOTES}/batch/create")) == 1, "a re-sent follow-up adds no second note"


@responses.activate
def test_a_refused_note_is_rejected_with_hubspots_reason():
    responses.post(f"{NOTES}/search", json=payload("notes.search.empty.json"))
    responses.post(f"{NOTES}/batch/create", status=400, json={
        "status": "error", "message": "Invalid input JSON", "correlationId": "aeb5f871-7f07-4993-9211-075dc63e7cbf",
        "category": "VALIDATION_ERROR", "errors": [{"message": "Could not find object 999 of type ticket"}]})
    [delivery] = make_sink().send([record(2, conversation="x:1", thread_object="999")])
    assert delivery.status is DeliveryStatus.REJECTED and "Could not find object 999" in delivery.error
