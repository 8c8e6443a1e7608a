"""What the ``socialcrm`` group and every command share: the context object commands receive with
``click.pass_obj``, the exception that reports a configuration or plugin problem, and the exit status
of a run that lost input to the quarantine or the dead letters."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable

import click

from socialcrm.core.engine.config import Config, load_config
from socialcrm.core.engine.plugins import PluginManager, default_manager
from socialcrm.core.sdk import redact
from socialcrm.core.sdk.commandline import config_option
from socialcrm.core.sdk.errors import PluginError

__all__ = ["BAD_RUN", "ConfigProblem", "Context", "config_option"]

BAD_RUN = 3
"""The exit status of a command that did its work but left items unread (quarantined) or records dead:
``run --once`` (unless ``--allow-skips``) and a ``quarantine replay`` that could not read every item.
A failing source exits 1, a configuration problem 2."""


class ConfigProblem(click.ClickException):
    """A configuration or plugin problem: printed as it is, exit status 2."""

    exit_code = 2


class Context:
    """What every command shares: the plugin manager (every installed plugin unless one is given,
    loaded on first use), the commands its plugins register, and the clock relative times are read
    against (``now``: the current UTC time unless a test hands in its own)."""

    def __init__(self, plugins: PluginManager | None = None,
                 now: Callable[[], datetime] | None = None) -> None:
        self._plugins = plugins
        self.now: Callable[[], datetime] = now or (lambda: datetime.now(timezone.utc))
        self._commands: dict[str, click.Command] | None = None

    @property
    def plugins(self) -> PluginManager:
        if self._plugins is None:
            self._plugins = default_manager()
        return self._plugins

    def config(self, path: str) -> Config:
        """The validated config at ``path``; its secrets are redacted from every log line from now on."""
        config = load_config(path, self.plugins)
        redact.install(config.secrets)
        return config

    def commands(self, cli: click.Group) -> dict[str, click.Command]:
        """The commands plugins (the built-in command modules among them) add to ``cli``, by name.

        They are registered on a copy of ``cli``, so each invocation (and each test) sees the commands
        of its own plugin manager and the group itself never changes.
        """
        if self._commands is None:
            view = click.Group(cli.name, commands=dict(cli.commands))
            try:
                self.plugins.register_commands(view)
            except PluginError as exc:
                raise ConfigProblem(str(exc)) from None
            self._commands = {name: command for name, command in view.commands.items()
                              if name not in cli.commands}
        return self._commands
