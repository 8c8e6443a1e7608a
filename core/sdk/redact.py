"""Keep secrets out of log lines: a logging filter that masks every known secret value."""
from __future__ import annotations

import logging
from typing import Iterable

MASK = "***"


class RedactSecrets(logging.Filter):
    """Replaces each secret value (tokens, passwords from ``${ENV}``) in a record's message with ``***``."""

    def __init__(self, secrets: Iterable[str]):
        super().__init__()
        # Longest first, so a secret containing another is masked whole. Very short values would
        # mask ordinary words, and are not credentials anyway.
        self.secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = self.redact(record.getMessage())
            record.msg, record.args = message, None
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = self.redact(record.exc_text)
        return True


def install(secrets: Iterable[str]) -> RedactSecrets:
    """Mask ``secrets`` in everything the root logger's handlers write."""
    flt = RedactSecrets(secrets)
    for handler in logging.getLogger().handlers:
        handler.addFilter(flt)
    return flt
