"""The helpdesk sink against socialcrm's contract tests, with Zendesk's documented ticket API."""
import json

import responses
from responses.registries import OrderedRegistry

from socialcrm.testing import SinkContract
from socialcrm_helpdesk import HelpdeskSink

TICKETS = "https://brightwave.zendesk.com/api/v2/tickets"
JSON = {"Content-Type": "application/json; charset=utf-8"}


def zendesk_error(status):
    """Zendesk's error bodies for the statuses the kit scripts."""
    if status == 401:
        return JSON, json.dumps({"error": "Couldn't authenticate you"})
    if status == 403:
        return JSON, json.dumps({"error": "Forbidden", "description": "You do not have access to this page."})
    if status == 429:
        return {"Content-Type": "text/plain"}, "Rate limit for ticket creation exceeded. Please wait and try again."
    return JSON, json.dumps({"error": "ServerError", "description": "Something went wrong"})


def serve_tickets(system, api):
    """POST /api/v2/tickets: 201 with the ticket; a reused Idempotency-Key replays the first ticket."""
    def create_ticket(request):
        ticket = json.loads(request.body)["ticket"]
        if system.refuses(ticket["external_id"]):
            return 422, JSON, json.dumps({"error": "RecordInvalid", "description": "Record validation errors",
                                          "details": {"base": [{"description": "Subject: is too long",
                                                                "error": "InvalidValue"}]}})
        stored, created = system.create(ticket["external_id"], ticket,
                                        idempotency_key=request.headers.get("Idempotency-Key"))
        headers = {**JSON, "Location": f"{TICKETS}/{stored.id}.json"}
        if not created:
            headers["x-idempotency-lookup"] = "hit"
        answer = {**stored.data, "id": int(stored.id), "url": f"{TICKETS}/{stored.id}.json", "status": "new",
                  "created_at": "2026-10-01T10:05:00Z", "updated_at": "2026-10-01T10:05:00Z"}
        return 201, headers, json.dumps({"ticket": answer})
    api.add_callback("POST", TICKETS, callback=system.guard(create_ticket, error_body=zendesk_error))


class TestHelpdeskSink(SinkContract):
    plugin = HelpdeskSink
    config = {"subdomain": "brightwave", "email": "socialcrm@brightwave.example", "api_token": "zd-t0ken-secret"}
    invalid_configs = [({"subdomain": "brightwave.zendesk.com"}, "subdomain"), ({"email": "not-an-email"}, "email"),
                       ({"group_id": 0}, "group_id")]

    def serve(self, system, api):
        serve_tickets(system, api)


def test_ticket_carries_the_record(mock_api, fake_system, plugin_context, make_record):
    serve_tickets(fake_system, mock_api)
    config = {**TestHelpdeskSink.config, "group_id": 360001}
    sink = HelpdeskSink(HelpdeskSink.ConfigSchema().load(config), plugin_context(HelpdeskSink, config))
    record = make_record(1)
    [delivery] = sink.send([record])
    ticket = fake_system.holding(record.id)[0].data
    assert delivery.external_id == fake_system.holding(record.id)[0].id
    assert (ticket["external_id"], ticket["priority"], ticket["type"], ticket["group_id"]) == (
        record.id, "high", "incident", 360001)
    assert record.content in ticket["comment"]["body"] and record.url in ticket["comment"]["body"]
    request = mock_api.calls[0].request
    assert request.headers["Idempotency-Key"] == record.id
    assert request.headers["Authorization"].startswith("Basic ")


def test_rejection_gives_zendesks_reason(mock_api, fake_system, plugin_context, make_record):
    serve_tickets(fake_system, mock_api)
    config = TestHelpdeskSink.config
    sink = HelpdeskSink(HelpdeskSink.ConfigSchema().load(config), plugin_context(HelpdeskSink, config))
    record = make_record(2)
    fake_system.refuse(record.id)
    [delivery] = sink.send([record])
    assert delivery.status.value == "rejected"
    assert "422" in delivery.error and "base: Subject: is too long" in delivery.error


@responses.activate(registry=OrderedRegistry)
def test_waits_as_zendesk_asks(plugin_context, fake_clock, make_record):
    responses.post(TICKETS, status=429, headers={"Retry-After": "12"})
    responses.post(TICKETS, status=201, json={"ticket": {"id": 35436}})
    config = {"subdomain": "brightwave", "email": "bot@brightwave.example", "api_token": "t0ken"}
    sink = HelpdeskSink(HelpdeskSink.ConfigSchema().load(config), plugin_context(HelpdeskSink, config))
    [delivery] = sink.send([make_record(1)])
    assert delivery.external_id == "35436" and fake_clock.waits == [12.0]
