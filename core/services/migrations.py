"""The store's schema for the ``db`` commands: where a config's database stands, bringing it to head,
and the revisions this socialcrm ships."""
from __future__ import annotations

from dataclasses import dataclass

from socialcrm.core.engine.config import Config
from socialcrm.core.store import (Revision, SchemaState, StoreMissing, Upgrade, history, location, schema_state,
                                  upgrade_command, upgrade_store)


@dataclass(frozen=True)
class Standing:
    """A config's database as ``db current`` tells it: where it is, its state (None when there is no database
    there yet) and the command that upgrades it."""

    backend: str
    where: str
    schema: str | None
    state: SchemaState | None
    fix: str

    @property
    def status(self) -> str:
        """The state's status (``current``, ``behind``, ``unversioned``, ``unknown``), or ``empty`` when
        there is no database yet."""
        return self.state.status if self.state else "empty"

    def shown(self) -> str:
        """Where the database is, as one phrase: ``sqlite at PATH``, ``postgresql at URL (schema NAME)``."""
        return _phrase(self.backend, self.where, self.schema)


def place(config: Config) -> str:
    """Where the config's database is, as one phrase (``sqlite at PATH``), without opening it."""
    return _phrase(*location(config.store_url), config.store_schema)


def _phrase(backend: str, where: str, schema: str | None) -> str:
    return f"{backend} at {where}" + (f" (schema {schema})" if schema else "")


def standing(config: Config) -> Standing:
    """Where the config's database stands, opened read-only (nothing is created). A ``StoreError`` when it
    cannot be opened or its tables of socialcrm's names are someone else's."""
    backend, where = location(config.store_url)
    try:
        state = schema_state(config.store_url, config.store_schema)
    except StoreMissing:
        state = None
    return Standing(backend, where, config.store_schema, state, upgrade_command(config.path))


def upgrade(config: Config) -> Upgrade:
    """Bring the config's database to head (made at head when it is new), in one transaction;
    ``MigrationFailed`` when a migration fails (rolled back, nothing changed)."""
    return upgrade_store(config.store_url, config.store_schema, config.path)


def revisions() -> list[Revision]:
    """Every revision this socialcrm ships, oldest first."""
    return history()
