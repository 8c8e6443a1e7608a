"""The shared HTTP layer: retries, exact rate-limit waits, error classes, redaction."""
import pytest
import requests
import responses

from socialcrm.core.sdk.errors import AuthError, FatalError, RetriableError, TransportError
from socialcrm.core.sdk.http import HttpClient, ResponseAction, default_action, parse_retry_after, safe_url
from socialcrm.plugins.sources.mastodon import MASTODON_STYLE
from socialcrm.plugins.sources.reddit import REDDIT_STYLE
from socialcrm.plugins.sources.x import X_STYLE
from socialcrm import Brand, Sink
from socialcrm.testing import KitContext
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


# --- errors carry their evidence (issue #14) ---

@pytest.mark.parametrize("status, error", [(401, AuthError), (403, AuthError), (404, FatalError)])
@responses.activate
def test_refusals_carry_status_and_response(status, error):
    responses.get(URL, status=status, json={"error": "no"})
    with pytest.raises(error) as info:
        client(Clock()).get(URL)
    assert info.value.status == status and info.value.response.status_code == status
    assert info.value.response.json() == {"error": "no"}


@responses.activate
def test_a_429_over_max_wait_carries_its_response():
    responses.get(URL, status=429, headers={"Retry-After": "3600"})
    with pytest.raises(RetriableError) as info:
        client(Clock(), max_wait=60).get(URL)
    assert info.value.status == 429 and info.value.response.headers["Retry-After"] == "3600"
    assert not isinstance(info.value, TransportError)


@responses.activate
def test_server_errors_after_the_last_attempt_carry_the_last_response():
    responses.get(URL, status=503, body="down for maintenance")
    with pytest.raises(RetriableError) as info:
        client(Clock(), max_attempts=2).get(URL)
    assert info.value.status == 503 and info.value.response.text == "down for maintenance"
    assert not isinstance(info.value, TransportError)


@pytest.mark.parametrize("failure, timed_out", [(requests.ConnectionError("refused"), False),
                                                (requests.ReadTimeout("slow"), True)])
@responses.activate
def test_a_transport_failure_is_a_transport_error_without_a_response(failure, timed_out):
    responses.get(URL, body=failure)
    with pytest.raises(TransportError) as info:
        client(Clock(), max_attempts=2).get(URL)
    assert info.value.status is None and info.value.response is None and info.value.timed_out is timed_out
    assert isinstance(info.value, RetriableError)


def test_the_default_table():
    assert [default_action(s).kind for s in (200, 204, 302, 400, 401, 403, 404, 408, 429, 500, 503)] == [
        "ok", "ok", "ok", "fatal", "auth", "auth", "fatal", "retry", "rate_limited", "retry", "retry"]
    assert default_action(404, classify=False) is ResponseAction.OK
    assert default_action(401, classify=False) is ResponseAction.AUTH
    with pytest.raises(ValueError, match="use one of"):
        ResponseAction("maybe")


# --- the plugin's interpretation comes first ---

def slack_like(response):
    """A vendor that answers 200 with ``ok: false`` and says 400 for a bad token."""
    if response.status_code == 400:
        return ResponseAction.AUTH.because("this vendor says 400 for a bad token")
    body = response.json()
    if body.get("ok") is False and body.get("error") == "ratelimited":
        return ResponseAction.RATE_LIMITED.because("ratelimited", retry_after=5)
    return None


@responses.activate(registry=responses.registries.OrderedRegistry)
def test_an_interpreter_makes_a_200_with_an_error_body_a_retry():
    clock = Clock()
    responses.get(URL, json={"ok": False, "error": "ratelimited"})
    responses.get(URL, json={"ok": True})
    assert client(clock, interpret=slack_like).get(URL).json() == {"ok": True}
    assert clock.waits == [5.0]


@responses.activate
def test_an_interpreted_retry_that_never_clears_carries_the_200():
    responses.get(URL, json={"ok": False, "error": "ratelimited"})
    with pytest.raises(RetriableError, match="ratelimited") as info:
        client(Clock(), interpret=slack_like, max_wait=1).get(URL)
    assert info.value.status == 200 and info.value.retry_after == 5


@responses.activate
def test_an_interpreter_makes_a_400_an_auth_failure():
    responses.get(URL, status=400, json={"error": "bad_token"})
    with pytest.raises(AuthError, match="400 for a bad token") as info:
        client(Clock(), interpret=slack_like).get(URL)
    assert info.value.status == 400


class ChatSink(Sink):
    """A chat vendor that answers 200 with ``{"ok": false, "error": ...}`` and 400 for a bad token."""

    name = "chat"

    def interpret_response(self, response):
        if response.status_code == 400:
            return ResponseAction.AUTH.because("chat answers 400 for a bad token: check token")
        body = response.json() if "json" in response.headers.get("Content-Type", "") else {}
        if body.get("ok") is False and body.get("error") == "ratelimited":
            return ResponseAction.RATE_LIMITED.because("chat says ratelimited", retry_after=5)
        return None  # anything else: the status decides (401/403 auth, 5xx retry, other 4xx fatal)


def chat_sink():
    return ChatSink({}, KitContext(instance="chat", brand=Brand(name="Brightwave"), clock=Clock()))


@responses.activate(registry=responses.registries.OrderedRegistry)
def test_a_plugins_interpret_response_is_wired_in_by_its_context():
    sink = chat_sink()
    responses.get(URL, json={"ok": False, "error": "ratelimited"})
    responses.get(URL, json={"ok": True})
    assert sink.context.http().get(URL).json() == {"ok": True}
    assert sink.context.clock.waits == [5.0]


@responses.activate
def test_a_plugins_interpret_response_makes_a_400_an_auth_error():
    responses.get(URL, status=400, json={"error": "bad_token"})
    with pytest.raises(AuthError, match="check token") as info:
        chat_sink().context.http().get(URL)
    assert info.value.status == 400 and info.value.response.json() == {"error": "bad_token"}


def test_an_explicit_interpret_wins_over_the_plugins():
    http = chat_sink().context.http(interpret=None)
    assert http.interpret is None


@responses.activate
def test_unreachable_words_a_transport_error_and_leaves_a_5xx_alone():
    from socialcrm import unreachable
    responses.get(URL, body=requests.ConnectTimeout("slow"))
    responses.get(URL + "/down", status=503)
    with pytest.raises(TransportError) as info:
        client(Clock(), max_attempts=1).get(URL)
    worded = unreachable(info.value, URL, "api")
    assert str(worded) == "api.example.com timed out: check `api`" and isinstance(worded, TransportError)
    with pytest.raises(RetriableError) as info:
        client(Clock(), max_attempts=1).get(URL + "/down")
    assert unreachable(info.value, URL, "api") is info.value
