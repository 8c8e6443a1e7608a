"""The ``socialcrm`` command line."""
from __future__ import annotations

import json
import logging
import signal
import sys
from datetime import datetime
from pathlib import Path

import click

from socialcrm.core.cli.context import BAD_RUN, ConfigProblem, Context, config_option
from socialcrm.core.cli.logoptions import DEFAULT_LEVEL, set_level, with_log_options
from socialcrm.core.cli.times import EXAMPLES, SinceTime
from socialcrm.core.sdk.errors import ConfigError, PluginError
from socialcrm.core.sdk.model import PRIORITIES, RECORD_TYPES

log = logging.getLogger("socialcrm")


class _Group(click.Group):
    """The ``socialcrm`` group: its own commands, then those plugins register through the
    ``register_commands`` hook (the built-in command modules are such plugins); a configuration or
    plugin problem ends the command with its message and exit status 2."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *ctx.ensure_object(Context).commands(self)})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name) or ctx.ensure_object(Context).commands(self).get(cmd_name)
        return with_log_options(command) if command is not None else None

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (ConfigError, PluginError) as exc:
            raise ConfigProblem(str(exc)) from None


@with_log_options
@click.group(cls=_Group)
@click.version_option(package_name="socialcrm")
@click.pass_context
def main(ctx: click.Context) -> None:
    """socialcrm: listen to social media, learn what each mention is, deliver it to the system that owns it."""
    if not logging.getLogger().handlers:
        set_level(DEFAULT_LEVEL)
    ctx.ensure_object(Context)  # tests hand in their own, with the plugins they registered


def _what_runs(config) -> str:
    """What a foreground run polls and where it delivers, in one line each."""
    polls = ", ".join(f"{s.instance} ({s.plugin}, every {s.poll_interval:g}s)" for s in config.sources if s.enabled)
    sinks = ", ".join(f"{s.instance} ({s.plugin})" for s in config.sinks if s.enabled)
    return (f"polling: {polls or 'no enabled sources'}\n"
            f"delivering to: {sinks or 'no enabled sinks'}; store {config.store_url.split('://')[0]}")


@main.command()
@config_option
@click.option("--once", is_flag=True, help="Listen until every source has nothing new, deliver, and exit.")
@click.option("--allow-skips", is_flag=True,
              help=f"With --once: exit 0 even when unreadable items were quarantined or records went dead "
                   f"(else {BAD_RUN}, so cron can alert on it).")
@click.pass_obj
def run(ctx: Context, config_path: str, once: bool, allow_skips: bool) -> None:
    """Run the workflow: listen -> capture -> learn -> engage.

    With --once the exit status says how it went: 0 all good, 1 a source failed, 3 unreadable items
    were quarantined (`socialcrm quarantine list`) or records went dead (`socialcrm dlq list`)."""
    from socialcrm.core.services.runtime import require_lasting_store
    config = ctx.config(config_path)
    require_lasting_store(config, "run")
    from socialcrm.core.engine.pipeline import Pipeline
    pipeline = Pipeline(config, ctx.plugins)
    try:
        if once:
            listened, delivered = pipeline.run_once()
            dead = sum(delivered.dead.values())
            click.echo(f"listened: {listened.fetched} mentions, {listened.records} new records, "
                       f"{listened.duplicates} duplicates, {listened.reposts} reposts counted, "
                       f"{listened.unrouted} unrouted, {listened.incidents} incidents; "
                       f"delivered {sum(delivered.delivered.values())}, retry {sum(delivered.retried.values())}, "
                       f"dead {dead}; {listened.unreadable} unreadable quarantined")
            for name, error in listened.errors.items():
                click.echo(f"source {name}: {error}", err=True)
            if listened.errors:
                sys.exit(1)
            if listened.unreadable:
                click.echo(f"{listened.unreadable} unreadable item{'s' if listened.unreadable != 1 else ''} "
                           "quarantined: see `socialcrm quarantine list`", err=True)
            if dead:
                click.echo(f"{dead} deliver{'ies' if dead != 1 else 'y'} went dead: see `socialcrm dlq list`",
                           err=True)
            if (listened.unreadable or dead) and not allow_skips:
                sys.exit(BAD_RUN)
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: pipeline.stop_event.set())
        click.echo(_what_runs(pipeline.config), err=True)
        click.echo("running; stop with Ctrl-C or SIGTERM (--log-level INFO or -v logs each poll)", err=True)
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
@click.option("--type", "type_", type=click.Choice(RECORD_TYPES, case_sensitive=False),
              help="Only records of this type.")
@click.option("--priority", type=click.Choice(PRIORITIES, case_sensitive=False),
              help="Only records of this priority.")
@click.option("--team", help="Only records routed to this team.")
@click.option("--route", help="Only records a route sent to this sink; `none`: those no route sent anywhere.")
@click.option("--since", type=SinceTime(), help=f"Only records said at or after this time: {EXAMPLES} (UTC).")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per record, with its reasons.")
@click.option("--conversation", help="Only the records of this conversation (its root post's id, e.g. x:1).")
@click.option("--parent", help="Only the records that answer this post (its id, e.g. x:1).")
@click.pass_obj
def records(ctx: Context, config_path: str, type_: str | None, priority: str | None, team: str | None,
            route: str | None, since: datetime | None, limit: int, as_json: bool, conversation: str | None,
            parent: str | None) -> None:
    """Show stored records, newest first."""
    from socialcrm.core.services.records import records_page
    from socialcrm.core.services.runtime import opened_store
    with opened_store(ctx.config(config_path), read_only=True) as store:
        rows, _ = records_page(store, limit, types=[type_] if type_ else [], priorities=[priority] if priority else [],
                               team=team, route=None if route == "none" else route, unrouted=route == "none",
                               since=since, conversation=conversation, parent=parent)
    if as_json:
        for r, _ in rows:
            click.echo(json.dumps(r.to_dict(), ensure_ascii=False))
        return
    from rich.console import Console
    from rich.table import Table
    table = Table(expand=True)
    table.add_column("id", overflow="fold", max_width=28)  # folded, never cut: people copy it into `feedback`
    for column in ("when", "priority", "type", "sentiment", "influence", "route", "author"):
        table.add_column(column, no_wrap=True)
    table.add_column("content", overflow="ellipsis", no_wrap=True, ratio=1, min_width=30)
    for r, _ in rows:
        table.add_row(r.id, r.created_at.strftime("%Y-%m-%d %H:%M"), r.priority, r.type, r.sentiment.label,
                      str(r.influence.score), ", ".join(r.route) or "-", f"{r.network}/@{r.author.handle}",
                      " ".join(r.content.split()))
    Console(width=max(Console().width, 180)).print(table)


@main.command("check")
@config_option
@click.pass_obj
def check_config(ctx: Context, config_path: str) -> None:
    """Validate the config file, open its store (read-only) and say what it sets up.

    Exit 0 with a ``warning:`` line for each thing left out (no sources, sinks or routes; a deprecated
    setting); exit 2 when the file is invalid or the store cannot be opened."""
    from socialcrm.core.services.checkup import config_warnings, store_health
    config = ctx.config(config_path)
    click.echo(f"{config.path}: valid: {len(config.sources)} sources, {len(config.sinks)} sinks, "
               f"{len(config.routes)} routes, store {config.store_url.split('://')[0]}")
    click.echo(store_health(config))
    for message in (*config.deprecations, *config_warnings(config)):
        click.echo(f"warning: {message}")


__all__ = ["main"]
