"""Benchmark: HTTP calls the Salesforce and Zendesk sinks make to deliver 1,000 records, beside the naive way.

Each sink delivers the same 1,000 records (800 cases, queries and rants, 200 leads; every author a
different person) to a `responses` fake of its CRM that keeps what it is sent, exactly as the host would
(batches of the sink's ``max_batch``). Every HTTP request counts: sign-in, Contact lookups, the Zendesk
existence check, requester upserts, ticket creation and job polling. The naive way is one sign-in and
one create call per record (1,001 calls). Scenarios:

- ``cold``: a fresh process, nothing in the CRM, no author known to it (the worst case);
- ``known authors``: the same process delivers 1,000 more records by the same authors;
- ``re-send``: a new process re-sends the first 1,000 (after a crash): found, not duplicated;
- ``follow-ups``: 1,000 replies, one to each of the first 1,000, added to the object each conversation has
  (Salesforce CaseComments/FeedItems, Zendesk ticket comments), then re-sent by a new process: none twice.

    python bench/sinks.py [--records 1000] [--json]
"""
from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, unquote, urlsplit

import responses

from socialcrm.core.sdk.brand import Brand
from socialcrm.core.sdk.connector import PluginContext
from socialcrm.core.sdk.model import Author, Influence, Record, Sentiment
from socialcrm.plugins.sinks.salesforce import SalesforceSink, SalesforceSinkConfig
from socialcrm.plugins.sinks.zendesk import ZendeskSink, ZendeskSinkConfig

SF = "https://acme.my.salesforce.com"
ZD = "https://acme.zendesk.com"
TARGETS = {"salesforce": 5, "zendesk": 15}
T0 = datetime(2026, 10, 1, 10, 0, tzinfo=timezone.utc)


class NoSleep:
    """Injected time: the sinks' waits (job polling) cost nothing in a benchmark."""

    def __init__(self):
        self.now = T0.timestamp() + 600

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def make_records(count: int, start: int = 0, authors: int | None = None) -> list[Record]:
    """``count`` records; every fifth a lead; author n is person n (or n mod ``authors``)."""
    out = []
    for n in range(start, start + count):
        who = n if authors is None else n % authors
        out.append(Record(id=f"x:{1_900_000_000 + n}", network="x", content=f"WaveBox {n} drops wifi every evening",
                          created_at=T0 + timedelta(seconds=n % 600),
                          author=Author(id=f"{4400 + who}", handle=f"customer{who}", name=f"Customer {who}"),
                          url=f"https://x.com/customer{who}/status/{1_900_000_000 + n}",
                          type="lead" if n % 5 == 4 else ("case", "query", "rant", "case")[n % 5],
                          priority=("P1", "P2", "P3", "P4")[n % 4], sentiment=Sentiment("negative", -0.5),
                          influence=Influence(30, "low"), team="care", reasons=["benchmark"]))
    return out


# --- fakes: just enough of each CRM, answering in the documented shapes ---

class FakeSalesforce:
    """OAuth client credentials and Composite (sObject Collections upserts and SOQL queries)."""

    def __init__(self, mock: responses.RequestsMock):
        self.rows: dict[tuple[str, str], str] = {}
        self.comments: dict[str, dict] = {}  # CaseComment / FeedItem id -> row
        self.contacts = {f"customer{n}": f"0035g{n:013d}" for n in range(0, 1000, 3)}  # a third are Contacts
        mock.add_callback(responses.POST, f"{SF}/services/oauth2/token", callback=self.token)
        mock.add_callback(responses.POST, f"{SF}/services/data/v61.0/composite", callback=self.composite)

    def token(self, request):
        return 200, {}, json.dumps({"access_token": "00Dbench!token", "instance_url": SF, "token_type": "Bearer",
                                    "id": "https://login.salesforce.com/id/00D/005", "issued_at": "1791446400000",
                                    "signature": "x", "scope": "api"})

    def composite(self, request):
        answers = []
        for sub in json.loads(request.body)["compositeRequest"]:
            ref = sub["referenceId"]
            if sub["method"] == "POST":  # sObject Collections create: follow-up comments
                results = []
                for row in sub["body"]["records"]:
                    comment_id = f"00a5g{len(self.comments):013d}"
                    self.comments[comment_id] = dict(row, Id=comment_id)
                    results.append({"id": comment_id, "success": True, "errors": []})
                answers.append({"body": results, "httpHeaders": {}, "httpStatusCode": 200, "referenceId": ref})
                continue
            if sub["method"] == "GET":
                soql = unquote(urlsplit(sub["url"]).query.removeprefix("q="))
                wanted = set(re.findall(r"'([^']*)'", soql))
                rows = [{"attributes": {"type": "Contact"}, "Id": cid, "Social_Handle__c": handle}
                        for handle, cid in self.contacts.items() if handle in wanted]
                if "FROM CaseComment" in soql or "FROM FeedItem" in soql:
                    rows = [c for c in self.comments.values() if c["ParentId"] in wanted]
                answers.append({"body": {"totalSize": len(rows), "done": True, "records": rows},
                                "httpHeaders": {}, "httpStatusCode": 200, "referenceId": ref})
                continue
            kind, ext = sub["url"].rsplit("/", 2)[1:]
            results = []
            for row in sub["body"]["records"]:
                key = (kind, row[ext])
                created = key not in self.rows
                self.rows.setdefault(key, f"5005g{len(self.rows):013d}")
                results.append({"id": self.rows[key], "success": True, "errors": [], "created": created})
            answers.append({"body": results, "httpHeaders": {}, "httpStatusCode": 200, "referenceId": ref})
        return 200, {"Sforce-Limit-Info": "api-usage=10/100000"}, json.dumps({"compositeResponse": answers})


class FakeZendesk:
    """Export search, users/create_or_update_many, tickets/create_many and job statuses."""

    def __init__(self, mock: responses.RequestsMock):
        self.tickets: list[dict] = []
        self.users: dict[str, int] = {}
        self.jobs: dict[str, list] = {}
        self.comments = 0  # follow-up comments added to tickets
        for method, path, callback in [
            (responses.GET, "/api/v2/search/export", self.search),
            (responses.POST, "/api/v2/users/create_or_update_many", self.users_many),
            (responses.POST, "/api/v2/tickets/create_many", self.create_many),
            (responses.GET, "/api/v2/job_statuses/show_many", self.show_many),
            (responses.PUT, "/api/v2/tickets/update_many", self.update_many),
        ]:
            mock.add_callback(method, ZD + path, callback=callback)
        mock.add_callback(responses.GET, re.compile(re.escape(ZD) + r"/api/v2/job_statuses/\w+$"),
                          callback=self.show_one)

    def queue(self, results):
        job_id = f"{len(self.jobs) + 1:032x}"
        self.jobs[job_id] = results
        return 200, {}, json.dumps({"job_status": {"id": job_id, "status": "queued", "total": len(results),
                                                   "progress": None, "results": None, "message": None,
                                                   "url": f"{ZD}/api/v2/job_statuses/{job_id}.json"}})

    def status(self, job_id):
        return {"id": job_id, "status": "completed", "total": len(self.jobs[job_id]),
                "progress": len(self.jobs[job_id]), "results": self.jobs[job_id], "message": "Completed"}

    def search(self, request):
        query = parse_qs(urlsplit(request.url).query)
        size, start = int(query["page[size]"][0]), int(query.get("page[after]", ["0"])[0])
        page = self.tickets[start:start + size]
        more = start + size < len(self.tickets)
        return 200, {}, json.dumps({"results": page, "facets": None, "links": {"next": None, "prev": None},
                                    "meta": {"has_more": more, "after_cursor": str(start + size) if more else None,
                                             "before_cursor": None}})

    def users_many(self, request):
        results = []
        for index, user in enumerate(json.loads(request.body)["users"]):
            self.users.setdefault(user["external_id"], 10_000 + len(self.users))
            results.append({"id": self.users[user["external_id"]], "index": index, "status": "Created"})
        return self.queue(results)

    def create_many(self, request):
        results = []
        for index, ticket in enumerate(json.loads(request.body)["tickets"]):
            self.tickets.append(dict(ticket, id=50_000 + len(self.tickets), result_type="ticket"))
            results.append({"id": self.tickets[-1]["id"], "index": index})
        return self.queue(results)

    def update_many(self, request):
        results = []
        for update in json.loads(request.body)["tickets"]:
            ticket = self.tickets[update["id"] - 50_000]
            ticket["tags"] = [*ticket.get("tags", []), *update["additional_tags"]]
            self.comments += 1
            results.append({"action": "update", "id": update["id"], "status": "Updated", "success": True})
        return self.queue(results)

    def show_one(self, request):
        return 200, {}, json.dumps({"job_status": self.status(urlsplit(request.url).path.rsplit("/", 1)[1])})

    def show_many(self, request):
        ids = parse_qs(urlsplit(request.url).query)["ids"][0].split(",")
        return 200, {}, json.dumps({"job_statuses": [self.status(i) for i in ids]})


# --- running ---

def deliver(sink, records) -> int:
    """Send in batches of the sink's max_batch; return how many records were delivered."""
    return sum(d.status.value == "delivered" for d in deliveries(sink, records))


def deliveries(sink, records) -> list:
    """Send in batches of the sink's max_batch; return every outcome."""
    out = []
    for start in range(0, len(records), sink.max_batch):
        out.extend(sink.send(records[start:start + sink.max_batch]))
    return out


def make_followups(roots: list[Record], objects: dict[str, str]) -> list[Record]:
    """One reply to each root, told the object its conversation has (as the host does before ``send``)."""
    replies = make_records(len(roots), start=len(roots) * 10)
    for reply, root in zip(replies, roots):
        reply.conversation, reply.parent, reply.thread_object = root.id, root.id, objects[root.id]
    return replies


def salesforce(n: int, contacts: bool) -> dict[str, int]:
    clock = NoSleep()

    def sink():
        config = SalesforceSinkConfig().load({"instance_url": SF, "client_id": "key", "client_secret": "secret",
                                              **({"contact_field": "Social_Handle__c"} if contacts else {})})
        return SalesforceSink(config, PluginContext("salesforce", Brand("Brightwave")), sleep=clock.sleep,
                              clock=clock)

    return _scenarios(n, sink, FakeSalesforce, lambda fake: len(fake.rows), lambda fake: len(fake.comments))


def zendesk(n: int, requester: str = "author") -> dict[str, int]:
    clock = NoSleep()

    def sink():
        config = ZendeskSinkConfig().load({"base_url": ZD, "email": "bot@acme.com", "api_token": "token",
                                           "requester": requester})
        return ZendeskSink(config, PluginContext("zendesk", Brand("Brightwave")), sleep=clock.sleep, clock=clock)

    return _scenarios(n, sink, FakeZendesk, lambda fake: len(fake.tickets), lambda fake: fake.comments)


def _scenarios(n, make_sink, make_fake, objects, comments) -> dict[str, int]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake = make_fake(mock)
        first, records = make_sink(), make_records(n)
        made = {d.record_id: d.external_id for d in deliveries(first, records) if d.status.value == "delivered"}
        assert len(made) == n
        cold = len(mock.calls)
        assert deliver(first, make_records(n, start=n, authors=n)) == n
        known = len(mock.calls) - cold
        before = len(mock.calls)
        assert deliver(make_sink(), records) == n
        resend = len(mock.calls) - before
        assert objects(fake) == 2 * n, "a re-send made a second object"
        replies = make_followups(records, made)
        before = len(mock.calls)
        assert deliver(first, replies) == n
        followups = len(mock.calls) - before
        before = len(mock.calls)
        assert deliver(make_sink(), replies) == n
        followups_resend = len(mock.calls) - before
        assert comments(fake) == n and objects(fake) == 2 * n, "a follow-up was added twice or opened an object"
    return {"cold": cold, "known_authors": known, "resend_new_process": resend, "followups": followups,
            "followups_resend": followups_resend}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--json", action="store_true", help="end with one JSON object of the figures")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    n = args.records
    naive = 1 + n
    runs = {
        "salesforce": salesforce(n, contacts=True),
        "salesforce (no Contact lookup)": salesforce(n, contacts=False),
        "zendesk": zendesk(n),
        "zendesk (requester = \"none\")": zendesk(n, requester="none"),
    }
    per_1000 = 1000 / n
    print(f"HTTP calls to deliver {n:,} records (naive: 1 sign-in + 1 create per record = {naive:,})")
    print(f"{'sink':<32}{'cold':>7}{'known authors':>15}{'re-send, new process':>23}{'naive / cold':>14}"
          f"{'follow-ups':>12}{'re-sent':>9}")
    for name, figures in runs.items():
        print(f"{name:<32}{figures['cold']:>7}{figures['known_authors']:>15}{figures['resend_new_process']:>23}"
              f"{naive / figures['cold']:>13.0f}x{figures['followups']:>12}{figures['followups_resend']:>9}")
    sf, zd = runs["salesforce"], runs["zendesk"]
    figures = {
        "records": n,
        "salesforce_calls_per_1000": round(sf["cold"] * per_1000, 1),
        "zendesk_calls_per_1000": round(zd["cold"] * per_1000, 1),
        "salesforce_calls_per_1000_known_authors": round(sf["known_authors"] * per_1000, 1),
        "zendesk_calls_per_1000_known_authors": round(zd["known_authors"] * per_1000, 1),
        "salesforce_resend_calls_per_1000": round(sf["resend_new_process"] * per_1000, 1),
        "zendesk_resend_calls_per_1000": round(zd["resend_new_process"] * per_1000, 1),
        "salesforce_calls_per_1000_no_contact_lookup": round(runs["salesforce (no Contact lookup)"]["cold"] * per_1000, 1),
        "zendesk_calls_per_1000_no_requesters": round(runs['zendesk (requester = "none")']["cold"] * per_1000, 1),
        "salesforce_followup_calls_per_1000": round(sf["followups"] * per_1000, 1),
        "zendesk_followup_calls_per_1000": round(zd["followups"] * per_1000, 1),
        "salesforce_followup_resend_calls_per_1000": round(sf["followups_resend"] * per_1000, 1),
        "zendesk_followup_resend_calls_per_1000": round(zd["followups_resend"] * per_1000, 1),
        "naive_calls_per_1000": round(naive * per_1000, 1),
        "salesforce_ratio": round(naive / sf["cold"], 1),
        "zendesk_ratio": round(naive / zd["cold"], 1),
        "salesforce_target": TARGETS["salesforce"],
        "zendesk_target": TARGETS["zendesk"],
    }
    figures["salesforce_target_met"] = figures["salesforce_calls_per_1000"] <= TARGETS["salesforce"]
    figures["zendesk_target_met"] = figures["zendesk_calls_per_1000"] <= TARGETS["zendesk"]
    figures["followup_targets_met"] = (figures["salesforce_followup_calls_per_1000"] <= TARGETS["salesforce"]
                                       and figures["zendesk_followup_calls_per_1000"] <= TARGETS["zendesk"])
    figures["zendesk_target_met_known_authors"] = figures["zendesk_calls_per_1000_known_authors"] <= TARGETS["zendesk"]
    print(f"targets per 1,000: Salesforce <= {TARGETS['salesforce']} "
          f"({'met' if figures['salesforce_target_met'] else 'NOT met'}), Zendesk <= {TARGETS['zendesk']} "
          f"({'met' if figures['zendesk_target_met'] else 'not met cold'}; "
          f"{'met' if figures['zendesk_target_met_known_authors'] else 'not met'} once authors are known)")
    print(f"follow-ups per 1,000: Salesforce {figures['salesforce_followup_calls_per_1000']:g}, Zendesk "
          f"{figures['zendesk_followup_calls_per_1000']:g} ({'met' if figures['followup_targets_met'] else 'NOT met'})")
    if args.json:
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
