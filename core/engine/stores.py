"""The store a config's ``[store]`` block names, opened the one way every front end opens it."""
from __future__ import annotations

from socialcrm.core.engine.config import Config
from socialcrm.core.store import Store


def open_store(config: Config, *, read_only: bool = False, upgrade: bool = False) -> Store:
    """Open ``[store] url`` (its tables in ``[store] schema``, when set). A database whose schema is behind is
    refused with a message naming ``socialcrm db upgrade --config`` and this config's file, unless ``upgrade``
    (the embedded demo upgrades itself); ``read_only`` never creates one (see ``Store``)."""
    return Store(config.store_url, read_only=read_only, schema=config.store_schema, upgrade=upgrade,
                 config_file=config.path)
