"""``socialcrm db upgrade | current | history``: the store's schema migrations (Alembic's, shipped in the
package). ``run`` and ``serve`` refuse a database that is behind; ``db upgrade`` is what brings it up."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from click.core import ParameterSource

from socialcrm.core.cli.commands._common import fail
from socialcrm.core.cli.context import Context, config_option
from socialcrm.core.sdk.hookspecs import hookimpl

BEHIND = 1
"""``db current``'s exit status when the database needs ``db upgrade`` (no database yet, made before
migrations, or at an older revision); 0 means at head, 2 that it cannot be opened or is newer than this
socialcrm."""


@hookimpl
def register_commands(cli: click.Group) -> None:
    """Add the ``db`` group to the ``socialcrm`` group."""

    @cli.group("db")
    def db() -> None:
        """The store's schema: upgrade it, say where it stands, list the migrations."""

    @db.command("upgrade")
    @config_option
    @click.pass_obj
    def upgrade(ctx: Context, config_path: str) -> None:
        """Bring the store's schema to this socialcrm's head, in one transaction (every step or none).

        A new database is created at head; one made before migrations (socialcrm 0.1.0) is adopted with
        everything it holds. Exit 0 when the store is at head (nothing to do counts), 1 when a migration
        failed (rolled back: nothing changed), 2 when the config or the store cannot be opened."""
        from socialcrm.core.services.migrations import place, revisions, upgrade as upgrade_store
        from socialcrm.core.store import MigrationFailed
        config = ctx.config(config_path)
        try:
            done = upgrade_store(config)
        except MigrationFailed as exc:
            fail(str(exc))
        head, where = revisions()[-1], place(config)
        if done.created:
            click.echo(f"store {where}: new database created at revision {head.id} (head)")
        elif not done.applied:
            click.echo(f"store {where}: at revision {head.id} (head) already: nothing to do")
        else:
            was = ("made before migrations (no version table): adopted as it was" if done.before.status == "unversioned"
                   else f"was at revision {', '.join(done.before.current)}")
            click.echo(f"store {where}: {was}; now at revision {head.id} (head)")
            for revision in done.applied:
                click.echo(f"  applied {revision.id}  {revision.title}")

    @db.command("current")
    @config_option
    @click.option("--json", "as_json", is_flag=True,
                  help="One JSON object: backend, where, schema, revisions, head, status.")
    @click.pass_obj
    def current(ctx: Context, config_path: str, as_json: bool) -> None:
        """Say which schema revision the store is at and whether it needs `socialcrm db upgrade` (opened
        read-only: nothing is created or changed).

        Exit 0 at head; 1 when it needs `db upgrade` (no database yet, made before migrations, or at an older
        revision); 2 when the store cannot be opened or a newer socialcrm upgraded it."""
        from socialcrm.core.services.migrations import revisions, standing
        config = ctx.config(config_path)
        found = standing(config)
        shipped = revisions()
        head = shipped[-1].id
        code = {"current": 0, "unknown": 2}.get(found.status, BEHIND)
        if as_json:
            click.echo(json.dumps({"backend": found.backend, "where": found.where, "schema": found.schema,
                                   "revisions": list(found.state.current) if found.state else [], "head": head,
                                   "status": found.status}))
            sys.exit(code)
        place = f"store {found.shown()}"
        if found.status == "current":
            click.echo(f"{place}: revision {head}: up to date (head)")
        elif found.status == "empty":
            click.echo(f"{place}: no socialcrm database yet: `{found.fix}` (or `socialcrm run`) creates it at "
                       f"revision {head}")
        elif found.status == "unversioned":
            click.echo(f"{place}: no revision: made by socialcrm 0.1.0 or earlier, before schema migrations; "
                       f"`{found.fix}` adopts it (nothing stored is lost)")
        elif found.status == "behind":
            click.echo(f"{place}: revision {', '.join(found.state.current)}; this socialcrm's head is {head}: "
                       f"behind, run `{found.fix}`")
        else:
            click.echo(f"{place}: revision {', '.join(found.state.current)}, which this socialcrm does not know "
                       f"(its head is {head}): a newer socialcrm upgraded it; run that version", err=True)
        sys.exit(code)

    @db.command("history")
    @config_option
    @click.pass_obj
    def history(ctx: Context, config_path: str) -> None:
        """List the schema migrations this socialcrm ships, oldest first; with a config file (given, or
        ./socialcrm.toml when there is one) the store's current revision is marked. Needs no database."""
        from socialcrm.core.services.migrations import revisions, standing
        given = click.get_current_context().get_parameter_source("config_path") != ParameterSource.DEFAULT
        at: set[str] = set()
        note = ""
        if given or Path(config_path).is_file():
            found = standing(ctx.config(config_path))
            at = set(found.state.current) if found.state else set()
            note = {"empty": " (no database yet)", "unversioned": " (made before migrations: no revision yet)"}.get(
                found.status, "")
            click.echo(f"store {found.shown()}{note}")
        shipped = revisions()
        for revision in shipped:
            marks = [mark for mark, on in (("head", revision is shipped[-1]), ("current", revision.id in at)) if on]
            click.echo(f"{revision.id}  {revision.title}" + (f"  ({', '.join(marks)})" if marks else ""))
