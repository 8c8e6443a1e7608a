"""What a command added through the ``register_commands`` hook shares with the built-in ones: the
``--config`` option, read the same way by every command (the flag, else ``$SOCIALCRM_CONFIG``, else
``./socialcrm.toml``).
"""
from __future__ import annotations

from typing import Callable, TypeVar

import click

CONFIG_HELP = "The TOML config file (default: $SOCIALCRM_CONFIG, else ./socialcrm.toml)."
F = TypeVar("F", bound=Callable)


def config_option(func: F) -> F:
    """Add ``--config`` to a click command; the path reaches it as the ``config_path`` argument.

    With ``@click.pass_obj`` the command also receives the CLI's context object, whose
    ``config(config_path)`` loads and validates that file and whose ``plugins`` is the plugin manager.
    """
    return click.option("--config", "config_path", type=click.Path(dir_okay=False), envvar="SOCIALCRM_CONFIG",
                        default="socialcrm.toml", show_default=True, help=CONFIG_HELP)(func)
