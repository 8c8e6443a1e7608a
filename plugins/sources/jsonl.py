"""jsonl source: mentions from a JSON Lines file, resumable by byte offset.

One JSON object per line, in the shape ``socialcrm.core.sdk.model.MentionSchema`` reads (``network``,
``id``, ``text``, ``created_at`` required). A reply names its parent in ``reply_to`` and its thread's
root in ``conversation`` (both full mention ids, ``network:native_id``). A line that is not a valid
mention (not JSON, undecodable bytes, a missing or bad field) is reported with its line number and raw
bytes, and the host keeps it in the quarantine; the rest of the page is kept. Lines appended later are
picked up by the next run.

A last line with no newline yet may still be being written. It is read once the file has not
changed for ``settle_seconds``, or at once on a final pass (``run --once``); until then the source
says at info level, once, that it waits for it.

    [sources.sample]
    plugin = "jsonl"
    path = "mentions.jsonl"
"""
from __future__ import annotations

import os
import time
from typing import Any, BinaryIO, Callable, Iterator

from marshmallow import fields, validate

from socialcrm import hookimpl, Mention, Page, read_mention, Source, StrictSchema


SETTLE_SECONDS = 5.0
"""How long, by default, a last line without a newline must stay unchanged before it is read."""


class JsonlSourceConfig(StrictSchema):
    """``path`` of the file (relative to the config file); ``page_size`` lines per page; ``settle_seconds``
    how long a last line without a newline must stay unchanged before it is read."""

    path = fields.String(required=True, validate=validate.Length(min=1))
    page_size = fields.Integer(load_default=500, validate=validate.Range(min=1, max=100_000))
    settle_seconds = fields.Float(load_default=SETTLE_SECONDS, validate=validate.Range(min=0))


class JsonlSource(Source):
    """Reads mentions from a JSON Lines file; the cursor is the byte offset and line number reached."""

    name = "jsonl"
    threads = True  # the documented conversation and reply_to fields
    ConfigSchema = JsonlSourceConfig
    #: What time it is (seconds since the epoch), against the file's modification time; tests set it.
    clock: Callable[[], float] = staticmethod(time.time)

    def __init__(self, config: dict[str, Any], context):
        super().__init__(config, context)
        self._told_waiting: tuple[int, int] | None = None  # (line, size) already logged as waited on

    @property
    def path(self) -> str:
        return os.path.join(self.context.base_dir, os.path.expanduser(self.config["path"]))

    def check(self) -> str:
        """Nothing to call: open the file for reading, so a missing or unreadable path fails now, named."""
        try:
            with open(self.path, "rb"):
                pass
        except OSError as exc:
            raise OSError(exc.errno, f"cannot read {self.path} ({exc.strerror}): fix path") from None
        return f"jsonl: nothing to call; {self.path}: {os.path.getsize(self.path):,} bytes to read"

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
                    if not raw or (not raw.endswith(b"\n") and not self._finished(handle, raw, line_no + 1)):
                        break
                    line_no += 1
                    offset += len(raw)
                    if not raw.strip():
                        continue
                    item = read_mention(raw, f"line {line_no}")
                    (mentions if isinstance(item, Mention) else errors).append(item)
                if not mentions and not errors:
                    return
                yield Page(mentions, {"offset": offset, "line": line_no}, errors)

    def _finished(self, handle: BinaryIO, raw: bytes, line_no: int) -> bool:
        """Whether a last line with no newline is complete: on a final pass, or once the file has not
        changed for ``settle_seconds``. Says once (per line and length) why it waits otherwise."""
        if self.context.final_pass:
            return True
        settle = self.config.get("settle_seconds", SETTLE_SECONDS)
        unchanged_for = self.clock() - os.fstat(handle.fileno()).st_mtime
        if unchanged_for >= settle:
            return True
        if self._told_waiting != (line_no, len(raw)):
            self._told_waiting = (line_no, len(raw))
            self.log.info("%s: line %d has no newline yet: waiting for the writer to finish it (read once the "
                          "file is unchanged for %g s, or by `run --once`)", self.path, line_no, settle)
        return False


@hookimpl
def register_sources(register):
    register(JsonlSource)
