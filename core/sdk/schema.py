"""The one strict base for every marshmallow schema socialcrm reads input with."""
from __future__ import annotations

from marshmallow import RAISE, Schema


class StrictSchema(Schema):
    """A schema that rejects unknown keys: a typo in a config file or a request is an error naming the
    key, never a silently ignored setting. Plugins subclass it for their ``ConfigSchema``."""

    class Meta:
        unknown = RAISE
