"""The plugin manager: loads plugins from the ``socialcrm`` entry-point group and offers typed hooks.

Built-in plugins sit in the same entry-point group as third-party ones; nothing here imports a plugin
by name. Two environment variables let users choose what loads:

- ``SOCIALCRM_LOAD_PLUGINS``: a comma-separated allow-list of entry-point names (set but empty
  loads none);
- ``SOCIALCRM_BLOCK_PLUGINS``: a comma-separated block-list of entry-point names.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Iterable, Sequence

import pluggy

from socialcrm.core.sdk import hookspecs
from socialcrm.core.sdk.brand import Brand
from socialcrm.core.sdk.connector import Sink, Source
from socialcrm.core.sdk.errors import PluginError
from socialcrm.core.sdk.model import Mention, Record

if TYPE_CHECKING:  # pragma: no cover - typing only
    import click

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "socialcrm"


@dataclass(frozen=True)
class PluginInfo:
    """One registered source or sink and who registered it."""

    kind: str  # "source" or "sink"
    name: str
    cls: type
    plugin: str  # the registering plugin's name (the entry-point name for installed ones)
    distribution: str | None
    version: str | None


def _names_from_env(variable: str) -> set[str] | None:
    value = os.environ.get(variable)
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


class PluginManager:
    """A typed facade over pluggy: core code calls these methods, never ``pm.hook`` directly."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.pm.trace.root.setwriter(log.debug)
        self._dists: dict[str, tuple[str | None, str | None]] = {}
        self._sources: dict[str, PluginInfo] | None = None
        self._sinks: dict[str, PluginInfo] | None = None

    # --- loading ---

    def load_entry_points(self) -> "PluginManager":
        """Load every plugin in the ``socialcrm`` entry-point group the allow/block lists permit."""
        allowed = _names_from_env("SOCIALCRM_LOAD_PLUGINS")
        blocked = _names_from_env("SOCIALCRM_BLOCK_PLUGINS") or set()
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in blocked or (allowed is not None and ep.name not in allowed):
                log.debug("plugin %s not loaded (allow/block list)", ep.name)
                continue
            if self.pm.has_plugin(ep.name):
                continue  # the same distribution seen twice on sys.path
            try:
                module = ep.load()
            except Exception as exc:
                raise PluginError(f"plugin {ep.name!r} ({ep.value}) failed to import: {exc}") from exc
            dist = ep.dist.name if ep.dist else None
            version = ep.dist.version if ep.dist else None
            self.register(module, name=ep.name, distribution=dist, version=version)
            log.debug("loaded plugin %s from %s %s", ep.name, dist, version)
        return self

    def register(self, plugin: object, name: str | None = None, distribution: str | None = None,
                 version: str | None = None) -> str:
        """Register a plugin object (usually a module) and check its hooks exist."""
        registered = self.pm.register(plugin, name=name)
        if registered is None:
            raise PluginError(f"plugin {name!r} is blocked or already registered")
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            self.pm.unregister(plugin)
            raise PluginError(f"plugin {registered!r} implements an unknown hook: {exc}") from exc
        self._dists[registered] = (distribution, version)
        self._sources = self._sinks = None  # registries are rebuilt on next use
        return registered

    def unregister(self, name: str) -> None:
        """Remove a plugin by name (tests register and remove plugins per test)."""
        self.pm.unregister(name=name)
        self._sources = self._sinks = None

    # --- the typed hooks ---

    def _collect(self, kind: str, base: type, hook: pluggy.HookCaller) -> dict[str, PluginInfo]:
        found: dict[str, PluginInfo] = {}
        for impl in hook.get_hookimpls():
            def register(cls: type, _impl=impl) -> None:
                if not (isinstance(cls, type) and issubclass(cls, base)):
                    raise PluginError(f"plugin {_impl.plugin_name!r} registered {cls!r}, "
                                      f"which is not a {base.__name__} subclass")
                if not cls.name:
                    raise PluginError(f"plugin {_impl.plugin_name!r} registered {cls.__name__} with no name")
                if cls.name in found:
                    raise PluginError(f"{kind} name {cls.name!r} is registered by both "
                                      f"{found[cls.name].plugin!r} and {_impl.plugin_name!r}")
                dist, version = self._dists.get(_impl.plugin_name, (None, None))
                found[cls.name] = PluginInfo(kind, cls.name, cls, _impl.plugin_name, dist, version)
            impl.function(register=register) if "register" in impl.argnames else impl.function()
        return found

    def sources(self) -> dict[str, PluginInfo]:
        """Every registered source, by name."""
        if self._sources is None:
            self._sources = self._collect("source", Source, self.pm.hook.register_sources)
        return self._sources

    def sinks(self) -> dict[str, PluginInfo]:
        """Every registered sink, by name."""
        if self._sinks is None:
            self._sinks = self._collect("sink", Sink, self.pm.hook.register_sinks)
        return self._sinks

    def learn_records(self, records: Sequence[Record], mentions: Sequence[Mention], brand: Brand) -> None:
        """Let plugins add to a batch of records before routing."""
        if self.pm.hook.learn_records.get_hookimpls():
            self.pm.hook.learn_records(records=records, mentions=mentions, brand=brand)

    def register_commands(self, cli: "click.Group") -> None:
        """Let every plugin add its commands to ``cli``, in the order plugins were registered.

        A plugin adding a command name ``cli`` already has (its own or another plugin's) is an error
        naming both, rather than one command silently replacing the other.
        """
        owners = {name: "socialcrm" for name in cli.commands}
        for impl in self.pm.hook.register_commands.get_hookimpls():
            before = dict(cli.commands)
            impl.function(cli=cli) if "cli" in impl.argnames else impl.function()
            for name, command in cli.commands.items():
                if before.get(name) is command:
                    continue
                if name in before:
                    raise PluginError(f"command {name!r} is registered by both {owners[name]!r} and "
                                      f"{impl.plugin_name!r}")
                owners[name] = impl.plugin_name

    def listing(self) -> Iterable[PluginInfo]:
        """Sources then sinks, each sorted by name."""
        yield from sorted(self.sources().values(), key=lambda p: p.name)
        yield from sorted(self.sinks().values(), key=lambda p: p.name)


def default_manager() -> PluginManager:
    """A manager with every installed plugin loaded."""
    return PluginManager().load_entry_points()
