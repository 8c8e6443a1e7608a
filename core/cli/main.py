"""The ``socialcrm`` command line."""
from __future__ import annotations

import json
import logging
import signal
import sys
from datetime import datetime, timezone
from pathlib import Path

import click

from socialcrm.core.cli.context import ConfigProblem, Context, config_option
from socialcrm.core.sdk.errors import ConfigError, PluginError

log = logging.getLogger("socialcrm")


class _Group(click.Group):
    """The ``socialcrm`` group: its own commands, then those plugins register through the
    ``register_commands`` hook (the built-in command modules are such plugins); a configuration or
    plugin problem ends the command with its message and exit status 2."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *ctx.ensure_object(Context).commands(self)})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, cmd_name) or ctx.ensure_object(Context).commands(self).get(cmd_name)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (ConfigError, PluginError) as exc:
            raise ConfigProblem(str(exc)) from None


@click.group(cls=_Group)
@click.option("--log-level", default="WARNING", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False))
@click.version_option(package_name="socialcrm")
@click.pass_context
def main(ctx: click.Context, log_level: str) -> None:
    """socialcrm: listen to social media, learn what each mention is, deliver it to the system that owns it."""
    logging.basicConfig(level=log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ctx.ensure_object(Context)  # tests hand in their own, with the plugins they registered


def _pipeline(ctx: Context, path: str):
    from socialcrm.core.engine.pipeline import Pipeline
    return Pipeline(ctx.config(path), ctx.plugins)


@main.command()
@config_option
@click.option("--once", is_flag=True, help="Listen until every source has nothing new, deliver, and exit.")
@click.pass_obj
def run(ctx: Context, config_path: str, once: bool) -> None:
    """Run the workflow: listen -> capture -> learn -> engage."""
    pipeline = _pipeline(ctx, config_path)
    try:
        if once:
            listened, delivered = pipeline.run_once()
            click.echo(f"listened: {listened.fetched} mentions, {listened.records} new records, "
                       f"{listened.duplicates} duplicates, {listened.reposts} reposts counted, "
                       f"{listened.unrouted} unrouted, {listened.incidents} incidents; "
                       f"delivered {sum(delivered.delivered.values())}, retry {sum(delivered.retried.values())}, "
                       f"dead {sum(delivered.dead.values())}")
            for name, error in listened.errors.items():
                click.echo(f"source {name}: {error}", err=True)
            if listened.errors:
                sys.exit(1)
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: pipeline.stop_event.set())
        log.info("running; stop with Ctrl-C or SIGTERM")
        pipeline.run_forever()
    finally:
        pipeline.close()


@main.command()
@click.option("--dir", "out_dir", type=click.Path(file_okay=False), default="socialcrm-demo", show_default=True,
              help="Where the demo writes its database, config and delivered records (replaced each run).")
@click.pass_obj
def demo(ctx: Context, out_dir: str) -> None:
    """Run the whole workflow offline on the bundled sample mentions and show what became of them."""
    from socialcrm.core.services import demo as demo_module
    demo_module.run_demo(ctx.plugins, Path(out_dir))


@main.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per plugin.")
@click.pass_obj
def plugins_command(ctx: Context, as_json: bool) -> None:
    """List every source and sink found, built-in or installed."""
    rows = list(ctx.plugins.listing())
    if as_json:
        for p in rows:
            click.echo(json.dumps({"kind": p.kind, "name": p.name, "plugin": p.plugin,
                                   "distribution": p.distribution, "version": p.version,
                                   "summary": (p.cls.__doc__ or "").strip().splitlines()[0]}))
        return
    from rich.console import Console
    from rich.table import Table
    table = Table("kind", "name", "from", "what it does")
    for p in rows:
        origin = f"{p.distribution} {p.version}" if p.distribution else p.plugin
        table.add_row(p.kind, p.name, origin, (p.cls.__doc__ or "").strip().splitlines()[0])
    Console().print(table)


@main.command()
@config_option
@click.option("--type", "type_", help="Only records of this type (case, query, rant, rave, lead, rfe, ...).")
@click.option("--since", type=click.DateTime(), help="Only records said at or after this time (UTC).")
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per record, with its reasons.")
@click.pass_obj
def records(ctx: Context, config_path: str, type_: str | None, since: datetime | None, limit: int,
            as_json: bool) -> None:
    """Show stored records, newest first."""
    from socialcrm.core.store import Store
    store = Store(ctx.config(config_path).store_url)
    since = since.replace(tzinfo=timezone.utc) if since else None
    rows = list(store.iter_records(type_=type_, since=since, limit=limit))
    if as_json:
        for r in rows:
            click.echo(json.dumps(r.to_dict(), ensure_ascii=False))
        return
    from rich.console import Console
    from rich.table import Table
    table = Table(expand=True)
    for column in ("when", "priority", "type", "sentiment", "influence", "route", "author"):
        table.add_column(column, no_wrap=True)
    table.add_column("content", overflow="ellipsis", no_wrap=True, ratio=1, min_width=30)
    for r in rows:
        table.add_row(r.created_at.strftime("%Y-%m-%d %H:%M"), r.priority, r.type, r.sentiment.label,
                      str(r.influence.score), ", ".join(r.route) or "-", f"{r.network}/@{r.author.handle}",
                      " ".join(r.content.split()))
    Console(width=max(Console().width, 160)).print(table)


@main.command("check")
@config_option
@click.pass_obj
def check_config(ctx: Context, config_path: str) -> None:
    """Validate the config file and say what it sets up."""
    config = ctx.config(config_path)
    click.echo(f"{config.path}: valid: {len(config.sources)} sources, {len(config.sinks)} sinks, "
               f"{len(config.routes)} routes, store {config.store_url.split('://')[0]}")
    for message in config.deprecations:
        click.echo(f"warning: {message}")


__all__ = ["main"]
