"""The recipe of the committed artefact: which shared datasets, split how, trained with which rows.

The dataset folder names of ``shared/datasets`` live here and nowhere else (:data:`DATASET_FOLDERS`).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable

from socialcrm.core.engine.learning.textmodel.inference import TextModel
from socialcrm.core.engine.learning.textmodel.training import train

# the role each shared dataset plays -> its folder under shared/datasets
DATASET_FOLDERS = {
    "sentiment": "tweeteval_sentiment",
    "complaint": "complaints",
    "suggestion": "semeval2019_task9_suggestions",
    "airline": "airline_sentiment",
    "multilingual": "xlmt_sentiment",
    "question": "tweet_acts",
}
#: The languages of ``xlmt_sentiment`` (ISO 639-1), besides TweetEval's and the airline file's English.
XLMT_LANGUAGES = ("ar", "de", "es", "fr", "hi", "it", "pt")


def holdout_fold(row_id: str) -> bool:
    """True for the deterministic 20% held-back part of the complaints and airline data (never trained on)."""
    return int(hashlib.sha256(row_id.encode("utf-8")).hexdigest(), 16) % 5 == 0


def read_jsonl(path) -> list[dict]:
    """The rows of a JSON Lines file (blank lines skipped)."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def airline_complaint_rows(rows) -> list[dict]:
    """Distant complaint labels from airline sentiment rows (Twitter US Airline Sentiment).

    A negative tweet to an airline that the annotators gave a reason for (late flight, lost
    luggage, customer service, ... or "Can't Tell") is taken as a complaint; a positive or
    neutral one (thanks, praise, questions, requests) as no complaint."""
    out = []
    for r in rows:
        if r.get("sentiment") == "negative" and r.get("negative_reason"):
            out.append({"id": r["id"], "text": r["text"], "complaint": True})
        elif r.get("sentiment") in ("positive", "neutral"):
            out.append({"id": r["id"], "text": r["text"], "complaint": False})
    return out


#: ``exclude(dataset_folder, row) -> bool``: rows it returns True for are left out of training (cross-validation).
Exclude = Callable[[str, dict], bool]


def load_datasets(datasets_dir, exclude: Exclude | None = None) -> dict[str, list[dict]]:
    """The shared datasets split the way train_default() and the tests use them.

    ``*_train`` rows train; ``complaint_val`` and ``airline_heldback`` are the held-back fifths
    (:func:`holdout_fold`) that train nothing; ``*_val`` are the datasets' own validation splits.
    ``exclude`` drops training rows (``*_train``) it returns True for, by dataset folder name, so a
    cross-validation fold can be held out of every role that dataset plays (vocabulary included)."""
    d = Path(datasets_dir)
    folder = {role: d / name for role, name in DATASET_FOLDERS.items()}

    def train_rows(role: str, rows: list[dict]) -> list[dict]:
        return [r for r in rows if not exclude(DATASET_FOLDERS[role], r)] if exclude else rows

    comp = read_jsonl(folder["complaint"] / "train.jsonl")
    air = read_jsonl(folder["airline"] / "train.jsonl")
    return {
        "airline_train": train_rows("airline", [r for r in air if not holdout_fold(r["id"])]),
        "airline_heldback": [r for r in air if holdout_fold(r["id"])],
        "sentiment_train": train_rows("sentiment", read_jsonl(folder["sentiment"] / "train.jsonl")),
        "sentiment_val": read_jsonl(folder["sentiment"] / "val.jsonl"),
        "multilingual_train": train_rows("multilingual", read_jsonl(folder["multilingual"] / "train.jsonl")),
        "multilingual_val": read_jsonl(folder["multilingual"] / "val.jsonl"),
        "complaint_train": train_rows("complaint", [r for r in comp if not holdout_fold(r["id"])]),
        "complaint_val": [r for r in comp if holdout_fold(r["id"])],
        "suggestion_train": train_rows("suggestion", read_jsonl(folder["suggestion"] / "train.jsonl")),
        "suggestion_val": read_jsonl(folder["suggestion"] / "val.jsonl"),
        "question_train": train_rows("question", read_jsonl(folder["question"] / "train.jsonl")),
    }


def sentiment_groups(data: dict[str, list[dict]]) -> tuple[list[dict], list[str]]:
    """The sentiment head's rows (TweetEval, airline training part, xlmt) and each row's weighting group:
    ``tweeteval``, ``airline``, or ``xlmt:<lang>``."""
    rows = list(data["sentiment_train"]) + list(data["airline_train"]) + list(data["multilingual_train"])
    groups = (["tweeteval"] * len(data["sentiment_train"]) + ["airline"] * len(data["airline_train"])
              + [f"xlmt:{r['lang']}" for r in data["multilingual_train"]])
    return rows, groups


def question_rows(rows) -> list[dict]:
    """tweet_acts rows as question-head rows: ``question`` (an information-seeking question) or not."""
    return [{"id": r["id"], "text": r["text"], "question": bool(r["question"])} for r in rows if "question" in r]


def train_default(datasets_dir, exclude: Exclude | None = None) -> TextModel:
    """The recipe that produced the committed artefact (deterministic).

    ``exclude`` (see :func:`load_datasets`) leaves rows out, for cross-validation of the whole recipe."""
    data = load_datasets(datasets_dir, exclude)
    sent_rows, groups = sentiment_groups(data)
    per_language = {"en": len(data["sentiment_train"]) + len(data["airline_train"])}
    for lang in XLMT_LANGUAGES:
        per_language[lang] = sum(1 for r in data["multilingual_train"] if r.get("lang") == lang)
    return train(
        sent_rows,
        data["complaint_train"],
        data["suggestion_train"],
        complaint_aux_rows=airline_complaint_rows(data["airline_train"]),
        question_rows=question_rows(data["question_train"]),
        sentiment_groups=groups,
        info={
            "recipe": "train_default",
            "datasets": [  # as the committed artefact's meta records them (part of its bytes)
                "tweeteval_sentiment train (sentiment)",
                "airline_sentiment train, 80% (sentiment; complaint head: distant labels, down-weighted; "
                "the other 20% held back)",
                "xlmt_sentiment train (sentiment: ar de es fr hi it pt)",
                "complaints (80%)",
                "semeval2019_task9_suggestions",
                "tweet_acts train (question)",
            ],
            "languages": ["en", *XLMT_LANGUAGES],
            "sentiment_rows_per_language": per_language,
        },
    )
