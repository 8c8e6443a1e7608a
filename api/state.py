"""What every view reaches through the app: the config, the pipeline, its store, the clock."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from flask import current_app

if TYPE_CHECKING:  # pragma: no cover
    from socialcrm.core.engine.config import Config
    from socialcrm.core.engine.pipeline import Pipeline
    from socialcrm.core.engine.plugins import PluginManager
    from socialcrm.core.store import Store


@dataclass
class ApiState:
    """The app's view of socialcrm. ``scheduled`` says a ``run_forever`` loop runs beside the API (under
    ``socialcrm serve``), so a poll asked for is handed to it rather than run in the request."""

    config: "Config"
    plugins: "PluginManager"
    pipeline: "Pipeline"
    clock: Callable[[], float] = time.time
    scheduled: bool = False
    poll_lock: threading.Lock = field(default_factory=threading.Lock)
    ingest_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def store(self) -> "Store":
        """The pipeline's store."""
        return self.pipeline.store


def state() -> ApiState:
    """The running app's state."""
    return current_app.extensions["socialcrm"]


__all__ = ["ApiState", "state"]
