"""``socialcrm plugin new source|sink NAME``: start a plugin package from a working template."""
from __future__ import annotations

from pathlib import Path

import click

from socialcrm.core.services import scaffold
from socialcrm.core.sdk.hookspecs import hookimpl


@hookimpl
def register_commands(cli: click.Group) -> None:
    """Add the ``plugin`` command group to ``cli``."""
    cli.add_command(plugin)


@click.group()
def plugin() -> None:
    """Write your own sources and sinks."""


@plugin.command("new")
@click.argument("kind", type=click.Choice(scaffold.KINDS))
@click.argument("name")
@click.option("--dir", "parent", type=click.Path(file_okay=False), default=".", show_default=True,
              help="Where to create the package folder socialcrm-NAME.")
@click.pass_obj
def new(ctx, kind: str, name: str, parent: str) -> None:
    """Create an installable package for a new source or sink called NAME, with contract tests."""
    try:
        scaffold.validate_name(name)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="NAME") from None
    # An installed plugin with the same name would clash at start-up: say so now.
    taken = ctx.plugins.sources() if kind == "source" else ctx.plugins.sinks()
    if name in taken:
        info = taken[name]
        raise click.BadParameter(f"a {kind} named {name!r} is already installed (from {info.distribution or info.plugin}); "
                                 "choose another name", param_hint="NAME")
    try:
        target = scaffold.write_package(kind, name, Path(parent))
    except FileExistsError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {target}\n"
               f"next:  cd {target} && pip install -e '.[test]' && pytest\n"
               f"then:  socialcrm plugins   # lists the {kind} {name!r}")
