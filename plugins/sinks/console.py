"""console sink: one readable line per record on standard output, for trying routes out.

A follow-up's line ends with ``(conversation.updated <conversation> on <thread_object>)``.

    [sinks.screen]
    plugin = "console"
"""
from __future__ import annotations

import sys
from typing import Sequence

from marshmallow import fields

from socialcrm import Delivery, Record, Sink, hookimpl, StrictSchema

from . import _render as render


class ConsoleSinkConfig(StrictSchema):
    """``reasons``: also print why the record was typed and routed (default off)."""

    reasons = fields.Boolean(load_default=False)


class ConsoleSink(Sink):
    """Prints records; a terminal is not a system of record, so the external id is the record id."""

    name = "console"
    ConfigSchema = ConsoleSinkConfig
    max_batch = 100

    def check(self) -> str:
        """Nothing to call: records are printed to standard output."""
        if sys.stdout is None or sys.stdout.closed or not sys.stdout.writable():
            raise OSError("standard output is closed: the console sink has nowhere to print")
        return "console: nothing to call; records are printed to standard output"

    def send(self, records: Sequence[Record]) -> list[Delivery]:
        for r in records:
            text = " ".join(r.content.split())
            sys.stdout.write(f"[{r.priority}] {r.type:<5} {r.sentiment.label:<8} {r.network}/@{r.author.handle} "
                             f"(influence {r.influence.score}) -> {self.context.instance}: {text[:100]}"
                             f"{_followup_note(r)}{_incident_note(r)}\n")
            if self.config["reasons"]:
                for reason in r.reasons:
                    sys.stdout.write(f"      - {reason}\n")
        sys.stdout.flush()
        return [Delivery.delivered(r.id, external_id=r.id) for r in records]


def _followup_note(record: Record) -> str:
    fields = render.event(record)
    if not record.thread_object:
        return ""
    return f" ({fields['event']} {fields['conversation']} on {fields['thread_object']})"


def _incident_note(record: Record) -> str:
    """`` [incident ID]`` for a member of an incident, `` [N posts from M accounts]`` for the incident itself."""
    if record.incident_summary:
        return f" [{record.incident_summary.posts} posts from {record.incident_summary.accounts} accounts]"
    return f" [{record.incident}]" if record.incident else ""


@hookimpl
def register_sinks(register):
    register(ConsoleSink)
