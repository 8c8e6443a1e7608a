"""``socialcrm sources test NAME`` and ``socialcrm backfill SOURCE --since DATE``.

``sources test`` builds one configured source, calls its ``check()`` (one harmless call that proves
the address and the credentials) and says in plain words what is wrong, or what the source would
fetch. ``backfill`` pulls a source's history through the same ingest path as ``run`` (so it is
de-duplicated, learned and routed), keeping its own cursor under ``<source>#backfill`` in the
``cursors`` table: an interrupted backfill resumes where it stopped, and the live cursor is untouched.
"""
from __future__ import annotations

import inspect
import logging
import sys
from datetime import datetime, timezone
from typing import Any

import click

from socialcrm.core.cli.context import Context, config_option
from socialcrm.core.engine.config import Config, SourceConfig
from socialcrm.core.sdk.connector import Source
from socialcrm.core.sdk.errors import AuthError, FatalError, RetriableError
from socialcrm.core.sdk.model import Page, isoformat
from socialcrm.core.cli.commands._common import add_test_group, build, checked, configured, explain
from socialcrm.core.sdk.hookspecs import hookimpl

log = logging.getLogger(__name__)

# What each failure means, in the words a person acting on it needs.
_MEANING = (
    (AuthError, "the credentials were refused or lack a permission"),
    (RetriableError, "the service could not be reached, or is failing right now"),
    (FatalError, "the service refused the request"),
    (OSError, "a local file or folder cannot be used"),
)


def _test(ctx: Context, config: Config, source_config: SourceConfig) -> None:
    label = f"source {source_config.instance} ({source_config.plugin})"
    source = build(ctx, config, "sources", source_config)
    result = checked(source, lambda exc: f"{label} FAILED: {explain(exc, _MEANING)}")
    click.echo(f"{label}: ok")
    click.echo(result)


def _backfill_pages(source: Source, since: datetime, state: Any):
    """Call ``source.backfill``, passing the resume cursor when the plugin accepts one."""
    if "cursor" in inspect.signature(source.backfill).parameters:
        return source.backfill(since, cursor=state)
    if state is not None:
        log.warning("source %s cannot resume a backfill; starting again from the newest (repeats are dropped)",
                    source.name)
    return source.backfill(since)


class _Progress:
    """A rich progress bar over the time between ``since`` and now, advanced by the oldest mention seen."""

    def __init__(self, name: str, since: datetime):
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
        self.since, self.now = since, datetime.now(timezone.utc)
        self.covered = 0.0
        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), TaskProgressColumn(),
                                 TextColumn("{task.fields[pages]} pages, {task.fields[mentions]} mentions, "
                                            "{task.fields[records]} new records"), TimeElapsedColumn(),
                                 console=Console(stderr=True))
        self.task = self.progress.add_task(f"backfill {name} since {since:%Y-%m-%d}", total=100, pages=0,
                                           mentions=0, records=0)

    def __enter__(self) -> "_Progress":
        self.progress.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.progress.stop()

    def update(self, page: Page, stats) -> None:
        span = (self.now - self.since).total_seconds()
        if page.mentions and span > 0:
            oldest = min(m.created_at for m in page.mentions)
            self.covered = max(self.covered, min(1.0, (self.now - oldest).total_seconds() / span))
        self.progress.update(self.task, completed=100 * self.covered, pages=stats.pages, mentions=stats.fetched,
                             records=stats.records)

    def finish(self) -> None:
        self.progress.update(self.task, completed=100)


@hookimpl
def register_commands(cli: click.Group) -> None:
    """Add the ``sources`` group (``sources test``) and ``backfill`` to the ``socialcrm`` group."""

    add_test_group(cli, "sources", _test)

    @cli.command("backfill")
    @config_option
    @click.argument("source_name", metavar="SOURCE")
    @click.option("--since", required=True, type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S",
                                                                        "%Y-%m-%d %H:%M:%S"]),
                  help="How far back to go (a date or date and time, UTC).")
    @click.option("--restart", is_flag=True,
                  help="Start over, even when a backfill from this date is done or under way.")
    @click.pass_obj
    def backfill(ctx: Context, config_path: str, source_name: str, since: datetime, restart: bool) -> None:
        """Pull SOURCE's history back to --since through the usual capture, learning and routing.

        Interrupted (Ctrl-C, a crash, a rate limit), it resumes where it stopped when run again with
        the same --since. The source's live cursor is not touched.
        """
        from socialcrm.core.engine.pipeline import ListenStats, Pipeline
        from socialcrm.core.services.runtime import require_lasting_store
        since = since.replace(tzinfo=timezone.utc)
        config = ctx.config(config_path)
        source_config = configured(config, "sources", source_name)
        require_lasting_store(config, "backfill")
        pipeline = Pipeline(config, ctx.plugins)
        source = pipeline.sources.get(source_name)
        built = source is None  # a disabled source is not polled, but may still be backfilled
        if built:
            source = build(ctx, config, "sources", source_config)
        try:
            if type(source).backfill is Source.backfill:
                raise click.ClickException(f"source {source_name} ({source.name}) cannot backfill: its plugin has "
                                           "no way to page through history")
            key, since_text = f"{source_name}#backfill", isoformat(since)
            stored = pipeline.store.get_cursor(key)
            state = None
            if isinstance(stored, dict) and stored.get("since") == since_text and not restart:
                if stored.get("done"):
                    click.echo(f"the backfill of {source_name} since {since_text} is already complete "
                               "(--restart runs it again)")
                    return
                state = stored.get("state")
                click.echo(f"resuming the backfill of {source_name} since {since_text}", err=True)
            stats = ListenStats()
            try:
                with _Progress(source_name, since) as progress:
                    for page in _backfill_pages(source, since, state):
                        state = page.cursor
                        wrapped = Page(page.mentions, {"since": since_text, "state": state, "done": False}, page.errors)
                        pipeline.ingest(source_name, wrapped, stats, cursor_key=key)
                        progress.update(page, stats)
                    pipeline.ingest(source_name, Page([], {"since": since_text, "state": state, "done": True}),
                                    ListenStats(), cursor_key=key)
                    progress.finish()
            except KeyboardInterrupt:
                click.echo(f"interrupted after {stats.pages} pages; run the same command again to resume", err=True)
                sys.exit(130)
            except (AuthError, RetriableError, FatalError) as exc:
                click.echo(f"backfill of {source_name} stopped after {stats.pages} pages: {explain(exc, _MEANING)}\n"
                           "the pages stored so far are kept; run the same command again to resume", err=True)
                sys.exit(1)
            click.echo(f"backfill of {source_name} since {since_text} complete: {stats.pages} pages, "
                       f"{stats.fetched} mentions, {stats.records} new records, {stats.duplicates} duplicates, "
                       f"{stats.unreadable} unreadable; {stats.queued} deliveries queued "
                       "(`socialcrm run --once` delivers them)")
        finally:
            if built:
                source.close()
            pipeline.close()
