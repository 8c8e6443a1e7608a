"""The Jira sink: bulk create with per-item errors, search-before-create idempotency, ADF descriptions."""
from __future__ import annotations

import base64
import datetime as dt
import json
import re
from pathlib import Path

import pytest
import responses
from marshmallow import ValidationError
from responses import matchers

from socialcrm import AuthError, Author, DeliveryStatus, Record
from socialcrm.core.sdk.brand import Brand
from socialcrm.core.sdk.model import Influence, Sentiment
from socialcrm.plugins.sinks.jira import JiraSink, JiraSinkConfig, record_label
from socialcrm.testing import FakeClock, KitContext, SinkContract

PAYLOADS = Path(__file__).parent / "payloads" / "jira"
SITE = "https://brightwave.atlassian.net"
SEARCH, BULK, MYSELF = f"{SITE}/rest/api/3/search/jql", f"{SITE}/rest/api/3/issue/bulk", f"{SITE}/rest/api/3/myself"
EMAIL, TOKEN = "bot@brightwave.test", "ATATT3xFfGF0s3cretJiraToken"


def payload(name: str) -> dict:
    return json.loads((PAYLOADS / name).read_text())


def record(n: int, **extra) -> Record:
    values = dict(
        id=f"x:{n}", network="x", content=f"@Brightwave please let WaveBox schedule\nupdates at night #{n}",
        created_at=dt.datetime(2026, 10, 1, 10, n % 60, tzinfo=dt.timezone.utc),
        author=Author(id=f"u{n}", handle=f"kim{n}", name="Kim Lee", followers=900), url=f"https://x.com/kim{n}/status/{n}",
        type="rfe", sentiment=Sentiment("neutral", 0.1), action="log_request", influence=Influence(35, "medium"),
        priority="P3", mode="reactive", route=["ideas"], reasons=["rfe term 'please let'"])
    values.update(extra)
    return Record(**values)


def make_sink(clock: FakeClock | None = None, **options) -> JiraSink:
    config = {"base_url": SITE, "email": EMAIL, "api_token": TOKEN, "project_key": "ED", **options}
    context = KitContext(instance="ideas", brand=Brand(name="Brightwave"), clock=clock or FakeClock())
    return JiraSink(JiraSinkConfig().load(config), context)


def bodies(url: str) -> list[dict]:
    return [json.loads(c.request.body) for c in responses.calls if c.request.url == url]


@responses.activate
def test_records_become_issues_in_one_bulk_call_with_an_adf_description():
    basic = "Basic " + base64.b64encode(f"{EMAIL}:{TOKEN}".encode()).decode()
    responses.post(SEARCH, json=payload("search.jql.empty.json"), match=[matchers.header_matcher({"Authorization": basic})])
    responses.post(BULK, json=payload("issue.bulk.201.json"), status=201)
    deliveries = make_sink(priority_map={"P3": "Medium"}).send([record(1), record(2)])
    assert [(d.record_id, d.status, d.external_id) for d in deliveries] == [
        ("x:1", DeliveryStatus.DELIVERED, "ED-24"), ("x:2", DeliveryStatus.DELIVERED, "ED-25")]
    [search] = bodies(SEARCH)
    assert search["jql"] == f'project = "ED" AND labels in ("{record_label("x:1")}", "{record_label("x:2")}")'
    assert search["fields"] == ["labels"]
    [bulk] = bodies(BULK)
    first = bulk["issueUpdates"][0]["fields"]
    assert first["project"] == {"key": "ED"} and first["issuetype"] == {"name": "Task"}
    assert first["summary"] == "Feature request from @kim1: @Brightwave please let WaveBox schedule updates at night #1"
    assert first["labels"] == ["socialcrm", "socialcrm-0b788078937c4c6ed6f98b64"]
    assert first["priority"] == {"name": "Medium"}
    adf = first["description"]
    assert adf["type"] == "doc" and adf["version"] == 1
    quote, facts, why_heading, why, link = adf["content"]
    assert [p["content"][0]["text"] for p in quote["content"]] == ["@Brightwave please let WaveBox schedule",
                                                                   "updates at night #1"]
    fact_texts = ["".join(n["text"] for n in item["content"][0]["content"]) for item in facts["content"]]
    assert "Sentiment: neutral (+0.10)" in fact_texts and "Influence: 35/100 (medium)" in fact_texts
    assert why_heading["content"][0]["text"] == "Why"
    assert why["content"][0]["content"][0]["content"][0]["text"] == "rfe term 'please let'"
    assert link["content"][0]["marks"] == [{"type": "link", "attrs": {"href": "https://x.com/kim1/status/1"}}]


@responses.activate
def test_a_record_already_in_jira_is_not_created_again():
    responses.post(SEARCH, json=payload("search.jql.found.json"))
    responses.post(BULK, json={"issues": [{"id": "10000", "key": "ED-24", "self": f"{SITE}/rest/api/3/issue/10000"}],
                               "errors": []}, status=201)
    deliveries = {d.record_id: d for d in make_sink().send([record(1), record(2)])}
    assert deliveries["x:2"].external_id == "ED-7" and deliveries["x:1"].external_id == "ED-24"
    [bulk] = bodies(BULK)
    assert len(bulk["issueUpdates"]) == 1 and record_label("x:1") in bulk["issueUpdates"][0]["fields"]["labels"]


@responses.activate(registry=responses.registries.OrderedRegistry)
def test_a_retry_before_search_sees_the_issue_does_not_duplicate_it():
    responses.post(SEARCH, json=payload("search.jql.empty.json"))
    responses.post(BULK, json={"issues": [{"id": "10000", "key": "ED-24", "self": f"{SITE}/rest/api/3/issue/10000"}],
                               "errors": []}, status=201)
    sink = make_sink()
    sink.send([record(1)])
    again = sink.send([record(1)])
    assert again[0].external_id == "ED-24" and len(bodies(BULK)) == 1


@responses.activate(registry=responses.registries.OrderedRegistry)
def test_search_follows_next_page_tokens():
    responses.post(SEARCH, json=payload("search.jql.page1.json"))
    responses.post(SEARCH, json=payload("search.jql.page2.json"))
    deliveries = make_sink().send([record(2), record(3)])
    assert {d.record_id: d.external_id for d in deliveries} == {"x:2": "ED-7", "x:3": "ED-8"}
    first, second = bodies(SEARCH)
    assert "nextPageToken" not in first and second["nextPageToken"] == "CAEaAggD"


@responses.activate
def test_a_refused_item_rejects_only_that_record():
    responses.post(SEARCH, json=payload("search.jql.empty.json"))
    responses.post(BULK, json=payload("issue.bulk.201.partial.json"), status=201)
    deliveries = {d.record_id: d for d in make_sink().send([record(1), record(2)])}
    assert deliveries["x:1"].status is DeliveryStatus.DELIVERED and deliveries["x:1"].external_id == "ED-24"
    assert deliveries["x:2"].status is DeliveryStatus.REJECTED
    assert deliveries["x:2"].error == "Jira refused the issue (400): summary: You must specify a summary of the issue."


@responses.activate
def test_all_refused_is_a_400_with_per_item_errors():
    responses.post(SEARCH, json=payload("search.jql.empty.json"))
    responses.post(BULK, json=payload("issue.bulk.400.json"), status=400)
    deliveries = make_sink().send([record(1), record(2)])
    assert {d.status for d in deliveries} == {DeliveryStatus.REJECTED}
    assert "issuetype: The issue type selected is invalid." in deliveries[0].error


@responses.activate
def test_an_item_failing_with_a_server_error_is_retried():
    responses.post(SEARCH, json=payload("search.jql.empty.json"))
    responses.post(BULK, status=201, json={"issues": [], "errors": [
        {"elementErrors": {"errorMessages": ["Internal server error"], "errors": {}}, "failedElementNumber": 0,
         "status": 503}]})
    [delivery] = make_sink().send([record(1)])
    assert delivery.status is DeliveryStatus.RETRY and "Internal server error" in delivery.error


@responses.activate
def test_sixty_records_make_two_bulk_calls_of_at_most_fifty():
    responses.post(SEARCH, json=payload("search.jql.empty.json"))

    def created(request):
        count = len(json.loads(request.body)["issueUpdates"])
        start = len(bodies(BULK)) * 1000
        issues = [{"id": str(start + i), "key": f"ED-{start + i}", "self": f"{SITE}/rest/api/3/issue/{start + i}"}
                  for i in range(count)]
        return 201, {}, json.dumps({"issues": issues, "errors": []})

    responses.add_callback(responses.POST, BULK, callback=created, content_type="application/json")
    deliveries = make_sink().send([record(n) for n in range(60)])
    assert [len(b["issueUpdates"]) for b in bodies(BULK)] == [50, 10]
    assert len(deliveries) == 60 and len({d.external_id for d in deliveries}) == 60
    assert JiraSink.max_batch == 50


@responses.activate(registry=responses.registries.OrderedRegistry)
def test_429_on_bulk_create_waits_as_retry_after_says():
    clock = FakeClock()
    responses.post(SEARCH, json=payload("search.jql.empty.json"))
    responses.post(BULK, status=429, headers={"Retry-After": "7"})
    responses.post(BULK, json={"issues": [{"id": "1", "key": "ED-1", "self": f"{SITE}/rest/api/3/issue/1"}],
                               "errors": []}, status=201)
    [delivery] = make_sink(clock).send([record(1)])
    assert delivery.external_id == "ED-1" and clock.waits == [7.0]


@responses.activate
def test_a_missing_project_pauses_the_sink_with_a_plain_explanation():
    responses.post(SEARCH, status=400, json={"errorMessages": ["The value 'ED' does not exist for the field 'project'."],
                                             "errors": {}})
    with pytest.raises(AuthError, match="check project_key"):
        make_sink().send([record(1)])


@responses.activate
def test_check_says_who_is_logged_in():
    responses.get(MYSELF, json=payload("myself.200.json"))
    assert make_sink().check().startswith("authenticated as Mia Krystof (mia@example.com); issues go to project ED")


@responses.activate
def test_check_explains_a_wrong_token_without_showing_it():
    responses.get(MYSELF, status=401, body=f"Client must be authenticated (token {TOKEN})")
    with pytest.raises(AuthError, match="JIRA_API_TOKEN") as failure:
        make_sink().check()
    assert TOKEN not in str(failure.value)


def test_config_names_the_missing_token_and_its_variable():
    with pytest.raises(ValidationError) as failure:
        JiraSinkConfig().load({"base_url": SITE, "email": EMAIL, "project_key": "ED"})
    assert "JIRA_API_TOKEN" in failure.value.messages["api_token"][0]
    with pytest.raises(ValidationError) as failure:
        JiraSinkConfig().load({"base_url": SITE, "email": EMAIL, "api_token": TOKEN, "project_key": "ed",
                               "labels": ["two words"]})
    assert set(failure.value.messages) == {"project_key", "labels"}
    assert JiraSink.secret_fields == ("api_token",)


# --- the contract every sink honours (socialcrm.testing) ---

JSON = {"Content-Type": "application/json;charset=UTF-8"}


def jira_error(status: int):
    """Jira's ErrorCollection body for the statuses the kit scripts."""
    messages = {401: "Client must be authenticated to access this resource.",
                403: "You do not have permission to create issues in this project.",
                429: "Rate limit exceeded."}
    return JSON, json.dumps({"errorMessages": [messages.get(status, "Internal server error")], "errors": {}})


def fact(adf: dict, label: str) -> str:
    """The value of a ``label: value`` bullet in the issue's ADF description."""
    for block in adf["content"]:
        for item in block.get("content", []) if block["type"] == "bulletList" else []:
            nodes = item["content"][0]["content"]
            if nodes[0]["text"] == f"{label}: ":
                return "".join(n["text"] for n in nodes[1:])
    raise AssertionError(f"no {label!r} in the description")


class TestJiraSinkContract(SinkContract):
    plugin = JiraSink
    config = {"base_url": SITE, "email": EMAIL, "api_token": TOKEN, "project_key": "ED"}
    invalid_configs = [({"project_key": "ed"}, "project_key"), ({"labels": ["two words"]}, "labels"),
                       ({"base_url": "brightwave.atlassian.net"}, "base_url")]

    def serve(self, system, api):
        def search(request):
            wanted = set(re.findall(r'"(socialcrm-[0-9a-f]{24})"', json.loads(request.body)["jql"]))
            issues = [{"expand": "", "id": o.id, "key": f"ED-{o.id}", "self": f"{SITE}/rest/api/3/issue/{o.id}",
                       "fields": {"labels": o.data["fields"]["labels"]}}
                      for o in system.objects if wanted & set(o.data["fields"]["labels"])]
            return 200, JSON, json.dumps({"isLast": True, "issues": issues})

        def bulk(request):
            issues, errors = [], []
            for number, update in enumerate(json.loads(request.body)["issueUpdates"]):
                record_id = fact(update["fields"]["description"], "Record")
                if system.refuses(record_id):
                    errors.append({"elementErrors": {"errorMessages": [], "errors": {
                        "summary": "Summary must be less than 255 characters."}}, "failedElementNumber": number,
                        "status": 400})
                    continue
                stored, _ = system.create(record_id, update)
                issues.append({"id": stored.id, "key": f"ED-{stored.id}", "self": f"{SITE}/rest/api/3/issue/{stored.id}"})
            return (201 if issues else 400), JSON, json.dumps({"issues": issues, "errors": errors})

        api.add_callback("POST", SEARCH, callback=system.guard(search, error_body=jira_error))
        api.add_callback("POST", BULK, callback=system.guard(bulk, error_body=jira_error))


@responses.activate
def test_a_missing_project_is_classified_by_the_sink_and_carries_the_400():
    responses.post(SEARCH, status=400, json={"errorMessages": ["The value 'ED' does not exist for the field 'project'."],
                                             "errors": {}})
    with pytest.raises(AuthError) as failure:
        make_sink().send([record(1)])
    assert failure.value.status == 400 and "does not exist" in failure.value.response.text


# --- follow-ups: a comment on the conversation's issue, once ---


class FakeIssueComments:
    """One issue's comment API behind `responses`, answering with the spec's example shapes."""

    def __init__(self, key: str):
        self.url = f"{SITE}/rest/api/3/issue/{key}/comment"
        self.page = payload("comment.list.200.json")  # one comment by a person, not ours
        self.posted: list[dict] = []
        responses.add_callback(responses.GET, self.url, callback=self.list)
        responses.add_callback(responses.POST, self.url, callback=self.post)

    def list(self, request):
        return 200, {}, json.dumps(dict(self.page, total=len(self.page["comments"])))

    def post(self, request):
        sent = json.loads(request.body)
        self.posted.append(sent)
        made = dict(payload("comment.post.201.json"), id=str(20000 + len(self.posted)), body=sent["body"])
        self.page["comments"].append(made)  # Jira keeps no properties in a listing without expand
        return 201, {}, json.dumps(made)


def followup(n: int, issue: str = "ED-24", **extra) -> Record:
    return record(n, conversation="x:1", parent="x:1", thread_object=issue, **extra)


@responses.activate
def test_a_followup_becomes_a_comment_on_the_conversations_issue_and_a_resend_adds_none():
    issue = FakeIssueComments("ED-24")
    first = make_sink().send([followup(2), followup(3)])
    assert [(d.record_id, d.status, d.external_id) for d in first] == [
        ("x:2", DeliveryStatus.DELIVERED, "20001"), ("x:3", DeliveryStatus.DELIVERED, "20002")]
    assert not any(c.request.url in (SEARCH, BULK) for c in responses.calls), "a follow-up opens no issue"
    sent = issue.posted[0]
    assert sent["properties"] == [{"key": "socialcrm", "value": {"record_id": "x:2"}}]
    assert sent["body"]["type"] == "doc" and sent["body"]["content"][-1] == {
        "type": "paragraph", "content": [{"type": "text", "text": "socialcrm record x:2"}]}
    again = make_sink().send([followup(2), followup(3)])  # a new process: only Jira knows
    assert [(d.record_id, d.external_id) for d in again] == [("x:2", "20001"), ("x:3", "20002")]
    assert len(issue.posted) == 2, "a re-sent follow-up adds no second comment"


@responses.activate
def test_a_followup_on_a_deleted_issue_is_rejected_with_the_reason():
    responses.get(f"{SITE}/rest/api/3/issue/ED-99/comment", status=404,
                  json={"errorMessages": ["Issue does not exist or you do not have permission to see it."],
                        "errors": {}})
    [delivery] = make_sink().send([followup(2, "ED-99")])
    assert delivery.status is DeliveryStatus.REJECTED and "ED-99 is gone" in delivery.error
