"""Scoring the learning step on labelled data, with the metrics the datasets' publishers use.

The one home of the project's metrics (the text model's training and tests use these too).

- sentiment (``sentiment`` labels): macro-averaged recall over negative, neutral and positive (the
  SemEval-2017 / TweetEval metric), accuracy, and the confusion matrix;
- complaints (``complaint`` true/false): precision, recall and F1 of the complaint class, where a
  complaint is a record typed ``case`` or ``rant``, and macro-F1;
- suggestions (``suggestion`` true/false): the same for the suggestion class, a record typed ``rfe``;
- record types (``label.type``, as in ``samples/mentions.jsonl``): accuracy, macro-F1, precision /
  recall / F1 per type, and the confusion matrix.

A labelled row carries its labels at the top level (``sentiment``, ``complaint``, ``suggestion``) or
in a ``label`` object (``{"type": ..., "sentiment": ...}``, the sample's format); every label a row
carries is scored.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from socialcrm.core.sdk.model import RECORD_TYPES, SENTIMENTS, Record

TASKS = ("sentiment", "complaint", "suggestion")  # what the text model is trained for
SCORED_TASKS = TASKS + ("type",)  # what evaluate scores, in report order
COMPLAINT_TYPES = frozenset({"case", "rant"})
SUGGESTION_TYPES = frozenset({"rfe"})
SENTIMENT_LABELS = tuple(SENTIMENTS[::-1])  # negative, neutral, positive


def macro_recall(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str] = SENTIMENT_LABELS) -> float:
    """Mean recall over the ``labels`` that have gold rows (the SemEval-2017 Task 4A metric).

    A label with no gold rows has no recall (0/0), so it is left out of the mean rather than counted as
    0: a file that labels only negative and positive posts is not capped at 2/3.  On every shared
    dataset all three labels have gold rows, where both readings give the same figure."""
    recalls = [recall for recall in per_label_recall(gold, pred, labels).values() if recall is not None]
    return sum(recalls) / len(recalls) if recalls else 0.0


def per_label_recall(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str]) -> dict[str, float | None]:
    """Recall of each label (None for a label with no gold rows)."""
    support = Counter(gold)
    hits = Counter(g for g, p in zip(gold, pred) if g == p)
    return {label: hits[label] / support[label] if support[label] else None for label in labels}


def precision_recall_f1(gold: Sequence, pred: Sequence, positive: Any = True) -> tuple[float, float, float]:
    """Precision, recall and F1 of the ``positive`` class (each 0.0 where undefined)."""
    tp = sum(g == positive and p == positive for g, p in zip(gold, pred))
    fp = sum(g != positive and p == positive for g, p in zip(gold, pred))
    fn = sum(g == positive and p != positive for g, p in zip(gold, pred))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    # 2tp / (2tp + fp + fn) is the harmonic mean of precision and recall, computed from the counts
    f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return precision, recall, f1


def f1_binary(gold: Sequence[bool], pred: Sequence[bool]) -> float:
    """F1 of the positive class of boolean labels (truthy values count as True)."""
    return precision_recall_f1([bool(g) for g in gold], [bool(p) for p in pred])[2]


def accuracy(gold: Sequence, pred: Sequence) -> float:
    """Share of rows whose prediction equals the gold label (0.0 without rows)."""
    return sum(g == p for g, p in zip(gold, pred)) / len(gold) if gold else 0.0


def labels_of(row: dict[str, Any]) -> dict[str, Any]:
    """The gold labels a row carries, by task: top-level ``sentiment`` / ``complaint`` / ``suggestion``,
    and ``label.type`` / ``label.sentiment`` (a top-level sentiment wins over ``label.sentiment``).

    Raises ValueError naming the field when a label is not one evaluate can score."""
    nested = row.get("label")
    found: dict[str, Any] = {}
    if isinstance(nested, dict):
        found.update({task: nested[task] for task in ("type", "sentiment") if nested.get(task) is not None})
    found.update({task: row[task] for task in TASKS if row.get(task) is not None})
    if "sentiment" in found and found["sentiment"] not in SENTIMENT_LABELS:
        raise ValueError(f"sentiment {found['sentiment']!r} is not one of {', '.join(SENTIMENT_LABELS)}")
    if "type" in found and found["type"] not in RECORD_TYPES:
        raise ValueError(f"label.type {found['type']!r} is not one of {', '.join(RECORD_TYPES)}")
    for task in ("complaint", "suggestion"):
        if task in found:
            if found[task] not in (True, False):  # 1 and 0 compare equal to True and False
                raise ValueError(f"{task} must be true or false, not {found[task]!r}")
            found[task] = bool(found[task])
    return found


def task_of(row: dict[str, Any]) -> str:
    """The first task a labelled row has a label for (ValueError when it has none)."""
    found = labels_of(row)
    for task in SCORED_TASKS:
        if task in found:
            return task
    raise ValueError("no label field: a labelled row needs one of sentiment, complaint, suggestion, "
                     "or a label object with type or sentiment")


def predicted(task: str, record: Record) -> str | bool:
    """What a record says for a task: a sentiment label, a type, or whether it is a complaint/suggestion."""
    if task == "sentiment":
        return record.sentiment.label
    if task == "type":
        return record.type
    if task == "complaint":
        return record.type in COMPLAINT_TYPES
    return record.type in SUGGESTION_TYPES


@dataclass
class Scores:
    """Metrics of one task over gold and predicted labels."""

    task: str
    n: int
    metrics: dict[str, float]
    labels: list[str]
    confusion: list[list[int]] = field(default_factory=list)  # rows gold, columns predicted
    per_label: dict[str, dict[str, float]] = field(default_factory=dict)  # label -> precision, recall, f1, support

    def as_dict(self) -> dict[str, Any]:
        """The scores as JSON-ready data."""
        out = {"task": self.task, "n": self.n, "metrics": self.metrics, "labels": self.labels,
               "confusion": self.confusion}
        if self.per_label:
            out["per_label"] = self.per_label
        return out


def _confusion(gold: Sequence, pred: Sequence, labels: Sequence) -> list[list[int]]:
    counts = Counter(zip(gold, pred))
    return [[counts[(g, p)] for p in labels] for g in labels]


def _rounded(metrics: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in metrics.items()}


def score(task: str, gold: Sequence, pred: Sequence) -> Scores:
    """The task's metrics for ``gold`` against ``pred``."""
    if task == "sentiment":
        labels = list(SENTIMENT_LABELS)
        recalls = per_label_recall(gold, pred, labels)
        metrics = {"macro_recall": macro_recall(gold, pred, labels), "accuracy": accuracy(gold, pred),
                   **{f"recall_{k}": v for k, v in recalls.items() if v is not None}}
        return Scores(task, len(gold), _rounded(metrics), labels, _confusion(gold, pred, labels))
    if task == "type":
        return _score_types(gold, pred)
    precision, recall, f1 = precision_recall_f1(gold, pred, True)
    _, _, f1_negative = precision_recall_f1(gold, pred, False)
    metrics = {"precision": precision, "recall": recall, "f1": f1, "macro_f1": (f1 + f1_negative) / 2,
               "accuracy": accuracy(gold, pred)}
    labels = [f"not {task}", task]
    return Scores(task, len(gold), _rounded(metrics), labels,
                  _confusion([bool(g) for g in gold], [bool(p) for p in pred], [False, True]))


def _score_types(gold: Sequence[str], pred: Sequence[str]) -> Scores:
    """Record types: accuracy, macro-F1 over the types that occur (in gold or predicted), and per type
    precision, recall, F1 and gold support."""
    seen = set(gold) | set(pred)
    labels = [t for t in RECORD_TYPES if t in seen]
    support = Counter(gold)
    per_label, f1s = {}, []
    for label in labels:
        precision, recall, f1 = precision_recall_f1(gold, pred, label)
        per_label[label] = {**_rounded({"precision": precision, "recall": recall, "f1": f1}),
                            "support": support[label]}
        f1s.append(f1)
    macro_f1 = sum(f1s) / len(f1s) if f1s else 0.0
    return Scores("type", len(gold), _rounded({"accuracy": accuracy(gold, pred), "macro_f1": macro_f1}), labels,
                  _confusion(gold, pred, labels), per_label)


def evaluate(rows: Iterable[dict[str, Any]], records: Iterable[Record]) -> list[Scores]:
    """Metrics per task labelled in ``rows``; ``records[i]`` was learned from ``rows[i]``."""
    gold: dict[str, list] = {}
    pred: dict[str, list] = {}
    for row, record in zip(rows, records):
        for task, label in labels_of(row).items():
            gold.setdefault(task, []).append(label)
            pred.setdefault(task, []).append(predicted(task, record))
    return [score(task, gold[task], pred[task]) for task in SCORED_TASKS if task in gold]
