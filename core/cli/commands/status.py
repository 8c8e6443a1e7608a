"""``socialcrm status``: how delivery stands, per sink, whether listening is held back, and how many
unreadable items the quarantine holds."""
from __future__ import annotations

import json

import click

from socialcrm.core.cli.context import Context, config_option
from socialcrm.core.sdk.hookspecs import hookimpl


def _circuit(row: dict) -> str:
    circuit = row["circuit"]
    if circuit["state"] == "open":
        return f"open (probe in {circuit['probe_in_s']:.0f} s)" if circuit["probe_in_s"] else "open (probe due)"
    if circuit["state"] == "half_open":
        return "half-open (probing)"
    return f"closed ({circuit['failures']} failed)" if circuit["failures"] else "closed"


@hookimpl
def register_commands(cli: click.Group) -> None:
    """Add ``status`` to the ``socialcrm`` group."""

    @cli.command()
    @config_option
    @click.option("--json", "as_json", is_flag=True,
                  help="One JSON object: sinks, backpressure, table counts, quarantine.")
    @click.pass_obj
    def status(ctx: Context, config_path: str, as_json: bool) -> None:
        """Delivery per sink (pending, in flight, retry, delivered, dead, the oldest pending age, the circuit,
        today's calls) and whether a full outbox has paused listening."""
        from socialcrm.core.services.runtime import opened_store
        from socialcrm.core.services.status import delivery_report
        config = ctx.config(config_path)
        with opened_store(config, read_only=True) as store:
            report = delivery_report(store, config)
        if as_json:
            click.echo(json.dumps(report))
            return
        from rich.console import Console
        from rich.table import Table
        table = Table("sink", "pending", "in flight", "retry", "delivered", "dead", "oldest pending (s)", "circuit",
                      "calls today")
        for row in report["sinks"]:
            budget = row["daily_call_budget"]
            table.add_row(row["sink"], *(str(row[k]) for k in ("pending", "in_flight", "retry", "delivered", "dead")),
                          "-" if row["oldest_pending_s"] is None else str(row["oldest_pending_s"]), _circuit(row),
                          f"{row['calls_today']} of {budget}" if budget else str(row["calls_today"]))
        console = Console(width=max(Console().width, 140))
        console.print(table)
        pressure = report["backpressure"]
        state = "listening PAUSED until the sinks catch up" if pressure["paused"] else "listening"
        console.print(f"outbox: {pressure['open']} undelivered of {pressure['max_pending']} allowed "
                      f"(store.max_pending): {state}")
        held = report["quarantine"]["held"]
        console.print(f"quarantine: {held} unreadable item{'s' if held != 1 else ''} held"
                      + (" (`socialcrm quarantine list`)" if held else ""))
        hint = ("posts not addressed to the brand, which no rule matched: `socialcrm records --route none`"
                if config.routing.unmatched else "set [routing] unmatched to give them a fallback")
        # markup=False: "[routing]" is text here, not a rich style tag
        console.print(f"unrouted: {report['unrouted']} records reach no sink although they are not noise ({hint})",
                      markup=False)
