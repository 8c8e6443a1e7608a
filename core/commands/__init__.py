"""CLI commands that live in their own modules.

Each module listed in ``MODULES`` defines ``register(main)``, which adds its commands (or command
group) to the ``socialcrm`` click group. Keeping them apart keeps ``core/cli.py`` small and lets each
capability own its commands.
"""
from __future__ import annotations

from importlib import import_module

import click

MODULES: list[str] = [
    "socialcrm.core.commands.plugin",
    "socialcrm.core.commands.dlq",
    "socialcrm.core.commands.learning",
    "socialcrm.core.commands.status",
    "socialcrm.core.commands.serve",
    "socialcrm.core.commands.erase",
    "socialcrm.core.commands.sources",
    "socialcrm.core.commands.sinks",
]


def register_all(main: click.Group) -> None:
    """Add every listed module's commands to ``main``."""
    for name in MODULES:
        import_module(name).register(main)
