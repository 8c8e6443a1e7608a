"""Alembic's environment for the store: migrate the connection socialcrm hands over, inside its transaction.

``socialcrm.core.store.migrating`` calls Alembic with the connection (already in a transaction, holding
the migration lock) and the context options (the version table, its schema) in the config's
``attributes``. Alembic's own command line and its offline ``--sql`` mode are not supported: every
migration runs through ``socialcrm db upgrade``.
"""
from __future__ import annotations

from alembic import context

from socialcrm.core.store.schema import metadata


def run_migrations() -> None:
    """Run the migrations Alembic selected on the connection in ``config.attributes``."""
    attributes = context.config.attributes
    connection = attributes.get("connection")
    if context.is_offline_mode() or connection is None:
        raise RuntimeError("socialcrm migrates only through `socialcrm db upgrade` (on a connection it opens); "
                           "alembic's own command line and offline --sql mode are not supported")
    context.configure(connection=connection, target_metadata=metadata,
                      # SQLite alters little in place: a migration that changes a column recreates the table
                      render_as_batch=connection.dialect.name == "sqlite", **attributes["options"])
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
