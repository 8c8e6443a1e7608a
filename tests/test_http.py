"""The shared HTTP layer: retries, exact rate-limit waits, error classes, redaction."""
import pytest
import requests
import responses

from socialcrm.core.sdk.errors import AuthError, FatalError, RetriableError
from socialcrm.core.sdk.http import HttpClient, parse_retry_after, safe_url
from socialcrm.plugins.sources.mastodon import MASTODON_STYLE
from socialcrm.plugins.sources.reddit import REDDIT_STYLE
from socialcrm.plugins.sources.x import X_STYLE
from socialcrm.testing.fakes import FakeClock

URL = "https://api.example.com/2/items"
T0 = 1_800_000_000.0


class Clock(FakeClock):
    """The kit's fake clock, started at this module's T0."""

    def __init__(self):
        super().__init__(T0)


def client(clock, **kwargs):
    return HttpClient("test", sleep=clock.sleep, clock=clock, **kwargs)


@responses.activate(registry=responses.registries.OrderedRegistry)
def test_retry_after_is_honoured_exactly():
    clock = Clock()
    responses.get(URL, status=429, headers={"Retry-After": "2"})
    responses.get(URL, json={"ok": True})
    assert client(clock).get(URL).json() == {"ok": True}
    assert clock.waits == [2.0]


@responses.activate(registry=responses.registries.OrderedRegistry)
def test_server_errors_and_timeouts_back_off_then_succeed():
    clock = Clock()
    responses.get(URL, status=503)
    responses.get(URL, body=requests.ConnectTimeout())
    responses.get(URL, status=500)
    responses.get(URL, json={"ok": 1})
    http = client(clock, backoff_initial=1.0)
    assert http.get(URL).status_code == 200
    assert len(clock.waits) == 3 and clock.waits[0] <= 1.0 and clock.waits[2] <= 4.0
    assert http.calls == 4


@responses.activate
def test_persistent_failure_becomes_a_retriable_error():
    clock = Clock()
    responses.get(URL, status=502)
    with pytest.raises(RetriableError, match="failed after 3 attempts"):
        client(clock, max_attempts=3).get(URL)


@responses.activate(registry=responses.registries.OrderedRegistry)
def test_spent_budget_waits_for_the_reset_before_the_429_comes():
    clock = Clock()
    responses.get(URL, json={}, headers={"x-rate-limit-remaining": "0", "x-rate-limit-reset": str(int(T0 + 30))})
    responses.get(URL, json={"second": True})
    http = client(clock, rate_limit=X_STYLE)
    http.get(URL)
    assert http.get(URL).json() == {"second": True}
    assert clock.waits == [30.0]


def test_reset_header_styles():
    from socialcrm.core.sdk.http import parse_reset
    assert parse_reset("12", REDDIT_STYLE.reset_kind, T0) == T0 + 12
    from datetime import datetime, timezone
    expected = datetime(2027, 1, 15, 8, tzinfo=timezone.utc).timestamp()
    assert parse_reset("2027-01-15T08:00:00.000Z", MASTODON_STYLE.reset_kind, T0) == expected
    assert parse_reset(str(int(T0) + 5), X_STYLE.reset_kind, T0) == T0 + 5
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0


@responses.activate
def test_a_wait_beyond_max_wait_is_handed_back_to_the_caller():
    clock = Clock()
    responses.get(URL, status=429, headers={"Retry-After": "3600"})
    with pytest.raises(RetriableError) as info:
        client(clock, max_wait=60).get(URL)
    assert info.value.retry_after == 3600 and clock.waits == []


@responses.activate
def test_auth_failures_and_bad_requests_are_classified_and_redacted():
    clock = Clock()
    responses.get(URL, status=401, body='{"error": "token sk-live-12345 is invalid"}')
    with pytest.raises(AuthError) as info:
        client(clock, secrets=["sk-live-12345"]).get(URL + "?access_token=sk-live-12345")
    assert "sk-live-12345" not in str(info.value) and "401" in str(info.value)
    responses.get(URL + "/bad", status=422, json={"error": "RecordInvalid"})
    with pytest.raises(FatalError, match="422"):
        client(clock).get(URL + "/bad")
    assert client(clock).get(URL + "/bad", classify=False).status_code == 422


def test_safe_url_drops_query_and_credentials():
    assert safe_url("https://user:pw@api.x.com:8443/a/b?token=s") == "https://api.x.com:8443/a/b"
