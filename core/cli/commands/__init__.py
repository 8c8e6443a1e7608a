"""CLI commands that live in their own modules.

Each module listed in ``MODULES`` defines ``register(main)``, which adds its commands (or command
group) to the ``socialcrm`` click group. Keeping them apart keeps ``core/cli/main.py`` small and lets each
capability own its commands.
"""
from __future__ import annotations

from importlib import import_module

import click

MODULES: list[str] = [
    "socialcrm.core.cli.commands.plugin",
    "socialcrm.core.cli.commands.dlq",
    "socialcrm.core.cli.commands.learning",
    "socialcrm.core.cli.commands.status",
    "socialcrm.core.cli.commands.serve",
    "socialcrm.core.cli.commands.erase",
    "socialcrm.core.cli.commands.sources",
    "socialcrm.core.cli.commands.sinks",
]


def register_all(main: click.Group) -> None:
    """Add every listed module's commands to ``main``."""
    for name in MODULES:
        import_module(name).register(main)
