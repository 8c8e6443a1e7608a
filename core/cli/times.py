"""Times as people type them on the command line: ``30m``, ``2h``, ``3d``, ``1w`` ago, ``today``,
``yesterday`` (from the start of that UTC day), or an ISO 8601 date or time (UTC unless it says)."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Callable

import click

from socialcrm.core.cli.context import Context

_AGO = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
EXAMPLES = "30m, 2h, 3d, 1w, today, yesterday or an ISO time such as 2026-10-01T09:00"


def parse_since(text: str, now: datetime) -> datetime:
    """The moment ``text`` names, relative to ``now`` (aware, UTC); ValueError when it names none."""
    word = text.strip().lower()
    start_of_today = now.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    if word == "today":
        return start_of_today
    if word == "yesterday":
        return start_of_today - timedelta(days=1)
    ago = _AGO.match(word)
    if ago:
        return now - timedelta(**{_UNITS[ago.group(2)]: int(ago.group(1))})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a time: give {EXAMPLES}") from None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


class SinceTime(click.ParamType):
    """A click parameter read by ``parse_since``; ``now`` comes from the command's ``Context`` (tests give
    their own clock) or is the current time."""

    name = "TIME"

    def convert(self, value, param, ctx):
        if isinstance(value, datetime):
            return value
        shared = ctx.find_object(Context) if ctx else None
        clock: Callable[[], datetime] = shared.now if shared is not None else utc_now
        try:
            return parse_since(value, clock())
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
