"""Builders for what the host hands a plugin: a context, loaded config, records to deliver."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from socialcrm.core.sdk.brand import Brand
from socialcrm.core.sdk.connector import Connector, PluginContext
from socialcrm.core.sdk.http import HttpClient
from socialcrm.core.sdk.model import Author, Engagement, Influence, Record, Sentiment
from socialcrm.testing.fakes import FakeClock

BRAND = Brand(name="Brightwave", handles=["@Brightwave", "@BrightwaveHelp"], keywords=["WaveBox"],
              competitors=["Orbit Fiber"])


@dataclass
class KitContext(PluginContext):
    """A ``PluginContext`` whose ``http()`` waits on a ``FakeClock`` instead of sleeping.

    Everything else is the real thing: the plugin gets the shared HTTP layer with its retries,
    rate-limit waits and redaction, so the kit checks the plugin as it will run.
    """

    clock: FakeClock = field(default_factory=FakeClock)

    def http(self, **options: Any) -> HttpClient:
        options.setdefault("sleep", self.clock.sleep)
        options.setdefault("clock", self.clock)
        return super().http(**options)


def secret_values(plugin: type[Connector], config: dict[str, Any]) -> frozenset[str]:
    """The values of the plugin's secret fields in ``config`` (what the host redacts)."""
    return frozenset(str(config[name]) for name in plugin.secret_fields if config.get(name))


def make_context(plugin: type[Connector], config: dict[str, Any], base_dir: str = ".",
                 clock: FakeClock | None = None, instance: str | None = None) -> KitContext:
    """The context the host would build for one instance of ``plugin`` with ``config``."""
    return KitContext(instance=instance or plugin.name, brand=BRAND, base_dir=str(base_dir),
                      secrets=secret_values(plugin, config), clock=clock or FakeClock())


def load_config(plugin: type[Connector], config: dict[str, Any]) -> dict[str, Any]:
    """``config`` through the plugin's own schema, as the host loads a config block."""
    return plugin.ConfigSchema().load(dict(config))


def make_record(n: int = 1, **changes: Any) -> Record:
    """A learned, routed record as a sink receives it; ``changes`` override any field."""
    created = datetime(2026, 10, 1, 10, 0, tzinfo=timezone.utc) + timedelta(minutes=n)
    record = Record(
        id=f"x:{1900000000000000000 + n}", network="x",
        content=f"@BrightwaveHelp my WaveBox drops wifi every evening, third time this week (#{n})",
        created_at=created,
        author=Author(id=f"{4400 + n}", handle=f"customer{n}", name=f"Customer {n}", followers=120 + n,
                      profile_url=f"https://x.com/customer{n}"),
        source="kit", url=f"https://x.com/customer{n}/status/{1900000000000000000 + n}", lang="en",
        type="case", sentiment=Sentiment("negative", -0.6), action="open_case", influence=Influence(22, "low"),
        priority="P2", mode="reactive", route=["kit"], team="care",
        reasons=["type case: 'drops wifi' matched", "route 'support': type is case -> kit, team care"],
        engagement=Engagement(likes=2, replies=1))
    for name, value in changes.items():
        setattr(record, name, value)
    return record
