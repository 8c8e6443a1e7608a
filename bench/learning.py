"""Learning quality: every shared dataset, cross-validated through the whole learning step, in one run.

For each labelled dataset in ``shared/datasets`` (its ``train.jsonl``; the validation files are where the
recipe picks thresholds, so they are not scored) and its publisher's metric, beside each other:

- ``cv``: the default recipe, K-fold cross-validated. Fold k's rows (``sha256("cv|<dataset>|<id>") % K``) are
  left out of every role their dataset plays in ``recipe.train_default(exclude=...)``, the whole recipe is
  retrained, and those rows go through ``Learner.learn`` as the pipeline runs it (text model, VADER, content
  library, repeats) with that fold's model;
- ``lexicon``: the learning step without a text model (VADER and the content library);
- ``model``: the committed default model on the same rows (in-sample where the artefact trained on them);
- ``embeddings``: the optional embeddings extra, cross-validated the same way (null, with a note, when the
  extra is not installed);
- ``tfidf_svc``: TF-IDF + LinearSVC with fixed settings on the same folds (``bench/learning_baseline.py``);
- ``published``: the references in the datasets' README.

Where the hidden test split has another label mix (SemEval-2019's test: 87 suggestions in 833 rows, against 26%
here), the F1 figures are also given at that prior (``*_at_test_prior``: same recall and false-positive rate,
precision at the test's mix), and that figure stands beside the target. Macro-recall needs no such step: it
does not depend on the mix. Then per-type precision and recall for queries (tweet_acts' questions), spam and news (the bundled samples'
``label.type``), the share of the shared tweets typed spam (none of them is meant to be spam), the learning
step's texts/s per system, and the targets of issue #17 beside the cross-validated estimates.

Fold models are cached under ``--cache`` (default ``$XDG_CACHE_HOME/socialcrm/bench-learning``), keyed by the
recipe's hash (``bench/learning_folds.py``), so an interrupted run resumes and a rerun only scores.

    python bench/learning.py [--folds 5] [--quick] [--cache DIR] [--datasets DIR] [--markdown] [--json]
    python bench/learning.py --from report.json --markdown     # the tables of a saved run

``--quick`` keeps a fixed tenth of every dataset, for training and scoring: a smoke test, not a figure.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the helper modules beside this script

from learning_baseline import SETTINGS as SVC_SETTINGS, cross_validated  # noqa: E402
from learning_folds import FoldModels, default_cache_dir, fold_of, in_quick_sample  # noqa: E402
from learning_report import markdown, targets_met  # noqa: E402

from socialcrm.core.cli.commands.learning import mention_from_row, repeats_of  # noqa: E402
from socialcrm.core.engine.config import Config  # noqa: E402
from socialcrm.core.engine.evaluation import evaluate, f1_at_prior, labels_of, language_of, score  # noqa: E402
from socialcrm.core.engine.learn import Learner  # noqa: E402
from socialcrm.core.engine.plugins import default_manager  # noqa: E402

log = logging.getLogger("bench.learning")
REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SOCIALCRM_SHARED", REPO.parent / "shared"))
SAMPLES = REPO / "samples" / "mentions.jsonl"
BATCH = 500


@dataclass(frozen=True)
class Dataset:
    """A shared dataset, the task its labels score and the metric its publisher uses."""

    name: str
    task: str  # a task of core.engine.evaluation
    metric: str  # a key of that task's metrics
    percent: bool  # reported x100, as the publisher does
    published: str
    tweets: bool = True  # posts from a social network (the spam false-positive count reads these)
    test_prior: float | None = None  # share of positives in the hidden test split, where it differs from here


DATASETS = (
    Dataset("tweeteval_sentiment", "sentiment", "macro_recall", True,
            "test: SVM 62.9, FastText 62.9, RoBERTa-base 71.3, BERTweet 73.4, TimeLMs-2021 73.7"),
    Dataset("airline_sentiment", "sentiment", "macro_recall", True, "none on a standard split"),
    Dataset("complaints", "complaint", "f1", False,
            "79 F1 (10-fold CV on the whole set, Preotiuc-Pietro et al. 2019); transformers up to 87 macro-F1"),
    Dataset("semeval2019_task9_suggestions", "suggestion", "f1", False,
            "test: OleNet 0.781 (1st), Yimmon 0.763 (4th), NL-FIIT 0.682 (12th)", tweets=False,
            test_prior=87 / 833),  # the README: the evaluation set has 87 suggestions in 833 rows
    Dataset("xlmt_sentiment", "sentiment", "language_mean_macro_recall", True,
            "test macro-F1: XLM-T multilingual ar 66.9, de 77.3, es 67.9, fr 71.2, hi 56.4, it 69.1, pt 75.4; "
            "FastText 37.1-59.6"),
    Dataset("tweet_acts", "question", "f1", False, "the rule \"contains ?\" about 0.75 F1"),
)
SPOTLIGHT_TYPES = ("query", "spam", "news")


def read_jsonl(path: Path) -> list[dict]:
    """The rows of a JSON Lines file (ValueError naming the file and line of one that is not JSON)."""
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path} line {number}: not JSON ({exc.msg})") from None
    return rows


class Scored:
    """One dataset's rows, ready for every system: mentions (with their own lang, else en, as a source would
    tag these English sets), repeat counts over the whole file, gold labels and folds."""

    def __init__(self, spec: Dataset, rows: list[dict], folds: int):
        self.spec, self.rows = spec, rows
        self.mentions = [mention_from_row({"id": str(r["id"]), "text": r["text"], "lang": r.get("lang") or "en"})
                         for r in rows]
        self.repeats = repeats_of(self.mentions, {})
        self.gold = [labels_of(r)[spec.task] for r in rows]
        self.langs = [language_of(r) for r in rows]
        self.folds = [fold_of(spec.name, str(r["id"]), folds) for r in rows]

    def learn(self, learner: Learner, indices: list[int] | None = None) -> tuple[dict[int, object], float]:
        """Records for the rows at ``indices`` (all rows by default), and the seconds it took."""
        indices = list(range(len(self.rows))) if indices is None else indices
        records: dict[int, object] = {}
        started = time.perf_counter()
        for start in range(0, len(indices), BATCH):
            page = indices[start:start + BATCH]
            learned = learner.learn([self.mentions[i] for i in page], [self.repeats[i] for i in page])
            records.update(zip(page, learned))
        return records, time.perf_counter() - started


def load(datasets_dir: Path, folds: int, quick: bool) -> list[Scored]:
    """Every dataset of DATASETS from ``datasets_dir`` (SystemExit naming a missing one)."""
    loaded = []
    for spec in DATASETS:
        path = datasets_dir / spec.name / "train.jsonl"
        if not path.exists():
            sys.exit(f"{path} is missing: bench/learning.py scores every shared dataset (see its README)")
        rows = read_jsonl(path)
        if quick:
            rows = [r for r in rows if in_quick_sample(spec.name, str(r["id"]))]
        try:
            loaded.append(Scored(spec, rows, folds))
        except ValueError as exc:
            sys.exit(f"{path}: {exc}")
    return loaded


def figure(spec: Dataset, metrics: dict) -> float | None:
    """The dataset's headline figure from a task's metrics (x100 where the publisher reports percent)."""
    value = metrics.get(spec.metric)
    if value is None:
        return None
    return round(value * 100, 1) if spec.percent else round(value, 3)


def task_scores(data: Scored, records: dict[int, object]) -> dict:
    """The dataset's task scored on the records (every row must have one)."""
    ordered = [records[i] for i in range(len(data.rows))]
    (result,) = [s for s in evaluate(data.rows, ordered) if s.task == data.spec.task]
    return result.as_dict()


class Systems:
    """Runs each system over every dataset and keeps its records, scores and speed."""

    def __init__(self, data: list[Scored]):
        self.data = data
        self.records: dict[str, dict[str, dict[int, object]]] = {}  # system -> dataset -> row -> record
        self.seconds: dict[str, float] = {}
        self.texts: dict[str, int] = {}

    def add(self, system: str, data: Scored, records: dict[int, object], seconds: float) -> None:
        """Keep records of one dataset's rows for a system."""
        self.records.setdefault(system, {}).setdefault(data.spec.name, {}).update(records)
        self.seconds[system] = self.seconds.get(system, 0.0) + seconds
        self.texts[system] = self.texts.get(system, 0) + len(records)

    def run_whole(self, system: str, learner: Learner) -> None:
        """A fixed learner (no training) over every row of every dataset."""
        for data in self.data:
            log.info("%s: %s (%d rows)", system, data.spec.name, len(data.rows))
            self.add(system, data, *data.learn(learner))

    def scores(self, system: str) -> dict[str, dict]:
        """Dataset -> that dataset's task scores, for a system that covered every row."""
        return {d.spec.name: task_scores(d, self.records[system][d.spec.name]) for d in self.data
                if len(self.records.get(system, {}).get(d.spec.name, {})) == len(d.rows)}

    def per_second(self) -> dict[str, float]:
        """The learning step's texts/s per system (the whole step, batches of 500)."""
        return {s: round(self.texts[s] / self.seconds[s], 1) for s in self.seconds if self.seconds[s]}


def embeddings_extra():
    """The embeddings extra's trainer, or None and why not (the module is another engineer's, optional)."""
    try:
        from socialcrm.core.engine.learning.embeddings import available, train_default as train_embeddings
    except ImportError as exc:
        return None, f"the embeddings module is not there ({exc})"
    if not available():
        return None, "the embeddings extra is not installed (pip install socialcrm[embeddings])"
    return train_embeddings, ""


def learner_for(model) -> Learner:
    """The pipeline's learning step with a brand-agnostic config and the given text model (None: lexicon)."""
    return Learner(Config.brand_agnostic(), default_manager(), model=model)


def cross_validate(systems: Systems, folds: FoldModels, with_embeddings) -> None:
    """Each fold's model (and the extra on top of it) over that fold's rows of every dataset."""
    for fold in range(folds.folds):
        model = folds.model(fold)
        extra = with_embeddings(folds.datasets_dir, base=model, exclude=folds.exclude(fold)) if with_embeddings \
            else None
        for system, fold_model in (("cv", model), ("embeddings", extra)):
            if fold_model is None:
                continue
            learner = learner_for(fold_model)
            for data in systems.data:
                indices = [i for i, f in enumerate(data.folds) if f == fold]
                systems.add(system, data, *data.learn(learner, indices))


def svc_scores(data: Scored) -> dict:
    """The TF-IDF + LinearSVC baseline's out-of-fold scores on a dataset's task."""
    predictions = cross_validated([r["text"] for r in data.rows], data.gold, data.folds)
    if data.spec.task == "question":  # scored from a type, as the learning step's records are
        predictions = ["query" if p else "other" for p in predictions]
    return score(data.spec.task, data.gold, predictions, data.langs if data.spec.task == "sentiment" else None
                 ).as_dict()


def question_mark_rule(data: Scored) -> dict:
    """The README's reference rule for questions: a post containing "?" is a query."""
    return score("question", data.gold, ["query" if "?" in r["text"] else "other" for r in data.rows]).as_dict()


def samples_types(learners: dict[str, Learner], samples: Path) -> dict:
    """Per-type precision, recall and F1 of query, spam and news on the bundled labelled samples."""
    rows = [r for r in read_jsonl(samples) if isinstance(r.get("label"), dict) and r["label"].get("type")]
    mentions = [mention_from_row(r) for r in rows]
    repeats = repeats_of(mentions, {})
    out = {}
    for system, learner in learners.items():
        records = learner.learn(mentions, repeats)
        result = score("type", [r["label"]["type"] for r in rows], [r.type for r in records])
        out[system] = {t: result.per_label.get(t) for t in SPOTLIGHT_TYPES}
    return {"rows": len(rows), "by_system": out}


def spam_false_positives(systems: Systems) -> dict:
    """Per system: how many of the shared tweets (none meant as spam) the learning step typed spam."""
    out = {}
    for system, by_dataset in systems.records.items():
        counts = {name: (sum(r.type == "spam" for r in records.values()), len(records))
                  for name, records in by_dataset.items() if next(d for d in DATASETS if d.name == name).tweets}
        spam, n = sum(c[0] for c in counts.values()), sum(c[1] for c in counts.values())
        out[system] = {"rate": round(spam / n, 4) if n else None, "spam": spam, "n": n,
                       "by_dataset": {name: c[0] for name, c in counts.items()}}
    return out


def in_sample(model, dataset: str) -> str:
    """What the committed artefact's meta says it trained on from ``dataset`` ("" when nothing)."""
    return "; ".join(d for d in model.meta.get("datasets", []) if d.split(" ")[0] == dataset)


def run(datasets_dir: Path, folds: int, quick: bool, cache_dir: Path, samples: Path = SAMPLES,
        trainer=None, embeddings: bool = True) -> dict:
    """The whole benchmark; the report as JSON-ready data (``embeddings=False`` leaves the extra's column out)."""
    from socialcrm.core.engine.learning.textmodel import TextModel
    data = load(datasets_dir, folds, quick)
    systems = Systems(data)
    committed = TextModel.default()
    systems.run_whole("lexicon", learner_for(None))
    systems.run_whole("model", learner_for(committed))
    fold_models = FoldModels(datasets_dir, folds, quick, cache_dir, trainer)
    with_embeddings, embeddings_note = embeddings_extra() if embeddings else (None, "left out (--without-embeddings)")
    cross_validate(systems, fold_models, with_embeddings)
    scores = {system: systems.scores(system) for system in ("lexicon", "model", "cv", "embeddings")}
    table = []
    for d in data:
        log.info("tfidf_svc: %s", d.spec.name)
        svc = svc_scores(d)
        row = {"dataset": d.spec.name, "rows": len(d.rows), "task": d.spec.task, "metric": d.spec.metric,
               "percent": d.spec.percent, "published": d.spec.published,
               "model_in_sample": in_sample(committed, d.spec.name)}
        for system, by_dataset in {**scores, "tfidf_svc": {d.spec.name: svc}}.items():
            result = by_dataset.get(d.spec.name)
            row[system] = figure(d.spec, result["metrics"]) if result else None
            row[f"{system}_metrics"] = result["metrics"] if result else None
            if result and result.get("per_language"):
                row[f"{system}_per_language"] = result["per_language"]
            if result and d.spec.test_prior:
                row[f"{system}_at_test_prior"] = round(f1_at_prior(result["confusion"], d.spec.test_prior), 3)
        if d.spec.test_prior:
            row["test_prior"] = round(d.spec.test_prior, 4)
        if d.spec.task == "question":
            row["question_mark_rule"] = figure(d.spec, question_mark_rule(d)["metrics"])
        table.append(row)
    (acts,) = [row for row in table if row["task"] == "question"]
    types = {"tweet_acts_query": {system: {k: acts[f"{system}_metrics"].get(k)
                                           for k in ("precision", "recall", "f1", "f1_lenient")}
                                  for system in ("lexicon", "model", "cv", "embeddings", "tfidf_svc")
                                  if acts[f"{system}_metrics"]},
             "samples": samples_types({"lexicon": learner_for(None), "model": learner_for(committed)}, samples)}
    report = {
        "folds": folds, "quick": quick, "datasets_dir": str(datasets_dir), "recipe_hash": fold_models.key,
        "cache": str(fold_models.cache_dir), "fold_models": {"trained": fold_models.trained, "cached": fold_models.cached,
                                                             "train_seconds": round(fold_models.train_seconds, 1)},
        "recipe_trains_on": sorted(fold_models.trained_on),
        "datasets": table, "types": types, "spam_false_positives": spam_false_positives(systems),
        "learning_step_texts_per_s": systems.per_second(),
        "embeddings_note": embeddings_note or None, "tfidf_svc_settings": SVC_SETTINGS,
    }
    report["targets"] = targets_met(report)
    return report


def main() -> None:
    """The command line: run (or read a saved report), print the tables if asked, end with the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5, help="K of the K-fold cross-validation (default 5)")
    parser.add_argument("--quick", action="store_true", help="a fixed tenth of every dataset: a smoke test")
    parser.add_argument("--cache", type=Path, default=None, help=f"fold models (default {default_cache_dir()})")
    parser.add_argument("--datasets", type=Path, default=SHARED / "datasets", help="the shared datasets folder")
    parser.add_argument("--samples", type=Path, default=SAMPLES, help="labelled mentions with label.type")
    parser.add_argument("--from", dest="saved", type=Path, help="render a saved report (its last line) instead")
    parser.add_argument("--markdown", action="store_true", help="print the BENCHMARKS.md tables before the JSON")
    parser.add_argument("--without-embeddings", action="store_true",
                        help="leave the embeddings extra's column out even where the extra is installed")
    parser.add_argument("--json", action="store_true", help="end with one JSON object (always printed last)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    if args.saved:
        report = json.loads(args.saved.read_text(encoding="utf-8").strip().splitlines()[-1])
    else:
        if args.folds < 2:
            parser.error("--folds must be at least 2")
        if not args.datasets.is_dir():
            sys.exit(f"the shared datasets are not at {args.datasets} (give --datasets or set SOCIALCRM_SHARED)")
        report = run(args.datasets, args.folds, args.quick, args.cache or default_cache_dir(), args.samples,
                     embeddings=not args.without_embeddings)
    if args.markdown:
        print(markdown(report))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
