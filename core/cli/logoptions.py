"""``--log-level`` and ``-v`` wherever people type them: before the sub-command or after it.

Every command gets the same two options; each sets the level as click reads it, so when the options
are given in both places the later one (the sub-command's) wins.
"""
from __future__ import annotations

import logging
import sys

import click

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
DEFAULT_LEVEL = "WARNING"
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def set_level(level: str) -> None:
    """Log at ``level`` (one of ``LEVELS``) on stderr from now on."""
    logging.basicConfig(level=DEFAULT_LEVEL, stream=sys.stderr, format=_FORMAT)
    logging.getLogger().setLevel(level.upper())


def _level_given(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value:
        set_level(value)


def _verbosity_given(ctx: click.Context, param: click.Parameter, value: int) -> None:
    if value:
        set_level("INFO" if value == 1 else "DEBUG")


def log_options() -> list[click.Option]:
    """The two options, fresh for one command."""
    return [
        click.Option(["--log-level"], type=click.Choice(LEVELS, case_sensitive=False), default=None,
                     expose_value=False, is_eager=False, callback=_level_given,
                     help=f"Log at this level on stderr (default {DEFAULT_LEVEL}); also after the sub-command."),
        click.Option(["-v", "--verbose"], count=True, expose_value=False, callback=_verbosity_given,
                     help="Log more: -v is --log-level INFO, -vv is DEBUG."),
    ]


def with_log_options(command: click.Command) -> click.Command:
    """``command`` (and, for a group, every command under it) with the two options; adding twice is harmless."""
    if not any(getattr(p, "name", None) == "log_level" for p in command.params):
        command.params.extend(log_options())
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            with_log_options(sub)
    return command
