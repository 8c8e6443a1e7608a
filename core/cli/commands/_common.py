"""What the command modules share: who acts, for the audit log; stored times as text; a list command's
output; finding, building and testing a configured source or sink; and explaining a failure in words.
A helper module: it registers no commands.
"""
from __future__ import annotations

import getpass
import json
import sys
from datetime import datetime, timezone
from typing import Any, Callable, NoReturn, Sequence

import click

from socialcrm.core.cli.context import Context, config_option
from socialcrm.core.engine.config import Config
from socialcrm.core.sdk.connector import Connector

Meanings = tuple[tuple[type[Exception], str], ...]


def utc_time(ts: float | None) -> str:
    """A stored Unix time as ``YYYY-MM-DD HH:MM:SS`` (UTC), or ``-`` when there is none."""
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def echo_listing(rows: Sequence[dict[str, Any]], as_json: bool, empty: str, columns: Sequence[str],
                 cells: Callable[[dict[str, Any]], Sequence[str]]) -> None:
    """A ``list`` command's output: one JSON object per row, ``empty`` when there is none, else a table of
    ``columns`` (the row's ``cells``) and a last, folded ``reason`` column."""
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, ensure_ascii=False))
        return
    if not rows:
        click.echo(empty)
        return
    from rich.console import Console
    from rich.table import Table
    table = Table(*columns, expand=True)
    table.add_column("reason", overflow="fold", ratio=1, min_width=30)
    for row in rows:
        table.add_row(*cells(row))
    Console(width=max(Console().width, 140)).print(table)


def default_actor() -> str:
    """The login name, for the audit log; ``cli`` where there is none."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in some containers
        return "cli"


def configured(config: Config, section: str, name: str) -> Any:
    """The ``[section.NAME]`` block (``section`` is ``sources`` or ``sinks``), or a ClickException listing the
    configured ones."""
    entries = getattr(config, section)
    for entry in entries:
        if entry.instance == name:
            return entry
    known = ", ".join(e.instance for e in entries) or "none configured"
    raise click.ClickException(f"{config.path.name} has no [{section}.{name}] block ({section}: {known})")


def build(ctx: Context, config: Config, section: str, entry: Any) -> Any:
    """The source or sink a ``[section.NAME]`` block configures, built from its options."""
    cls = getattr(ctx.plugins, section)()[entry.plugin].cls
    return cls(entry.options, config.context(entry.instance))


def explain(exc: Exception, meanings: Meanings) -> str:
    """``exc`` prefixed with what its kind means (the first of ``meanings`` it is an instance of)."""
    for kind, meaning in meanings:
        if isinstance(exc, kind):
            return f"{meaning}: {exc}"
    return f"{type(exc).__name__}: {exc}"


def fail(message: str) -> NoReturn:
    """Say ``message`` on stderr and exit 1."""
    click.echo(message, err=True)
    sys.exit(1)


def checked(connector: Any, failure: Callable[[Exception], str]) -> str:
    """What ``connector.check()`` found; any failure is told as ``failure(exc)`` with exit 1. Closes it.

    A plugin that keeps the SDK's default ``check()`` makes no call: that is said plainly, not as "ok"
    evidence of anything."""
    try:
        if type(connector).check is Connector.check:
            return (f"{connector.name}: nothing to call: the plugin defines no check(), so nothing was tried; "
                    "its first real use will tell")
        return connector.check()
    except Exception as exc:  # every failure is reported in words, with a non-zero exit
        fail(failure(exc))
    finally:
        connector.close()


def add_test_group(cli: click.Group, section: str,
                   test: Callable[[Context, Config, Any], None]) -> click.Group:
    """Add the ``section`` group with its ``test NAME`` command, which finds the ``[section.NAME]`` block
    and hands it to ``test(ctx, config, block)``; return the group."""
    kind = section[:-1]

    @cli.group(section, help=f"Check the configured {section}.")
    def group() -> None:
        pass

    @group.command("test", help=f"Make one harmless call with {kind} NAME's settings and say what works or what "
                                "is wrong.")
    @config_option
    @click.argument("name")
    @click.pass_obj
    def test_command(ctx: Context, config_path: str, name: str) -> None:
        config = ctx.config(config_path)
        test(ctx, config, configured(config, section, name))

    return group
