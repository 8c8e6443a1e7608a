"""jsonl sink: appends each record as one JSON line; a record already in the file is not written again.

Each line is the record plus ``event`` (``record.created``, or ``conversation.updated`` for a follow-up) and
``thread_object`` (for a follow-up, the line id its conversation's first record was written under).

    [sinks.archive]
    plugin = "jsonl"
    path = "out/records.jsonl"
"""
from __future__ import annotations

import os
import tempfile

import orjson
from typing import Sequence

from marshmallow import fields, validate

from socialcrm import Delivery, Record, Sink, hookimpl, StrictSchema

from . import _render as render


class JsonlSinkConfig(StrictSchema):
    """``path`` of the file (relative to the config file); ``fsync`` each batch to disk (default on)."""

    path = fields.String(required=True, validate=validate.Length(min=1))
    fsync = fields.Boolean(load_default=True)


class JsonlSink(Sink):
    """Writes records to a JSON Lines file, idempotently by record id."""

    name = "jsonl"
    ConfigSchema = JsonlSinkConfig
    max_batch = 500

    def __init__(self, config, context):
        super().__init__(config, context)
        self.path = os.path.join(context.base_dir, os.path.expanduser(config["path"]))
        self._written: set[str] | None = None

    def _ids_in_file(self) -> set[str]:
        # Read once: after a crash the outbox re-sends what it had in flight, and those must not repeat.
        ids: set[str] = set()
        if os.path.exists(self.path):
            with open(self.path, "rb") as handle:
                for line in handle:
                    if line.endswith(b"\n"):
                        ids.add(orjson.loads(line)["id"])
        return ids

    def check(self) -> str:
        """Nothing to call: make the folder as ``send`` would, and open the file (or, when there is none
        yet, a scratch file beside it) for writing, so an unwritable path fails now, named."""
        folder = os.path.dirname(self.path) or "."
        try:
            os.makedirs(folder, exist_ok=True)
            if os.path.exists(self.path):
                with open(self.path, "ab"):
                    pass
            else:
                with tempfile.TemporaryFile(dir=folder):
                    pass
        except OSError as exc:
            raise OSError(exc.errno, f"cannot write {self.path} ({exc.strerror}): fix path or the folder's "
                                     "permissions") from None
        return f"jsonl: nothing to call; checked that {self.path} is writable"

    def send(self, records: Sequence[Record]) -> list[Delivery]:
        if self._written is None:
            os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
            self._written = self._ids_in_file()
        out, lines = [], []
        for record in records:
            if record.id not in self._written:
                lines.append(orjson.dumps({**record.to_dict(), **render.event(record)}) + b"\n")
                self._written.add(record.id)
            out.append(Delivery.delivered(record.id, external_id=record.id))
        if lines:
            with open(self.path, "ab") as handle:
                handle.write(b"".join(lines))
                handle.flush()
                if self.config["fsync"]:
                    os.fsync(handle.fileno())
        return out


@hookimpl
def register_sinks(register):
    register(JsonlSink)
