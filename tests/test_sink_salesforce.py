"""The Salesforce sink against a fake org that keeps its Cases and Leads between calls.

Every answer is shaped like the payloads in tests/payloads/salesforce/ (as Salesforce documents them).
"""
from __future__ import annotations

import json
import logging
import re
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import jwt
import pytest
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from marshmallow import ValidationError

from socialcrm import AuthError, ConfigError, DeliveryStatus, PluginContext, RetriableError
from socialcrm.core.sdk.brand import Brand
from socialcrm.core.engine.config import load_config
from socialcrm.core.sdk.model import Author, Influence, Record, Sentiment
from socialcrm.plugins.sinks.salesforce import SalesforceSink, SalesforceSinkConfig
from socialcrm.testing import FakeClock

PAYLOADS = Path(__file__).parent / "payloads" / "salesforce"
INSTANCE = "https://acme.my.salesforce.com"
TOKEN_URL = f"{INSTANCE}/services/oauth2/token"
COMPOSITE_URL = f"{INSTANCE}/services/data/v61.0/composite"
SECRET = "s3cr3t-consumer-secret-value"


def payload(name: str):
    return json.loads((PAYLOADS / name).read_text(encoding="utf-8"))


class FakeOrg:
    """A Salesforce org behind `responses`: OAuth, Composite (upserts, queries, limits, describes)."""

    def __init__(self, rsps, *, usage_limit: int = 100_000):
        self.rsps = rsps
        self.rows: dict[str, dict[str, dict]] = {"Case": {}, "Lead": {}, "CaseComment": {}, "FeedItem": {}}
        self.contacts = [{"Id": "0035g00000XyZaBAAV", "Social_Handle__c": "jane_doe"}]
        self.valid_tokens: set[str] = set()
        self.token_requests: list[dict] = []
        self.composites: list[dict] = []
        self.fail: dict[str, tuple[str, str, list[str]]] = {}  # external id -> (statusCode, message, fields)
        self.fail_objects: dict[str, dict] = {}  # sObject -> subrequest error
        self.used, self.usage_limit = 0, usage_limit
        self.next_id = 1
        self.token_body = payload("token_client_credentials.json")
        rsps.add_callback(responses.POST, TOKEN_URL, callback=self.token)
        rsps.add_callback(responses.POST, COMPOSITE_URL, callback=self.composite)

    def token(self, request):
        form = {k: v[0] for k, v in parse_qs(request.body).items()}
        self.token_requests.append(form)
        body = dict(self.token_body, access_token=f"{self.token_body['access_token']}{len(self.token_requests)}")
        self.valid_tokens.add(body["access_token"])
        return 200, {}, json.dumps(body)

    def expire_tokens(self):
        self.valid_tokens.clear()

    def _headers(self):
        return {"Sforce-Limit-Info": f"api-usage={self.used}/{self.usage_limit}"}

    def composite(self, request):
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in self.valid_tokens:
            return 401, {}, json.dumps(payload("error_invalid_session_id.json"))
        self.used += 1
        body = json.loads(request.body)
        self.composites.append(body)
        subrequests = body["compositeRequest"]
        heavy = [s for s in subrequests if "/composite/sobjects/" in s["url"] or "/query" in s["url"]]
        assert len(subrequests) <= 25 and len(heavy) <= 5, "Salesforce allows 5 collections or queries"
        assert body["allOrNone"] is False
        answers = [self.subrequest(s) for s in subrequests]
        return 200, self._headers(), json.dumps({"compositeResponse": answers})

    def subrequest(self, sub):
        path = urlsplit(sub["url"]).path
        wrap = {"httpHeaders": {}, "referenceId": sub["referenceId"]}
        upsert = re.fullmatch(r"/services/data/v61\.0/composite/sobjects/(\w+)/(\w+)", path)
        if sub["method"] == "PATCH" and upsert:
            kind, ext = upsert.groups()
            if kind in self.fail_objects:
                return dict(self.fail_objects[kind], referenceId=sub["referenceId"])
            assert sub["body"]["allOrNone"] is False and len(sub["body"]["records"]) <= 200
            return dict(wrap, httpStatusCode=200, body=[self.upsert(kind, ext, r) for r in sub["body"]["records"]])
        if sub["method"] == "POST" and path == "/services/data/v61.0/composite/sobjects":
            assert sub["body"]["allOrNone"] is False and len(sub["body"]["records"]) <= 200
            return dict(wrap, httpStatusCode=200, body=[self.create(r) for r in sub["body"]["records"]])
        if path == "/services/data/v61.0/query":
            soql = unquote(urlsplit(sub["url"]).query.removeprefix("q="))
            comments = re.fullmatch(r"SELECT Id, ParentId, (\w+) FROM (CaseComment|FeedItem) WHERE ParentId IN "
                                    r"\((.*?)\)( AND CommentBody LIKE '%socialcrm record %')?", soql)
            if comments:
                field, kind, values, _like = comments.groups()
                parents = {v.strip("'") for v in values.split(",")}
                template = payload("query_case_comments.json")["records"][0]
                rows = [{**template, "attributes": {"type": kind, "url": f"/services/data/v61.0/sobjects/{kind}/{c['Id']}"},
                         "Id": c["Id"], "ParentId": c["ParentId"], field: c[field]}
                        for c in self.rows[kind].values() if c["ParentId"] in parents]
                for row in rows:
                    row.pop("CommentBody" if field == "Body" else "Body", None)
                return dict(wrap, httpStatusCode=200, body={"totalSize": len(rows), "done": True, "records": rows})
            field, values = re.fullmatch(r"SELECT Id, (\w+) FROM Contact WHERE \1 IN \((.*)\)", soql).groups()
            wanted = {v.strip("'").lower() for v in values.split(",")}
            rows = [{"attributes": {"type": "Contact", "url": f"/services/data/v61.0/sobjects/Contact/{c['Id']}"},
                     **c} for c in self.contacts if c.get(field, "").lower() in wanted]
            return dict(wrap, httpStatusCode=200, body={"totalSize": len(rows), "done": True, "records": rows})
        if path == "/services/data/v61.0/limits":
            return dict(wrap, httpStatusCode=200, body=payload("limits.json"))
        describe = re.fullmatch(r"/services/data/v61\.0/sobjects/(\w+)/describe", path)
        if describe:
            name = describe.group(1).lower()
            file = PAYLOADS / f"describe_{name}.json"
            if file.exists():
                return dict(wrap, httpStatusCode=200, body=json.loads(file.read_text()))
            return dict(wrap, httpStatusCode=404, body=[{"errorCode": "NOT_FOUND",
                                                         "message": "The requested resource does not exist"}])
        raise AssertionError(f"unexpected subrequest {sub['method']} {sub['url']}")

    def create(self, row):
        """sObject Collections create of a CaseComment or FeedItem (neither has an external id)."""
        kind = row["attributes"]["type"]
        if row["ParentId"] in self.fail:
            code, message, fields = self.fail[row["ParentId"]]
            return {"success": False, "errors": [{"statusCode": code, "message": message, "fields": fields}]}
        comment_id = f"{'00a' if kind == 'CaseComment' else '0D5'}5g{self.next_id:010d}AAV"
        self.next_id += 1
        self.rows.setdefault(kind, {})[comment_id] = {"Id": comment_id, **{k: v for k, v in row.items()
                                                                             if k != "attributes"}}
        return {"id": comment_id, "success": True, "errors": []}

    def upsert(self, kind, ext, record):
        assert record["attributes"] == {"type": kind}
        key = record[ext]
        if key in self.fail:
            code, message, fields = self.fail[key]
            return {"success": False, "errors": [{"statusCode": code, "message": message, "fields": fields}]}
        table = self.rows[kind]
        created = key not in table
        if created:
            table[key] = {"Id": f"{'500' if kind == 'Case' else '00Q'}5g{self.next_id:010d}AAV"}
            self.next_id += 1
        table[key].update({k: v for k, v in record.items() if k != "attributes"})
        return {"id": table[key]["Id"], "success": True, "errors": [], "created": created}


def record(n: int, type_: str = "case", priority: str = "P2", handle: str | None = None, **extra) -> Record:
    return Record(id=f"x:{1000 + n}", network="x", content=f"My WaveBox {n} doesn't work since the update",
                  created_at=datetime(2026, 10, 1, 10, 0, tzinfo=timezone.utc),
                  author=Author(id=f"u{n}", handle=handle or f"user{n}", name=f"User {n}", followers=150),
                  url=f"https://x.com/user{n}/status/{1000 + n}", type=type_, priority=priority,
                  sentiment=Sentiment("negative", -0.6), influence=Influence(41, "medium"),
                  reasons=["case term 'doesn't work'", "support mention"], **extra)


def make_sink(clock: FakeClock | None = None, **options) -> SalesforceSink:
    config = {"instance_url": INSTANCE, "client_id": "3MVG9-consumer-key", "client_secret": SECRET, **options}
    clock = clock or FakeClock()
    context = PluginContext(instance="sf", brand=Brand("Brightwave"), secrets=frozenset({SECRET}))
    return SalesforceSink(SalesforceSinkConfig().load(config), context, sleep=clock.sleep, clock=clock)


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def org(rsps):
    return FakeOrg(rsps)


def test_cases_and_leads_are_upserted_in_one_composite_call(org, caplog):
    sink = make_sink()
    records = [record(1, priority="P1"), record(2, "rant", "P3"), record(3, "lead", "P4")]
    with caplog.at_level(logging.INFO):
        deliveries = sink.send(records)
    assert {d.record_id: d.status for d in deliveries} == {r.id: DeliveryStatus.DELIVERED for r in records}
    assert len(org.token_requests) == 1 and org.token_requests[0]["grant_type"] == "client_credentials"
    assert len(org.composites) == 1
    subrequests = org.composites[0]["compositeRequest"]
    assert [s["url"] for s in subrequests] == [
        "/services/data/v61.0/composite/sobjects/Case/Social_Record_Id__c",
        "/services/data/v61.0/composite/sobjects/Lead/Social_Record_Id__c"]
    assert all(s["method"] == "PATCH" for s in subrequests)
    case = org.rows["Case"]["x:1001"]
    assert case["Origin"] == "Social" and case["Priority"] == "High" and case["Status"] == "New"
    assert case["SuppliedName"] == "User 1" and case["Social_Type__c"] == "case"
    assert case["Social_Sentiment__c"] == "negative" and case["Social_Influence__c"] == 41
    assert case["Subject"].startswith("Case from @user1 on x: My WaveBox 1")
    assert "https://x.com/user1/status/1001" in case["Description"] and "support mention" in case["Social_Reasons__c"]
    assert org.rows["Case"]["x:1002"]["Priority"] == "Medium"
    lead = org.rows["Lead"]["x:1003"]
    assert lead["LastName"] == "User 3" and lead["LeadSource"] == "Social" and lead["Company"]
    by_id = {d.record_id: d.external_id for d in deliveries}
    assert by_id["x:1001"] == case["Id"] and by_id["x:1003"] == lead["Id"]
    assert sink.api_usage == (1, 100_000)
    assert "Salesforce API usage 1 of 100000 calls today" in caplog.text


def test_a_resend_updates_the_same_case_instead_of_opening_a_second(org):
    sink = make_sink()
    first = sink.send([record(1), record(2)])
    changed = record(1, priority="P1")
    second = sink.send([changed, record(2)])
    assert len(org.rows["Case"]) == 2
    assert {d.record_id: d.external_id for d in first} == {d.record_id: d.external_id for d in second}
    assert org.rows["Case"]["x:1001"]["Priority"] == "High"
    results = org.composites  # both sends went through the same upsert URL keyed by the record id
    assert all(r["compositeRequest"][0]["url"].endswith("/Case/Social_Record_Id__c") for r in results)
    assert len(org.token_requests) == 1, "the token is cached between sends"


def test_per_record_errors_become_per_record_outcomes(org):
    org.fail["x:1002"] = ("REQUIRED_FIELD_MISSING", "Required fields are missing: [Subject]", ["Subject"])
    org.fail["x:1003"] = ("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record", [])
    org.fail["x:1004"] = ("STRING_TOO_LONG", "Subject: data value too large", ["Subject"])
    org.fail_objects["Lead"] = payload("composite_subrequest_error.json")
    sink = make_sink()
    out = {d.record_id: d for d in sink.send([record(1), record(2), record(3), record(4), record(5, "lead"),
                                              record(6, "rave")])}
    assert len(out) == 6
    assert out["x:1001"].status is DeliveryStatus.DELIVERED
    assert out["x:1002"].status is DeliveryStatus.REJECTED
    assert out["x:1002"].error == ("Salesforce Case: REQUIRED_FIELD_MISSING: Required fields are missing: [Subject] "
                                   "(fields: Subject)")
    assert out["x:1003"].status is DeliveryStatus.RETRY and "UNABLE_TO_LOCK_ROW" in out["x:1003"].error
    assert out["x:1004"].status is DeliveryStatus.REJECTED and "STRING_TOO_LONG" in out["x:1004"].error
    assert out["x:1005"].status is DeliveryStatus.REJECTED and "INVALID_FIELD" in out["x:1005"].error
    assert out["x:1006"].status is DeliveryStatus.REJECTED and "objects" in out["x:1006"].error


def test_an_expired_session_fetches_a_new_token_once(org):
    sink = make_sink()
    sink.send([record(1)])
    org.expire_tokens()
    assert sink.send([record(2)])[0].status is DeliveryStatus.DELIVERED
    assert len(org.token_requests) == 2


def test_a_token_refused_twice_is_an_auth_error_not_a_loop(org, rsps):
    sink = make_sink()
    rsps.replace(responses.POST, COMPOSITE_URL, status=401, json=payload("error_invalid_session_id.json"))
    with pytest.raises(AuthError, match="INVALID_SESSION_ID"):
        sink.send([record(1)])
    assert len(org.token_requests) == 2


def test_a_refused_call_carries_salesforces_status_and_answer(org, rsps):
    sink = make_sink()
    rsps.replace(responses.POST, COMPOSITE_URL, status=401, json=payload("error_invalid_session_id.json"))
    with pytest.raises(AuthError) as info:
        sink.send([record(1)])
    assert info.value.status == 401 and info.value.response.json() == payload("error_invalid_session_id.json")


def test_the_daily_limit_backs_off_for_limit_backoff(org, rsps):
    clock = FakeClock()
    sink = make_sink(clock, limit_backoff=1800)
    rsps.replace(responses.POST, COMPOSITE_URL, status=403, json=payload("error_request_limit_exceeded.json"),
                 headers={"Sforce-Limit-Info": "api-usage=100000/100000"})
    with pytest.raises(RetriableError) as info:
        sink.send([record(1)])
    assert info.value.retry_after == 1800 and "100000 of 100000" in str(info.value)
    assert sink.api_usage == (100_000, 100_000) and clock.waits == []
    assert info.value.status == 403


def test_503_is_retried_with_backoff_then_succeeds(rsps):
    clock = FakeClock()
    rsps.add(responses.POST, TOKEN_URL, json=payload("token_client_credentials.json"))
    rsps.add(responses.POST, COMPOSITE_URL, status=503, json=[{"errorCode": "SERVER_UNAVAILABLE",
                                                                "message": "Service Unavailable"}])
    rsps.add(responses.POST, COMPOSITE_URL, json={"compositeResponse": [{
        "body": [{"id": "5005g00000AbCdEAAV", "success": True, "errors": [], "created": True}],
        "httpHeaders": {}, "httpStatusCode": 200, "referenceId": "Case0"}]})
    deliveries = make_sink(clock).send([record(1)])
    assert deliveries[0].status is DeliveryStatus.DELIVERED and deliveries[0].external_id == "5005g00000AbCdEAAV"
    assert len(clock.waits) == 1 and 0 < clock.waits[0] <= 1.0


def test_a_persistent_503_hands_the_batch_back_for_later(rsps):
    clock = FakeClock()
    rsps.add(responses.POST, TOKEN_URL, json=payload("token_client_credentials.json"))
    rsps.add(responses.POST, COMPOSITE_URL, status=503, json=[{"errorCode": "SERVER_UNAVAILABLE", "message": "x"}])
    with pytest.raises(RetriableError, match="failed after 5 attempts"):
        make_sink(clock).send([record(1)])
    assert len(clock.waits) == 4


def test_a_refused_login_explains_the_fix_and_hides_the_secret(rsps, caplog):
    rsps.add(responses.POST, TOKEN_URL, status=400, json=payload("token_error_invalid_client.json"))
    with caplog.at_level(logging.DEBUG), pytest.raises(AuthError) as info:
        make_sink().send([record(1)])
    message = str(info.value)
    assert "invalid_client" in message and "client_secret does not match client_id" in message
    assert SECRET not in message and SECRET not in caplog.text


def test_access_token_never_reaches_a_log_line(org, rsps, caplog):
    sink = make_sink()
    with caplog.at_level(logging.DEBUG):
        sink.send([record(1)])
        org.expire_tokens()
        sink.send([record(2)])
    tokens = [t for t in org.valid_tokens] + [payload("token_client_credentials.json")["access_token"] + "1"]
    assert all(t not in caplog.text for t in tokens) and SECRET not in caplog.text
    assert "fetching a new token" in caplog.text


def test_authors_are_linked_to_existing_contacts_with_one_query_per_send(org):
    sink = make_sink(contact_field="Social_Handle__c")
    known = record(1, handle="Jane_Doe")
    stranger = record(2, handle="bob")
    preset = record(3, handle="carol")
    preset.author.contact_id = "0035g00000PreSetAAV"
    lead = record(4, "lead", handle="jane_doe")
    sink.send([known, stranger, preset, lead])
    assert len(org.composites) == 2
    queries = org.composites[0]["compositeRequest"]
    assert len(queries) == 1 and queries[0]["method"] == "GET"
    soql = unquote(urlsplit(queries[0]["url"]).query.removeprefix("q="))
    assert soql == "SELECT Id, Social_Handle__c FROM Contact WHERE Social_Handle__c IN ('Jane_Doe','bob')"
    assert org.rows["Case"]["x:1001"]["ContactId"] == "0035g00000XyZaBAAV"
    assert "ContactId" not in org.rows["Case"]["x:1002"]
    assert org.rows["Case"]["x:1003"]["ContactId"] == "0035g00000PreSetAAV"
    assert "ContactId" not in org.rows["Lead"]["x:1004"], "Leads have no Contact link by default"


def test_jwt_bearer_flow_signs_an_assertion_with_the_private_key(rsps):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    seen = {}

    def token(request):
        form = {k: v[0] for k, v in parse_qs(request.body).items()}
        seen["grant"] = form["grant_type"]
        seen["claims"] = jwt.decode(form["assertion"], key.public_key(), algorithms=["RS256"],
                                    audience="https://login.salesforce.com")
        return 200, {}, json.dumps(payload("token_jwt.json"))

    rsps.add_callback(responses.POST, "https://login.salesforce.com/services/oauth2/token", callback=token)
    rsps.add(responses.POST, COMPOSITE_URL, json={"compositeResponse": [{
        "body": [{"id": "5005g00000AbCdEAAV", "success": True, "errors": [], "created": True}],
        "httpHeaders": {}, "httpStatusCode": 200, "referenceId": "Case0"}]},
        match=[responses.matchers.header_matcher(
            {"Authorization": f"Bearer {payload('token_jwt.json')['access_token']}"})])
    clock = FakeClock()
    config = {"auth": "jwt", "client_id": "3MVG9-consumer-key", "username": "integration@acme.com",
              "private_key": pem}
    sink = SalesforceSink(SalesforceSinkConfig().load(config), PluginContext("sf", Brand("B")), sleep=clock.sleep,
                          clock=clock)
    assert sink.send([record(1)])[0].status is DeliveryStatus.DELIVERED
    assert seen["grant"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    claims = seen["claims"]
    assert claims["iss"] == "3MVG9-consumer-key" and claims["sub"] == "integration@acme.com"
    assert claims["exp"] - clock.now <= 180


def test_a_missing_credential_names_the_field_and_the_variable(write_config, plugins, base_config):
    text = base_config + '\n[sinks.crm]\nplugin = "salesforce"\ninstance_url = "https://acme.my.salesforce.com"\n' \
                         'client_id = "key"\n'
    with pytest.raises(ConfigError) as info:
        load_config(write_config(text), plugins)
    assert any("[sinks.crm] client_secret" in p and "export SALESFORCE_CLIENT_SECRET" in p
               for p in info.value.problems)
    with pytest.raises(ValidationError) as bad:
        SalesforceSinkConfig().load({"auth": "jwt", "client_id": "k", "fields": {"Case": {"Subject": "subjekt"}}})
    assert {"username", "private_key", "fields"} <= set(bad.value.messages)


def test_check_reports_the_limits_and_what_the_org_is_missing(org):
    with pytest.raises(ConfigError) as info:
        make_sink().check()
    problems = "\n".join(info.value.problems)
    assert "Lead.Social_Record_Id__c is not marked External ID" in problems
    assert "Lead has no field Social_Reasons__c" in problems
    assert "Case" not in problems
    assert len(org.composites) == 1, "one harmless call"
    message = make_sink(objects={"case": "Case"}).check()
    assert "99,873 of 100,000 daily API requests left" in message and "Case ready" in message


def test_a_thousand_records_cost_two_calls(org):
    sink = make_sink()
    records = [record(n, "lead" if n % 5 == 0 else "case") for n in range(1000)]
    out = sink.send(records)
    assert len(out) == 1000 and all(d.status is DeliveryStatus.DELIVERED for d in out)
    assert len(org.token_requests) + len(org.composites) == 2
    assert len(org.rows["Case"]) == 800 and len(org.rows["Lead"]) == 200


# --- the contract every sink honours (socialcrm.testing) ---

from socialcrm.testing import SinkContract  # noqa: E402

_REST_ERRORS = {401: ("INVALID_SESSION_ID", "Session expired or invalid"),
                403: ("INSUFFICIENT_ACCESS", "insufficient access rights on object id"),
                429: ("REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded.")}


def _rest_error(status):
    code, message = _REST_ERRORS.get(status, ("SERVER_UNAVAILABLE", "Service Unavailable"))
    return {"Content-Type": "application/json"}, json.dumps([{"message": message, "errorCode": code}])


def _oauth_error(status):
    body = payload("token_error_invalid_client.json") if status in (400, 401, 403) else {
        "error": "server_error", "error_description": "Service Unavailable"}
    return {"Content-Type": "application/json"}, json.dumps(body)


class TestSalesforceContract(SinkContract):
    plugin = SalesforceSink
    config = {"instance_url": INSTANCE, "client_id": "3MVG9-consumer-key", "client_secret": SECRET}
    invalid_configs = [({"api_version": "61"}, "api_version"), ({"auth": "saml"}, "auth"),
                       ({"client_secret": None}, "client_secret"), ({"instance_url": "not a url"}, "instance_url")]

    def serve(self, system, api):
        def token(request):
            return 200, {}, json.dumps(payload("token_client_credentials.json"))

        def composite(request):
            answers = []
            for sub in json.loads(request.body)["compositeRequest"]:
                ext = sub["url"].rsplit("/", 1)[1]
                results = []
                for row in sub["body"]["records"]:
                    if system.refuses(row[ext]):
                        results.append({"success": False, "errors": [{
                            "statusCode": "REQUIRED_FIELD_MISSING", "message": "Required fields are missing: [Subject]",
                            "fields": ["Subject"]}]})
                        continue
                    obj, created = system.upsert(row[ext], row)
                    results.append({"id": f"5005g{int(obj.id):013d}", "success": True, "errors": [],
                                    "created": created})
                answers.append({"body": results, "httpHeaders": {}, "httpStatusCode": 200,
                                "referenceId": sub["referenceId"]})
            return 200, {"Sforce-Limit-Info": "api-usage=1/100000"}, json.dumps({"compositeResponse": answers})

        api.add_callback(responses.POST, TOKEN_URL, callback=system.guard(token, _oauth_error))
        api.add_callback(responses.POST, COMPOSITE_URL, callback=system.guard(composite, _rest_error))


# --- follow-ups: a comment on the conversation's Case, once ---


def followup(n: int, case_id: str, **extra) -> Record:
    reply = record(n, **extra)
    reply.content = f"Still broken after the reset ({n})"
    reply.conversation, reply.parent, reply.thread_object = "x:1001", "x:1001", case_id
    return reply


def test_a_followup_becomes_a_case_comment_on_the_conversations_case_and_a_resend_adds_none(org):
    sink = make_sink()
    [root] = sink.send([record(1)])
    case_id = root.external_id
    first = sink.send([followup(2, case_id), followup(3, case_id, by_brand=True)])
    assert [d.status for d in first] == [DeliveryStatus.DELIVERED] * 2
    assert len(org.rows["Case"]) == 1, "a follow-up opens no second Case"
    comments = {c["Id"]: c for c in org.rows["CaseComment"].values()}
    assert len(comments) == 2 and {c["ParentId"] for c in comments.values()} == {case_id}
    by_record = {d.record_id: comments[d.external_id] for d in first}
    assert by_record["x:1002"]["CommentBody"].startswith("Still broken after the reset (2)")
    assert by_record["x:1002"]["CommentBody"].endswith("socialcrm record x:1002")
    assert by_record["x:1002"]["IsPublished"] is False and by_record["x:1003"]["IsPublished"] is True
    calls = len(org.composites)
    again = sink.send([followup(2, case_id), followup(3, case_id)])
    assert {d.record_id: d.external_id for d in again} == {d.record_id: d.external_id for d in first}
    assert len(org.rows["CaseComment"]) == 2, "a re-sent follow-up adds no second comment"
    assert len(org.composites) == calls + 1, "the re-send cost one query call and no write"
    query = unquote(org.composites[-1]["compositeRequest"][0]["url"])
    assert f"FROM CaseComment WHERE ParentId IN ('{case_id}')" in query


def test_followups_on_a_lead_or_when_so_configured_are_chatter_feed_items(org):
    sink = make_sink(followup_object="FeedItem", followup_public=True)
    [root] = sink.send([record(1)])
    [lead] = sink.send([record(9, "lead")])
    deliveries = sink.send([followup(2, root.external_id), followup(3, lead.external_id)])
    assert [d.status for d in deliveries] == [DeliveryStatus.DELIVERED] * 2
    items = list(org.rows["FeedItem"].values())
    assert {i["ParentId"] for i in items} == {root.external_id, lead.external_id} and not org.rows["CaseComment"]
    assert all(i["Type"] == "TextPost" and i["Visibility"] == "AllUsers" for i in items)
    assert sink.send([followup(2, root.external_id)])[0].external_id == deliveries[0].external_id
    assert len(org.rows["FeedItem"]) == 2
    lead_sink = make_sink()  # CaseComment is the default, but a Lead takes only feed items
    assert lead_sink.send([followup(4, lead.external_id)])[0].status is DeliveryStatus.DELIVERED
    assert len(org.rows["FeedItem"]) == 3


def test_a_comment_salesforce_refuses_is_rejected_with_its_reason(org):
    org.fail["5005g0000000000404AAV"] = ("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ["ParentId"])
    [delivery] = make_sink().send([followup(2, "5005g0000000000404AAV")])
    assert delivery.status is DeliveryStatus.REJECTED
    assert "CaseComment: INVALID_CROSS_REFERENCE_KEY" in delivery.error and "ParentId" in delivery.error


def test_a_long_followup_is_cut_to_the_comment_limit_but_keeps_its_marker(org):
    sink = make_sink()
    [root] = sink.send([record(1)])
    reply = followup(2, root.external_id)
    reply.content = "é" * 5000
    sink.send([reply])
    [comment] = org.rows["CaseComment"].values()
    assert len(comment["CommentBody"].encode()) <= 4000 and comment["CommentBody"].endswith("socialcrm record x:1002")
