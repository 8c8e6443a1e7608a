"""How far the complaint head's features go: repeated cross-validation of the default recipe's complaint head,
optionally with pretrained word vectors as extra training-only features.

The complaints holdout has 548 rows (about 190 complaints), so one F1 figure on it moves by about 0.02 with
the luck of the split, and the F1 curve over thresholds is flat. This benchmark answers the question a single
holdout figure cannot: is a change to the complaint head better, or only luckier? For each fold seed it
fits the head exactly as ``textmodel.train`` does (same features, sentiment stacking, airline distant rows,
class weights and C) on 4/5 of the complaints training rows, scores the other fifth, and reports the F1 of
the out-of-fold predictions at their best threshold. Then it fits on all training rows and reports the
holdout F1 at the out-of-fold threshold, and at the best threshold the holdout itself would pick (an upper
bound no honest recipe reaches).

``--vectors FILE`` adds pretrained word vectors (GloVe / word2vec text format: ``word v1 v2 ...`` per line,
or wink-nlp's JSON) next to the recipe's own LSA vectors; like those, they are training-only: the weights
they learn fold into the unigram weights, so they would cost nothing at inference.

Needs the ``train`` extra and the shared datasets (``../shared/datasets`` or ``$SOCIALCRM_SHARED/datasets``).

    python bench/complaint_head.py [--seeds 13 14 15 16] [--vectors FILE] [--rows N] [--json]

``--rows N`` keeps only the first N rows of every file (a quick check that the benchmark runs, not a figure).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from socialcrm.core.engine.evaluation import f1_binary
from socialcrm.core.engine.learning.textmodel import recipe, threads, training
from socialcrm.core.engine.learning.textmodel.features import SENTIMENT_LABELS, Analysed, FeatureSpace, char_wb_analyser

SHARED = Path(os.environ.get("SOCIALCRM_SHARED", Path(__file__).resolve().parents[2] / "shared"))


def read_vectors(path: Path, vocabulary: list[str]) -> np.ndarray:
    """Unit-length pretrained vectors for the vocabulary's words (zero rows for words without one).

    A negated token (``~word``) gets no vector: its meaning is not the word's. Hashtags take the word's."""
    wanted = {w.lstrip("#"): i for i, w in enumerate(vocabulary) if not w.startswith("~")}
    found: dict[int, np.ndarray] = {}
    if path.suffix == ".json":  # wink-nlp: {"dimensions": d, "vectors": {word: [v_1 .. v_d, norm, index]}}
        data = json.loads(path.read_text(encoding="utf-8"))
        dim = int(data["dimensions"])
        items = ((w, v[:dim]) for w, v in data["vectors"].items())
    else:
        items = ((line.split(" ", 1)[0], line.split(" ")[1:]) for line in path.open(encoding="utf-8"))
    for word, values in items:
        i = wanted.get(word)
        if i is not None and i not in found:
            found[i] = np.asarray(values, dtype=np.float64)
    if not found:
        raise SystemExit(f"{path}: no vector for any of the {len(vocabulary):,} vocabulary words")
    E = np.zeros((len(vocabulary), len(next(iter(found.values())))))
    for i, v in found.items():
        E[i] = v / (np.linalg.norm(v) + 1e-9)
    return E


class ComplaintHead:
    """The default recipe's complaint-head inputs, built once, and its fit."""

    def __init__(self, datasets: Path, vectors: Path | None, rows: int | None = None):
        data = {name: part[:rows] for name, part in recipe.load_datasets(datasets).items()}
        aux_rows = recipe.airline_complaint_rows(data["airline_train"])
        self.opts = dict(training.DEFAULT_OPTIONS)
        analysed = {name: Analysed([r["text"] for r in data[name]])
                    for name in ("sentiment_train", "complaint_train", "suggestion_train", "complaint_val")}
        aux = Analysed([r["text"] for r in aux_rows])
        corpora = [analysed["sentiment_train"], analysed["complaint_train"], analysed["suggestion_train"], aux]
        space = FeatureSpace.build(corpora, self.opts, char_wb_analyser(self.opts["char_range"]))
        E = training.embeddings(space, corpora, int(self.opts["emb_dim"]), int(self.opts["seed"]))
        self.vector_coverage = None
        if vectors is not None:
            P = read_vectors(vectors, space.uni)
            self.vector_coverage = round(float((np.abs(P).sum(axis=1) > 0).mean()), 3)
            E = np.hstack([E, P])
        y_sent = np.array([SENTIMENT_LABELS.index(r["sentiment"]) for r in data["sentiment_train"]])
        X_sent, d = training.head_features(space, space.matrix(analysed["sentiment_train"]), "sentiment", self.opts,
                                    E, None, None)
        sentiment = training.fit_lr(X_sent, y_sent, self.opts["C_sentiment"], self.opts["sentiment_class_weight"],
                               int(self.opts["seed"]))
        sent_coef, sent_bias = (sentiment.coef_ * d).T, sentiment.intercept_

        def features(corpus):
            return training.head_features(space, space.matrix(corpus), "complaint", self.opts, E, sent_coef, sent_bias)[0]

        self.X, self.X_val, X_aux = (features(analysed["complaint_train"]), features(analysed["complaint_val"]),
                                     features(aux))
        self.y = np.array([bool(r["complaint"]) for r in data["complaint_train"]], dtype=int)
        self.y_val = np.array([bool(r["complaint"]) for r in data["complaint_val"]], dtype=int)
        self.aux = (X_aux, np.array([bool(r["complaint"]) for r in aux_rows], dtype=int),
                    float(self.opts["complaint_aux_weight"]))

    def fit_predict(self, train: np.ndarray | slice, X_scored) -> np.ndarray:
        clf = training.fit_lr(self.X[train], self.y[train], self.opts["C_complaint"], self.opts["complaint_class_weight"],
                         int(self.opts["seed"]), self.aux)
        return clf.predict_proba(X_scored)[:, 1]

    def cross_validated(self, seed: int, folds: int = 5) -> tuple[float, float]:
        """(F1 of the out-of-fold predictions at their best threshold, that threshold)."""
        fold = np.random.RandomState(seed).permutation(len(self.y)) % folds
        p = np.zeros(len(self.y))
        for f in range(folds):
            p[fold == f] = self.fit_predict(fold != f, self.X[fold == f])
        return training.best_f1_threshold(self.y, p)

    def holdout(self, threshold: float) -> tuple[float, float]:
        """(holdout F1 at the given threshold, holdout F1 at the holdout's own best threshold)."""
        p = self.fit_predict(slice(None), self.X_val)
        gold = self.y_val.astype(bool).tolist()
        return f1_binary(gold, (p >= threshold).tolist()), training.best_f1_threshold(self.y_val, p)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[13, 14, 15, 16], help="fold seeds (13 is the recipe's)")
    parser.add_argument("--vectors", type=Path, help="pretrained word vectors to add as training-only features")
    parser.add_argument("--rows", type=int, help="only the first ROWS rows of each file (a smoke test)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not (SHARED / "datasets").is_dir():
        sys.exit(f"the shared datasets are not at {SHARED / 'datasets'} (set SOCIALCRM_SHARED)")
    with threads.one_blas_thread():  # as textmodel.train: the same figures on any machine
        head = ComplaintHead(SHARED / "datasets", args.vectors, args.rows)
        folds = {seed: head.cross_validated(seed) for seed in args.seeds}
        threshold = folds[args.seeds[0]][1]
        at_threshold, best = head.holdout(threshold)
    cv = [round(f1, 4) for f1, _ in folds.values()]
    result = {"rows": args.rows or "all", "features": "recipe + " + args.vectors.name if args.vectors else "recipe",
              "vector_coverage": head.vector_coverage, "cv_f1_by_seed": dict(zip(map(str, args.seeds), cv)),
              "cv_f1_mean": round(float(np.mean(cv)), 4), "threshold": threshold,
              "holdout_f1": round(at_threshold, 4), "holdout_f1_best_threshold": round(best, 4)}
    if not args.json:
        print(f"features: {result['features']}")
        for seed, (f1, t) in folds.items():
            print(f"  fold seed {seed}: out-of-fold F1 {f1:.4f} at threshold {t:.2f}")
        print(f"  mean {result['cv_f1_mean']:.4f}; holdout F1 {at_threshold:.4f} at {threshold:.2f} "
              f"(at the holdout's own best threshold {best:.4f})")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
