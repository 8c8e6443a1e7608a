"""Outage waves become one incident (issue #16): a wave of 125 near-identical complaints from 40 accounts,
mixed into the bundled sample traffic, makes exactly one incident record that 125 member records link to,
delivered to Zendesk as a problem ticket before its members' incident tickets; nothing else is grouped."""
import importlib.util
import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import responses

from socialcrm import INCIDENT_TYPE
from socialcrm.core.engine.config import load_config
from socialcrm.core.engine.incidents import key_terms, similarity
from socialcrm.core.engine.pipeline import Pipeline
from socialcrm.core.store import Store
from socialcrm.testing import FakeClock

DEMO = Path(__file__).resolve().parent.parent / "samples" / "demo.toml"


def _sink_test_module(name: str):
    """tests/test_sink_NAME.py, for its fake vendor (test modules are imported by path, not by name)."""
    spec = importlib.util.spec_from_file_location(f"fake_{name}", Path(__file__).with_name(f"test_sink_{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_ZENDESK, _SALESFORCE, _JIRA = (_sink_test_module(name) for name in ("zendesk", "salesforce", "jira"))
FakeZendesk, TOKEN = _ZENDESK.FakeZendesk, _ZENDESK.TOKEN
spec = _ZENDESK.spec  # the Zendesk OpenAPI document, as a fixture
SAMPLES = DEMO.with_name("mentions.jsonl")
START = datetime(2026, 10, 20, 7, 55, tzinfo=timezone.utc)
OPENINGS = ["@BrightwaveHelp", "@BrightwaveHelp hi,", "@BrightwaveHelp hello", "@BrightwaveHelp again:"]
CORE = "no internet in Leeds since 8am, WaveBox light flashing red, fibre down"
ENDINGS = ["", "", "any update?", "is there an outage?", "working from home today too", "please fix",
           "#outage", "what is going on", "still nothing", "LS6 here"]


def wave(posts: int = 125, accounts: int = 40, seed: int = 16) -> list[dict]:
    """``posts`` complaints of one fault, place and product from ``accounts`` accounts, a minute or so apart."""
    rng = random.Random(seed)
    out = []
    for n in range(posts):
        account = n % accounts
        text = " ".join(part for part in (rng.choice(OPENINGS), CORE, rng.choice(ENDINGS)) if part)
        at = START + timedelta(seconds=50 * n + rng.randint(0, 40))
        out.append({"network": "x", "id": f"77{n:05d}", "text": text, "lang": "en",
                    "created_at": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "author": {"id": f"9{account:04d}", "handle": f"leeds_resident_{account}", "followers": 120},
                    "engagement": {"likes": 0, "reposts": 0, "replies": 0, "quotes": 0}})
    return out


def mixed_traffic(posts: int = 125, accounts: int = 40) -> list[dict]:
    """The bundled sample mentions (ordinary traffic) with the wave merged in by time."""
    ordinary = [json.loads(line) for line in SAMPLES.read_text(encoding="utf-8").splitlines() if line.strip()]
    return sorted(ordinary + wave(posts, accounts), key=lambda m: m["created_at"])


ZENDESK_HELPDESK = f"""[sinks.helpdesk]
plugin = "zendesk"
base_url = "https://acme.zendesk.com"
email = "social-bot@acme.com"
api_token = "{TOKEN}"
poll_interval = 0
"""


def _config(tmp_path, plugins, *, helpdesk: str | None = None, incidents: str | None = None):
    (tmp_path / "mentions.jsonl").write_text("".join(json.dumps(m) + "\n" for m in mixed_traffic()),
                                             encoding="utf-8")
    text = DEMO.read_text(encoding="utf-8").replace("{samples}", str(tmp_path)).replace("{out}", str(tmp_path))
    if helpdesk:
        text = text.replace(f'[sinks.helpdesk]\nplugin = "jsonl"\npath = "{tmp_path}/helpdesk.jsonl"\n', helpdesk)
    if incidents:
        block = "[incidents]\nenabled = true\nwindow = 21600\nmin_accounts = 5\n"
        assert block in text
        text = text.replace(block, incidents)
    path = tmp_path / "socialcrm.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path, plugins)


@pytest.fixture
def zendesk():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        # The ordinary traffic holds replies too, which Zendesk gets as comments on their tickets.
        yield FakeZendesk(rsps, FakeClock(), uses=("search", "by_external_id", "create_many", "users_many",
                                                   "show_one", "show_many", "update_many", "tickets_show_many"))


def test_a_wave_of_125_posts_from_40_accounts_becomes_one_incident_in_zendesk(tmp_path, plugins, zendesk):
    pipeline = Pipeline(_config(tmp_path, plugins, helpdesk=ZENDESK_HELPDESK), plugins)
    listened, delivered = pipeline.run_once()
    records = list(pipeline.store.iter_records())
    incidents = [r for r in records if r.type == INCIDENT_TYPE]
    members = [r for r in records if r.incident]
    wave_ids = {f"x:{m['id']}" for m in wave()}

    # Exactly one incident; its 125 members are the wave's posts, each still a record of its own.
    assert listened.incidents == 1 and len(incidents) == 1
    incident = incidents[0]
    assert {r.id for r in members} == wave_ids and all(r.incident == incident.id for r in members)
    assert all(r.type == "case" for r in members)
    summary = incident.incident_summary
    assert (summary.posts, summary.accounts) == (125, 40)
    wave_times = sorted(datetime.fromisoformat(m["created_at"].replace("Z", "+00:00")) for m in wave())
    assert (summary.first_at, summary.last_at) == (wave_times[0], wave_times[-1])
    assert summary.first_at >= START
    assert {"internet", "leeds", "fibre", "flashing"} <= set(summary.terms)
    assert len(summary.examples) == 3 and all(e["id"] in wave_ids for e in summary.examples)
    assert incident.route == ["helpdesk"] and incident.mode == "reactive"

    # Grouping is explained, on the incident and on every member.
    assert incident.reasons[0].startswith("incident: 125 complaints from 40 accounts")
    assert all(any(reason.startswith(f"incident {incident.id}: one of") for reason in r.reasons) for r in members)

    # Zendesk: one problem ticket, made before the 125 incident tickets that name it as their problem.
    tickets = [t for call in zendesk.bodies["tickets"] for t in call]
    problems = [t for t in tickets if t.get("type") == "problem" and t["external_id"] == incident.id]
    assert len(problems) == 1 and zendesk.bodies["tickets"][0] == problems
    problem_id = next(i for i, t in zendesk.tickets.items() if t["external_id"] == incident.id)
    linked = [t for t in tickets if t.get("problem_id") is not None]
    assert {t["external_id"] for t in linked} == wave_ids
    assert all(t["problem_id"] == problem_id and t["type"] == "incident" for t in linked)
    assert sum(1 for t in tickets if t["external_id"] in wave_ids) == 125  # each once
    # Calls counted: the problem's own pass (search, requesters, create, poll), then the batch's.
    assert delivered.calls["helpdesk"] == len(zendesk.requests)
    # The problem: search, create_many, its job (3). The batch's 313 other tickets (the samples' news and
    # spam, such as the "contact @fix_your_network_now" replies, open none): search, requester calls of up to
    # 100 users and one poll of their jobs, a create_many of up to 100 tickets per batch and one poll of their jobs.
    # Then the ordinary traffic's replies become comments on their tickets: one search for re-sent ones,
    # tickets/update_many (one entry per ticket a call) and one poll of their jobs.
    others = 313  # what the bundled samples' learning sends to the helpdesk beside the wave
    assert len(tickets) == 1 + others
    batches = -(-others // 100)
    paths = [r[1] for r in zendesk.requests]
    assert paths[:3] == ["/api/v2/search/export", "/api/v2/tickets/create_many", paths[2]]  # the problem first
    head = len(paths) - paths[::-1].index("/api/v2/tickets/create_many") + 1  # up to the batch's job poll
    creates = [r for r in zendesk.requests if r[1] != "/api/v2/tickets/update_many"][:head]
    assert zendesk.requests[:head] == creates and paths[head - 1] == "/api/v2/job_statuses/show_many"
    replies = paths[head:]
    assert replies[0] == "/api/v2/search/export" and replies[-1] == "/api/v2/job_statuses/show_many"
    assert len(replies) > 2 and set(replies[1:-1]) == {"/api/v2/tickets/update_many"}
    assert len(zendesk.calls("/api/v2/tickets/create_many")) == 1 + batches
    comments = sum(len(batch) for batch in zendesk.bodies.get("updates", []))
    assert delivered.delivered["helpdesk"] == len(tickets) + comments


def test_nothing_else_in_ordinary_traffic_is_grouped(tmp_path, plugins):
    pipeline = Pipeline(_config(tmp_path, plugins), plugins)
    pipeline.run_once()
    records = list(pipeline.store.iter_records())
    assert sum(r.type == INCIDENT_TYPE for r in records) == 1
    assert sum(1 for r in records if r.incident) == 125
    helpdesk = [json.loads(line) for line in (tmp_path / "helpdesk.jsonl").read_text().splitlines()]
    incident = next(r for r in helpdesk if r["type"] == INCIDENT_TYPE)
    # The file sinks carry the fields; the incident is written before its first member.
    assert incident["incident_summary"]["posts"] == 125
    first_member = next(i for i, r in enumerate(helpdesk) if r["incident"] == incident["id"])
    assert helpdesk.index(incident) < first_member


def test_grouping_can_be_turned_off(tmp_path, plugins):
    pipeline = Pipeline(_config(tmp_path, plugins, incidents="[incidents]\nenabled = false\n"), plugins)
    listened, _ = pipeline.run_once()
    records = list(pipeline.store.iter_records())
    assert listened.incidents == 0
    assert not any(r.type == INCIDENT_TYPE or r.incident for r in records)
    assert not any("incident" in reason for r in records for reason in r.reasons)


def test_fewer_accounts_than_min_accounts_make_no_incident(tmp_path, plugins):
    pipeline = Pipeline(_config(tmp_path, plugins, incidents="[incidents]\nenabled = true\nmin_accounts = 41\n"),
                        plugins)
    pipeline.run_once()
    assert not any(r.incident for r in pipeline.store.iter_records())


def test_key_terms_drop_links_handles_numbers_and_the_brand():
    terms = key_terms("@BrightwaveHelp no internet in Leeds since 8am https://x.co/1 Brightwave", {"brightwave"})
    assert terms == {"internet", "leeds", "since"}
    assert similarity(frozenset({"a", "b"}), frozenset({"b", "c"})) == pytest.approx(1 / 3)


def _incident_and_members(make_record, members: int = 2):
    """An incident record and its member records, built with a sink test's ``record`` helper."""
    people = [make_record(n) for n in range(1, members + 1)]
    parent = make_record(99)
    parent.id, parent.type = "incident:0123456789abcdef0123", INCIDENT_TYPE
    for person in people:
        person.incident = parent.id
    return parent, people


def test_salesforce_upserts_the_parent_case_first_and_members_name_it_by_external_id():
    with responses.RequestsMock() as rsps:
        org = _SALESFORCE.FakeOrg(rsps)
        parent, people = _incident_and_members(_SALESFORCE.record)
        deliveries = _SALESFORCE.make_sink().send([*people, parent])
    assert all(d.status.value == "delivered" for d in deliveries) and len(deliveries) == 3
    [composite] = org.composites
    first, second = composite["compositeRequest"]
    assert [r["Social_Record_Id__c"] for r in first["body"]["records"]] == [parent.id]
    assert "Parent" not in first["body"]["records"][0]
    assert [r["Parent"] for r in second["body"]["records"]] == [{"Social_Record_Id__c": parent.id}] * 2
    assert org.rows["Case"][parent.id]["Social_Type__c"] == INCIDENT_TYPE


@responses.activate
def test_jira_creates_the_incident_issue_first_and_links_each_member_issue_to_it():
    site = _JIRA.SITE
    responses.post(_JIRA.SEARCH, json=_JIRA.payload("search.jql.empty.json"))
    responses.post(_JIRA.BULK, json={"issues": [{"id": "10100", "key": "ED-100", "self": f"{site}/rest/api/3/issue/10100"}],
                                     "errors": []}, status=201)
    responses.post(_JIRA.BULK, json=_JIRA.payload("issue.bulk.201.json"), status=201)
    parent, people = _incident_and_members(_JIRA.record)
    deliveries = {d.record_id: d for d in _JIRA.make_sink().send([*people, parent])}
    assert deliveries[parent.id].external_id == "ED-100"
    first, second = _JIRA.bodies(_JIRA.BULK)
    assert len(first["issueUpdates"]) == 1 and "update" not in first["issueUpdates"][0]
    links = [u["update"]["issuelinks"] for u in second["issueUpdates"]]
    assert links == [[{"add": {"type": {"name": "Relates"}, "outwardIssue": {"key": "ED-100"}}}]] * 2


@responses.activate
def test_jira_members_wait_while_their_incident_has_no_issue():
    responses.post(_JIRA.SEARCH, json=_JIRA.payload("search.jql.empty.json"))
    _, people = _incident_and_members(_JIRA.record)
    deliveries = _JIRA.make_sink().send(people)
    assert [d.status.value for d in deliveries] == ["retry", "retry"]
    assert all("waiting for the Jira issue of incident:" in d.error for d in deliveries)


def test_zendesk_members_wait_while_their_problem_ticket_does_not_exist(zendesk):
    parent, people = _incident_and_members(_ZENDESK.record)
    deliveries = _ZENDESK.make_sink(FakeClock()).send(people)
    assert [d.status.value for d in deliveries] == ["retry", "retry"]
    assert zendesk.calls("/api/v2/tickets") and not zendesk.calls("/api/v2/tickets/create_many")


def test_an_older_database_gains_the_incident_column(tmp_path):
    from sqlalchemy import Column, MetaData, Table, create_engine, inspect

    from socialcrm.core.store import Store, upgrade_store
    from socialcrm.core.store.schema import records
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = MetaData()
    Table("records", old, *(Column(c.name, c.type, primary_key=c.primary_key) for c in records.columns
                            if c.name != "incident"))
    engine = create_engine(url)
    old.create_all(engine)
    engine.dispose()
    upgrade_store(url)  # `socialcrm db upgrade`
    store = Store(url)
    assert "incident" in {c["name"] for c in inspect(store.db.engine).get_columns("records")}
    store.close()


def test_erasing_a_member_takes_their_post_out_of_the_incident(tmp_path, plugins):
    pipeline = Pipeline(_config(tmp_path, plugins), plugins)
    pipeline.run_once()
    [incident] = [r for r in pipeline.store.iter_records() if r.type == INCIDENT_TYPE]
    example = incident.incident_summary.examples[0]
    pipeline.store.erase_author("x", example["author"], actor="test", author_hash="h")
    stored = pipeline.store.get_record(incident.id)
    assert example["id"] not in {e["id"] for e in stored.incident_summary.examples}
    assert all(example["author"] not in json.dumps(e) for e in stored.incident_summary.examples)
    assert example["content"] not in stored.content


def test_problem_and_incident_tickets_follow_the_zendesk_spec(spec, zendesk):
    parent, people = _incident_and_members(_ZENDESK.record)
    _ZENDESK.make_sink(FakeClock()).send([*people, parent])
    body = spec["paths"]["/api/v2/tickets/create_many"]["post"]["requestBody"]["content"]["application/json"]
    ticket = _ZENDESK._schema(spec, _ZENDESK._schema(spec, body["schema"])["properties"]["tickets"]["items"])
    fields = ticket["properties"]
    problem, member = zendesk.bodies["tickets"][0][0], zendesk.bodies["tickets"][1][0]
    assert set(problem) <= set(fields) and set(member) <= set(fields)
    kinds = _ZENDESK._schema(spec, fields["type"]).get("enum", ["problem", "incident"])
    assert (problem["type"], member["type"]) == ("problem", "incident") and {"problem", "incident"} <= set(kinds)
    assert member["problem_id"] == next(i for i, t in zendesk.tickets.items() if t["external_id"] == parent.id)


def _group(gid: str, members: list[str], at: datetime) -> dict:
    return {"id": gid, "terms": {"leeds": len(members), "fibre": len(members)}, "members": members,
            "authors": [f"x:{m}" for m in members], "examples": [], "first_at": at, "last_at": at, "opened": False}


def _read_statements(store) -> list[str]:
    """Every SELECT the store's engine runs from now on, as SQL text."""
    from sqlalchemy import event
    seen: list[str] = []

    def note(conn, cursor, statement, *rest):
        if statement.startswith("SELECT"):
            seen.append(statement)

    event.listen(store.db.engine, "before_cursor_execute", note)
    return seen


def test_a_page_decodes_only_the_incident_groups_that_changed_since_the_last(store):
    """The groups stay decoded between pages; a page reads their versions, and in full only the groups it
    does not hold at the stored version: those written since by another process (here a second store)."""
    other = Store(store.url)
    with store.page() as tx:
        tx.incident_groups(START)
        tx.save_incident_groups([_group("incident:a", ["x:1"], START), _group("incident:b", ["x:2"], START)])
    with store.page() as tx:
        [a, b] = tx.incident_groups(START)
        a["members"].append("x:3")
        tx.save_incident_groups([a])
    with other.page() as tx:
        [_, b_elsewhere] = tx.incident_groups(START)
        b_elsewhere["members"].append("x:4")
        tx.save_incident_groups([b_elsewhere])
    reads = _read_statements(store)
    with store.page() as tx:
        [again_a, again_b] = tx.incident_groups(START)
    assert again_a is a  # this process's own write: not read again
    assert again_b is not b and again_b["members"] == ["x:2", "x:4"]  # the other process's write is
    full_reads = [s for s in reads if "incidents.terms" in s]
    assert len(full_reads) == 1
    other.close()


def test_a_failed_page_leaves_no_changed_incident_group_behind(store):
    """The engine changes the groups it is handed in place: when the page's transaction rolls back, the
    next page reads the groups as stored, not as the failed page left them."""
    with store.page() as tx:
        tx.incident_groups(START)
        tx.save_incident_groups([_group("incident:a", ["x:1"], START)])
    with pytest.raises(RuntimeError):
        with store.page() as tx:
            [group] = tx.incident_groups(START)
            group["members"].append("x:2")
            tx.save_incident_groups([group])
            raise RuntimeError("crash before commit")
    with store.page() as tx:
        [group] = tx.incident_groups(START)
    assert group["members"] == ["x:1"]


def test_an_erasure_makes_other_processes_read_the_group_again(store):
    """Erasing a member changes its group's version, so a pipeline holding the group decoded reads it again."""
    from socialcrm.core.sdk.model import Author, Record
    from socialcrm.core.store import incidents as stored_groups
    with store.page() as tx:
        tx.incident_groups(START)
        tx.save_incident_groups([_group("incident:a", ["x:1", "x:2"], START)])
    with store.page() as tx:
        tx.incident_groups(START)  # now held decoded
    gone = Record(id="x:1", network="x", content="", created_at=START, author=Author(id="1"))
    with store.db.begin() as conn:
        assert stored_groups.forget_records(conn, [gone]) == 1
    with store.page() as tx:
        [group] = tx.incident_groups(START)
    assert group["members"] == ["x:2"]


def test_signatures_are_kept_only_while_the_group_is_unchanged():
    from socialcrm.core.engine.incidents import Signatures, signature
    signatures = Signatures()
    group = _group("incident:a", ["x:1", "x:2"], START)
    first = signatures.of(group)
    assert signatures.of(group) is first  # the same object, the same members: kept
    group["members"].append("x:3")
    group["terms"]["outage"] = 3
    assert signatures.of(group) == signature(group) != first
    reread = _group("incident:a", ["x:1", "x:2"], START)
    reread["terms"] = {"storm": 2}
    assert signatures.of(reread) == frozenset({"storm"})  # another object (read again): computed afresh
