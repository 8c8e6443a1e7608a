"""Inference: :class:`TextModel` scores texts with its four heads, through a cache of token rows.

Four heads share one feature extractor (:mod:`.features`):

* ``sentiment``  -- multinomial logistic regression over negative / neutral / positive,
* ``complaint``  -- binary logistic regression (P(complaint)),
* ``suggestion`` -- binary logistic regression (P(suggestion)),
* ``question``   -- binary logistic regression (P(information-seeking question)).

Each word's unigram weight and the weights of its character n-grams are folded, lazily, into a
single "token row", so scoring a text is one dictionary lookup per token and per bigram followed by a
vectorised gather-and-sum in numpy.  Inference needs only the standard library, numpy and VADER.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from socialcrm.core.engine.learning.textmodel.features import (
    COL_COMPLAINT,
    COL_QUESTION,
    COL_SUGGESTION,
    DENSE_NAMES,
    N_DENSE,
    N_OUT,
    SENTIMENT_LABELS,
    bigrams,
    char_grams,
    dense_features,
    normalise,
    tokenise,
    vader_scores,
)
from socialcrm.core.engine.learning.textmodel.modelfile import DEFAULT_MODEL_DIR, quantise, read_model, write_model

@dataclass
class TextScores:
    """What the model says about one text."""

    sentiment: dict[str, float]  # probabilities for "negative", "neutral", "positive", summing to 1
    complaint: float  # P(complaint) in [0, 1]
    suggestion: float  # P(suggestion) in [0, 1]
    evidence: list[tuple[str, float]] = field(default_factory=list)  # strongest features behind the winning sentiment label
    question: float = 0.0  # P(information-seeking question) in [0, 1]; 0.0 from a model without a question head


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function, clipped so that large logits do not overflow."""
    return 1.0 / (1.0 + np.exp(-np.clip(x, -40.0, 40.0)))


class TextModel:
    """A trained linear text model: sentiment, complaint, suggestion and question heads.

    Canonical parameters (what is saved): vocabularies of word unigrams, word bigrams and
    character n-grams, each with a weight matrix of shape (n, 6) (columns: negative,
    neutral, positive, complaint, suggestion, question), dense weights (len(DENSE_NAMES), 6) and a
    bias (6,).  Everything is float32 holding float16-representable values so that
    save/load reproduces scores exactly.  Weights with 5 columns (an artefact from before the
    question head) are taken with a zero question column, and such a model scores every text's
    question as 0.0 (``question_head`` False).
    """

    complaint_threshold: float
    suggestion_threshold: float
    #: Above 1, so a model without a question head never calls a text a question.
    question_threshold: float = 1.01

    _default_lock = threading.Lock()
    _default_cache: "TextModel | None" = None
    _TOKEN_CACHE_CAP = 1 << 18

    def __init__(
        self,
        uni: list[str],
        W_uni: np.ndarray,
        bi: list[str],
        W_bi: np.ndarray,
        chars: list[str],
        W_char: np.ndarray,
        W_dense: np.ndarray,
        bias: np.ndarray,
        *,
        complaint_threshold: float = 0.5,
        suggestion_threshold: float = 0.5,
        question_threshold: float | None = None,
        char_range: tuple[int, int] = (2, 5),
        meta: dict | None = None,
        stiffness: np.ndarray | None = None,
    ):
        self.uni = list(uni)
        self.bi = list(bi)
        self.chars = list(chars)
        self.bias = np.asarray(bias, dtype=np.float32).ravel()
        #: False for weights without a question column (an artefact from before the question head).
        self.question_head = self.bias.shape[0] == N_OUT
        self.W_uni = _columns(W_uni, len(self.uni))
        self.W_bi = _columns(W_bi, len(self.bi))
        self.W_char = _columns(W_char, len(self.chars))
        self.W_dense = _columns(W_dense, N_DENSE)
        self.bias = _columns(self.bias, 1).reshape(N_OUT)
        self.complaint_threshold = float(complaint_threshold)
        self.suggestion_threshold = float(suggestion_threshold)
        if question_threshold is not None:
            self.question_threshold = float(question_threshold)
        if not self.question_head:
            self.question_threshold = TextModel.question_threshold
        self.char_range = (int(char_range[0]), int(char_range[1]))
        self.meta = dict(meta or {})
        # Per-feature stiffness for fine-tuning (rows: uni, then bi, then char, then dense):
        # the diagonal Fisher information of the base training data, a compact sufficient
        # statistic of "how much the base data relies on this weight".
        n_rows = len(self.uni) + len(self.bi) + len(self.chars) + N_DENSE
        self.stiffness = None if stiffness is None else quantise(stiffness).reshape(n_rows)
        self._uni_index = {w: i for i, w in enumerate(self.uni)}
        self._char_index = {g: i for i, g in enumerate(self.chars)}
        n_bi = len(self.bi)
        self._bi_index = {w: i for i, w in enumerate(self.bi)}
        # Row table used at inference: bigram rows first, then lazily cached token rows.
        self._rows = np.zeros((n_bi + 8192, N_OUT), dtype=np.float32)
        self._rows[:n_bi] = self.W_bi
        self._row_names: list[str] = list(self.bi)
        self._tok_cache: dict[str, int] = {}
        self._lock = threading.Lock()

    @property
    def languages(self) -> tuple[str, ...]:
        """The ISO 639-1 codes of the languages the sentiment head was trained on (from the artefact's meta)."""
        return tuple(self.meta.get("languages") or ("en",))

    # ---------------------------------------------------------------- construction/io
    @classmethod
    def default(cls) -> "TextModel":
        """The bundled artefact in core/engine/learning/model/, loaded once and cached."""
        if cls._default_cache is None:
            with cls._default_lock:
                if cls._default_cache is None:
                    cls._default_cache = cls.load(DEFAULT_MODEL_DIR)
        return cls._default_cache

    @classmethod
    def load(cls, path) -> "TextModel":
        """The model saved at ``path`` (a ``.npz``, or a folder holding ``textmodel.npz``)."""
        return cls(**read_model(path))

    def save(self, path) -> None:
        """Save to ``path`` (a ``.npz``, or a folder to hold ``textmodel.npz``); see :mod:`.modelfile`."""
        write_model(self, path)

    def copy(self) -> "TextModel":
        """An independent model with the same weights (its own inference cache)."""
        return TextModel(
            self.uni, self.W_uni.copy(), self.bi, self.W_bi.copy(), self.chars, self.W_char.copy(),
            self.W_dense.copy(), self.bias.copy() if self.question_head else self.bias[:COL_QUESTION].copy(),
            complaint_threshold=self.complaint_threshold, suggestion_threshold=self.suggestion_threshold,
            question_threshold=self.question_threshold, char_range=self.char_range, meta=self.meta,
            stiffness=None if self.stiffness is None else self.stiffness.copy(),
        )

    # ---------------------------------------------------------------- inference
    def _add_token_rows(self, toks: list[str]) -> None:
        """Fold unigram + char n-gram weights of new tokens into rows of self._rows (vectorised).

        Called with self._lock held."""
        n_bi = len(self.bi)
        first = n_bi + len(self._tok_cache)
        need = first + len(toks)
        if need > len(self._rows):
            grown = np.zeros((max(need, 2 * len(self._rows)), N_OUT), dtype=np.float32)
            grown[: len(self._rows)] = self._rows
            self._rows = grown
        ug = self._uni_index.get
        cg = self._char_index.get
        cr = self.char_range
        flat: list[int] = []
        starts: list[int] = []
        has: list[int] = []
        uni_pos: list[int] = []
        uni_ids: list[int] = []
        for j, t in enumerate(toks):
            ids = [i for i in map(cg, char_grams(t, *cr)) if i is not None]
            if ids:
                starts.append(len(flat))
                has.append(j)
                flat.extend(ids)
            u = ug(t)
            if u is not None:
                uni_pos.append(j)
                uni_ids.append(u)
        block = np.zeros((len(toks), N_OUT), dtype=np.float32)
        if flat:
            block[has] = np.add.reduceat(self.W_char[flat], starts, axis=0)
        if uni_ids:
            block[uni_pos] += self.W_uni[uni_ids]
        self._rows[first:need] = block
        self._row_names.extend(toks)
        self._tok_cache.update(zip(toks, range(first, need)))

    def _logits(self, texts: Sequence[str], lexicon: Sequence[dict] | None, want_rows: bool = False):
        """Called with self._lock held."""
        if lexicon is None:
            lexicon = vader_scores([normalise(t or "") for t in texts])
        elif len(lexicon) != len(texts):
            raise ValueError("lexicon must have one dict per text")
        if len(self._tok_cache) > self._TOKEN_CACHE_CAP:
            # bound memory: forget the cached token rows between batches
            self._tok_cache.clear()
            del self._row_names[len(self.bi):]
            self._rows = self._rows[: len(self.bi) + self._TOKEN_CACHE_CAP].copy()
        n = len(texts)
        starts = np.empty(n, dtype=np.int64)
        scales = np.empty(n, dtype=np.float32)
        dense = []
        tok_lists = []
        cache = self._tok_cache
        new: dict[str, None] = {}
        for k, text in enumerate(texts):
            toks, cues = tokenise(normalise(text or ""))
            dense.append(dense_features(lexicon[k] or {}, cues))
            tok_lists.append(toks)
            for t in toks:
                if t not in cache:
                    new[t] = None
        if new:
            self._add_token_rows(list(new))
        idx: list[int] = []
        get = cache.__getitem__
        bg = self._bi_index.get
        for k, toks in enumerate(tok_lists):
            starts[k] = len(idx)
            scales[k] = 1.0 / math.sqrt(len(toks) or 1)
            idx.extend(map(get, toks))
            if len(toks) > 1:
                idx.extend([b for b in map(bg, bigrams(toks)) if b is not None])
        D = np.asarray(dense, dtype=np.float32).reshape(n, N_DENSE)
        logits = D @ self.W_dense + self.bias
        counts = np.diff(np.append(starts, len(idx)))
        ia = np.asarray(idx, dtype=np.int64)
        if idx:
            nz = counts > 0
            sums = np.add.reduceat(self._rows[ia], starts[nz], axis=0)
            logits[nz] += sums * scales[nz, None]
        if want_rows:
            return logits, ia, starts, counts, scales, D
        return logits

    def score(self, texts: list[str], lexicon: list[dict] | None = None, *, evidence: bool = True) -> list[TextScores]:
        """Score a batch of texts.  lexicon[i] is VADER's polarity_scores(texts[i]) (computed here if None)."""
        texts = list(texts)
        if not texts:
            return []
        with self._lock:
            logits, ia, starts, counts, scales, D = self._logits(texts, lexicon, want_rows=True)
            ev_lists = self._evidence(logits, ia, starts, counts, scales, D) if evidence else None
        s = logits[:, :3].astype(np.float64)
        s -= s.max(axis=1, keepdims=True)
        e = np.exp(s)
        p = e / e.sum(axis=1, keepdims=True)
        pc = sigmoid(logits[:, COL_COMPLAINT].astype(np.float64))
        ps = sigmoid(logits[:, COL_SUGGESTION].astype(np.float64))
        if self.question_head:
            PQ = sigmoid(logits[:, COL_QUESTION].astype(np.float64)).tolist()
        else:
            PQ = [0.0] * len(texts)
        if ev_lists is None:
            ev_lists = [[] for _ in texts]
        P = p.tolist()
        PC = pc.tolist()
        PS = ps.tolist()
        out = []
        for k in range(len(texts)):
            pk = P[k]
            out.append(
                TextScores(
                    {"negative": pk[0], "neutral": pk[1], "positive": pk[2]},
                    PC[k],
                    PS[k],
                    ev_lists[k],
                    PQ[k],
                )
            )
        return out

    def _evidence(self, logits, ia, starts, counts, scales, D) -> list[list[tuple[str, float]]]:
        """Up to 5 (feature, contribution) pairs pushing hardest towards the winning label."""
        win = logits[:, :3].argmax(axis=1)
        n = len(win)
        R = len(self._rows)
        seg = np.repeat(np.arange(n), counts)
        contrib = self._rows[ia, win[seg]] * scales[seg] if len(ia) else np.zeros(0, np.float32)
        dcon = D * self.W_dense[:, :3].T[win]  # (n, dense)
        # one key per (text, feature); dense features get keys after the sparse rows
        keys = np.concatenate([seg * (R + N_DENSE) + ia, (np.arange(n)[:, None] * (R + N_DENSE) + R + np.arange(N_DENSE)).ravel()])
        vals = np.concatenate([contrib, dcon.ravel()]).astype(np.float64)
        uk, inv = np.unique(keys, return_inverse=True)
        tot = np.bincount(inv, weights=vals, minlength=len(uk))
        pos = tot > 0
        uk, tot = uk[pos], tot[pos]
        text_of = uk // (R + N_DENSE)
        feat = uk % (R + N_DENSE)
        order = np.lexsort((-tot, text_of))
        text_of, feat, tot = text_of[order], feat[order], tot[order]
        first = np.searchsorted(text_of, np.arange(n))
        rank = np.arange(len(text_of)) - first[text_of]
        top = rank < 5
        out: list[list[tuple[str, float]]] = [[] for _ in range(n)]
        names = self._row_names
        for k, f, v in zip(text_of[top].tolist(), feat[top].tolist(), tot[top].tolist()):
            out[k].append((display(names[f]) if f < R else DENSE_NAMES[f - R], round(v, 3)))
        return out

    def predict_sentiment(self, texts: list[str], lexicon: list[dict] | None = None) -> list[str]:
        """The most probable sentiment label of each text."""
        with self._lock:
            logits = self._logits(list(texts), lexicon)
        return [SENTIMENT_LABELS[i] for i in logits[:, :3].argmax(axis=1).tolist()]


def _columns(W, n_rows: int) -> np.ndarray:
    """W as an (n_rows, N_OUT) float16-exact matrix; weights with one column fewer (no question head) get
    a zero question column."""
    W = quantise(W)
    W = W.reshape(n_rows, W.size // n_rows if n_rows else N_OUT)
    if W.shape[1] == N_OUT - 1:
        W = np.hstack([W, np.zeros((n_rows, 1), dtype=np.float32)])
    if W.shape[1] != N_OUT:
        raise ValueError(f"text model weights need {N_OUT} (or {N_OUT - 1}) columns, not {W.shape[1]}")
    return W


def display(name: str) -> str:
    """A feature as people read it: negation-scope marks become words."""
    if "~" not in name:
        return name
    words = name.split(" ")
    plain = " ".join(w[1:] if w.startswith("~") and len(w) > 1 else w for w in words)
    if words[0].startswith("~") and len(words[0]) > 1:
        return plain + " (negated)"
    return plain

