"""The kit as a pytest plugin: fixtures for a plugin's own tests, beyond the contract classes.

Registered under the ``pytest11`` entry point, so it loads in every pytest run where socialcrm is
installed. It therefore imports nothing outside socialcrm's own requirements at load time:
``responses`` (a test extra) is imported only by the fixture that needs it.
"""
from __future__ import annotations

import pytest

from socialcrm.testing.builders import make_context, make_record as _make_record
from socialcrm.testing.fakes import FakeClock, FakeSystem, Upstream


@pytest.fixture
def fake_clock() -> FakeClock:
    """A clock whose ``sleep`` records the wait: pass it to ``HttpClient(sleep=..., clock=...)``."""
    return FakeClock()


@pytest.fixture
def plugin_context(tmp_path, fake_clock):
    """A factory for the context the host builds: ``plugin_context(MyPlugin, config)``.

    Relative paths resolve in the test's ``tmp_path``; ``context.http()`` waits on ``fake_clock``.
    """
    def build(plugin, config=None, instance=None):
        return make_context(plugin, config or {}, tmp_path, fake_clock, instance)
    return build


@pytest.fixture
def fake_system() -> FakeSystem:
    """A system of record for sink tests (see ``socialcrm.testing.FakeSystem``)."""
    return FakeSystem()


@pytest.fixture
def upstream() -> Upstream:
    """A fake network for source tests (see ``socialcrm.testing.Upstream``)."""
    return Upstream()


@pytest.fixture
def make_record():
    """``make_record(n, **changes)``: a learned, routed record as a sink receives it."""
    return _make_record


@pytest.fixture
def mock_api():
    """A started ``responses.RequestsMock``: requests nobody registered fail instead of going out."""
    import responses
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock
