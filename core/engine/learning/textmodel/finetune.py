"""Fine-tuning: folding people's corrections into a copy of a model (scipy sparse matrices, L-BFGS)."""
from __future__ import annotations

from collections import Counter

import numpy as np

from socialcrm.core.engine.learning.textmodel.features import (
    BINARY_COLUMNS,
    COL_QUESTION,
    N_OUT,
    SENTIMENT_LABELS,
    Analysed,
    FeatureSpace,
    bigrams,
)
from socialcrm.core.engine.learning.textmodel.inference import TextModel
from socialcrm.core.engine.learning.textmodel.threads import one_blas_thread
from socialcrm.core.engine.learning.textmodel.training import class_weights

FINE_TUNE_OPTIONS = dict(
    l2=1.0,  # pull of every weight towards its base value
    stiffness=0.3,  # extra pull proportional to the base data's Fisher information (EWC-style)
    l2_dense=1000.0,  # pull on the dense features' weights
    l2_bias=1000.0,  # pull on the biases
    new_vocab_min_count=2,  # new word unigrams / bigrams seen this often in the rows get their own weight
    class_weight="balanced",  # or None
    iterations=300,  # at most this many L-BFGS iterations
)


def fine_tune(base: TextModel, rows, **options) -> TextModel:
    """Fold people's corrections into a customer's model.

    rows: dicts with "text" and any of "sentiment" (label), "complaint" (bool),
    "suggestion" (bool), "question" (bool; learnt only by a base that has a question head).  The base model is left unchanged; the result is a new model whose
    weights are base + delta, where delta minimises the (class-balanced) log-loss of the
    corrections with the base model's logits as offset plus an L2 penalty that pulls delta
    towards zero, i.e. towards the base weights (stronger where the base data relied on a weight).
    Word unigrams and bigrams that are new to the model and occur at least ``new_vocab_min_count``
    times get their own weights.  Deterministic (scipy's L-BFGS-B).  Options: see FINE_TUNE_OPTIONS.
    """
    from scipy.optimize import minimize
    from scipy.special import expit, log_softmax

    opts = dict(FINE_TUNE_OPTIONS)
    unknown = set(options) - set(opts)
    if unknown:
        raise TypeError(f"unknown fine-tuning options: {sorted(unknown)}")
    opts.update(options)
    rows = [r for r in rows if r.get("text")]
    if not rows:
        return base.copy()
    corpus = Analysed([r["text"] for r in rows])

    # vocabulary: the base model's plus frequent new words / bigrams from the corrections
    known_u, known_b = set(base.uni), set(base.bi)
    cu, cb = Counter(), Counter()
    for toks in corpus.toks:
        cu.update(t for t in set(toks) if t not in known_u)
        cb.update(b for b in set(bigrams(toks)) if b not in known_b)
    k = int(opts["new_vocab_min_count"])
    new_u = sorted(w for w, c in cu.items() if c >= k)
    new_b = sorted(w for w, c in cb.items() if c >= k)
    uni = base.uni + new_u
    bi = base.bi + new_b
    space = FeatureSpace(uni, bi, base.chars, base.char_range)
    W0 = np.concatenate(
        [
            base.W_uni,
            np.zeros((len(new_u), N_OUT), np.float32),
            base.W_bi,
            np.zeros((len(new_b), N_OUT), np.float32),
            base.W_char,
            base.W_dense,
        ]
    ).astype(np.float64)
    X = space.matrix(corpus)
    offset = X @ W0 + base.bias

    # targets and per-row weights for each head
    n = len(rows)
    Y = np.zeros((n, 3))
    ws = np.zeros(n)
    for i, r in enumerate(rows):
        lab = r.get("sentiment")
        if lab in SENTIMENT_LABELS:
            Y[i, SENTIMENT_LABELS.index(lab)] = 1.0
            ws[i] = 1.0
    binary = list(BINARY_COLUMNS)  # complaint, suggestion, question: output columns 3, 4, 5
    yb = np.zeros((n, len(binary)))
    wb = np.zeros((n, len(binary)))
    for j, key in enumerate(binary):
        if key == "question" and not base.question_head:
            continue  # a base without the head has no question column to correct
        for i, r in enumerate(rows):
            if r.get(key) is not None:
                yb[i, j] = 1.0 if r[key] else 0.0
                wb[i, j] = 1.0
    if opts["class_weight"] == "balanced":
        if ws.sum():
            cnt = Y[ws > 0].sum(axis=0)
            present = cnt > 0
            cw = np.where(present, ws.sum() / (present.sum() * np.maximum(cnt, 1)), 0.0)
            ws = ws * (Y @ cw)
        for j in range(len(binary)):
            m = wb[:, j] > 0
            y = yb[m, j].astype(int)
            if 0 < y.sum() < len(y):  # both classes present: weigh them as training does
                wb[m, j] = class_weights(y, "balanced")[y]
    active = [ws.sum() > 0] + [wb[:, j].sum() > 0 for j in range(len(binary))]

    # penalty per parameter row: l2 + stiffness * Fisher(base data); dense rows held tight
    stiff = None  # the base's stiffness with rows of zeros for the new unigrams and bigrams
    if base.stiffness is not None:
        nu, nb_ = len(base.uni), len(base.bi)
        st = base.stiffness
        stiff = np.concatenate([st[:nu], np.zeros(len(new_u)), st[nu : nu + nb_], np.zeros(len(new_b)), st[nu + nb_ :]])
    pen = np.full((space.ncol, 1), float(opts["l2"]))
    if stiff is not None and opts["stiffness"]:
        pen[:, 0] += float(opts["stiffness"]) * stiff.astype(np.float64)
    pen[space.do :] += float(opts["l2_dense"])
    pen_b = float(opts["l2_bias"])
    heads = np.flatnonzero([active[0]] * 3 + active[1:])  # output columns with labels to learn
    # only the feature rows present in the corrections, and the output columns of labelled heads, can move
    cols = np.unique(X.indices)
    Xa = X[:, cols]
    pen = pen[cols]
    shape = (len(cols) + 1, len(heads))  # delta rows of the present features, then the bias delta

    def loss_and_grad(flat: np.ndarray) -> tuple[float, np.ndarray]:
        params = flat.reshape(shape)
        delta, dbias = params[:-1], params[-1]
        Z = offset.copy()
        Z[:, heads] += Xa @ delta + dbias
        logp = log_softmax(Z[:, :3], axis=1)
        zb = Z[:, 3:]
        loss = -float((ws[:, None] * Y * logp).sum())
        loss += float((wb * (np.logaddexp(0.0, zb) - yb * zb)).sum())
        loss += 0.5 * float((pen * delta**2).sum()) + 0.5 * pen_b * float((dbias**2).sum())
        G = np.empty_like(Z)
        G[:, :3] = (np.exp(logp) - Y) * ws[:, None]
        G[:, 3:] = (expit(zb) - yb) * wb
        G = G[:, heads]
        grad = np.vstack([Xa.T @ G + pen * delta, G.sum(axis=0) + pen_b * dbias])
        return loss, grad.ravel()

    fitted = minimize(loss_and_grad, np.zeros(shape).ravel(), jac=True, method="L-BFGS-B",
                      options={"maxiter": int(opts["iterations"])})
    params = fitted.x.reshape(shape)
    delta = np.zeros((len(cols), N_OUT))
    dbias = np.zeros(N_OUT)
    delta[:, heads], dbias[heads] = params[:-1], params[-1]

    W = W0.copy()
    W[cols] += delta
    U, B = len(uni), len(bi)
    W_uni, W_bi, W_char, W_dense = W[:U], W[U : U + B], W[U + B : space.do], W[space.do :]
    meta = dict(base.meta)
    meta["fine_tuned"] = list(base.meta.get("fine_tuned", [])) + [
        {"rows": n, "new_unigrams": len(new_u), "new_bigrams": len(new_b), "options": opts}
    ]
    bias = base.bias + dbias
    return TextModel(
        uni, W_uni, bi, W_bi, base.chars, W_char, W_dense, bias if base.question_head else bias[:COL_QUESTION],
        complaint_threshold=base.complaint_threshold,
        suggestion_threshold=base.suggestion_threshold,
        question_threshold=base.question_threshold,
        char_range=base.char_range,
        meta=meta,
        stiffness=stiff,
    )
