"""Property-based conformance: schemathesis drives the WSGI app from its own /openapi.json.

A few hundred generated requests (valid and invalid) across every operation must never get a 5xx, nor a
status, content type, header or body the spec does not describe. Populated answers (records, a record
with deliveries and feedback, a dead letter, stats, the do-not-engage list) are checked against the spec
too, since random ids mostly find nothing. In-process only: nothing leaves the test.
"""
from __future__ import annotations

import time

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (content_type_conformance, response_headers_conformance,
                                               response_schema_conformance, status_code_conformance)

from socialcrm.core.store import Outcome

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
EXAMPLES = {GenerationMode.POSITIVE: 12, GenerationMode.NEGATIVE: 6}


@pytest.fixture
def seeded(api, mention_json):
    """The API over a store with records, deliveries, feedback, a dead letter, a do-not-engage entry and a
    quarantined line."""
    api.app.testing = False  # answer errors as production does
    api.listen([mention_json("1", "@BrightwaveHelp my WaveBox doesn't work #outage", created_at="2026-09-20T10:00:00Z"),
                mention_json("2", "thinking of switching to Brightwave, how much is the business plan?",
                             created_at="2026-09-20T11:00:00Z"),
                mention_json("3", "thanks @Brightwave, love it", created_at="2026-09-20T12:00:00Z")])
    token, claimed = api.store.claim("sales", 10, 60)
    api.store.complete(token, [Outcome(c.outbox_id, "dead", error="422 missing field") for c in claimed])
    api.client.post("/records/x:1/feedback", json={"type": "rant", "note": "n"}, headers=api.auth("write"))
    api.client.post("/do-not-engage", json={"network": "x", "author": "someone"}, headers=api.auth("admin"))
    with (api.tmp_path / "mentions.jsonl").open("ab") as handle:
        handle.write(b'{"network": "x", "id": "4", "text": "caf\xe9"}\n')  # unreadable: quarantined
    api.pipeline.listen()
    return api


def test_populated_answers_match_the_spec(seeded):
    schema = schemathesis.openapi.from_wsgi("/openapi.json", seeded.app)
    headers = seeded.auth("admin")
    dead = seeded.store.dead_letters()[0]["id"]
    held = seeded.store.quarantined()[0]["id"]
    calls = [("/records", "GET", {}, {"limit": 2}), ("/records/{record_id}", "GET", {"record_id": "x:1"}, {}),
             ("/dead-letters", "GET", {}, {}), ("/dead-letters/{outbox_id}", "GET", {"outbox_id": dead}, {}),
             ("/quarantine", "GET", {}, {}), ("/quarantine/{item_id}", "GET", {"item_id": held}, {}),
             ("/sources", "GET", {}, {}), ("/plugins", "GET", {}, {}), ("/do-not-engage", "GET", {}, {}),
             ("/stats", "GET", {}, {"since": "2026-09-19T00:00:00Z", "until": "2026-09-21T00:00:00Z",
                                    "bucket": "hour"}),
             ("/metrics", "GET", {}, {}), ("/health", "GET", {}, {}), ("/docs", "GET", {}, {})]
    for path, method, path_parameters, query in calls:
        case = schema[path][method].Case(path_parameters=path_parameters, query=query)
        response = case.call_and_validate(headers=headers, checks=CHECKS)
        assert response.status_code == 200, (path, response.text)
    feedback = schema["/records/{record_id}/feedback"]["POST"].Case(path_parameters={"record_id": "x:2"},
                                                                     body={"type": "case", "reroute": True})
    assert feedback.call_and_validate(headers=headers, checks=CHECKS).status_code == 200


def test_generated_requests_never_break_the_spec(seeded):
    schema = schemathesis.openapi.from_wsgi("/openapi.json", seeded.app)
    headers = seeded.auth("admin")
    ran: dict[str, int] = {}
    # CPU time of this process, not the wall clock: the bound is on the work the suite takes, which
    # another busy process on the machine does not change.
    started = time.process_time()
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode, examples in EXAMPLES.items():
            @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case):
                ran[operation.label] = ran.get(operation.label, 0) + 1
                case.call_and_validate(headers=headers, checks=CHECKS)
            try:
                run()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE, operation.label  # nothing to make invalid (no inputs)
    elapsed = time.process_time() - started
    assert len(ran) == 23 and sum(ran.values()) >= 250, ran  # every operation, a few hundred cases
    assert elapsed < 60, elapsed
