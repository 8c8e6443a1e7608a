"""What every view reaches through the app: the runtime (config, plugins, pipeline, store) and the clock."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from flask import current_app

from socialcrm.core.services.runtime import Config, Pipeline, Runtime


@dataclass
class ApiState:
    """The app's view of socialcrm. ``scheduled`` says a ``run_forever`` loop runs beside the API (under
    ``socialcrm serve``), so a poll asked for is handed to it rather than run in the request."""

    runtime: Runtime
    clock: Callable[[], float] = time.time
    scheduled: bool = False

    @property
    def config(self) -> Config:
        """The loaded config."""
        return self.runtime.config

    @property
    def pipeline(self) -> Pipeline:
        """The pipeline whose schedule ``socialcrm serve`` runs beside the app (and closes)."""
        return self.runtime.pipeline


def state() -> ApiState:
    """The running app's state."""
    return current_app.extensions["socialcrm"]


__all__ = ["ApiState", "state"]
