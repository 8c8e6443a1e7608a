"""The hooks socialcrm calls, and the markers plugins use to implement them.

Plugin authors import ``hookimpl`` from ``socialcrm``; nothing else here is needed to write a plugin.
Every hook is called with keyword arguments, and an implementation may accept any subset of them, so
new arguments can be added to a hook without breaking existing plugins.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Sequence

import pluggy

if TYPE_CHECKING:  # pragma: no cover - typing only
    import click

    from socialcrm.core.sdk.brand import Brand
    from socialcrm.core.sdk.connector import Sink, Source
    from socialcrm.core.sdk.model import Mention, Record

PROJECT = "socialcrm"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_sources(register: Callable[[type["Source"]], None]) -> None:
    """Register source classes: call ``register(MySource)`` once for each.

    Called once when the plugin manager starts, before any config is read. ``MySource.name`` is the
    name users write as ``plugin = "..."`` in a ``[sources.NAME]`` block (and the block name itself
    when ``plugin`` is left out). Two plugins registering the same name is a start-up error.
    """


@hookspec
def register_sinks(register: Callable[[type["Sink"]], None]) -> None:
    """Register sink classes: call ``register(MySink)`` once for each.

    Called once when the plugin manager starts, like ``register_sources``. ``MySink.name`` is the
    name users write in a ``[sinks.NAME]`` block.
    """


@hookspec
def learn_records(records: Sequence["Record"], mentions: Sequence["Mention"], brand: "Brand") -> None:
    """Add to records during learning, before they are routed.

    Called once per batch, after the built-in classifier has set type, sentiment, action, influence,
    mode and priority, and before routing; so a change made here (a CRM contact match in
    ``record.author.contact_id``, a custom classifier's type) is what the routing rules see.
    ``records[i]`` was learned from ``mentions[i]``. Change records in place and say why by
    appending a sentence to ``record.reasons``. Return nothing.
    """


@hookspec
def register_commands(cli: "click.Group") -> None:
    """Add commands to the ``socialcrm`` command line: decorate them with ``@cli.command()`` or
    ``@cli.group()``, or call ``cli.add_command(...)``.

    Called once per ``socialcrm`` invocation, when the command line looks up its commands (before any
    config is read). ``cli`` is the ``socialcrm`` click group. A command that takes ``--config``
    uses ``socialcrm.config_option``; with ``@click.pass_obj`` it receives the CLI context, whose
    ``config(config_path)`` loads the validated config and whose ``plugins`` is the plugin manager.
    Two plugins adding the same command name is an error naming both. For example::

        @hookimpl
        def register_commands(cli):
            @cli.command()
            @config_option
            @click.pass_obj
            def count_sources(ctx, config_path):
                '''How many sources the config sets up.'''
                click.echo(len(ctx.config(config_path).sources))
    """
