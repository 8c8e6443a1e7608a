"""jsonl source: mentions from a JSON Lines file, resumable by byte offset.

One JSON object per line, in the shape ``socialcrm.core.sdk.model.MentionSchema`` reads (``network``,
``id``, ``text``, ``created_at`` required). A reply names its parent in ``reply_to`` and its thread's
root in ``conversation`` (both full mention ids, ``network:native_id``). A line that is not a valid mention is reported with its
line number and skipped; the rest of the page is kept. Lines appended later are picked up by the
next run.

    [sources.sample]
    plugin = "jsonl"
    path = "mentions.jsonl"
"""
from __future__ import annotations

import json
import os

import orjson
from typing import Any, Iterator

from marshmallow import ValidationError, fields, validate

from socialcrm import describe_validation_error, hookimpl, mention_from_json, Page, Source, StrictSchema


class JsonlSourceConfig(StrictSchema):
    """``path`` of the file (relative to the config file); ``page_size`` lines per page."""

    path = fields.String(required=True, validate=validate.Length(min=1))
    page_size = fields.Integer(load_default=500, validate=validate.Range(min=1, max=100_000))


class JsonlSource(Source):
    """Reads mentions from a JSON Lines file; the cursor is the byte offset and line number reached."""

    name = "jsonl"
    threads = True  # the documented conversation and reply_to fields
    ConfigSchema = JsonlSourceConfig

    @property
    def path(self) -> str:
        return os.path.join(self.context.base_dir, os.path.expanduser(self.config["path"]))

    def check(self) -> str:
        if not os.path.exists(self.path):
            raise FileNotFoundError(f"{self.path} does not exist")
        return f"{self.path}: {os.path.getsize(self.path):,} bytes to read"

    def fetch(self, cursor: Any) -> Iterator[Page]:
        offset, line_no = (cursor or {}).get("offset", 0), (cursor or {}).get("line", 0)
        if offset > os.path.getsize(self.path):
            self.log.warning("%s is shorter than the stored offset %d (replaced?); reading it from the start",
                             self.path, offset)
            offset, line_no = 0, 0
        size = self.config["page_size"]
        with open(self.path, "rb") as handle:
            handle.seek(offset)
            while True:
                mentions, errors = [], []
                for _ in range(size):
                    raw = handle.readline()
                    if not raw.endswith(b"\n"):
                        break  # end of file, or a line still being written: read it next time
                    line_no += 1
                    offset += len(raw)
                    if not raw.strip():
                        continue
                    try:
                        mentions.append(mention_from_json(orjson.loads(raw)))
                    except json.JSONDecodeError as exc:
                        errors.append(f"line {line_no}: not JSON ({exc.msg} at column {exc.colno})")
                    except ValidationError as exc:
                        errors.append(f"line {line_no}: {describe_validation_error(exc)}")
                if not mentions and not errors:
                    return
                yield Page(mentions, {"offset": offset, "line": line_no}, errors)


@hookimpl
def register_sources(register):
    register(JsonlSource)
