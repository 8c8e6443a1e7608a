"""Learning quality: every labelled dataset, its publisher's metric, for the lexicon baseline and the
default model, measured in one run by one command through the same learning step the pipeline runs.

- ``lexicon`` is the learning step without the text model (VADER for sentiment, the content library
  for types): what open tools offer today;
- ``model`` is the default learning step (the bundled text model combined with VADER and the content
  library).

Needs the shared datasets (``../shared/datasets`` or ``$SOCIALCRM_SHARED/datasets``).

    python bench/learning.py [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from socialcrm.core.cli.commands.learning import mention_from_row
from socialcrm.core.engine.config import Config
from socialcrm.core.engine.evaluation import evaluate
from socialcrm.core.engine.learn import Learner
from socialcrm.core.engine.learning.textmodel import TextModel, holdout_fold
from socialcrm.core.engine.plugins import default_manager

SHARED = Path(os.environ.get("SOCIALCRM_SHARED", Path(__file__).resolve().parents[2] / "shared"))

# (dataset, split, task, metric, published reference from the datasets' README)
DATASETS = [
    ("tweeteval_sentiment", "val", "sentiment", "macro_recall",
     "SVM 62.9, FastText 62.9, RoBERTa-base 71.3, BERTweet 73.4 (test split)"),
    ("airline_sentiment", "train", "sentiment", "macro_recall", "none on a standard split"),
    ("complaints", "holdout", "complaint", "f1", "up to 79 F1 (10-fold CV, Preotiuc-Pietro et al. 2019)"),
    ("semeval2019_task9_suggestions", "val", "suggestion", "f1", "OleNet 0.78 F1 (test split, 1st place)"),
]


def rows_of(name: str, split: str) -> list[dict]:
    folder = SHARED / "datasets" / name
    if split == "holdout":  # complaints has no split: the held-back fifth the model never trained on
        return [r for r in _read(folder / "train.jsonl") if holdout_fold(r["id"])]
    return _read(folder / f"{split}.jsonl")


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]


def learner(model) -> Learner:
    config = Config.brand_agnostic()
    return Learner(config, default_manager(), model=model)


def measure(rows: list[dict], learn: Learner, task: str, metric: str) -> float:
    records = []
    for start in range(0, len(rows), 500):
        batch = rows[start:start + 500]
        records.extend(learn.learn([mention_from_row({**r, "lang": "en"}) for r in batch]))
    (result,) = [r for r in evaluate(rows, records) if r.task == task]
    value = result.metrics[metric]
    return round(value * 100, 1) if metric == "macro_recall" else round(value, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not (SHARED / "datasets").is_dir():
        sys.exit(f"the shared datasets are not at {SHARED / 'datasets'} (set SOCIALCRM_SHARED)")
    lexicon, model = learner(None), learner(TextModel.default())
    table = []
    for name, split, task, metric, published in DATASETS:
        rows = rows_of(name, split)
        table.append({"dataset": name, "split": split, "rows": len(rows), "metric": metric,
                      "lexicon": measure(rows, lexicon, task, metric), "model": measure(rows, model, task, metric),
                      "embeddings_extra": None, "published": published})
    if not args.json:
        print("| dataset | split (rows) | metric | lexicon baseline | default model | published |")
        print("|---|---|---|---|---|---|")
        for row in table:
            print(f"| {row['dataset']} | {row['split']} ({row['rows']:,}) | {row['metric']} | {row['lexicon']} | "
                  f"**{row['model']}** | {row['published']} |")
    print(json.dumps({"learning_quality": table}))


if __name__ == "__main__":
    main()
