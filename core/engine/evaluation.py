"""Scoring the learning step on labelled data, with the metrics the datasets' publishers use.

- sentiment (``sentiment`` labels): macro-averaged recall over negative, neutral and positive (the
  SemEval-2017 / TweetEval metric), accuracy, and the confusion matrix;
- complaints (``complaint`` true/false): precision, recall and F1 of the complaint class, where a
  complaint is a record typed ``case`` or ``rant``, and macro-F1;
- suggestions (``suggestion`` true/false): the same for the suggestion class, a record typed ``rfe``.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from socialcrm.core.sdk.model import SENTIMENTS, Record

TASKS = ("sentiment", "complaint", "suggestion")
COMPLAINT_TYPES = frozenset({"case", "rant"})
SUGGESTION_TYPES = frozenset({"rfe"})


def task_of(row: dict[str, Any]) -> str:
    """Which task a labelled row is for, by the label field it carries."""
    for task in TASKS:
        if task in row:
            return task
    raise ValueError(f"no label field: a labelled row needs one of {', '.join(TASKS)}")


def predicted(task: str, record: Record) -> str | bool:
    """What a record says for a task: a sentiment label, or whether it is a complaint/suggestion."""
    if task == "sentiment":
        return record.sentiment.label
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

    def as_dict(self) -> dict[str, Any]:
        return {"task": self.task, "n": self.n, "metrics": self.metrics, "labels": self.labels,
                "confusion": self.confusion}


def _confusion(gold: Sequence, pred: Sequence, labels: Sequence) -> list[list[int]]:
    counts = Counter(zip(gold, pred))
    return [[counts[(g, p)] for p in labels] for g in labels]


def precision_recall_f1(gold: Sequence[bool], pred: Sequence[bool], positive: bool = True) -> tuple[float, float, float]:
    """Precision, recall and F1 of the ``positive`` class (each 0.0 where undefined)."""
    tp = sum(g == positive and p == positive for g, p in zip(gold, pred))
    fp = sum(g != positive and p == positive for g, p in zip(gold, pred))
    fn = sum(g == positive and p != positive for g, p in zip(gold, pred))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    # 2tp / (2tp + fp + fn) is the harmonic mean of precision and recall, computed from the counts
    f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return precision, recall, f1


def score(task: str, gold: Sequence, pred: Sequence) -> Scores:
    """The task's metrics for ``gold`` against ``pred``."""
    if task == "sentiment":
        labels = list(SENTIMENTS[::-1])  # negative, neutral, positive
        recalls = {}
        for label in labels:
            support = sum(g == label for g in gold)
            recalls[label] = sum(g == p == label for g, p in zip(gold, pred)) / support if support else 0.0
        metrics = {"macro_recall": sum(recalls.values()) / len(labels),
                   "accuracy": sum(g == p for g, p in zip(gold, pred)) / len(gold) if gold else 0.0,
                   **{f"recall_{k}": v for k, v in recalls.items()}}
        return Scores(task, len(gold), {k: round(v, 4) for k, v in metrics.items()}, labels,
                      _confusion(gold, pred, labels))
    precision, recall, f1 = precision_recall_f1(gold, pred, True)
    _, _, f1_negative = precision_recall_f1(gold, pred, False)
    metrics = {"precision": precision, "recall": recall, "f1": f1, "macro_f1": (f1 + f1_negative) / 2,
               "accuracy": sum(g == p for g, p in zip(gold, pred)) / len(gold) if gold else 0.0}
    labels = [f"not {task}", task]
    return Scores(task, len(gold), {k: round(v, 4) for k, v in metrics.items()}, labels,
                  _confusion([bool(g) for g in gold], [bool(p) for p in pred], [False, True]))


def evaluate(rows: Iterable[dict[str, Any]], records: Iterable[Record]) -> list[Scores]:
    """Metrics per task present in ``rows``; ``records[i]`` was learned from ``rows[i]``."""
    gold: dict[str, list] = {}
    pred: dict[str, list] = {}
    for row, record in zip(rows, records):
        task = task_of(row)
        gold.setdefault(task, []).append(row[task])
        pred.setdefault(task, []).append(predicted(task, record))
    return [score(task, gold[task], pred[task]) for task in TASKS if task in gold]
