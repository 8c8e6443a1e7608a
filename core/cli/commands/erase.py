"""``socialcrm erase``: remove everything held about one author (a data-subject erasure request).

The same erasure as the API's ``POST /erasures``: mentions, records, their deliveries and feedback go;
audit entries naming those records are redacted; the erasure is audited by a salted hash of the author
and the counts, never the handle.
"""
from __future__ import annotations

import json

import click

from socialcrm.core.cli.context import Context, config_option
from socialcrm.core.cli.commands._common import default_actor
from socialcrm.core.sdk.hookspecs import hookimpl


@hookimpl
def register_commands(cli: click.Group) -> None:
    """Add ``erase`` to the ``socialcrm`` group."""

    @cli.command()
    @config_option
    @click.option("--author", required=True, help="The author's handle (@ optional, any case).")
    @click.option("--network", required=True, help="The network the handle is on (x, reddit, mastodon, ...).")
    @click.option("--actor", default=default_actor, show_default="your login name",
                  help="Who erases, for the audit log.")
    @click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
    @click.option("--json", "as_json", is_flag=True, help="Print the counts as one JSON object.")
    @click.pass_obj
    def erase(ctx: Context, config_path: str, author: str, network: str, actor: str, yes: bool,
              as_json: bool) -> None:
        """Erase one author's mentions, records, deliveries and feedback from the store."""
        from socialcrm.core.services.erasure import erase_author
        from socialcrm.core.services.runtime import opened_store
        config = ctx.config(config_path)
        if not yes:
            click.confirm(f"Erase everything held about {author} on {network}? This cannot be undone", abort=True)
        with opened_store(config) as store:
            counts = erase_author(store, config, network.strip().lower(), author, actor)
        if as_json:
            click.echo(json.dumps(counts))
            return
        click.echo(f"erased {counts['mentions']} mentions, {counts['records']} records, {counts['deliveries']} "
                   f"deliveries ({counts['pending_deliveries']} not yet sent) and {counts['feedback']} feedback "
                   f"entries; {counts['audit_redacted']} audit entries redacted")
