"""Cross-validation of the sentiment head on its training rows only: how to weigh its three datasets.

The sentiment head trains on TweetEval train, the airline file's training part (the 80% that
``textmodel.holdout_fold`` does not hold back) and the seven languages of ``xlmt_sentiment`` train. This
benchmark fits the head as ``textmodel.train`` does (same features, class balance within every group, the
group weights of ``sentiment_group_power``) on 2/3 of those rows and scores the other third, for each
configuration given, and reports macro-recall per group: TweetEval, airline, and each language (with their
mean and minimum). No validation split and no test fact is used. The vocabulary is built once over all the
training rows (document frequencies only, no labels), so the folds share it; the analysed matrix is cached
in ``--cache``.

Needs the ``train`` extra and the shared datasets (``../shared/datasets`` or ``$SOCIALCRM_SHARED/datasets``).

    python bench/sentiment_head.py [--folds 3] [--config power=0.5,C=1,char=0.5 ...] [--rows N] [--json]

``--rows N`` keeps only the first N rows of every file (a quick check that the benchmark runs, not a figure).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from socialcrm.core.engine.evaluation import macro_recall
from socialcrm.core.engine.learning.textmodel import recipe, threads, training
from socialcrm.core.engine.learning.textmodel.features import (
    DENSE_NAMES,
    SENTIMENT_LABELS,
    Analysed,
    FeatureSpace,
    char_wb_analyser,
)

SHARED = Path(os.environ.get("SOCIALCRM_SHARED", Path(__file__).resolve().parents[2] / "shared"))


def parse_config(text: str) -> dict:
    """``power=0.5,C=1,char=0.5`` -> {"power": 0.5, "C": 1.0, "char": 0.5}."""
    out = {"power": 1.0, "C": 1.0, "char": 0.5}
    for part in text.split(","):
        key, _, value = part.partition("=")
        if key not in out:
            raise SystemExit(f"--config {text!r}: unknown key {key!r} (power, C, char)")
        out[key] = float(value)
    return out


def load(cache: Path, limit: int | None = None):
    """(X, y, groups, block offsets) of the sentiment training rows, cached as .npz files in ``cache``."""
    import scipy.sparse as sp

    data = {name: part[:limit] for name, part in recipe.load_datasets(SHARED / "datasets").items()}
    rows, groups = recipe.sentiment_groups(data)
    # the rows and the feature layout name the cache
    key = hashlib.sha256("|".join([*DENSE_NAMES, *(r["id"] for r in rows)]).encode()).hexdigest()[:12]
    xf, meta = cache / f"sent-X-{key}.npz", cache / f"sent-meta-{key}.npz"
    y = np.array([SENTIMENT_LABELS.index(r["sentiment"]) for r in rows])
    if xf.exists():
        m = np.load(meta)
        return sp.load_npz(xf), y, np.asarray(groups), (int(m["bo"]), int(m["co"]), int(m["do"]))
    opts = training.DEFAULT_OPTIONS
    corpus = Analysed([r["text"] for r in rows])
    space = FeatureSpace.build([corpus], opts, char_wb_analyser(opts["char_range"]))
    X = space.matrix(corpus)
    cache.mkdir(parents=True, exist_ok=True)
    sp.save_npz(xf, X)
    np.savez(meta, bo=space.bo, co=space.co, do=space.do)
    return X, y, np.asarray(groups), (space.bo, space.co, space.do)


def main() -> None:
    import scipy.sparse as sp

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--config", action="append", help="power=P,C=C,char=S (repeatable)")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/socialcrm-cv-cache"))
    parser.add_argument("--rows", type=int, help="only the first ROWS rows of each file (a smoke test)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not (SHARED / "datasets").is_dir():
        sys.exit(f"the shared datasets are not at {SHARED / 'datasets'} (set SOCIALCRM_SHARED)")
    configs = [parse_config(c) for c in (args.config or ["power=1", "power=0.5"])]
    results = []
    with threads.one_blas_thread():
        X, y, groups, (bo, co, do) = load(args.cache, args.rows)
        fold = np.array([int(hashlib.sha256(f"cv|{i}".encode()).hexdigest(), 16) % args.folds for i in range(len(y))])
        for cfg in configs:
            start = time.time()
            d = np.ones(X.shape[1])
            d[co:do] = cfg["char"]
            Xs = X @ sp.diags(d)
            pred = np.zeros(len(y), dtype=int)
            for f in range(args.folds):
                tr = fold != f
                w = training.group_balanced_weights(y[tr], groups[tr], cfg["power"])
                clf = training.fit_lr(Xs[tr], y[tr], cfg["C"], None, 13, sample_weight=w)
                pred[~tr] = clf.predict(Xs[~tr])
            by_group = {}
            for g in sorted(set(groups.tolist())):
                m = groups == g
                by_group[g] = round(100 * macro_recall([SENTIMENT_LABELS[i] for i in y[m]],
                                                       [SENTIMENT_LABELS[i] for i in pred[m]]), 2)
            langs = [v for g, v in by_group.items() if g.startswith("xlmt:")]
            res = {"config": cfg, "macro_recall": by_group, "xlmt_mean": round(float(np.mean(langs)), 2),
                   "xlmt_min": min(langs), "seconds": round(time.time() - start)}
            results.append(res)
            if not args.json:
                print(json.dumps(res), flush=True)
    print(json.dumps({"folds": args.folds, "rows": int(len(y)), "results": results}))


if __name__ == "__main__":
    main()
