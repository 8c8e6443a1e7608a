"""socialcrm's kit for plugin authors: contract tests, fakes and fixtures.

    from socialcrm.testing import SinkContract, SourceContract

    class TestMySink(SinkContract):
        plugin = MySink
        config = {"base_url": "https://desk.example.com", "api_token": "test-token"}

        def serve(self, system, api):
            ...

The kit is also a pytest plugin (entry point ``pytest11: socialcrm``), loaded whenever socialcrm is
installed, so its fixtures (``fake_clock``, ``plugin_context``, ``fake_system``, ``upstream``,
``make_record``, ``mock_api``) are there in every plugin's tests. See docs/writing-plugins.md.
"""
import pytest

# Rewrite the contracts' asserts (pytest only rewrites test modules and plugins it loads itself),
# so a failing check shows the values it compared as well as its message.
pytest.register_assert_rewrite("socialcrm.testing.contracts")

from socialcrm.testing.builders import BRAND, KitContext, load_config, make_context, make_record  # noqa: E402
from socialcrm.testing.contracts import SinkContract, SourceContract, mention_problems  # noqa: E402
from socialcrm.testing.fakes import FakeClock, FakeSystem, Fault, StoredObject, Upstream, UpstreamItem  # noqa: E402

__all__ = [
    "BRAND", "FakeClock", "FakeSystem", "Fault", "KitContext", "SinkContract", "SourceContract", "StoredObject",
    "Upstream", "UpstreamItem", "load_config", "make_context", "make_record", "mention_problems",
]
