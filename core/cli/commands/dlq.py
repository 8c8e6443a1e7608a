"""``socialcrm dlq list|show|replay``: the records sinks refused for good, and sending them again.

A dead letter is an outbox row in the ``dead`` state: the sink rejected the record (with its reason)
or delivery gave up after ``max_attempts``. Replay puts rows back to pending with no attempts
counted, and writes one ``audit`` entry per row saying who replayed it and what had gone wrong.
"""
from __future__ import annotations

import json

import click

from socialcrm.core.cli.context import Context, config_option
from socialcrm.core.cli.commands._common import default_actor, echo_listing, utc_time
from socialcrm.core.sdk.hookspecs import hookimpl


def _store(ctx: Context, config_path: str, read_only: bool = False):
    """The config's store, open for a ``with`` block; ``read_only`` never creates one."""
    from socialcrm.core.services.runtime import opened_store
    return opened_store(ctx.config(config_path), read_only=read_only)


@hookimpl
def register_commands(cli: click.Group) -> None:
    """Add the ``dlq`` group to the ``socialcrm`` group."""

    @cli.group()
    def dlq() -> None:
        """Dead letters: records a sink refused for good or gave up on; list, show and replay them."""

    @dlq.command("list")
    @config_option
    @click.option("--sink", help="Only this sink's dead letters.")
    @click.option("--limit", type=int, default=100, show_default=True)
    @click.option("--json", "as_json", is_flag=True, help="One JSON object per dead letter.")
    @click.pass_obj
    def list_(ctx: Context, config_path: str, sink: str | None, limit: int, as_json: bool) -> None:
        """Dead letters, the most recent first, with each sink's reason."""
        from socialcrm.core.services.deadletters import dead_letters
        with _store(ctx, config_path, read_only=True) as store:
            rows = dead_letters(store, sink=sink, limit=limit)
        echo_listing(rows, as_json, "no dead letters" + (f" for sink {sink}" if sink else ""),
                     ("id", "sink", "record", "type", "priority", "attempts", "dead since"),
                     lambda row: (str(row["id"]), row["sink"], row["record_id"], row["type"], row["priority"],
                                  str(row["attempts"]), utc_time(row["dead_at"]), row["error"] or ""))

    @dlq.command("show")
    @config_option
    @click.argument("outbox_id", type=int)
    @click.option("--json", "as_json", is_flag=True, help="One JSON object.")
    @click.pass_obj
    def show(ctx: Context, config_path: str, outbox_id: int, as_json: bool) -> None:
        """One dead letter (by the id ``dlq list`` shows): the reason, the record, and its replay history."""
        from socialcrm.core.services.deadletters import outbox_row
        with _store(ctx, config_path, read_only=True) as store:
            row = outbox_row(store, outbox_id)
        if row is None:
            raise click.ClickException(f"no outbox row {outbox_id} (see `socialcrm dlq list`)")
        if as_json:
            click.echo(json.dumps(row, ensure_ascii=False))
            return
        lines = [f"dead letter {row['id']}" if row["state"] == "dead" else f"outbox row {row['id']} ({row['state']})",
                 f"  sink:      {row['sink']}",
                 f"  record:    {row['record_id']} ({row['type']}, {row['priority']})",
                 f"  attempts:  {row['attempts']}",
                 f"  reason:    {row['last_error'] or '-'}",
                 f"  queued:    {utc_time(row['created_at'])}",
                 f"  updated:   {utc_time(row['updated_at'])}"]
        for entry in row["audit"]:
            lines.append(f"  {entry['action']} by {entry['actor']} at {utc_time(entry['at'])} "
                         f"(it had failed with: {(entry['detail'] or {}).get('error')})")
        lines.append("  record as the sink receives it:")
        lines.append(json.dumps(row["record"], ensure_ascii=False, indent=2))
        click.echo("\n".join(lines))

    @dlq.command("replay")
    @config_option
    @click.argument("outbox_ids", type=int, nargs=-1)
    @click.option("--sink", help="Replay every dead letter of this sink.")
    @click.option("--all", "all_", is_flag=True, help="Replay every dead letter.")
    @click.option("--actor", default=default_actor, show_default="your login name",
                  help="Who replays, for the audit log.")
    @click.pass_obj
    def replay(ctx: Context, config_path: str, outbox_ids: tuple[int, ...], sink: str | None, all_: bool,
               actor: str) -> None:
        """Send dead letters again (after fixing the config or the receiver): give IDs, --sink S or --all.

        The rows go back to pending with no attempts counted; the next `socialcrm run` delivers them."""
        chosen = sum((bool(outbox_ids), sink is not None, all_))
        if chosen != 1:
            raise click.UsageError("say which dead letters to replay: IDs, --sink NAME or --all (one of them)")
        from socialcrm.core.services.deadletters import NotDeadLetters, replay as replay_dead
        with _store(ctx, config_path) as store:
            try:
                replayed = replay_dead(store, actor, ids=list(outbox_ids) or None, sink=sink)
            except NotDeadLetters as exc:
                raise click.ClickException(f"not dead letters: {', '.join(map(str, exc.missing))} "
                                           "(see `socialcrm dlq list`); nothing replayed") from exc
        if not replayed:
            click.echo("no dead letters to replay" + (f" for sink {sink}" if sink else ""))
            return
        click.echo(f"replayed {len(replayed)} dead letter{'s' if len(replayed) != 1 else ''}; they are pending "
                   "again and go out on the next delivery pass")
