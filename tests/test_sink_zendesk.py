"""The Zendesk sink against a fake Zendesk that keeps tickets, users and jobs between calls.

Answers are shaped like tests/payloads/zendesk/ (Zendesk's OpenAPI document and reference); one test
holds the sink's request bodies to the schemas of /work/shared/specs/zendesk/support-oas.yaml.
"""
from __future__ import annotations

import base64
import json
import logging
import re
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
import yaml

from socialcrm import AuthError, ConfigError, DeliveryStatus, PluginContext
from socialcrm.core.sdk.brand import Brand
from socialcrm.core.engine.config import load_config
from socialcrm.core.sdk.model import Author, Influence, Record, Sentiment
from socialcrm.plugins.sinks.zendesk import ZendeskSink, ZendeskSinkConfig
from socialcrm.testing import FakeClock

PAYLOADS = Path(__file__).parent / "payloads" / "zendesk"
SPEC = Path("/work/shared/specs/zendesk/support-oas.yaml")
BASE = "https://acme.zendesk.com"
TOKEN = "zd-api-token-0123456789abcdef"


def payload(name: str):
    return json.loads((PAYLOADS / name).read_text(encoding="utf-8"))


class FakeZendesk:
    """Zendesk Support behind `responses`: tickets, end users, background jobs and export search."""

    ENDPOINTS = {
        "search": (responses.GET, "/api/v2/search/export"),
        "by_external_id": (responses.GET, "/api/v2/tickets"),
        "create_many": (responses.POST, "/api/v2/tickets/create_many"),
        "users_many": (responses.POST, "/api/v2/users/create_or_update_many"),
        "user_one": (responses.POST, "/api/v2/users/create_or_update"),
        "show_many": (responses.GET, "/api/v2/job_statuses/show_many"),
        "show_one": (responses.GET, re.compile(re.escape(BASE) + r"/api/v2/job_statuses/\w{32}$")),
        "update_many": (responses.PUT, "/api/v2/tickets/update_many"),
        "tickets_show_many": (responses.GET, "/api/v2/tickets/show_many"),
    }
    FLOW = ("search", "users_many", "create_many", "show_one")

    def __init__(self, rsps, clock: FakeClock, uses=FLOW):
        self.clock = clock
        self.tickets: dict[int, dict] = {}
        self.users: dict[str, int] = {}
        self.jobs: dict[str, dict] = {}
        self.requests: list[tuple[str, str]] = []
        self.bodies: dict[str, list] = {"tickets": [], "users": []}
        self.polls_needed = 1  # a job is done at its first poll
        self.searchable = True  # False: new tickets are not indexed yet
        self.bulk_users = True
        self.fail_subjects: set[str] = set()  # tickets whose job result is a failure
        self.invalid_subjects: set[str] = set()  # tickets that make create_many answer 422
        self.next_id = 1000
        # Only the endpoints a test expects are registered, so assert_all_requests_are_fired keeps meaning.
        for name in uses:
            method, path = self.ENDPOINTS[name]
            url = BASE + path if isinstance(path, str) else path
            rsps.add_callback(method, url, callback=self.logged(getattr(self, name)))

    def logged(self, callback):
        def call(request):
            self.requests.append((request.method, urlsplit(request.url).path))
            assert request.headers["Authorization"] == "Basic " + base64.b64encode(
                f"social-bot@acme.com/token:{TOKEN}".encode()).decode()
            return callback(request)
        return call

    def calls(self, path=None):
        return [r for r in self.requests if path is None or r[1] == path]

    # --- endpoints ---

    def search(self, request):
        query = parse_qs(urlsplit(request.url).query)
        assert query["filter[type]"] == ["ticket"]
        tag, created = query["query"][0].split(" ")
        moment, since = created.split(">")
        assert moment in ("created", "updated")
        hits = [t for t in self.tickets.values() if t["indexed"] and tag.removeprefix("tags:") in t["tags"]
                and t[f"{moment}_at"] > since]
        size = int(query["page[size]"][0])
        start = int(query.get("page[after]", ["0"])[0])
        page = hits[start:start + size]
        more = start + size < len(hits)
        body = {"facets": None, "links": {"next": None, "prev": None},
                "meta": {"after_cursor": str(start + size) if more else None, "before_cursor": None,
                         "has_more": more},
                "results": [dict(self.public(t), result_type="ticket") for t in page]}
        return 200, {}, json.dumps(body)

    def by_external_id(self, request):
        wanted = parse_qs(urlsplit(request.url).query)["external_id"][0]
        found = [self.public(t) for t in self.tickets.values() if t["external_id"] == wanted]
        return 200, {}, json.dumps({"tickets": found, "next_page": None, "previous_page": None, "count": len(found)})

    def create_many(self, request):
        tickets = json.loads(request.body)["tickets"]
        assert 1 <= len(tickets) <= 100
        self.bodies["tickets"].append(tickets)
        if any(t["subject"] in self.invalid_subjects for t in tickets):
            return 422, {}, json.dumps(payload("error_record_invalid.json"))
        results = []
        for index, ticket in enumerate(tickets):
            if ticket["subject"] in self.fail_subjects:
                results.append({"index": index, "action": "create", "success": False, "status": "Failed",
                                "error": "RecordInvalid", "details": "Requester: Name is too short"})
                continue
            self.next_id += 1
            self.tickets[self.next_id] = dict(ticket, id=self.next_id, indexed=self.searchable,
                                              created_at="2026-10-01T10:00:05Z", updated_at="2026-10-01T10:00:05Z",
                                              comments=[ticket["comment"]])
            results.append({"id": self.next_id, "index": index})
        return 200, {}, json.dumps(self.queue("create_many", results))

    def update_many(self, request):
        tickets = json.loads(request.body)["tickets"]
        assert 1 <= len(tickets) <= 100
        assert len({t["id"] for t in tickets}) == len(tickets), "one entry per ticket in a batch update"
        self.bodies.setdefault("updates", []).append(tickets)
        results = []
        for update in tickets:
            ticket = self.tickets.get(update["id"])
            if ticket is None or ticket.get("status") == "closed":
                template = payload("job_status_completed_update_with_failure.json")["job_status"]["results"][1]
                results.append(dict(template, id=update["id"]))
                continue
            ticket["comments"].append(update["comment"])
            ticket["tags"] = list(dict.fromkeys([*ticket["tags"], *update.get("additional_tags", [])]))
            ticket["updated_at"] = "2026-10-01T10:05:00Z"
            ticket["indexed"] = self.searchable
            results.append({"action": "update", "id": update["id"], "status": "Updated", "success": True})
        return 200, {}, json.dumps(self.queue("update_many", results))

    def tickets_show_many(self, request):
        ids = [int(i) for i in parse_qs(urlsplit(request.url).query)["ids"][0].split(",")]
        assert len(ids) <= 100
        return 200, {}, json.dumps({"tickets": [self.public(self.tickets[i]) for i in ids if i in self.tickets]})

    def users_many(self, request):
        if not self.bulk_users:
            return 403, {}, json.dumps(payload("error_bulk_import_forbidden.json"))
        users = json.loads(request.body)["users"]
        assert 1 <= len(users) <= 100
        self.bodies["users"].append(users)
        results = []
        for index, user in enumerate(users):
            status = "Updated" if user["external_id"] in self.users else "Created"
            self.users.setdefault(user["external_id"], 900_000 + len(self.users))
            results.append({"id": self.users[user["external_id"]], "index": index, "status": status})
        return 200, {}, json.dumps(self.queue("create_or_update_many", results))

    def user_one(self, request):
        user = json.loads(request.body)["user"]
        created = user["external_id"] not in self.users
        self.users.setdefault(user["external_id"], 900_000 + len(self.users))
        body = payload("users_create_or_update.json")
        body["user"].update(id=self.users[user["external_id"]], name=user["name"], external_id=user["external_id"])
        return (201 if created else 200), {}, json.dumps(body)

    def show_one(self, request):
        job_id = urlsplit(request.url).path.rsplit("/", 1)[1]
        if job_id not in self.jobs:
            return 404, {}, json.dumps({"error": "RecordNotFound", "description": "Not found"})
        return 200, {}, json.dumps({"job_status": self.poll(job_id)})

    def show_many(self, request):
        ids = parse_qs(urlsplit(request.url).query)["ids"][0].split(",")
        return 200, {}, json.dumps({"job_statuses": [self.poll(i) for i in ids if i in self.jobs]})

    # --- helpers ---

    def queue(self, job_type, results):
        job_id = f"{len(self.jobs) + 1:032x}"
        self.jobs[job_id] = {"polls": 0, "results": results, "job_type": job_type}
        body = payload("create_many_job_queued.json")
        body["job_status"].update(id=job_id, job_type=job_type, total=len(results),
                                  url=f"{BASE}/api/v2/job_statuses/{job_id}.json")
        return body

    def poll(self, job_id):
        job = self.jobs[job_id]
        job["polls"] += 1
        done = job["polls"] >= self.polls_needed
        return {"id": job_id, "job_type": job["job_type"], "url": f"{BASE}/api/v2/job_statuses/{job_id}.json",
                "total": len(job["results"]), "progress": len(job["results"]) if done else 0,
                "status": "completed" if done else "working",
                "message": "Completed at 2026-10-01 10:00:04 +0000" if done else None,
                "results": job["results"] if done else None}

    @staticmethod
    def public(ticket):
        return {k: v for k, v in ticket.items() if k not in ("indexed", "comment", "comments")}

    def index_all(self):
        for ticket in self.tickets.values():
            ticket["indexed"] = True


def record(n: int, type_: str = "case", priority: str = "P2", author: str | None = None, **extra) -> Record:
    who = author or f"u{n}"
    return Record(id=f"x:{1000 + n}", network="x", content=f"My WaveBox {n} doesn't work",
                  created_at=datetime(2026, 10, 1, 10, 0, tzinfo=timezone.utc),
                  author=Author(id=who, handle=f"handle_{who}", name=f"Name {who}", followers=10),
                  url=f"https://x.com/h/status/{n}", type=type_, priority=priority,
                  sentiment=Sentiment("negative", -0.5), influence=Influence(40, "medium"),
                  reasons=["case term"], **extra)


def make_sink(clock: FakeClock, **options) -> ZendeskSink:
    config = {"base_url": BASE, "email": "social-bot@acme.com", "api_token": TOKEN, **options}
    context = PluginContext(instance="zd", brand=Brand("Brightwave"), secrets=frozenset({TOKEN}))
    return ZendeskSink(ZendeskSinkConfig().load(config), context, sleep=clock.sleep, clock=clock)


@pytest.fixture
def clock():
    return FakeClock(1_791_000_000.0)


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def fake(rsps, clock):
    """Build the fake with the endpoints a test expects (default: the usual flow of one send)."""
    return lambda *uses: FakeZendesk(rsps, clock, uses or FakeZendesk.FLOW)


def test_tickets_are_created_in_bulk_with_requesters_and_mapped_fields(fake, clock):
    zd = fake()
    sink = make_sink(clock, groups={"care": 360001}, group_id=360009, custom_fields={"sentiment": 27642},
                     tags=["brightwave"])
    records = [record(1, priority="P1", team="care"), record(2, "query", "P4"), record(3, "rant", author="u1")]
    out = {d.record_id: d for d in sink.send(records)}
    assert all(d.status is DeliveryStatus.DELIVERED for d in out.values())
    assert [r[1] for r in zd.requests] == [
        "/api/v2/search/export", "/api/v2/users/create_or_update_many", "/api/v2/job_statuses/" + "1".zfill(32),
        "/api/v2/tickets/create_many", "/api/v2/job_statuses/" + "2".zfill(32)]
    assert clock.waits == [2.0, 2.0], "each job polled after poll_interval, with the injected sleep"
    assert zd.bodies["users"] == [[{"external_id": "x:u1", "name": "Name u1"},
                                   {"external_id": "x:u2", "name": "Name u2"}]]
    first, second, third = zd.bodies["tickets"][0]
    assert first["external_id"] == "x:1001" and first["priority"] == "urgent" and first["type"] == "problem"
    assert first["group_id"] == 360001 and second["group_id"] == 360009
    assert first["requester_id"] == third["requester_id"] == zd.users["x:u1"]
    assert first["comment"]["public"] is False and "https://x.com/h/status/1" in first["comment"]["body"]
    assert first["tags"] == ["socialcrm", "social_x", "social_case", "sentiment_negative", "p1", "influence_medium",
                             "brightwave"]
    assert first["custom_fields"] == [{"id": 27642, "value": "negative"}]
    assert second["priority"] == "low" and second["type"] == "question" and third["type"] == "incident"
    ticket_ids = {t["external_id"]: str(t["id"]) for t in zd.tickets.values()}
    assert {k: d.external_id for k, d in out.items()} == ticket_ids


def test_a_resend_never_opens_a_second_ticket(fake, clock):
    zd = fake()
    zd.searchable = False  # search has not indexed the new tickets yet
    sink = make_sink(clock)
    first = sink.send([record(1), record(2)])
    before = len(zd.requests)
    again = sink.send([record(1), record(2)])
    assert len(zd.requests) == before, "this process knows the tickets it made: no call at all"
    assert {d.external_id for d in again} == {d.external_id for d in first}
    zd.index_all()
    restarted = make_sink(clock)  # a new process: only Zendesk knows
    third = restarted.send([record(1), record(2), record(3)])
    assert len(zd.tickets) == 3
    assert {d.record_id: d.external_id for d in third if d.record_id != "x:1003"} == \
           {d.record_id: d.external_id for d in first}
    assert len(zd.calls("/api/v2/tickets/create_many")) == 2


def test_a_job_still_running_is_read_on_the_next_attempt_not_repeated(fake, clock):
    zd = fake("search", "create_many", "show_one")
    zd.polls_needed = 4
    zd.searchable = False  # only the sink's memory of the running job can stop a second create
    sink = make_sink(clock, poll_interval=10, poll_timeout=25, requester="none")
    out = sink.send([record(1), record(2)])
    assert {d.status for d in out} == {DeliveryStatus.RETRY}
    assert "still running" in out[0].error
    again = sink.send([record(1), record(2)])
    assert {d.status for d in again} == {DeliveryStatus.DELIVERED}
    assert len(zd.calls("/api/v2/tickets/create_many")) == 1 and len(zd.tickets) == 2


def test_a_ticket_waits_for_its_requester_rather_than_going_without(fake, clock):
    zd = fake()
    zd.polls_needed = 9
    sink = make_sink(clock, poll_interval=10, poll_timeout=25)
    out = sink.send([record(1)])
    assert out[0].status is DeliveryStatus.RETRY and "still creating this author" in out[0].error
    assert zd.bodies["tickets"] == []
    zd.polls_needed = 1
    assert sink.send([record(1)])[0].status is DeliveryStatus.DELIVERED
    assert [t["requester_id"] for t in zd.tickets.values()] == [zd.users["x:u1"]]


def test_a_failed_result_rejects_only_its_record(fake, clock):
    zd = fake("search", "create_many", "show_one")
    sink, bad = make_sink(clock, requester="none"), record(2)
    zd.fail_subjects.add(sink._ticket(bad)["subject"])
    out = {d.record_id: d for d in sink.send([record(1), bad, record(3)])}
    assert out["x:1002"].status is DeliveryStatus.REJECTED
    assert out["x:1002"].error == "Zendesk: RecordInvalid: Requester: Name is too short"
    assert out["x:1001"].status is out["x:1003"].status is DeliveryStatus.DELIVERED


def test_record_invalid_422_rejects_only_the_invalid_record(fake, clock):
    zd = fake("search", "create_many", "show_many")
    sink = make_sink(clock, requester="none")
    records = [record(n) for n in range(1, 6)]
    zd.invalid_subjects.add(sink._ticket(records[3])["subject"])
    out = {d.record_id: d for d in sink.send(records)}
    assert out["x:1004"].status is DeliveryStatus.REJECTED
    assert out["x:1004"].error == "Zendesk RecordInvalid: RecordInvalid; Record validation errors; base: Priority: " \
                                  "is not valid"
    assert [d.status for k, d in sorted(out.items()) if k != "x:1004"] == [DeliveryStatus.DELIVERED] * 4
    assert len(zd.tickets) == 4


def test_429_waits_exactly_as_retry_after_says(fake, clock, rsps):
    # Registered before the fake, so the first create_many gets the 429 and the retry reaches the fake.
    rsps.add(responses.POST, BASE + "/api/v2/tickets/create_many", status=429, headers={"Retry-After": "7"},
             json={"error": "TooManyRequests"})
    zd = fake("search", "create_many", "show_one")
    out = make_sink(clock, requester="none").send([record(1)])
    assert out[0].status is DeliveryStatus.DELIVERED and len(zd.tickets) == 1
    assert clock.waits == [7.0, 2.0]


def test_bad_credentials_are_explained(rsps, clock):
    rsps.add(responses.GET, BASE + "/api/v2/search/export", status=401, json=payload("error_unauthorized.json"))
    with pytest.raises(AuthError) as info:
        make_sink(clock).send([record(1)])
    assert "Couldn't authenticate you" in str(info.value) and "token access" in str(info.value)
    assert TOKEN not in str(info.value)


def test_check_makes_one_harmless_call(rsps, clock):
    rsps.add(responses.GET, BASE + "/api/v2/users/me", json=payload("users_me.json"))
    assert make_sink(clock).check() == (f"signed in to {BASE} as Social Bot <social-bot@acme.com> (agent)")
    end_user = payload("users_me.json")
    end_user["user"]["role"] = "end-user"
    rsps.replace(responses.GET, BASE + "/api/v2/users/me", json=end_user)
    with pytest.raises(AuthError, match="need an agent or admin"):
        make_sink(clock).check()


def test_without_bulk_user_import_requesters_are_made_one_by_one(fake, clock, caplog):
    zd = fake("search", "users_many", "user_one", "create_many", "show_one")
    zd.bulk_users = False
    sink = make_sink(clock)
    with caplog.at_level(logging.WARNING):
        out = sink.send([record(1), record(2)])
    assert all(d.status is DeliveryStatus.DELIVERED for d in out)
    assert len(zd.calls("/api/v2/users/create_or_update")) == 2
    assert "bulk user import is not enabled" in caplog.text
    assert {t["requester_id"] for t in zd.tickets.values()} == {zd.users["x:u1"], zd.users["x:u2"]}


def test_a_crowded_window_falls_back_to_asking_per_record(fake, clock):
    zd = fake("search", "by_external_id")
    for n in range(1001):  # a busy account: more of our tickets since the mention than one export page holds
        zd.tickets[n] = {"id": n, "external_id": f"old:{n}", "tags": ["socialcrm"], "indexed": True,
                         "created_at": "2026-10-01T10:00:01Z"}
    zd.tickets[5000] = {"id": 5000, "external_id": "x:1001", "tags": ["socialcrm"], "indexed": True,
                        "created_at": "2026-10-01T10:00:01Z"}
    out = make_sink(clock, requester="none").send([record(1)])
    assert out[0].status is DeliveryStatus.DELIVERED and out[0].external_id == "5000"
    assert [r[1] for r in zd.requests] == ["/api/v2/search/export", "/api/v2/tickets"]


def test_a_thousand_records_cost_a_handful_of_calls(fake, clock):
    zd = fake("search", "users_many", "create_many", "show_many")
    sink = make_sink(clock)
    out = sink.send([record(n, author=f"a{n % 250}") for n in range(1000)])
    assert len(out) == 1000 and all(d.status is DeliveryStatus.DELIVERED for d in out)
    # 1 check + 3 user batches + 1 poll + 10 create_many + 1 poll (show_many for all ten jobs)
    assert len(zd.requests) == 16
    assert len(zd.calls("/api/v2/job_statuses/show_many")) == 2, "one poll for the user jobs, one for the tickets"
    zd.requests.clear()
    sink.send([record(n, author=f"a{n % 250}") for n in range(1000, 2000)])
    assert len(zd.requests) == 12, "known requesters cost nothing"


def test_a_missing_token_names_the_field_and_the_variable(write_config, plugins, base_config):
    text = base_config + '\n[sinks.desk2]\nplugin = "zendesk"\nsubdomain = "acme"\nemail = "a@acme.com"\n'
    with pytest.raises(ConfigError) as info:
        load_config(write_config(text), plugins)
    assert any("[sinks.desk2] api_token" in p and "export ZENDESK_API_TOKEN" in p for p in info.value.problems)


def test_secrets_never_reach_the_logs(fake, clock, caplog):
    fake()
    with caplog.at_level(logging.DEBUG):
        make_sink(clock).send([record(1)])
    assert TOKEN not in caplog.text


@pytest.fixture(scope="module")
def spec():
    if not SPEC.exists():
        pytest.skip(f"{SPEC} is not on this machine")

    class Loader(yaml.CSafeLoader if hasattr(yaml, "CSafeLoader") else yaml.SafeLoader):
        pass

    # Some examples carry a bare "=" that PyYAML would otherwise refuse (see specs/README.md).
    Loader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))
    return yaml.load(SPEC.read_text(encoding="utf-8"), Loader=Loader)


def _schema(spec, node):
    while "$ref" in node:
        target = spec
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def test_request_and_fixture_shapes_follow_the_zendesk_spec(spec, fake, clock):
    zd = fake()
    make_sink(clock, custom_fields={"type": 1}).send([record(1, priority="P1")])
    body_schema = spec["paths"]["/api/v2/tickets/create_many"]["post"]["requestBody"]["content"][
        "application/json"]["schema"]
    ticket = _schema(spec, _schema(spec, body_schema)["properties"]["tickets"]["items"])["properties"]
    sent = zd.bodies["tickets"][0][0]
    assert set(sent) <= set(ticket)
    assert sent["priority"] in ticket["priority"]["enum"]
    assert sent["type"] in _schema(spec, ticket["type"]).get("enum", [sent["type"]])
    comment = _schema(spec, ticket["comment"])["properties"]
    assert set(sent["comment"]) <= set(comment)
    field_input = _schema(spec, ticket["custom_fields"]["items"])["properties"]
    assert set(sent["custom_fields"][0]) <= set(field_input)
    job = _schema(spec, spec["components"]["schemas"]["JobStatusObject"])["properties"]
    for name in ("create_many_job_queued.json", "job_status_completed_create.json", "users_job_completed.json"):
        assert set(payload(name)["job_status"]) <= set(job), name
    created = _schema(spec, spec["components"]["schemas"]["CreateResourceResult"])["properties"]
    assert set(payload("job_status_completed_create.json")["job_status"]["results"][0]) == set(created)
    export = spec["paths"]["/api/v2/search/export"]["get"]["responses"]["200"]["content"]["application/json"]
    assert set(payload("search_export_tickets.json")) == set(_schema(spec, export["schema"])["properties"])
    user_items = spec["paths"]["/api/v2/users/create_or_update_many"]["post"]["requestBody"]["content"][
        "application/json"]["schema"]
    user_input = _schema(spec, _schema(spec, user_items)["properties"]["users"]["items"])
    create_input = _schema(spec, user_input["anyOf"][0])["properties"]  # UserCreateInput
    assert set(zd.bodies["users"][0][0]) <= set(create_input)


def test_a_create_many_without_an_answer_is_not_sent_twice(fake, clock, rsps):
    import requests as requests_lib

    zd = fake("search", "by_external_id")
    zd.searchable = False

    def lost(request):  # Zendesk queues the job, then the answer never arrives
        zd.create_many(request)
        raise requests_lib.ReadTimeout("read timed out")

    rsps.add_callback(responses.POST, BASE + "/api/v2/tickets/create_many", callback=lost)
    sink = make_sink(clock, requester="none")
    first = sink.send([record(1), record(2)])
    assert {d.status for d in first} == {DeliveryStatus.RETRY} and first[0].retry_after == 90.0
    assert len(zd.bodies["tickets"]) == 1, "a POST that may have worked is not repeated in line"
    # The outbox re-sends: the sink asks for each ticket by external_id (the list endpoint, not search,
    # which has not indexed them yet) and finds them.
    second = sink.send([record(1), record(2)])
    assert {d.status for d in second} == {DeliveryStatus.DELIVERED} and len(zd.tickets) == 2
    assert [r[1] for r in zd.requests] == ["/api/v2/search/export", "/api/v2/tickets", "/api/v2/tickets"]
    assert len(zd.bodies["tickets"]) == 1


def test_a_503_on_create_many_is_tried_again_in_line(fake, clock, rsps):
    rsps.add(responses.POST, BASE + "/api/v2/tickets/create_many", status=503, headers={"Retry-After": "3"},
             json={"error": "ServiceUnavailable"})
    zd = fake("search", "create_many", "show_one")
    out = make_sink(clock, requester="none").send([record(1)])
    assert out[0].status is DeliveryStatus.DELIVERED and len(zd.tickets) == 1
    assert clock.waits == [3.0, 2.0]


# --- the contract every sink honours (socialcrm.testing) ---

from socialcrm.testing import SinkContract  # noqa: E402


def _zendesk_error(status):
    bodies = {401: payload("error_unauthorized.json"), 403: payload("error_bulk_import_forbidden.json")}
    body = bodies.get(status, {"error": "ServiceUnavailable", "description": "Try again later"})
    return {"Content-Type": "application/json"}, json.dumps(body)


class TestZendeskContract(SinkContract):
    plugin = ZendeskSink
    config = {"base_url": BASE, "email": "social-bot@acme.com", "api_token": TOKEN}
    invalid_configs = [({"api_token": None}, "api_token"), ({"requester": "everyone"}, "requester"),
                       ({"priority_map": {"P1": "critical"}}, "priority_map"),
                       ({"custom_fields": {"moodiness": 1}}, "custom_fields")]

    def serve(self, system, api):
        jobs: dict[str, list] = {}

        def job(results):
            job_id = f"{len(jobs) + 1:032x}"
            jobs[job_id] = results
            body = payload("create_many_job_queued.json")
            body["job_status"].update(id=job_id, total=len(results))
            return 200, {}, json.dumps(body)

        def status(job_id):
            return {"id": job_id, "status": "completed", "total": len(jobs[job_id]),
                    "progress": len(jobs[job_id]), "results": jobs[job_id], "message": "Completed"}

        def search(request):
            results = [dict(o.data, id=int(o.id), result_type="ticket") for o in system.objects]
            return 200, {}, json.dumps({"facets": None, "links": {"next": None, "prev": None},
                                        "meta": {"has_more": False, "after_cursor": None, "before_cursor": None},
                                        "results": results})

        def users(request):
            people = json.loads(request.body)["users"]
            return job([{"id": 700 + i, "index": i, "status": "Created"} for i in range(len(people))])

        def create_many(request):
            results = []
            for index, ticket in enumerate(json.loads(request.body)["tickets"]):
                if system.refuses(ticket["external_id"]):
                    results.append({"index": index, "success": False, "status": "Failed",
                                    "error": "RecordInvalid", "details": "Subject: cannot be blank"})
                else:
                    obj, _ = system.create(ticket["external_id"], ticket)
                    results.append({"id": int(obj.id), "index": index})
            return job(results)

        def show_one(request):
            return 200, {}, json.dumps({"job_status": status(urlsplit(request.url).path.rsplit("/", 1)[1])})

        def show_many(request):
            ids = parse_qs(urlsplit(request.url).query)["ids"][0].split(",")
            return 200, {}, json.dumps({"job_statuses": [status(i) for i in ids]})

        for method, path, callback in [
            (responses.GET, "/api/v2/search/export", search),
            (responses.POST, "/api/v2/users/create_or_update_many", users),
            (responses.POST, "/api/v2/tickets/create_many", create_many),
            (responses.GET, "/api/v2/job_statuses/show_many", show_many),
            (responses.GET, re.compile(re.escape(BASE) + r"/api/v2/job_statuses/\w{32}$"), show_one),
        ]:
            api.add_callback(method, BASE + path if isinstance(path, str) else path,
                             callback=system.guard(callback, _zendesk_error))


def test_bad_credentials_carry_the_401_and_zendesks_answer(rsps, clock):
    rsps.add(responses.GET, BASE + "/api/v2/search/export", status=401, json=payload("error_unauthorized.json"))
    with pytest.raises(AuthError) as info:
        make_sink(clock).send([record(1)])
    assert info.value.status == 401 and info.value.response.json() == payload("error_unauthorized.json")


# --- follow-ups: a comment on the conversation's ticket, once ---

FOLLOWUP_FLOW = ("search", "users_many", "create_many", "show_one", "show_many", "update_many")


def followup(n: int, ticket_id: str, **extra) -> Record:
    reply = record(n, **extra)
    reply.content = f"Still broken after the reset ({n})"
    reply.conversation, reply.parent, reply.thread_object = "x:1001", "x:1001", ticket_id
    return reply


def test_a_followup_becomes_a_comment_on_the_conversations_ticket_and_a_resend_adds_none(fake, clock):
    zd = fake(*FOLLOWUP_FLOW)
    sink = make_sink(clock)
    [root] = sink.send([record(1)])
    ticket = zd.tickets[int(root.external_id)]
    first = sink.send([followup(2, root.external_id), followup(3, root.external_id, by_brand=True)])
    assert {d.status for d in first} == {DeliveryStatus.DELIVERED}
    assert {d.external_id for d in first} == {root.external_id}
    assert len(zd.tickets) == 1, "a follow-up opens no second ticket"
    assert [c["public"] for c in ticket["comments"]] == [False, False, True]
    assert ticket["comments"][1]["body"].startswith("Still broken after the reset (2)")
    assert sink.followup_tag(followup(2, "")) in ticket["tags"]
    assert [len(b) for b in zd.bodies["updates"]] == [1, 1], "one entry per ticket in each update_many"
    again = make_sink(clock)  # a restarted process: only Zendesk can say what is there
    calls = len(zd.requests)
    answers = again.send([followup(2, root.external_id), followup(3, root.external_id)])
    assert {d.record_id: d.status for d in answers} == {"x:1002": DeliveryStatus.DELIVERED,
                                                        "x:1003": DeliveryStatus.DELIVERED}
    assert len(ticket["comments"]) == 3, "a re-sent follow-up adds no second comment"
    assert zd.requests[calls:] == [("GET", "/api/v2/search/export")]


def test_a_followup_on_a_closed_ticket_opens_a_followup_ticket_instead(fake, clock):
    zd = fake("search", "users_many", "create_many", "show_one", "update_many")
    sink = make_sink(clock)
    [root] = sink.send([record(1)])
    zd.tickets[int(root.external_id)]["status"] = "closed"
    reply = followup(2, root.external_id, author="u1")
    [refused] = sink.send([reply])
    assert refused.status is DeliveryStatus.RETRY
    assert "TicketUpdateFailed" in refused.error and "closed prevents ticket update" in refused.error
    assert refused.retry_after == sink.config["poll_interval"]
    [opened] = sink.send([reply])
    assert opened.status is DeliveryStatus.DELIVERED and opened.external_id != root.external_id
    made = zd.bodies["tickets"][-1][0]
    assert made["via_followup_source_id"] == int(root.external_id) and made["external_id"] == "x:1002"
    assert len(zd.tickets[int(root.external_id)]["comments"]) == 1, "the closed ticket got no comment"


def test_a_followup_update_without_an_answer_is_read_from_the_ticket_before_it_is_sent_again(fake, clock, rsps):
    import requests as requests_lib

    zd = fake("search", "users_many", "create_many", "show_one", "tickets_show_many")
    sink = make_sink(clock)
    [root] = sink.send([record(1)])

    def lost(request):  # Zendesk queues the job, then the answer never arrives
        zd.update_many(request)
        raise requests_lib.ConnectionError("connection reset by peer")
    rsps.add_callback(responses.PUT, BASE + "/api/v2/tickets/update_many", callback=lost)
    [first] = sink.send([followup(2, root.external_id)])
    assert first.status is DeliveryStatus.RETRY
    zd.searchable = False
    zd.tickets[int(root.external_id)]["indexed"] = False  # search has not seen the update yet
    [second] = sink.send([followup(2, root.external_id)])
    assert second.status is DeliveryStatus.DELIVERED
    assert len(zd.tickets[int(root.external_id)]["comments"]) == 2
    assert ("GET", "/api/v2/tickets/show_many") in zd.requests


def test_a_thousand_followups_cost_at_most_fifteen_calls(fake, clock):
    zd = fake(*FOLLOWUP_FLOW)
    sink = make_sink(clock)
    roots = sink.send([record(n, author="same") for n in range(1000)])
    calls = len(zd.requests)
    replies = [followup(2000 + n, d.external_id) for n, d in enumerate(roots)]
    answers = sink.send(replies)
    assert {d.status for d in answers} == {DeliveryStatus.DELIVERED} and len(answers) == 1000
    assert len(zd.requests) - calls <= 15
