"""The plugin kit (socialcrm.testing) run as an author runs it: a sound plugin passes, each broken one fails
the check meant to catch it, and the guide's example plugins pass."""
import re
import shutil
import textwrap
from pathlib import Path

import pytest

from socialcrm.testing import FakeSystem, Fault, Upstream, make_context, make_record, mention_problems

pytest_plugins = ["pytester"]

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"

PLUGINS = '''
import json
import logging
from datetime import datetime, timezone

from marshmallow import EXCLUDE, RAISE, Schema, fields

from socialcrm import Delivery, Mention, Page, RetriableError, Sink, Source
from socialcrm.testing import SinkContract, SourceContract

BASE = "https://api.kit.example"


class Config(Schema):
    class Meta:
        unknown = RAISE

    token = fields.String(required=True)


class LooseConfig(Config):
    class Meta:
        unknown = EXCLUDE


class ShadowingConfig(Config):
    poll_interval = fields.Integer(load_default=60)


class GoodSource(Source):
    """Items from the kit's fake API."""
    name = "kitsource"
    ConfigSchema = Config
    secret_fields = ("token",)

    def __init__(self, config, context):
        super().__init__(config, context)
        self.http = context.http()

    def get(self, since):
        return self.http.get(BASE + "/items", params={"since_id": since},
                             headers={"Authorization": "Bearer " + self.config["token"]}).json()["items"]

    def fetch(self, cursor):
        since = (cursor or {}).get("since_id", 0)
        while True:
            items = self.get(since)
            if not items:
                return
            since = items[-1]["id"]
            yield Page([self.mention(i) for i in items], self.cursor(since))

    def cursor(self, since):
        return {"since_id": since}

    def mention(self, item):
        created = datetime.fromisoformat(item["created_at"].replace("Z", "+00:00"))
        return Mention(network="kit", native_id=str(item["id"]), text=item["text"], created_at=created)


class RepeatsPageSource(GoodSource):
    """Yields its first page twice."""
    def fetch(self, cursor):
        for number, page in enumerate(super().fetch(cursor)):
            yield page
            if number == 0:
                yield page


class SkipsAheadSource(GoodSource):
    """Stores a cursor past the last item it read."""
    def cursor(self, since):
        return {"since_id": since + 3}


class NaiveTimeSource(GoodSource):
    """Gives created_at without a time zone."""
    def mention(self, item):
        mention = super().mention(item)
        mention.created_at = mention.created_at.replace(tzinfo=None)
        return mention


class LooseSchemaSource(GoodSource):
    """Accepts unknown config keys."""
    ConfigSchema = LooseConfig


class ShadowsHostKeySource(GoodSource):
    """Names a config field the host keeps for itself."""
    ConfigSchema = ShadowingConfig


class SwallowsErrorsSource(GoodSource):
    """Hides every failure and reports nothing new."""
    def fetch(self, cursor):
        try:
            yield from super().fetch(cursor)
        except Exception:
            return


class GoodSink(Sink):
    """Posts records to the kit's fake API."""
    name = "kitsink"
    ConfigSchema = Config
    secret_fields = ("token",)
    max_batch = 10

    def __init__(self, config, context):
        super().__init__(config, context)
        self.http = context.http()

    def headers(self, record):
        return {"Authorization": "Bearer " + self.config["token"], "Idempotency-Key": record.id}

    def send(self, records):
        out = []
        for index, record in enumerate(records):
            try:
                response = self.http.post(BASE + "/records", json=record.to_dict(), headers=self.headers(record),
                                          classify=False)
            except RetriableError as exc:
                out.extend(self.later(r, exc) for r in records[index:])
                break
            if response.status_code >= 400:
                out.append(self.refused(record, response))
            else:
                out.append(Delivery.delivered(record.id, str(response.json()["id"])))
        return out

    def later(self, record, exc):
        return Delivery.retry(record.id, str(exc), exc.retry_after)

    def refused(self, record, response):
        return Delivery.rejected(record.id, response.text)


class DropsOutcomeSink(GoodSink):
    """Loses the last record's outcome."""
    def send(self, records):
        return super().send(records)[:-1]


class NoKeySink(GoodSink):
    """Sends no idempotency key."""
    def headers(self, record):
        return {"Authorization": "Bearer " + self.config["token"]}


class RejectsTransientSink(GoodSink):
    """Sends every record that met trouble to the dead-letter queue."""
    def later(self, record, exc):
        return Delivery.rejected(record.id, str(exc))


class RetriesInvalidSink(GoodSink):
    """Retries records the system refused for good."""
    def refused(self, record, response):
        return Delivery.retry(record.id, response.text)


class ForgetsWaitSink(GoodSink):
    """Drops the wait the server asked for."""
    def later(self, record, exc):
        return Delivery.retry(record.id, str(exc))


class LeaksSecretSink(GoodSink):
    """Logs its credentials."""
    def send(self, records):
        logging.getLogger("kitsink").debug("sending with token %s", self.config["token"])
        return super().send(records)


def serve_items(upstream, api):
    def items(request):
        found = upstream.after(int(request.params["since_id"]), 3)
        body = [{"id": i.id, "text": i.text, "created_at": i.created_iso} for i in found]
        return 200, {}, json.dumps({"items": body})
    api.add_callback("GET", BASE + "/items", callback=upstream.guard(items))


def serve_records(system, api):
    def create(request):
        record = json.loads(request.body)
        if system.refuses(record["id"]):
            return 422, {}, json.dumps({"error": "content: too long"})
        stored, _ = system.create(record["id"], record, idempotency_key=request.headers.get("Idempotency-Key"))
        return 201, {}, json.dumps({"id": stored.id})
    api.add_callback("POST", BASE + "/records", callback=system.guard(create))


class SourceKit(SourceContract):
    config = {"token": "s3cret-token-value"}

    def serve(self, upstream, api):
        serve_items(upstream, api)


class SinkKit(SinkContract):
    config = {"token": "s3cret-token-value"}

    def serve(self, system, api):
        serve_records(system, api)


class TestGoodSource(SourceKit):
    plugin = GoodSource


class TestRepeatsPageSource(SourceKit):
    plugin = RepeatsPageSource


class TestSkipsAheadSource(SourceKit):
    plugin = SkipsAheadSource


class TestNaiveTimeSource(SourceKit):
    plugin = NaiveTimeSource


class TestLooseSchemaSource(SourceKit):
    plugin = LooseSchemaSource


class TestShadowsHostKeySource(SourceKit):
    plugin = ShadowsHostKeySource


class TestSwallowsErrorsSource(SourceKit):
    plugin = SwallowsErrorsSource


class TestGoodSink(SinkKit):
    plugin = GoodSink


class TestDropsOutcomeSink(SinkKit):
    plugin = DropsOutcomeSink


class TestNoKeySink(SinkKit):
    plugin = NoKeySink


class TestRejectsTransientSink(SinkKit):
    plugin = RejectsTransientSink


class TestRetriesInvalidSink(SinkKit):
    plugin = RetriesInvalidSink


class TestForgetsWaitSink(SinkKit):
    plugin = ForgetsWaitSink


class TestLeaksSecretSink(SinkKit):
    plugin = LeaksSecretSink
'''

# Each broken plugin, and checks that must fail for it (others may fail too).
MUST_FAIL = {
    "TestRepeatsPageSource": {"test_first_run_reads_every_post_once",
                              "test_each_page_cursor_resumes_right_after_that_page"},
    "TestSkipsAheadSource": {"test_each_page_cursor_resumes_right_after_that_page", "test_next_run_reads_only_new_posts"},
    "TestNaiveTimeSource": {"test_mentions_validate_against_the_model"},
    "TestLooseSchemaSource": {"test_config_rejects_unknown_keys_by_name"},
    "TestShadowsHostKeySource": {"test_config_fields_are_not_the_hosts_own_keys"},
    "TestSwallowsErrorsSource": {"test_server_trouble_raises_retriable_error[503]",
                                 "test_server_trouble_raises_retriable_error[timeout]",
                                 "test_bad_credentials_raise_auth_error[401]"},
    "TestDropsOutcomeSink": {"test_one_outcome_per_record", "test_resend_is_the_same_record"},
    "TestNoKeySink": {"test_resend_is_the_same_record", "test_lost_response_then_resend_makes_no_second_object"},
    "TestRejectsTransientSink": {"test_server_trouble_is_retry_later[503]", "test_server_trouble_is_retry_later[timeout]",
                                 "test_long_rate_limit_is_retry_later_with_the_wait"},
    "TestRetriesInvalidSink": {"test_invalid_record_is_rejected_alone"},
    "TestForgetsWaitSink": {"test_long_rate_limit_is_retry_later_with_the_wait"},
    "TestLeaksSecretSink": {"test_secrets_stay_out_of_logs_and_errors"},
}


def _run(pytester, *targets):
    reprec = pytester.inline_run(*map(str, targets), "-p", "no:cacheprovider", "-q", "--tb=short")
    outcomes: dict[str, dict[str, str]] = {}
    texts: dict[str, str] = {}
    for report in reprec.getreports("pytest_runtest_logreport"):
        if report.when != "call" and not (report.when == "setup" and report.outcome != "passed"):
            continue
        parts = report.nodeid.split("::")
        cls, test = (parts[1], parts[2]) if len(parts) == 3 else ("", parts[-1])
        outcomes.setdefault(cls, {})[test] = report.outcome
        if report.failed:
            texts[f"{cls}::{test}"] = str(report.longrepr)
    return outcomes, texts


def test_sound_plugins_pass_and_broken_ones_fail_the_right_checks(pytester):
    module = pytester.makepyfile(test_plugins=PLUGINS)
    # The sound plugins run the whole contract; each broken one only the checks meant to catch it.
    targets = [f"{module}::TestGoodSource", f"{module}::TestGoodSink"]
    for broken, checks in MUST_FAIL.items():
        targets += [f"{module}::{broken}::{check}" for check in sorted(checks | {"test_config_loads"})]
    outcomes, texts = _run(pytester, *targets)
    for good in ("TestGoodSource", "TestGoodSink"):
        failed = {t: texts.get(f"{good}::{t}", "")[-600:] for t, o in outcomes[good].items() if o == "failed"}
        assert not failed, f"a sound plugin failed the kit: {failed}"
        assert sum(o == "passed" for o in outcomes[good].values()) >= 14
    assert outcomes["TestGoodSink"]["test_secrets_stay_out_of_logs_and_errors"] == "passed"
    for broken, checks in MUST_FAIL.items():
        results = outcomes[broken]
        not_caught = {c: results.get(c) for c in checks if results.get(c) != "failed"}
        assert not not_caught, f"{broken} got through: {not_caught}"
        # The breakage is caught where it is, not by everything failing at once.
        assert results["test_config_loads"] == "passed"
    # The failures say what to change.
    assert "Idempotency-Key" in texts["TestNoKeySink::test_resend_is_the_same_record"]
    assert "exactly one Delivery per record" in texts["TestDropsOutcomeSink::test_one_outcome_per_record"]
    assert "unknown = RAISE" in texts["TestLooseSchemaSource::test_config_rejects_unknown_keys_by_name"]
    assert "repeated" in texts["TestRepeatsPageSource::test_first_run_reads_every_post_once"]
    assert "aware UTC" in texts["TestNaiveTimeSource::test_mentions_validate_against_the_model"]
    assert "retry_after" in texts["TestForgetsWaitSink::test_long_rate_limit_is_retry_later_with_the_wait"]


def test_a_plugin_that_ignores_the_fakes_is_told_how_to_use_them(pytester):
    pytester.makepyfile(test_unguarded=PLUGINS.split("class SourceKit")[0] + '''
class TestUnguardedSink(SinkContract):
    plugin = GoodSink
    config = {"token": "t"}

    def serve(self, system, api):
        api.add_callback("POST", BASE + "/records", callback=lambda request: (201, {}, json.dumps({"id": "1"})))
''')
    outcomes, texts = _run(pytester, pytester.path)
    assert outcomes["TestUnguardedSink"]["test_server_trouble_is_retry_later[503]"] == "failed"
    assert "system.guard(callback)" in texts["TestUnguardedSink::test_server_trouble_is_retry_later[503]"]
    assert "system.create" in texts["TestUnguardedSink::test_each_record_is_held_once"]


def test_fixtures_come_from_the_pytest_plugin(pytester):
    # No import, no conftest: the fixtures arrive through the pytest11 entry point.
    pytester.makepyfile(test_fixtures='''
from socialcrm.plugins.sinks.jsonl import JsonlSink

def test_fixtures(fake_clock, plugin_context, fake_system, upstream, make_record, mock_api):
    context = plugin_context(JsonlSink, {"path": "x.jsonl"})
    http = context.http()
    assert http.sleep == fake_clock.sleep
    assert make_record(3).id.endswith("3")
    assert upstream.publish(2) and fake_system.objects == []
    mock_api.add("GET", "https://example.test/", json={"ok": True})
    assert http.get("https://example.test/").json() == {"ok": True}
''')
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


@pytest.mark.parametrize("example", ["socialcrm-forum", "socialcrm-helpdesk"])
def test_the_guides_example_plugins_pass_the_kit(pytester, example):
    folder = pytester.path / example
    shutil.copytree(EXAMPLES / example, folder, ignore=shutil.ignore_patterns("__pycache__"))
    outcomes, texts = _run(pytester, folder)
    contract = next(cls for cls in outcomes if cls.startswith("Test"))
    failed = {k: v[-800:] for k, v in texts.items()}
    assert not failed, failed
    skipped = [test for test, outcome in outcomes[contract].items() if outcome != "passed"]
    assert not skipped and len(outcomes[contract]) >= 15, skipped  # the HTTP checks ran too


def test_fault_guard_applies_scripted_failures_in_order():
    import requests
    system = FakeSystem()
    handler = system.guard(lambda request: (201, {}, "{}"))
    system.fail_next(Fault.rate_limited(retry_after=9), Fault.lost_response())
    status, headers, _ = handler(None)
    assert (status, headers["Retry-After"]) == (429, "9")
    with pytest.raises(requests.ReadTimeout):
        handler(None)
    assert handler(None)[0] == 201
    assert (system.calls, system.faults_served) == (3, 2)


def test_idempotency_key_replays_and_upsert_matches_external_id():
    system = FakeSystem()
    first, created = system.create("x:1", {"a": 1}, idempotency_key="x:1")
    again, created_again = system.create("x:1", {"a": 1}, idempotency_key="x:1")
    assert created and not created_again and first is again
    system.create("x:2", {}, idempotency_key=None)
    system.create("x:2", {}, idempotency_key=None)
    assert len(system.holding("x:2")) == 2  # no key: a duplicate, which the contract catches
    obj, made = system.upsert("x:3", {"v": 1})
    same, made_again = system.upsert("x:3", {"v": 2})
    assert made and not made_again and same.data == {"v": 2}


def test_upstream_posts_grow_in_id_and_time():
    upstream = Upstream()
    items = upstream.publish(6)
    assert [i.id for i in items] == sorted(i.id for i in items)
    assert len({i.id - j.id for i, j in zip(items[1:], items)}) > 1  # uneven steps
    assert upstream.after(items[2].id, 2) == items[3:5]
    assert upstream.before(items[2].id) == [items[1], items[0]]


def test_mention_problems_names_the_bad_fields():
    from datetime import datetime
    from socialcrm import Mention
    bad = Mention(network="Kit Net", native_id="", text="hi", created_at=datetime(2026, 1, 1))
    problems = " ".join(mention_problems(bad))
    assert "network" in problems and "native_id" in problems and "created_at" in problems


def _example_module(package, module):
    import importlib.util
    spec = importlib.util.spec_from_file_location(module, EXAMPLES / package / f"{module}.py")
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


def test_helpdesk_example_tickets_match_the_zendesk_spec():
    spec_path = EXAMPLES.parents[2] / "shared" / "specs" / "zendesk" / "support-oas.yaml"
    if not spec_path.exists():
        pytest.skip(f"the Zendesk spec is not at {spec_path}")
    yaml = pytest.importorskip("yaml")

    # Only the TicketObject schema is read: parsing the whole 1.6 MB file takes seconds.
    text = spec_path.read_text(encoding="utf-8")
    start = text.index("\n    TicketObject:\n") + 1
    end = re.search(r"^    \S", text[start + 10:], re.MULTILINE).start() + start + 10
    ticket_fields = yaml.safe_load(textwrap.dedent(text[start:end]))["TicketObject"]["properties"]
    helpdesk = _example_module("socialcrm-helpdesk", "socialcrm_helpdesk")
    config = helpdesk.HelpdeskConfig().load({"subdomain": "brightwave", "email": "bot@brightwave.example",
                                             "api_token": "t", "group_id": 7})
    sink = helpdesk.HelpdeskSink(config, make_context(helpdesk.HelpdeskSink, config))
    for record_type in ("case", "query", "rfe", "rave"):
        for priority in ("P1", "P2", "P3", "P4"):
            ticket = sink.ticket(make_record(1, type=record_type, priority=priority))
            assert set(ticket) <= set(ticket_fields), set(ticket) - set(ticket_fields)
            assert ticket["priority"] in ticket_fields["priority"]["enum"]
            if "type" in ticket:
                assert ticket["type"] in ticket_fields["type"]["enum"]
