"""Where training examples come from: people's corrections in the store, and labelled files."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from socialcrm.core.engine.evaluation import COMPLAINT_TYPES, SUGGESTION_TYPES
from socialcrm.core.store import Store

#: The labels a training row may carry, one per text-model head.
LABEL_FIELDS = ("sentiment", "complaint", "suggestion", "question")
#: The record type that marks an information-seeking question (the question head's positive class).
QUESTION_TYPE = "query"


class TrainingDataError(ValueError):
    """A labelled file that cannot be trained on; the message names the file and the line."""


def read_labelled(path: str | Path) -> list[dict[str, Any]]:
    """Labelled JSON Lines rows with ``text`` and at least one of sentiment, complaint, suggestion, question;
    ``TrainingDataError`` naming the file and line of the first row that is not one."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise TrainingDataError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8 JSON Lines") from None
    except OSError as exc:
        raise TrainingDataError(f"{path}: cannot be read ({exc.strerror})") from None
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TrainingDataError(f"{path} line {number}: not JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(row, dict) or "text" not in row or not (set(LABEL_FIELDS) & set(row)):
            raise TrainingDataError(f"{path} line {number}: needs a JSON object with text and one of "
                                    + ", ".join(LABEL_FIELDS))
        rows.append(row)
    return rows


def feedback_rows(store: Store) -> list[dict[str, Any]]:
    """One training row per corrected record, from its latest corrections.

    A corrected type teaches the binary heads (a case or rant is a complaint, an rfe a suggestion, a query
    a question, anything else none of them); a corrected sentiment teaches the sentiment head.
    """
    rows = []
    for text, fields in store.latest_corrections(("type", "sentiment")):
        row: dict[str, Any] = {"text": text}
        if "sentiment" in fields:
            row["sentiment"] = fields["sentiment"]
        if "type" in fields:
            row["complaint"] = fields["type"] in COMPLAINT_TYPES
            row["suggestion"] = fields["type"] in SUGGESTION_TYPES
            row["question"] = fields["type"] == QUESTION_TYPE
        rows.append(row)
    return rows
