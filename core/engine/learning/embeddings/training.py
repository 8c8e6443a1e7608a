"""Training the embedding heads (scikit-learn, the ``train`` extra, plus the ``embeddings`` extra).

Every head is a logistic regression over ``[sentence embedding, base features]`` (see :mod:`.model`):
sentiment is multinomial and class-balanced within each source (TweetEval, airline, multilingual), so
no source's label mix decides the prior; the binary heads are class-balanced, and their thresholds are
F1-optimal on 5-fold out-of-fold predictions of their own training rows, as the text model's are.
"""
from __future__ import annotations

import logging
import time
from typing import Sequence

import numpy as np

from socialcrm.core.engine.learning.textmodel import SENTIMENT_LABELS, TextModel, airline_complaint_rows, one_blas_thread
from socialcrm.core.engine.learning.embeddings.encoder import Encoder
from socialcrm.core.engine.learning.embeddings.model import EmbeddingTextModel, base_features, has_question_head

log = logging.getLogger(__name__)

DEFAULT_OPTIONS = dict(
    # inverse L2 strength per head (the embedding's rows have unit length, so its weights need room)
    C_sentiment=4.0,
    C_complaint=4.0,
    C_suggestion=4.0,
    C_question=4.0,
    # the base features are multiplied by this before fitting (a larger scale = weaker penalty on them)
    base_scale=1.0,
    # weight of a distant complaint row from the airline file relative to a main complaint row
    complaint_aux_weight=0.3,
    # each sentiment source's rows weigh this much (class-balanced within the source, mean 1 per row)
    weight_tweeteval=1.0,
    weight_airline=2.0,
    weight_multilingual=6.0,
    # binary heads left to the base model: suggestion, because on cross-validation folds 0 and 1 and on
    # SemEval's validation file the stacked suggestion head scored below the text model's own
    skip_heads=("suggestion",),
    folds=5,
    seed=13,
)

#: (role key in the datasets dict, source name) of the rows the sentiment head learns from
SENTIMENT_SOURCES = (("sentiment_train", "tweeteval"), ("airline_train", "airline"), ("multilingual_train", "multilingual"))


def balanced_weights(labels: np.ndarray) -> np.ndarray:
    """Per-row weights that give every label present the same total weight (mean weight 1)."""
    values, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    return (len(labels) / (len(values) * counts))[inverse]


def fit_head(X: np.ndarray, y: np.ndarray, w: np.ndarray, C: float, seed: int):
    """A logistic regression (L-BFGS) on rows X with labels y and row weights w."""
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=C, max_iter=2000, tol=1e-4, random_state=seed, solver="lbfgs")
    clf.fit(X, y, sample_weight=w)
    return clf


def oof_threshold(X, y, w, n_main: int, C: float, folds: int, seed: int) -> float:
    """F1-optimal threshold on out-of-fold predictions of the first ``n_main`` rows (the rest, auxiliary
    rows, are in every training fold and never scored)."""
    from socialcrm.core.engine.learning.textmodel.training import best_f1_threshold

    y_main = y[:n_main]
    if min(int(y_main.sum()), n_main - int(y_main.sum())) < 2 * folds:
        return 0.5
    fold = np.random.RandomState(seed).permutation(n_main) % folds
    p = np.zeros(n_main)
    aux = np.arange(n_main, len(y))
    for f in range(folds):
        tr = np.concatenate([np.flatnonzero(fold != f), aux])
        te = np.flatnonzero(fold == f)
        p[te] = fit_head(X[tr], y[tr], w[tr], C, seed).predict_proba(X[te])[:, 1]
    return best_f1_threshold(y_main, p)[1]


class _Features:
    """Embeddings and base features of every distinct training text, computed once."""

    def __init__(self, texts: Sequence[str], base: TextModel, encoder: Encoder, base_scale: float):
        unique = list(dict.fromkeys(texts))
        self.row = {t: i for i, t in enumerate(unique)}
        t0 = time.perf_counter()
        E = encoder.encode(unique)
        t1 = time.perf_counter()
        scores = []
        for k in range(0, len(unique), 2000):
            scores.extend(base.score(unique[k:k + 2000], None, evidence=False))
        B = base_features(scores, has_question_head(base)) * base_scale
        self.X = np.hstack([E, B]).astype(np.float64)
        self.n_rows = len(unique)
        log.info("embedded %d texts in %.1f s, base scores in %.1f s", len(unique), t1 - t0, time.perf_counter() - t1)

    def of(self, rows: Sequence[dict]) -> np.ndarray:
        """The feature rows of these dataset rows, in order."""
        return self.X[[self.row[r["text"]] for r in rows]]


def train(data: dict[str, list[dict]], base: TextModel, encoder: Encoder | None = None, **options) -> EmbeddingTextModel:
    """Fit the heads on ``data`` (the keys of :func:`socialcrm.core.engine.learning.textmodel.load_datasets`,
    with ``multilingual_train`` and ``question_train`` used when present) stacked on ``base``."""
    opts = dict(DEFAULT_OPTIONS)
    unknown = set(options) - set(opts)
    if unknown:
        raise TypeError(f"unknown embedding training options: {sorted(unknown)}")
    opts.update(options)
    encoder = encoder or Encoder.shared()
    seed, folds = int(opts["seed"]), int(opts["folds"])

    sent_rows, sent_w = [], []
    for key, source in SENTIMENT_SOURCES:
        rows = [r for r in data.get(key, ()) if r.get("sentiment") in SENTIMENT_LABELS]
        if rows:
            sent_rows.extend(rows)
            sent_w.append(float(opts[f"weight_{source}"]) * balanced_weights(np.array([r["sentiment"] for r in rows])))
    if len({r["sentiment"] for r in sent_rows}) < 3:
        raise ValueError("the embedding heads need sentiment rows of all three labels (sentiment_train)")
    binary_rows = {
        "complaint": [r for r in data.get("complaint_train", ()) if r.get("complaint") is not None],
        "suggestion": [r for r in data.get("suggestion_train", ()) if r.get("suggestion") is not None],
        "question": [r for r in data.get("question_train", ()) if r.get("question") is not None],
    }
    aux_rows = airline_complaint_rows(data.get("airline_train", ())) if opts["complaint_aux_weight"] else []
    every = [r["text"] for r in sent_rows] + [r["text"] for rows in binary_rows.values() for r in rows]
    feats = _Features(every + [r["text"] for r in aux_rows], base, encoder, float(opts["base_scale"]))

    weights, thresholds, rows_info = {}, {}, {}
    with one_blas_thread():
        y = np.array([SENTIMENT_LABELS.index(r["sentiment"]) for r in sent_rows])
        clf = fit_head(feats.of(sent_rows), y, np.concatenate(sent_w), opts["C_sentiment"], seed)
        weights["sentiment"] = _unscaled(clf.coef_.T, clf.intercept_, encoder.dim, opts["base_scale"])
        rows_info["sentiment"] = len(sent_rows)
        for head, rows in binary_rows.items():
            y = np.array([bool(r[head]) for r in rows], dtype=int)
            if head in opts["skip_heads"] or len(set(y.tolist())) < 2:
                continue  # no rows for this head: the base model's score and threshold stand
            X, w = feats.of(rows), balanced_weights(y)
            if head == "complaint" and aux_rows:
                ya = np.array([bool(r["complaint"]) for r in aux_rows], dtype=int)
                X = np.vstack([X, feats.of(aux_rows)])
                w = np.concatenate([w, float(opts["complaint_aux_weight"]) * balanced_weights(ya)])
                y = np.concatenate([y, ya])
            C = opts[f"C_{head}"]
            clf = fit_head(X, y, w, C, seed)
            weights[head] = _unscaled(clf.coef_.T, clf.intercept_, encoder.dim, opts["base_scale"])
            thresholds[head] = oof_threshold(X, y, w, len(rows), C, folds, seed)
            rows_info[head] = len(rows)
    languages = sorted({r["lang"] for r in data.get("multilingual_train", ()) if r.get("lang")})
    info = {"recipe": "embeddings.train_default", "encoder": encoder.name, "rows": rows_info,
            "options": opts, "trained_languages": languages}
    return EmbeddingTextModel(base, encoder, weights, thresholds=thresholds, languages=languages, meta=info)


def _unscaled(W: np.ndarray, b: np.ndarray, dim: int, base_scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Fold the base features' fitting scale into their weights, so inference reads raw base features."""
    W = np.array(W, dtype=np.float64)
    W[dim:] *= base_scale
    return W.astype(np.float32), np.asarray(b, dtype=np.float32)
