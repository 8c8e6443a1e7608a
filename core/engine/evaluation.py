"""Scoring the learning step on labelled data, with the metrics the datasets' publishers use.

The one home of the project's metrics (the text model's training and tests use these too).

- sentiment (``sentiment`` labels): macro-averaged recall over negative, neutral and positive (the
  SemEval-2017 / TweetEval metric), accuracy, and the confusion matrix;
- complaints (``complaint`` true/false): precision, recall and F1 of the complaint class, where a
  complaint is a record typed ``case`` or ``rant``, and macro-F1;
- suggestions (``suggestion`` true/false): the same for the suggestion class, a record typed ``rfe``;
- questions (``question`` true/false, or ``tweet_act`` = ``question``, as in the shared ``tweet_acts``): the
  same for information-seeking questions, a record typed ``query``; the lenient variant (``*_lenient``)
  also counts a ``case`` (a help request phrased as a question is rightly a case);
- advice (``suggestion`` of a row that carries a ``tweet_act``): tweet_acts' suggestion act is general
  advice, only loosely a request for enhancement, so it is scored as ``rfe`` but reported as its own task,
  ``advice``, never mixed into ``suggestion`` (the SemEval-2019 suggestion-mining figure);
- record types (``label.type``, as in ``samples/mentions.jsonl``): accuracy, macro-F1, precision /
  recall / F1 per type, and the confusion matrix.

A labelled row carries its labels at the top level (``sentiment``, ``complaint``, ``suggestion``) or
in a ``label`` object (``{"type": ..., "sentiment": ...}``, the sample's format); every label a row
carries is scored.  Rows with a ``lang`` field also get sentiment per language and the unweighted mean
of the per-language macro-recalls (the XLM-T / UMSAB metric).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from socialcrm.core.sdk.model import RECORD_TYPES, SENTIMENTS, Record

TASKS = ("sentiment", "complaint", "suggestion")  # what the text model is trained for
SCORED_TASKS = TASKS + ("question", "advice", "type")  # what evaluate scores, in report order
COMPLAINT_TYPES = frozenset({"case", "rant"})
SUGGESTION_TYPES = frozenset({"rfe"})
QUESTION_TYPES = frozenset({"query"})
QUESTION_LENIENT_TYPES = QUESTION_TYPES | {"case"}
TWEET_ACTS = ("statement", "expression", "question", "suggestion", "request", "threat", "other")
ADVICE_NOTE = ("tweet_acts' suggestion act is general advice, only loosely an rfe: scored as type rfe, "
               "reported apart from the suggestion-mining figure")
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


def f1_at_prior(confusion: Sequence[Sequence[int]], prior: float) -> float:
    """F1 of the positive class had the rows come with ``prior`` positives: the same recall and false-positive
    rate (they do not depend on the mix), precision recomputed at the new mix.  ``confusion`` is
    ``[[tn, fp], [fn, tp]]`` (rows gold, as :func:`score` gives it).  For a test split with another label mix
    than the rows scored (SemEval-2019's test: about 10% suggestions against 26% in training)."""
    (tn, fp), (fn, tp) = confusion
    if not 0 < prior < 1 or not tp + fn or not tn + fp:
        raise ValueError(f"prior must be in (0, 1) and both classes need gold rows (prior {prior}, "
                         f"confusion {confusion})")
    recall, false_positive_rate = tp / (tp + fn), fp / (tn + fp)
    hits, false_alarms = recall * prior, false_positive_rate * (1 - prior)
    precision = hits / (hits + false_alarms) if hits + false_alarms else 0.0
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def f1_binary(gold: Sequence[bool], pred: Sequence[bool]) -> float:
    """F1 of the positive class of boolean labels (truthy values count as True)."""
    return precision_recall_f1([bool(g) for g in gold], [bool(p) for p in pred])[2]


def accuracy(gold: Sequence, pred: Sequence) -> float:
    """Share of rows whose prediction equals the gold label (0.0 without rows)."""
    return sum(g == p for g, p in zip(gold, pred)) / len(gold) if gold else 0.0


def _boolean(task: str, value: Any) -> bool:
    if value not in (True, False):  # 1 and 0 compare equal to True and False
        raise ValueError(f"{task} must be true or false, not {value!r}")
    return bool(value)


def labels_of(row: dict[str, Any]) -> dict[str, Any]:
    """The gold labels a row carries, by task: top-level ``sentiment`` / ``complaint`` / ``suggestion`` /
    ``question`` / ``tweet_act``, and ``label.type`` / ``label.sentiment`` (a top-level sentiment wins over
    ``label.sentiment``).  A row with a ``tweet_act`` has its ``suggestion`` as ``advice`` (see the module
    docstring) and, without a ``question`` field, its question from the act.

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
            found[task] = _boolean(task, found[task])
    if row.get("question") is not None:
        found["question"] = _boolean("question", row["question"])
    act = row.get("tweet_act")
    if act is not None:
        if act not in TWEET_ACTS:
            raise ValueError(f"tweet_act {act!r} is not one of {', '.join(TWEET_ACTS)}")
        found.setdefault("question", act == "question")
        found["advice"] = found.pop("suggestion", act == "suggestion")
    return found


def language_of(row: dict[str, Any]) -> str | None:
    """The row's ``lang`` field (None without one); ValueError when it is not a language code."""
    lang = row.get("lang")
    if lang is None:
        return None
    if not isinstance(lang, str) or not lang.strip():
        raise ValueError(f"lang must be a language code such as \"en\" or \"pt\", not {lang!r}")
    return lang.split("-")[0].lower()


def task_of(row: dict[str, Any]) -> str:
    """The first task a labelled row has a label for (ValueError when it has none)."""
    found = labels_of(row)
    for task in SCORED_TASKS:
        if task in found:
            return task
    raise ValueError("no label field: a labelled row needs one of sentiment, complaint, suggestion, question, "
                     "tweet_act, or a label object with type or sentiment")


def predicted(task: str, record: Record) -> str | bool:
    """What a record says for a task: a sentiment label, a type (``type``, and ``question``, which is scored
    strictly and leniently from the type), or whether it is a complaint / suggestion / advice."""
    if task == "sentiment":
        return record.sentiment.label
    if task in ("type", "question"):
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
    per_language: dict[str, dict[str, float]] = field(default_factory=dict)  # lang -> macro_recall, macro_f1, n
    note: str = ""  # how to read the task, where its labels are not what the name suggests

    def as_dict(self) -> dict[str, Any]:
        """The scores as JSON-ready data."""
        out = {"task": self.task, "n": self.n, "metrics": self.metrics, "labels": self.labels,
               "confusion": self.confusion}
        for key in ("per_label", "per_language", "note"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        return out


def _confusion(gold: Sequence, pred: Sequence, labels: Sequence) -> list[list[int]]:
    counts = Counter(zip(gold, pred))
    return [[counts[(g, p)] for p in labels] for g in labels]


def _rounded(metrics: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in metrics.items()}


def macro_f1(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str] = SENTIMENT_LABELS) -> float:
    """Mean F1 over the ``labels`` that have gold rows (what XLM-T publishes beside macro-recall)."""
    present = [label for label in labels if label in set(gold)]
    return sum(precision_recall_f1(gold, pred, label)[2] for label in present) / len(present) if present else 0.0


def _sentiment(gold: Sequence[str], pred: Sequence[str], langs: Sequence[str | None] | None) -> Scores:
    labels = list(SENTIMENT_LABELS)
    recalls = per_label_recall(gold, pred, labels)
    metrics = {"macro_recall": macro_recall(gold, pred, labels), "macro_f1": macro_f1(gold, pred, labels),
               "accuracy": accuracy(gold, pred), **{f"recall_{k}": v for k, v in recalls.items() if v is not None}}
    per_language: dict[str, dict[str, float]] = {}
    if langs is not None and any(lang is not None for lang in langs):
        by_lang: dict[str, tuple[list, list]] = {}
        for g, p, lang in zip(gold, pred, langs):
            pair = by_lang.setdefault(lang or "und", ([], []))
            pair[0].append(g)
            pair[1].append(p)
        for lang in sorted(by_lang):
            g, p = by_lang[lang]
            per_language[lang] = {**_rounded({"macro_recall": macro_recall(g, p, labels),
                                              "macro_f1": macro_f1(g, p, labels)}), "n": len(g)}
        # unweighted over languages: each language counts once, whatever its row count
        figures = [macro_recall(*by_lang[lang], labels) for lang in by_lang]
        metrics["language_mean_macro_recall"] = sum(figures) / len(figures)
        metrics["language_min_macro_recall"] = min(figures)
    return Scores("sentiment", len(gold), _rounded(metrics), labels, _confusion(gold, pred, labels),
                  per_language=per_language)


def _binary(task: str, gold: Sequence, pred: Sequence) -> dict[str, float]:
    precision, recall, f1 = precision_recall_f1(gold, pred, True)
    _, _, f1_negative = precision_recall_f1(gold, pred, False)
    return {"precision": precision, "recall": recall, "f1": f1, "macro_f1": (f1 + f1_negative) / 2,
            "accuracy": accuracy(gold, pred)}


def score(task: str, gold: Sequence, pred: Sequence, langs: Sequence[str | None] | None = None) -> Scores:
    """The task's metrics for ``gold`` against ``pred`` (``question``: ``pred`` holds record types;
    ``langs``: each sentiment row's language, for the per-language figures)."""
    if task == "sentiment":
        return _sentiment(gold, pred, langs)
    if task == "type":
        return _score_types(gold, pred)
    gold = [bool(g) for g in gold]
    if task == "question":
        strict = [p in QUESTION_TYPES for p in pred]
        lenient = _binary(task, gold, [p in QUESTION_LENIENT_TYPES for p in pred])
        metrics = {**_binary(task, gold, strict), **{f"{k}_lenient": lenient[k] for k in ("precision", "recall", "f1")}}
        pred = strict
    else:
        metrics = _binary(task, gold, [bool(p) for p in pred])
    labels = [f"not {task}", task]
    return Scores(task, len(gold), _rounded(metrics), labels,
                  _confusion(gold, [bool(p) for p in pred], [False, True]),
                  note=ADVICE_NOTE if task == "advice" else "")


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
    langs: list[str | None] = []
    for row, record in zip(rows, records):
        for task, label in labels_of(row).items():
            gold.setdefault(task, []).append(label)
            pred.setdefault(task, []).append(predicted(task, record))
            if task == "sentiment":
                langs.append(language_of(row))
    return [score(task, gold[task], pred[task], langs if task == "sentiment" else None)
            for task in SCORED_TASKS if task in gold]
