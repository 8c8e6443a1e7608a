"""The exception families of socialcrm, named for what the caller does next.

- ``ConfigError``: the configuration is wrong; refuse to start and tell the user where.
- ``PluginError``: a plugin could not be loaded or broke its contract.
- ``RetriableError``: a transient failure (5xx, timeout, rate limit); try again later.
  ``TransportError``, one of them, means no response came back at all.
- ``FatalError``: a failure that retrying will not cure (bad request, rejected payload).
- ``AuthError``: credentials are missing, wrong or lack a permission; a config problem
  that stops one plugin without stopping the others.
"""
from __future__ import annotations

from typing import Any, Iterable


class SocialCRMError(Exception):
    """Base class of every error socialcrm raises on purpose."""


class ConfigError(SocialCRMError):
    """The configuration is invalid. ``problems`` lists every problem, each naming where it is."""

    def __init__(self, problems: Iterable[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("invalid configuration:\n  " + "\n  ".join(self.problems))


class PluginError(SocialCRMError):
    """A plugin could not be loaded, registered a clashing name, or broke its contract."""


class HttpFailure(SocialCRMError):
    """A failure that may carry its evidence: the HTTP ``status`` and ``response`` that caused it.

    Both are ``None`` when no response was received (a timeout, a refused connection) or the failure
    did not come from HTTP; ``status`` is the response's status code when there was one.
    """

    def __init__(self, message: str, *, response: Any = None, status: int | None = None):
        super().__init__(message)
        self.response = response
        self.status = status if status is not None else getattr(response, "status_code", None)


class RetriableError(HttpFailure):
    """A transient failure; ``retry_after`` (seconds) is set when the server said how long to wait."""

    def __init__(self, message: str, retry_after: float | None = None, *, response: Any = None,
                 status: int | None = None):
        super().__init__(message, response=response, status=status)
        self.retry_after = retry_after


class TransportError(RetriableError):
    """No HTTP response came back: the host could not be reached, refused the connection, or timed out.

    ``status`` and ``response`` are ``None``; ``timed_out`` says whether it was a timeout.
    """

    def __init__(self, message: str, retry_after: float | None = None, *, timed_out: bool = False):
        super().__init__(message, retry_after)
        self.timed_out = timed_out


class FatalError(HttpFailure):
    """A failure that retrying will not cure."""


class AuthError(FatalError):
    """Credentials are missing, wrong, expired or lack a permission."""
