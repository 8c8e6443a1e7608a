"""Training the text model from labelled rows (the ``train`` extra: scikit-learn).

Each head is a scikit-learn logistic regression (L-BFGS) on the feature rows of :mod:`.features`,
scaled per block; the binary heads (complaint, suggestion, question) may also see training-only LSA word
embeddings and the sentiment head's logits, both folded back into plain n-gram weights, so inference never
needs them.  The sentiment head may weigh groups of rows (datasets, languages), classes balanced within
each.  Each binary threshold is F1-optimal on out-of-fold predictions with the rows reweighted to the
head's deployment prior; the stiffness kept for fine-tuning is the diagonal Fisher information of the
training rows.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from socialcrm.core.engine.evaluation import f1_binary
from socialcrm.core.engine.learning.textmodel.features import (
    BINARY_COLUMNS,
    N_OUT,
    SENTIMENT_LABELS,
    Analysed,
    FeatureSpace,
    char_wb_analyser,
)
from socialcrm.core.engine.learning.textmodel.inference import TextModel, sigmoid
from socialcrm.core.engine.learning.textmodel.modelfile import quantise
from socialcrm.core.engine.learning.textmodel.threads import one_blas_thread

# Training
# --------------------------------------------------------------------------------------

DEFAULT_OPTIONS = dict(
    char_range=(2, 5),
    min_df_uni=2,
    min_df_bi=2,
    min_df_char=3,
    # per-head block scales (a larger scale = weaker effective L2 penalty on that block)
    alpha_char_sentiment=0.5,
    alpha_char_complaint=0.25,
    alpha_char_suggestion=0.25,
    alpha_char_question=0.5,
    alpha_bi=1.0,
    # per-head bigram scales (None: alpha_bi); suggestion and question by 5-fold CV on their training rows
    alpha_bi_sentiment=None,
    alpha_bi_complaint=None,
    alpha_bi_suggestion=2.0,
    alpha_bi_question=2.0,
    alpha_dense=1.0,
    # scale of the training-only word-embedding features (0 disables them); see embeddings()
    emb_sentiment=0.0,
    emb_complaint=3.0,
    emb_suggestion=0.0,
    emb_question=0.0,
    emb_dim=150,
    C_sentiment=1.0,
    C_complaint=5.0,
    C_suggestion=1.0,
    C_question=1.0,
    # weight of an auxiliary (distant-supervision) complaint row relative to an average main complaint
    # row (each set class-balanced on its own); 0 ignores complaint_aux_rows (see train(),
    # airline_complaint_rows()); chosen, with C_complaint, by cross-validation on the complaints 80%
    complaint_aux_weight=0.1,
    sentiment_class_weight="balanced",
    complaint_class_weight="balanced",
    suggestion_class_weight="balanced",
    question_class_weight="balanced",
    # with sentiment_groups (train()): classes balanced within each group, group totals ~ rows ** power
    # (see group_balanced_weights); chosen by cross-validation on the training rows (bench/sentiment_head.py)
    sentiment_group_power=1.0,
    # the deployment prior (share of positives) each binary head's threshold is chosen for: F1 of the
    # out-of-fold predictions with the training rows reweighted to it (None: the training rows' own share)
    prior_complaint=None,  # complaints data: 35.7% complaints, taken as the deployment mix
    prior_suggestion=0.10,  # the SemEval-2019 test stream (datasets README); train has 26%, val 50%
    prior_question=None,  # tweet_acts: 8.6% questions
    stack_sentiment=True,
    # sentiment groups left out of the sentiment fit the binary heads stack on (see _train); the airline
    # rows are the complaint head's distant rows too
    stack_without_groups=("airline",),
    # drop n-grams whose largest |weight| over the six outputs is below these (artefact size)
    prune_uni=0.02,
    prune_bi=0.08,
    prune_char=0.05,
    seed=13,
)
HEADS = ("sentiment", "complaint", "suggestion", "question")


def embeddings(space: FeatureSpace, corpora: Sequence[Analysed], dim: int, seed: int) -> np.ndarray:
    """LSA word vectors for the unigram vocabulary (training only).

    Truncated SVD of the positive PMI matrix of unigram co-occurrences (window 4) in the
    training texts.  A head that uses them gets features  sum_tokens count*s*E[token];
    their learnt weights w fold exactly into the unigram weights (W_uni += E @ w), so the
    embeddings are never needed at inference."""
    import scipy.sparse as sp
    from sklearn.decomposition import TruncatedSVD

    U = len(space.uni)
    rows: list[int] = []
    cols: list[int] = []
    ui = space.ui
    for corpus in corpora:
        for toks in corpus.toks:
            ids = [ui[t] for t in toks if t in ui]
            for i, a in enumerate(ids):
                for b in ids[i + 1 : i + 5]:
                    rows.append(a)
                    cols.append(b)
    r = np.asarray(rows + cols, dtype=np.int64)
    c = np.asarray(cols + rows, dtype=np.int64)
    C = sp.csr_matrix((np.ones(len(r)), (r, c)), shape=(U, U))
    C.sum_duplicates()
    total = C.sum()
    rs = np.asarray(C.sum(axis=1)).ravel()
    cs = rs**0.75
    cs = cs / cs.sum()
    C = C.tocoo()
    pmi = np.log(C.data * total / (rs[C.row] * rs[C.col])) + np.log(rs[C.col] / total / cs[C.col])
    keep = pmi > 0
    P = sp.csr_matrix((pmi[keep], (C.row[keep], C.col[keep])), shape=(U, U))
    E = TruncatedSVD(min(dim, U - 1), random_state=seed).fit_transform(P)
    return E / (np.linalg.norm(E, axis=1, keepdims=True) + 1e-9)


def head_features(space: FeatureSpace, X, head: str, opts: dict, E: np.ndarray | None, sent_coef: np.ndarray,
                 sent_bias: np.ndarray):
    """What one head is fitted on: the feature rows X scaled per block, then (if the options say so) the
    training-only word-embedding features and the sentiment head's centred negative and positive logits.

    Returns (matrix, block scales). sent_coef / sent_bias: the sentiment head's weights in model space."""
    import scipy.sparse as sp

    d = space.block_scales(opts[f"alpha_char_{head}"], opts.get(f"alpha_bi_{head}") or opts["alpha_bi"],
                           opts["alpha_dense"])
    parts = [X @ sp.diags(d)]
    emb = opts[f"emb_{head}"]
    if emb:
        parts.append(sp.csr_matrix((X[:, : len(space.uni)] @ E) * emb))
    if head != "sentiment" and opts["stack_sentiment"]:
        L = X @ sent_coef + sent_bias
        L = L - L.mean(axis=1, keepdims=True)
        parts.append(sp.csr_matrix(L[:, [0, 2]]))
    return sp.hstack(parts, format="csr"), d


def fit_lr(X, y, C, class_weight, seed, aux=None, sample_weight=None):
    """Logistic regression on (X, y); aux = (X_aux, y_aux, w_aux) adds down-weighted auxiliary rows.

    With auxiliary rows, class weights are computed separately over the main rows and over the
    auxiliary rows (class_weight applies to both; "balanced" weights average 1 per row), and
    every auxiliary row's weight is then multiplied by w_aux.  ``sample_weight`` (main rows only,
    no aux) replaces class_weight: the caller's per-row weights, e.g. :func:`group_balanced_weights`."""
    import scipy.sparse as sp
    from sklearn.linear_model import LogisticRegression

    if sample_weight is not None:
        if aux is not None:
            raise ValueError("fit_lr: give sample_weight or aux rows, not both")
        clf = LogisticRegression(C=C, max_iter=3000, tol=1e-4, random_state=seed, solver="lbfgs")
        clf.fit(X, y, sample_weight=sample_weight)
        return clf
    if aux is None or not len(aux[1]):
        clf = LogisticRegression(C=C, class_weight=class_weight, max_iter=3000, tol=1e-4, random_state=seed, solver="lbfgs")
        clf.fit(X, y)
        return clf
    Xa, ya, wa = aux
    cw, cw_aux = class_weights(y, class_weight), class_weights(ya, class_weight)
    weights = np.concatenate([cw[y], wa * cw_aux[ya]])
    clf = LogisticRegression(C=C, max_iter=3000, tol=1e-4, random_state=seed, solver="lbfgs")
    clf.fit(sp.vstack([X, Xa], format="csr"), np.concatenate([y, ya]), sample_weight=weights)
    return clf


def group_balanced_weights(y: np.ndarray, groups: Sequence[str], power: float) -> np.ndarray:
    """Per-row weights, averaging 1: classes balanced within every group (a dataset, or one language of
    one), and each group's total weight proportional to (its rows) ** power.

    power 1 lets every row count alike between groups (big datasets dominate); 0 gives every group the
    same total (a language with 1,800 rows weighs as much as TweetEval's 45,000)."""
    y = np.asarray(y)
    groups = np.asarray(groups)
    w = np.zeros(len(y))
    for g in np.unique(groups):
        m = groups == g
        labels, counts = np.unique(y[m], return_counts=True)
        n = int(m.sum())
        per_class = dict(zip(labels.tolist(), (n / (len(labels) * counts)).tolist()))
        w[m] = np.array([per_class[c] for c in y[m].tolist()]) * (n ** float(power) / n)
    return w * (len(y) / w.sum())


def class_weights(y: np.ndarray, class_weight) -> np.ndarray:
    """Weight per class (indexed by label 0/1) as sklearn's class_weight would give it for rows y."""
    if class_weight is None:
        return np.ones(2)
    if class_weight != "balanced":
        return np.array([float(class_weight.get(0, 1.0)), float(class_weight.get(1, 1.0))])
    counts = np.bincount(np.asarray(y, dtype=int), minlength=2).astype(float)
    return np.where(counts > 0, len(y) / (2 * np.maximum(counts, 1)), 0.0)


def prior_weights(y: np.ndarray, prior: float | None) -> np.ndarray:
    """Per-row weights that make rows y (0/1) look as if positives were ``prior`` of them (None: as they are).

    Positives weigh prior / rate and negatives (1 - prior) / (1 - rate), rate being y's own positive share:
    a threshold chosen on the reweighted rows is the one for a stream with that share of positives."""
    y = np.asarray(y).astype(bool)
    rate = float(y.mean()) if len(y) else 0.0
    if prior is None or rate in (0.0, 1.0):
        return np.ones(len(y))
    if not 0.0 < prior < 1.0:
        raise ValueError(f"a deployment prior must be strictly between 0 and 1, not {prior!r}")
    return np.where(y, prior / rate, (1.0 - prior) / (1.0 - rate))


def weighted_f1(y: np.ndarray, pred: np.ndarray, w: np.ndarray) -> float:
    """F1 of the positive class with per-row weights (weights 1: the ordinary F1)."""
    y, pred = np.asarray(y).astype(bool), np.asarray(pred).astype(bool)
    tp = float(w[y & pred].sum())
    wrong = float(w[y != pred].sum())
    return 2 * tp / (2 * tp + wrong) if tp else 0.0


def best_f1_threshold(y: np.ndarray, p: np.ndarray, prior: float | None = None) -> tuple[float, float]:
    """(best F1, its threshold) over thresholds 0.05, 0.06, ... 0.95 on probabilities p for gold y,
    F1 computed with the rows reweighted to the deployment ``prior`` (:func:`prior_weights`; None: as they are)."""
    best = (0.0, 0.5)
    y = np.asarray(y).astype(bool)
    w = prior_weights(y, prior)
    for t in np.arange(0.05, 0.951, 0.01):
        f = weighted_f1(y, p >= t, w)
        if f > best[0] + 1e-12:
            best = (f, float(round(t, 2)))
    return best


def oof_threshold(X, y, C, class_weight, seed, folds=5, aux=None, prior: float | None = None) -> tuple[float, float]:
    """(threshold, its F1): the F1-optimal threshold of out-of-fold predictions on the training rows, with
    F1 computed under the deployment ``prior`` (see :func:`best_f1_threshold`).

    Auxiliary rows (aux, see fit_lr) are in every training fold and never scored."""
    n = X.shape[0]
    if min(int(y.sum()), n - int(y.sum())) < 2 * folds:
        return 0.5, float("nan")
    rng = np.random.RandomState(seed)
    fold = rng.permutation(n) % folds
    p = np.zeros(n)
    for f in range(folds):
        tr, te = fold != f, fold == f
        clf = fit_lr(X[tr], y[tr], C, class_weight, seed, aux)
        p[te] = clf.predict_proba(X[te])[:, 1]
    f1, threshold = best_f1_threshold(y, p, prior)
    return threshold, f1


def stiffness_of(X_by_head: dict, coef: np.ndarray, bias: np.ndarray, row_weights: dict | None = None) -> np.ndarray:
    """Diagonal Fisher information of the base training data, one value per feature row:
    sum_i r_i * x_ij^2 * p_i(1 - p_i) over each head's own rows (sentiment: mean over classes),
    where r_i is the row's weight (1, or the weight of an auxiliary row)."""
    F = None
    row_weights = row_weights or {}
    for h, X in X_by_head.items():
        Z = np.asarray(X @ coef + bias)
        if h == "sentiment":
            S = Z[:, :3] - Z[:, :3].max(axis=1, keepdims=True)
            P = np.exp(S)
            P /= P.sum(axis=1, keepdims=True)
            w = (P * (1 - P)).mean(axis=1)
        else:
            p = sigmoid(Z[:, BINARY_COLUMNS[h]])
            w = p * (1 - p)
        if h in row_weights:
            w = w * row_weights[h]
        f = np.asarray(X.multiply(X).T @ w).ravel()
        F = f if F is None else F + f
    return np.minimum(F, 60000.0)


def train(sentiment_rows, complaint_rows, suggestion_rows, complaint_aux_rows=(), question_rows=(), **options) -> TextModel:
    """Train the four heads (see :func:`_train` for rows and options) on one BLAS thread.

    More threads split BLAS sums differently; the last bits of the weights then differ with the core count,
    and on a flat F1 curve that is enough to move an out-of-fold threshold. One thread makes the same rows
    give the same artefact on any machine with the same numpy and scikit-learn.
    """
    with one_blas_thread():
        return _train(sentiment_rows, complaint_rows, suggestion_rows, complaint_aux_rows, question_rows, **options)


_EXTRA_ARGUMENTS = {"complaint_threshold", "suggestion_threshold", "question_threshold", "info", "lexicons",
                    "sentiment_groups"}


def _train(sentiment_rows, complaint_rows, suggestion_rows, complaint_aux_rows=(), question_rows=(),
           **options) -> TextModel:
    """Train the four heads.  Rows are dicts as in the shared datasets' JSON Lines ({"text", "sentiment"} /
    {"text", "complaint"} / {"text", "suggestion"} / {"text", "question"}); a head without rows of both
    classes stays constant (the question head then never fires).

    Options (defaults in DEFAULT_OPTIONS): C_<head> (inverse L2 strength),
    <head>_class_weight, alpha_char_<head> / alpha_bi (alpha_bi_<head> overrides it) / alpha_dense (block scales),
    emb_<head> (scale of training-only LSA word-embedding features, 0 = off), min_df_*,
    char_range, prune_uni / prune_bi / prune_char (drop n-grams whose largest |weight| is below these), stack_sentiment
    (the binary heads also see the sentiment head's logits; folded into their weights),
    prior_<head> (the deployment share of positives the head's threshold is chosen for; None: the rows'
    own), <head>_threshold (default: the F1-optimal threshold of 5-fold out-of-fold predictions on the
    training rows under that prior), info (dict kept in the artefact),
    lexicons ({"sentiment"|"complaint"|"suggestion"|"question"|"complaint_aux": list of VADER dicts}, optional),
    sentiment_groups (one group name per sentiment row, e.g. its dataset or language: classes are then
    balanced within each group and groups weighed by ``sentiment_group_power``, see
    :func:`group_balanced_weights`; without it, ``sentiment_class_weight`` applies to all rows alike).

    complaint_aux_rows: auxiliary ("distant") complaint rows ({"text", "complaint"}), e.g. from
    :func:`.recipe.airline_complaint_rows`.  They join the complaint head's training rows, each weighing
    ``complaint_aux_weight`` times an average main row (the auxiliary rows are class-balanced
    among themselves, the main rows among themselves); the threshold is still chosen on
    out-of-fold predictions of the main rows only (auxiliary rows are in every training fold).
    Their texts also count for the vocabulary and the LSA embeddings.
    Needs scikit-learn (the ``socialcrm[train]`` extra).  Deterministic for fixed inputs.
    """
    import scipy.sparse as sp

    opts = dict(DEFAULT_OPTIONS)
    unknown = set(options) - set(opts) - _EXTRA_ARGUMENTS
    if unknown:
        raise TypeError(f"unknown training options: {sorted(unknown)}")
    opts.update(options)
    seed = int(opts["seed"])
    lex = opts.get("lexicons") or {}
    sentiment_rows = list(sentiment_rows)
    groups = opts.get("sentiment_groups")
    if groups is not None and len(groups) != len(sentiment_rows):
        raise ValueError(f"sentiment_groups has {len(groups)} names for {len(sentiment_rows)} sentiment rows")
    keep = [i for i, r in enumerate(sentiment_rows) if r.get("sentiment") in SENTIMENT_LABELS]
    sent_rows = [sentiment_rows[i] for i in keep]
    sent_groups = None if groups is None else [groups[i] for i in keep]
    rows_of = {
        "complaint": [r for r in complaint_rows if r.get("complaint") is not None],
        "suggestion": [r for r in suggestion_rows if r.get("suggestion") is not None],
        "question": [r for r in question_rows if r.get("question") is not None],
    }
    aux_rows = [r for r in complaint_aux_rows if r.get("complaint") is not None] if opts["complaint_aux_weight"] else []
    if len({r["sentiment"] for r in sent_rows}) < 2:
        raise ValueError("train() needs sentiment rows with at least two different labels")
    A = {"sentiment": Analysed([r["text"] for r in sent_rows], lex.get("sentiment"))}
    A.update({h: Analysed([r["text"] for r in rows], lex.get(h)) for h, rows in rows_of.items()})
    corpora = list(A.values())
    if aux_rows:
        A_aux = Analysed([r["text"] for r in aux_rows], lex.get("complaint_aux"))
        corpora.append(A_aux)
    space = FeatureSpace.build(corpora, opts, char_wb_analyser(opts["char_range"]))
    X = {h: space.matrix(A[h]) for h in HEADS}
    X_aux = space.matrix(A_aux) if aux_rows else None
    y = {"sentiment": np.array([SENTIMENT_LABELS.index(r["sentiment"]) for r in sent_rows])}
    y.update({h: np.array([bool(r[h]) for r in rows], dtype=int) for h, rows in rows_of.items()})
    E = None
    if any(opts[f"emb_{h}"] for h in HEADS):
        E = embeddings(space, corpora, int(opts["emb_dim"]), seed)
    U = len(space.uni)

    coef = np.zeros((space.ncol, N_OUT))  # in model space (block scales already applied)
    bias = np.zeros(N_OUT)
    thresholds = {}
    oof: dict[str, dict] = {}

    # what the binary heads stack on: the sentiment head, or (stack_without_groups) a second sentiment fit
    # without those groups' rows, set below
    stack_coef, stack_bias = coef[:, :3], bias[:3]

    def head_matrix(h, Xh):
        return head_features(space, Xh, h, opts, E, stack_coef, stack_bias)

    def unpack(h, w):
        """w: one weight vector over head_matrix columns -> (model-space coef, stack weights)."""
        Xcols = space.ncol
        d = d_of[h]
        out = w[:Xcols] * d
        k = Xcols
        if opts[f"emb_{h}"]:
            out[:U] += E @ w[k : k + E.shape[1]] * opts[f"emb_{h}"]
            k += E.shape[1]
        stack = w[k : k + 2] if (h != "sentiment" and opts["stack_sentiment"]) else None
        return out, stack

    d_of: dict[str, np.ndarray] = {}  # block scales per head
    # sentiment first: the other heads may stack on it
    Xh, d = head_matrix("sentiment", X["sentiment"])
    d_of["sentiment"] = d
    sent_weights = None
    if sent_groups is not None:
        sent_weights = group_balanced_weights(y["sentiment"], sent_groups, opts["sentiment_group_power"])
    clf = fit_lr(Xh, y["sentiment"], opts["C_sentiment"], opts["sentiment_class_weight"], seed,
                 sample_weight=sent_weights)
    classes = [int(c) for c in clf.classes_]
    if len(classes) == 2:  # binary fit: split the one logit symmetrically over the two labels
        Wc = np.stack([-clf.coef_[0] / 2, clf.coef_[0] / 2])
        bc = np.array([-clf.intercept_[0] / 2, clf.intercept_[0] / 2])
    else:
        Wc, bc = clf.coef_, clf.intercept_
    bias[:3] = -9.0  # labels absent from the rows stay (almost) impossible
    for j, c in enumerate(classes):
        coef[:, c], _ = unpack("sentiment", Wc[j])
        bias[c] = bc[j]
    leave_out = set(opts["stack_without_groups"] or ()) & set(sent_groups or ())
    if leave_out and opts["stack_sentiment"]:
        # The complaint head's distant rows are airline tweets labelled by their sentiment: stacked on a
        # sentiment head that trained on those very rows, it would read their labels back in-sample.
        keep = np.array([g not in leave_out for g in sent_groups])
        Xk, d = head_matrix("sentiment", X["sentiment"][keep])
        w_k = group_balanced_weights(y["sentiment"][keep], np.asarray(sent_groups)[keep], opts["sentiment_group_power"])
        clf_k = fit_lr(Xk, y["sentiment"][keep], opts["C_sentiment"], None, seed, sample_weight=w_k)
        stack_coef, stack_bias = np.zeros((space.ncol, 3)), np.full(3, -9.0)
        for j, c in enumerate(int(c) for c in clf_k.classes_):
            stack_coef[:, c] = unpack("sentiment", clf_k.coef_[j] if len(clf_k.classes_) > 2 else
                                      (2 * j - 1) * clf_k.coef_[0] / 2)[0]
            stack_bias[c] = clf_k.intercept_[j] if len(clf_k.classes_) > 2 else (2 * j - 1) * clf_k.intercept_[0] / 2
    untrained = []
    for h, col in BINARY_COLUMNS.items():
        key = f"{h}_threshold"
        if len(set(y[h].tolist())) < 2:
            # no (or one-class) rows for this head: it stays constant at the rows' rate
            rate = float(y[h].mean()) if len(y[h]) else 0.0
            rate = min(max(rate, 1e-4), 1 - 1e-4)
            bias[col] = math.log(rate / (1 - rate))
            # an untrained question head never fires; the older heads keep their historical 0.5
            thresholds[key] = opts.get(key) or (1.01 if h == "question" else 0.5)
            untrained.append(h)
            continue
        Xh, d = head_matrix(h, X[h])
        d_of[h] = d
        C, cw = opts[f"C_{h}"], opts[f"{h}_class_weight"]
        aux = None
        if h == "complaint" and aux_rows:
            aux = (head_matrix(h, X_aux)[0], np.array([bool(r["complaint"]) for r in aux_rows], dtype=int),
                   float(opts["complaint_aux_weight"]))
        clf = fit_lr(Xh, y[h], C, cw, seed, aux)
        w, stack = unpack(h, clf.coef_[0])
        coef[:, col] = w
        bias[col] = clf.intercept_[0]
        if stack is not None:
            # fold a_neg * (l_neg - mean(l)) + a_pos * (l_pos - mean(l)) into the head
            a = np.array([stack[0], 0.0, stack[1]])
            a_c = a - a.sum() / 3.0
            coef[:, col] += stack_coef @ a_c
            bias[col] += stack_bias @ a_c
        thresholds[key] = opts.get(key)
        prior = opts[f"prior_{h}"]
        if thresholds[key] is None:
            thresholds[key], f1 = oof_threshold(Xh, y[h], C, cw, seed, aux=aux, prior=prior)
            oof[h] = {"f1": round(f1, 4), "threshold": thresholds[key], "folds": 5,
                      "prior": round(float(y[h].mean()), 4) if prior is None else prior}

    W_uni, W_bi, W_char = coef[: space.bo], coef[space.bo : space.co], coef[space.co : space.do]
    W_dense = coef[space.do :]
    X_fisher, row_weights = dict(X), {}
    if sent_weights is not None:  # every row counts for the stiffness at its training weight
        row_weights["sentiment"] = sent_weights
    if aux_rows:
        X_fisher["complaint"] = sp.vstack([X["complaint"], X_aux], format="csr")
        row_weights["complaint"] = np.concatenate([np.ones(len(rows_of["complaint"])),
                                                   np.full(len(aux_rows), float(opts["complaint_aux_weight"]))])
    F = stiffness_of({h: Xf for h, Xf in X_fisher.items() if Xf.shape[0]}, quantise(coef), quantise(bias), row_weights)
    keep_u = np.abs(W_uni).max(axis=1) >= opts["prune_uni"]
    keep_b = np.abs(W_bi).max(axis=1) >= opts["prune_bi"]
    keep_c = np.abs(W_char).max(axis=1) >= opts["prune_char"]
    info = dict(opts.get("info") or {})
    info.setdefault("options", {k: (list(v) if isinstance(v, tuple) else v) for k, v in opts.items() if k in DEFAULT_OPTIONS})
    info.setdefault("rows", {"sentiment": len(sent_rows), **{h: len(rows) for h, rows in rows_of.items()}})
    if aux_rows:
        info["rows"].setdefault("complaint_aux", len(aux_rows))
    if oof:
        # the out-of-fold F1 each threshold was picked at (optimistic by the pick; an estimate, not a test)
        info["thresholds_oof"] = oof
    if untrained:
        info["untrained_heads"] = untrained
    return TextModel(
        [w for w, k in zip(space.uni, keep_u) if k],
        W_uni[keep_u],
        [w for w, k in zip(space.bi, keep_b) if k],
        W_bi[keep_b],
        [w for w, k in zip(space.chars, keep_c) if k],
        W_char[keep_c],
        W_dense,
        bias,
        complaint_threshold=thresholds["complaint_threshold"],
        suggestion_threshold=thresholds["suggestion_threshold"],
        question_threshold=thresholds["question_threshold"],
        char_range=space.char_range,
        meta=info,
        stiffness=np.concatenate([F[: space.bo][keep_u], F[space.bo : space.co][keep_b], F[space.co : space.do][keep_c], F[space.do :]]),
    )
