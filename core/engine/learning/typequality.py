"""Per-type quality of the learning step for the types rules and model decide together: query, spam, news.

``type_quality(rows, records)`` gives precision, recall, F1, support and false-positive rate of each
type, one type against the rest, so a benchmark can report them on any labelled file:

- rows labelled with a record type (``{"label": {"type": "spam"}}``, the bundled samples' form) are
  scored for every type;
- rows with a boolean for one type are scored for that type only: ``"spam": true``/``false`` (the
  spam fixture), ``"news": ...``, ``"query": ...``, and tweet_acts' ``"question"`` for ``query`` (its
  information-seeking question is the nearest public label to a query);
- a row without a label for a type is left out of that type's figures; with ``unlabelled_negative=True``
  it counts as a negative instead, which is how a spam false-positive rate is read on real traffic
  that is known to hold hardly any spam (every post there counts as "not spam").
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Iterable, Sequence

from socialcrm.core.engine.evaluation import precision_recall_f1
from socialcrm.core.sdk.model import Record

TYPES = ("query", "spam", "news")
#: Boolean label fields that stand for a type, besides the type's own name.
ALIASES = {"query": ("query", "question"), "spam": ("spam",), "news": ("news",)}


@dataclass
class TypeQuality:
    """How well one type is told from the rest on labelled rows."""

    type: str
    n: int  # rows with a label for this type
    support: int  # gold positives
    predicted: int  # records given this type
    precision: float
    recall: float
    f1: float
    false_positive_rate: float  # share of gold negatives given this type

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, rounded to four places."""
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


def gold_of(row: dict[str, Any], kind: str) -> bool | None:
    """Whether ``row`` is gold ``kind`` (True/False), or None when it carries no label for it."""
    label = row.get("label")
    if isinstance(label, dict) and label.get("type") is not None:
        return label["type"] == kind
    for name in ALIASES.get(kind, (kind,)):
        value = row.get(name)
        if isinstance(value, bool):
            return value
    return None


def type_quality(rows: Iterable[dict[str, Any]], records: Iterable[Record], types: Sequence[str] = TYPES,
                 unlabelled_negative: bool = False) -> dict[str, TypeQuality]:
    """Per-type figures of ``records`` (``records[i]`` learned from ``rows[i]``) against the rows' labels.

    Raises ValueError when rows and records differ in number, since the figures would then be about
    the wrong posts."""
    rows, records = list(rows), list(records)
    if len(rows) != len(records):
        raise ValueError(f"type_quality: {len(rows)} rows but {len(records)} records; learn one record per row")
    out: dict[str, TypeQuality] = {}
    for kind in types:
        gold: list[bool] = []
        pred: list[bool] = []
        for row, record in zip(rows, records):
            label = gold_of(row, kind)
            if label is None:
                if not unlabelled_negative:
                    continue
                label = False
            gold.append(label)
            pred.append(record.type == kind)
        precision, recall, f1 = precision_recall_f1(gold, pred, True)
        negatives = sum(not g for g in gold)
        false_positives = sum(p and not g for g, p in zip(gold, pred))
        out[kind] = TypeQuality(kind, len(gold), sum(gold), sum(pred), precision, recall, f1,
                                false_positives / negatives if negatives else 0.0)
    return out
