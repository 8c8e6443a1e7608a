"""``socialcrm quarantine list|show|replay``: the items sources could not read, and reading them again.

An item lands here when a source cannot read it (broken JSON, undecodable bytes, a missing field, a
bad date, a negative count) or it has no text; it is held with its raw payload and the reason. After
fixing the cause (or the payload: ``replay ID --payload FILE``), a replay reads it again as a mention
and takes it in like a polled page; an item still unreadable stays held with the new reason.
"""
from __future__ import annotations

import json

import click

from socialcrm.core.cli.commands._common import echo_listing, utc_time
from socialcrm.core.cli.context import BAD_RUN, Context, config_option
from socialcrm.core.sdk.hookspecs import hookimpl


@hookimpl
def register_commands(cli: click.Group) -> None:
    """Add the ``quarantine`` group to the ``socialcrm`` group."""

    @cli.group()
    def quarantine() -> None:
        """Unreadable input: items a source could not read, held with their raw payload; list, show, replay."""

    @quarantine.command("list")
    @config_option
    @click.option("--source", help="Only this source's items.")
    @click.option("--limit", type=int, default=100, show_default=True)
    @click.option("--json", "as_json", is_flag=True, help="One JSON object per item.")
    @click.pass_obj
    def list_(ctx: Context, config_path: str, source: str | None, limit: int, as_json: bool) -> None:
        """The items held, the most recent first, with where each was and why it could not be read."""
        from socialcrm.core.services.quarantine import quarantined
        from socialcrm.core.services.runtime import opened_store
        with opened_store(ctx.config(config_path)) as store:
            rows = quarantined(store, source=source, limit=limit)
        echo_listing(rows, as_json, "the quarantine is empty" + (f" for source {source}" if source else ""),
                     ("id", "source", "where", "replays", "since"),
                     lambda row: (str(row["id"]), row["source"], row["location"] or "-", str(row["replays"]),
                                  utc_time(row["created_at"]), row["reason"]))

    @quarantine.command("show")
    @config_option
    @click.argument("item_id", type=int)
    @click.option("--json", "as_json", is_flag=True, help="One JSON object, payload included.")
    @click.pass_obj
    def show(ctx: Context, config_path: str, item_id: int, as_json: bool) -> None:
        """One quarantined item (by the id ``quarantine list`` shows): the reason and the raw payload."""
        from socialcrm.core.services.quarantine import quarantined_item
        from socialcrm.core.services.runtime import opened_store
        with opened_store(ctx.config(config_path)) as store:
            row = quarantined_item(store, item_id)
        if row is None:
            raise click.ClickException(f"no quarantined item {item_id} (see `socialcrm quarantine list`)")
        if as_json:
            click.echo(json.dumps(row, ensure_ascii=False))
            return
        click.echo("\n".join([
            f"quarantined item {row['id']} ({row['state']})",
            f"  source:    {row['source']}",
            f"  where:     {row['location'] or '-'}",
            f"  reason:    {row['reason']}",
            f"  replays:   {row['replays']}",
            f"  since:     {utc_time(row['created_at'])}",
            f"  updated:   {utc_time(row['updated_at'])}",
            "  payload as received:",
            row["payload"] if row["payload"] is not None else "  (none kept)"]))

    @quarantine.command("replay")
    @config_option
    @click.argument("item_ids", type=int, nargs=-1)
    @click.option("--all", "all_", is_flag=True, help="Replay every held item.")
    @click.option("--source", help="With --all: only this source's items.")
    @click.option("--payload", "payload_file", type=click.File("rb"),
                  help="Read this file (the item's payload, edited) instead of the stored one; one ID only.")
    @click.pass_obj
    def replay(ctx: Context, config_path: str, item_ids: tuple[int, ...], all_: bool, source: str | None,
               payload_file) -> None:
        """Read quarantined items again as mentions (after fixing the cause): give IDs or --all.

        Items read are captured, learned and routed like a polled page; the next delivery pass sends
        their records. Items still unreadable stay held with the new reason (exit 3)."""
        if bool(item_ids) == all_:
            raise click.UsageError("say which items to replay: IDs or --all (one of them)")
        if payload_file is not None and len(item_ids) != 1:
            raise click.UsageError("--payload replaces one item's payload: give exactly one ID with it")
        from socialcrm.core.services.quarantine import NotQuarantined, replay as replay_items
        from socialcrm.core.services.runtime import Pipeline
        pipeline = Pipeline(ctx.config(config_path), ctx.plugins)
        try:
            outcomes = replay_items(pipeline, ids=list(item_ids) or None, source=source,
                                    payload=payload_file.read() if payload_file is not None else None)
        except NotQuarantined as exc:
            raise click.ClickException(f"not held in the quarantine: {', '.join(map(str, exc.missing))} "
                                       "(see `socialcrm quarantine list`); nothing replayed") from exc
        finally:
            pipeline.close()
        if not outcomes:
            click.echo("the quarantine is empty" + (f" for source {source}" if source else ""))
            return
        for outcome in outcomes:
            if outcome.read:
                click.echo(f"item {outcome.id}: read as {outcome.mention_id}")
            else:
                click.echo(f"item {outcome.id}: still unreadable, kept: {outcome.reason}")
        read = sum(o.read for o in outcomes)
        click.echo(f"replayed {read} of {len(outcomes)}; their records go out on the next delivery pass")
        if read < len(outcomes):
            raise SystemExit(BAD_RUN)
