"""The one HTTP layer every connector uses: a ``requests.Session`` with timeouts, retries and rate limits.

- Every call has a timeout.
- Transport errors, 408 and 5xx are retried with exponential backoff and jitter (tenacity), honouring
  ``Retry-After`` when the server sends it.
- 429 waits exactly as long as ``Retry-After`` or the vendor's reset header says, on its own budget;
  a wait longer than ``max_wait`` is not slept through but raised as ``RetriableError(retry_after=...)``
  so the caller (the outbox, the source scheduler) comes back later. Before any wait the server asked
  for is slept in-line, ``on_wait(until)`` is called (the deliverer keeps it in the store, so another
  process or a restart honours it too).
- Vendors' remaining/reset headers are read on every response: when the remaining budget reaches zero,
  the next call waits for the reset instead of spending a request on a 429.
- 401/403 raise ``AuthError``; with ``classify=True`` (the default) other 4xx raise ``FatalError``.
- What a response means is decided in one place, ``default_action`` (status -> ``ResponseAction``),
  which a plugin overrides per response with ``interpret`` (``Connector.interpret_response``): a 200
  whose body says "rate limited" can be a retry, a 400 can be an auth failure.
- Every error raised carries its evidence: ``status`` and ``response`` (``None`` for a
  ``TransportError``, when no response came back).
- Secrets never reach a log line or an error: URLs are logged without their query, and known secret
  values are masked.
"""
from __future__ import annotations

import email.utils
import logging
import random
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Callable, ClassVar, Iterable
from urllib.parse import urlsplit

import requests
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from socialcrm.core.sdk.errors import AuthError, FatalError, RetriableError, TransportError

log = logging.getLogger(__name__)

USER_AGENT = "socialcrm/0.1.0"


@dataclass(frozen=True)
class RateLimitHeaders:
    """Where a vendor says how much budget is left and when it resets.

    ``reset_kind``: ``epoch`` (Unix seconds), ``delta`` (seconds from now) or ``iso`` (an ISO 8601 time).
    Each plugin declares its vendor's style as data, for example
    ``RateLimitHeaders("x-rate-limit-remaining", "x-rate-limit-reset", "epoch")``.
    """

    remaining: str | None = None
    reset: str | None = None
    reset_kind: str = "epoch"


@dataclass(frozen=True)
class ResponseAction:
    """What the HTTP client does with a response: ``ResponseAction.OK``, ``RETRY``, ``RATE_LIMITED``,
    ``AUTH`` or ``FATAL``.

    - ``OK``: return the response to the caller (who may still read an error out of it);
    - ``RETRY``: retry with backoff, then raise ``RetriableError``;
    - ``RATE_LIMITED``: wait ``retry_after`` (or what ``Retry-After``/the vendor's reset header says),
      raise ``RetriableError`` when that is longer than ``max_wait``;
    - ``AUTH``: raise ``AuthError``; ``FATAL``: raise ``FatalError``.

    ``reason`` is added to the error's message; ``ResponseAction.RETRY.because("ratelimited", 30)``
    makes one with a reason and a wait.
    """

    kind: str
    reason: str = ""
    retry_after: float | None = None

    KINDS: ClassVar[tuple[str, ...]] = ("ok", "retry", "rate_limited", "auth", "fatal")
    OK: ClassVar["ResponseAction"]
    RETRY: ClassVar["ResponseAction"]
    RATE_LIMITED: ClassVar["ResponseAction"]
    AUTH: ClassVar["ResponseAction"]
    FATAL: ClassVar["ResponseAction"]

    def __post_init__(self) -> None:
        if self.kind not in self.KINDS:
            raise ValueError(f"ResponseAction kind {self.kind!r}: use one of {', '.join(self.KINDS)}")

    def because(self, reason: str, retry_after: float | None = None) -> "ResponseAction":
        """The same action with a reason for the error message and, optionally, the seconds to wait."""
        return replace(self, reason=reason, retry_after=retry_after)


for _kind in ResponseAction.KINDS:
    setattr(ResponseAction, _kind.upper(), ResponseAction(_kind))
del _kind

#: Statuses with an action of their own; other statuses go by their class (see ``default_action``).
STATUS_ACTIONS: dict[int, ResponseAction] = {
    401: ResponseAction.AUTH, 403: ResponseAction.AUTH, 408: ResponseAction.RETRY, 429: ResponseAction.RATE_LIMITED,
}

#: An interpreter: the plugin's verdict on a response, or ``None`` for the default.
Interpret = Callable[[requests.Response], "ResponseAction | None"]


def default_action(status: int, *, classify: bool = True) -> ResponseAction:
    """The client's own reading of a status: the table above, then 5xx retry, 4xx fatal (returned to
    the caller when ``classify`` is false), everything else ok."""
    if status in STATUS_ACTIONS:
        return STATUS_ACTIONS[status]
    if status >= 500:
        return ResponseAction.RETRY
    if status >= 400 and classify:
        return ResponseAction.FATAL
    return ResponseAction.OK


class _Transient(Exception):
    """Internal: a failure tenacity should retry, with the wait the server asked for (if any) and the
    response (``None`` for a transport failure)."""

    def __init__(self, message: str, retry_after: float | None = None, rate_limited: bool = False,
                 response: requests.Response | None = None, timed_out: bool = False):
        super().__init__(message)
        self.retry_after = retry_after
        self.rate_limited = rate_limited
        self.response = response
        self.timed_out = timed_out


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - now)


def parse_reset(value: str | None, kind: str, now: float) -> float | None:
    """The Unix time a rate-limit window resets, from a vendor's reset header."""
    if not value:
        return None
    try:
        if kind == "epoch":
            return float(value)
        if kind == "delta":
            return now + float(value)
        if kind == "iso":
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        log.debug("unreadable rate-limit reset header %r", value)
    return None


def safe_url(url: str) -> str:
    """The URL without its query string or credentials, for logs and errors."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


class HttpClient:
    """HTTP for one plugin instance. Build one per instance and reuse it (it keeps the connection pool
    and the rate-limit state).

    ``sleep`` and ``clock`` are injectable so tests can record the waits instead of sleeping.
    ``on_wait(until)`` is called with the Unix time a server-requested wait (``Retry-After``, a spent
    rate-limit budget) ends, before it is slept in-line.
    ``interpret`` is the plugin's reading of a response (``Connector.interpret_response``): it returns a
    ``ResponseAction``, or ``None`` to leave the response to ``default_action``.
    """

    def __init__(self, name: str, *, timeout: float = 30.0, max_attempts: int = 5, max_wait: float = 900.0,
                 backoff_initial: float = 1.0, backoff_max: float = 60.0,
                 rate_limit: RateLimitHeaders | None = None, secrets: Iterable[str] = (),
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.time,
                 session: requests.Session | None = None, interpret: Interpret | None = None,
                 on_wait: Callable[[float], None] | None = None):
        self.name = name
        self.on_wait = on_wait
        self.interpret = interpret
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.max_wait = max_wait
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.rate_limit = rate_limit or RateLimitHeaders()
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)
        self.sleep = sleep
        self.clock = clock
        self.session = session or requests.Session()
        self.session.headers.setdefault("User-Agent", USER_AGENT)
        self.blocked_until = 0.0
        self.remaining: float | None = None
        self.calls = 0

    # --- public ---

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", url, **kwargs)

    def request(self, method: str, url: str, *, classify: bool = True, **kwargs: Any) -> requests.Response:
        """Send with retries; return the response, or raise ``AuthError``/``FatalError``/``RetriableError``,
        each carrying the ``status`` and ``response`` that caused it.

        With ``classify=False`` a 4xx other than 401/403/429 is returned for the caller to read (a
        sink that maps per-record errors itself); the plugin's ``interpret`` is asked first either way.
        """
        kwargs.setdefault("timeout", self.timeout)
        retrying = Retrying(stop=stop_after_attempt(self.max_attempts), wait=self._wait,
                            retry=retry_if_exception_type(_Transient), sleep=self.sleep, reraise=True,
                            before_sleep=self._log_retry(method, url))
        try:
            return retrying(self._attempt, method, url, classify, kwargs)
        except _Transient as exc:
            message = self.redact(f"{self.name}: {method} {safe_url(url)} failed after {self.max_attempts} "
                                  f"attempts: {exc}")
            if exc.response is None:
                raise TransportError(message, retry_after=exc.retry_after, timed_out=exc.timed_out) from None
            raise RetriableError(message, retry_after=exc.retry_after, response=exc.response) from None

    def classify(self, response: requests.Response, *, classify: bool = True) -> ResponseAction:
        """What to do with ``response``: the plugin's ``interpret`` if it has a verdict, else
        ``default_action``."""
        if self.interpret is not None:
            action = self.interpret(response)
            if action is not None:
                return action
        return default_action(response.status_code, classify=classify)

    def redact(self, text: str) -> str:
        """Mask every known secret in ``text``."""
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    # --- internals ---

    def _attempt(self, method: str, url: str, classify: bool, kwargs: dict[str, Any]) -> requests.Response:
        self._wait_for_budget()
        self.calls += 1
        try:
            response = self.session.request(method, url, **kwargs)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise _Transient(f"{type(exc).__name__}", timed_out=isinstance(exc, requests.Timeout)) from None
        now = self.clock()
        log.debug("%s: %s %s -> %s", self.name, method, safe_url(url), response.status_code)
        self._read_budget(response, now)
        action = self.classify(response, classify=classify)
        if action.kind == "ok":
            return response
        status = response.status_code
        said = f"{status} {response.reason}" + (f" ({action.reason})" if action.reason else "")
        if action.kind == "rate_limited":
            wait = action.retry_after
            if wait is None:
                wait = parse_retry_after(response.headers.get("Retry-After"), now)
            if wait is None and self.blocked_until > now:
                wait = self.blocked_until - now
            if wait is not None and wait > self.max_wait:
                raise RetriableError(self.redact(f"{self.name}: rate limited for {wait:.0f} s (over the "
                                                 f"{self.max_wait:.0f} s this client waits in-line)"
                                                 + (f": {action.reason}" if action.reason else "")),
                                     retry_after=wait, response=response)
            raise _Transient("429 Too Many Requests" if status == 429 else said, retry_after=wait,
                             rate_limited=True, response=response)
        if action.kind == "retry":
            wait = action.retry_after
            if wait is None:
                wait = parse_retry_after(response.headers.get("Retry-After"), now)
            raise _Transient(self.redact(said), retry_after=wait, response=response)
        error = AuthError if action.kind == "auth" else FatalError
        raise error(self.redact(f"{self.name}: {said} from {safe_url(url)}: {_excerpt(response)}"),
                    response=response)

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Transient) and exc.retry_after is not None:
            self._announce_wait(self.clock() + exc.retry_after)
            return exc.retry_after  # exactly what the server asked for
        ceiling = min(self.backoff_max, self.backoff_initial * 2 ** (state.attempt_number - 1))
        return ceiling * (0.5 + 0.5 * random.random())

    def _announce_wait(self, until: float) -> None:
        if self.on_wait is not None:
            self.on_wait(until)

    def _log_retry(self, method: str, url: str) -> Callable[[RetryCallState], None]:
        def log_it(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.warning("%s: %s %s: %s; attempt %d of %d, waiting %.1f s", self.name, method, safe_url(url),
                        exc, state.attempt_number, self.max_attempts, state.upcoming_sleep)
        return log_it

    def _read_budget(self, response: requests.Response, now: float) -> None:
        headers = self.rate_limit
        if not headers.remaining:
            return
        remaining = response.headers.get(headers.remaining)
        if remaining is None:
            return
        try:
            self.remaining = float(remaining)
        except ValueError:
            return
        reset = parse_reset(response.headers.get(headers.reset) if headers.reset else None, headers.reset_kind, now)
        if self.remaining < 1 and reset is not None and reset > now:
            self.blocked_until = reset

    def _wait_for_budget(self) -> None:
        wait = self.blocked_until - self.clock()
        if wait <= 0:
            return
        if wait > self.max_wait:
            raise RetriableError(f"{self.name}: rate-limit budget spent; it resets in {wait:.0f} s",
                                 retry_after=wait)  # no response: this call was never sent
        log.info("%s: rate-limit budget spent, waiting %.1f s for the reset", self.name, wait)
        self._announce_wait(self.blocked_until)
        self.sleep(wait)
        self.blocked_until = 0.0


def _excerpt(response: requests.Response, limit: int = 300) -> str:
    text = (response.text or "").strip().replace("\n", " ")
    return text[:limit] + ("..." if len(text) > limit else "")
