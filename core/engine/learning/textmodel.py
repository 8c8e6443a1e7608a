"""A small, fast linear text model for social-media mentions.

Three heads share one feature extractor:

* ``sentiment``  -- multinomial logistic regression over negative / neutral / positive,
* ``complaint``  -- binary logistic regression (P(complaint)),
* ``suggestion`` -- binary logistic regression (P(suggestion)).

Features (identical at training and inference time: ``_tokenise``, ``_char_grams``, ``_dense``):

* word unigrams (tweet-normalised: ``@user``, ``http``, digits -> ``0``, elongations capped,
  negation scope marked) and word bigrams,
* character 2-5-grams inside each word (so spelling variants and unseen words still score),
* a few dense "signal" features: VADER's neg / neu / pos / compound, ``!`` / ``?`` runs,
  capitals, emoticons, and suggestion cues (``should``, ``please``, ``would be nice`` ...).

Sparse features of a text are scaled by ``1 / sqrt(number of tokens)``.  Each word's
unigram weight and the weights of its character n-grams are folded, lazily, into a single
"token row", so scoring a text is one dictionary lookup per token and per bigram followed by
a vectorised gather-and-sum in numpy.  Inference needs only the standard library and numpy
(and ``vaderSentiment`` when the caller does not pass VADER scores in).  Training
(:func:`train`, :func:`train_default`) additionally needs scikit-learn; fine-tuning
(:func:`fine_tune`) needs only numpy.
"""

from __future__ import annotations

import hashlib
import html
import io
import json
import math
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from socialcrm.core.engine.evaluation import precision_recall_f1

__all__ = [
    "TextScores",
    "TextModel",
    "train",
    "fine_tune",
    "train_default",
    "airline_complaint_rows",
    "SENTIMENT_LABELS",
    "macro_recall",
    "f1_binary",
]

SENTIMENT_LABELS = ("negative", "neutral", "positive")
_N_OUT = 5  # columns: negative, neutral, positive, complaint, suggestion
_COL_COMPLAINT = 3
_COL_SUGGESTION = 4
FORMAT_VERSION = 1
_MODEL_DIR = Path(__file__).resolve().parent / "model"
_MODEL_FILE = "textmodel.npz"


@dataclass
class TextScores:
    sentiment: dict[str, float]  # probabilities for "negative", "neutral", "positive", summing to 1
    complaint: float  # P(complaint) in [0, 1]
    suggestion: float  # P(suggestion) in [0, 1]
    evidence: list[tuple[str, float]] = field(default_factory=list)  # strongest features behind the winning sentiment label


# --------------------------------------------------------------------------------------
# Tokenisation and features
# --------------------------------------------------------------------------------------

_ESCAPED_U = re.compile(r"\\u([0-9a-fA-F]{4})")
_URL = re.compile(r"https?://\S+|www\.\S+")
_USER = re.compile(r"@\w+")
_DIGIT = re.compile(r"\d")
_ELONG = re.compile(r"(\w)\1{2,}")
_CAPS = re.compile(r"\b[A-Z][A-Z']+\b")
_STRIP = re.compile("[\ufe0f\u200d\U0001f3fb-\U0001f3ff]")
_TOKEN = re.compile(
    r"""
    (?:[:;=][\-o\*']?[\)\]\(\[dDpP/\\|3]|<3)(?!\w)   # emoticons
    | \#?\w[\w']*                                      # words, hashtags, @user, http
    | !+\?[!?]* | \?+![!?]* | !+ | \?+                  # ! ? runs
    | \.{2,} | …                                       # ellipsis
    | [^\w\s]                                          # any other symbol (emoji one by one)
    """,
    re.VERBOSE,
)
_NEGATORS = frozenset(
    "not no never cannot cant dont doesnt didnt isnt arent wasnt werent wont wouldnt "
    "shouldnt couldnt aint havent hasnt hadnt nothing nobody none nor neither without".split()
)
_SCOPE_END = frozenset(". , ! ? ; : !! ?? ?! ... … but".split())
_POS_EMOTICONS = frozenset(":) :-) :] =) ;) ;-) :d :-d ;d =d :p :-p ;p <3 ❤ 😀 😁 😂 😃 😄 😊 😍 😘 🙂 👍 💕 💙 ♥ ☺ 😎 🎉 🙌 👏 💯 😉".split())
_NEG_EMOTICONS = frozenset(":( :-( :[ =( :/ :-/ :\\ :| 😡 😠 😤 😒 😞 😢 😭 😩 😫 🙁 ☹ 👎 😑 😐 🤬 😣 😖 😔".split())
_SUGGEST_CUES = re.compile(
    r"\b(?:should|would be (?:nice|great|good|better|awesome|helpful|cool)|it would be|would love|"
    r"i wish|please (?:add|make|allow|provide|include|consider|fix|support|bring|let)|"
    r"(?:could|can) you (?:please )?(?:add|make|allow|provide|include|consider|support|bring)|"
    r"why not|how about|feature request|need(?:s)? to be|ought to|would like to see|"
    r"allow (?:us|users|me|the user)|let (?:us|users|me)|there should|suggest|recommend|"
    r"(?:add|provide|include|implement|introduce|enable) (?:a|an|the|support|option|ability))\b"
)
_MODAL = re.compile(r"\b(?:should|could|would|must|might|need|needs|shall)\b")

DENSE_NAMES = (
    "VADER negative",
    "VADER neutral",
    "VADER positive",
    "VADER compound (+)",
    "VADER compound (-)",
    "'!'",
    "'?'",
    "CAPITALS",
    "positive emoticon",
    "negative emoticon",
    "suggestion phrase",
    "modal verb",
    "negation",
    "link",
    "mentions",
    "length",
)
_N_DENSE = len(DENSE_NAMES)


def _normalise(text: str) -> str:
    if "\\u" in text:
        text = _ESCAPED_U.sub(lambda m: chr(int(m.group(1), 16)), text)
    if "&" in text:
        text = html.unescape(text)
    return text


def _tokenise(text: str) -> tuple[list[str], list[float]]:
    """Return (tokens, raw dense cues) for an already _normalise()d text."""
    n_urls = 0
    if "http" in text or "www." in text:
        text, n_urls = _URL.subn(" http ", text)
    n_users = 0
    if "@" in text:
        text, n_users = _USER.subn(" @user ", text)
    n_caps = len(_CAPS.findall(text))
    low = text.lower().replace("\u2019", "'")
    low = _STRIP.sub("", low)
    low = _DIGIT.sub("0", low)
    low = _ELONG.sub(r"\1\1", low)
    toks = _TOKEN.findall(low)
    # negation scope: mark words after a negator until punctuation (at most 4 words)
    out = []
    scope = 0
    n_neg = 0
    n_excl = n_quest = pos_emo = neg_emo = 0
    for t in toks:
        c = t[0]
        if c.isalnum() or c == "#" or c == "_":
            if scope:
                out.append("~" + t)
                scope -= 1
            else:
                out.append(t)
            if t in _NEGATORS or t.endswith("n't"):
                scope = 4
                n_neg += 1
            continue
        scope = 0 if t in _SCOPE_END else scope
        if "!" in t:
            n_excl += 1
        if "?" in t:
            n_quest += 1
        if t in _POS_EMOTICONS:
            pos_emo += 1
        elif t in _NEG_EMOTICONS:
            neg_emo += 1
        out.append(t)
    n_sugg = len(_SUGGEST_CUES.findall(low))
    n_modal = len(_MODAL.findall(low))
    n = max(len(out), 1)
    cues = [
        min(n_excl, 3) / 3.0,
        min(n_quest, 3) / 3.0,
        min(n_caps, 4) / 4.0,
        min(pos_emo, 2) / 2.0,
        min(neg_emo, 2) / 2.0,
        min(n_sugg, 2) / 2.0,
        min(n_modal, 2) / 2.0,
        min(n_neg, 2) / 2.0,
        1.0 if n_urls else 0.0,
        min(n_users, 3) / 3.0,
        min(math.log1p(n) / 4.0, 1.5),
    ]
    return out, cues


def _char_grams(tok: str, nmin: int, nmax: int) -> list[str]:
    if tok[0] == "~" and len(tok) > 1:
        tok = tok[1:]
    if tok == "@user" or tok == "http" or not (tok[0].isalnum() or tok[0] == "#" or tok[0] == "_"):
        return []
    s = " " + tok + " "
    L = len(s)
    out = []
    for n in range(nmin, nmax + 1):
        if n > L:
            break
        out.extend([s[i : i + n] for i in range(L - n + 1)])
    return out


def _dense(lex: dict, cues: list[float]) -> list[float]:
    c = float(lex.get("compound", 0.0))
    return [
        float(lex.get("neg", 0.0)),
        float(lex.get("neu", 0.0)),
        float(lex.get("pos", 0.0)),
        c if c > 0 else 0.0,
        -c if c < 0 else 0.0,
    ] + cues


_VADER = None
_VADER_LOCK = threading.Lock()


def _vader_scores(texts: Sequence[str]) -> list[dict]:
    global _VADER
    if _VADER is None:
        with _VADER_LOCK:
            if _VADER is None:
                from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

                _VADER = SentimentIntensityAnalyzer()
    ps = _VADER.polarity_scores
    return [ps(t) for t in texts]


# --------------------------------------------------------------------------------------
# Metrics (used by tests, training and the model card)
# --------------------------------------------------------------------------------------


def macro_recall(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str] = SENTIMENT_LABELS) -> float:
    rec = []
    for lab in labels:
        idx = [i for i, g in enumerate(gold) if g == lab]
        if idx:
            rec.append(sum(1 for i in idx if pred[i] == lab) / len(idx))
    return sum(rec) / len(rec) if rec else 0.0


def f1_binary(gold: Sequence[bool], pred: Sequence[bool]) -> float:
    """F1 of the positive class (``evaluate``'s own measure)."""
    return precision_recall_f1([bool(g) for g in gold], [bool(p) for p in pred])[2]


def holdout_fold(row_id: str) -> bool:
    """True for the deterministic 20% validation part of the complaints data."""
    return int(hashlib.sha256(row_id.encode("utf-8")).hexdigest(), 16) % 5 == 0


# --------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -40.0, 40.0)))


class TextModel:
    """A trained linear text model: sentiment, complaint and suggestion heads.

    Canonical parameters (what is saved): vocabularies of word unigrams, word bigrams and
    character n-grams, each with a weight matrix of shape (n, 5) (columns: negative,
    neutral, positive, complaint, suggestion), dense weights (len(DENSE_NAMES), 5) and a
    bias (5,).  Everything is float32 holding float16-representable values so that
    save/load reproduces scores exactly.
    """

    complaint_threshold: float
    suggestion_threshold: float

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
        char_range: tuple[int, int] = (2, 5),
        meta: dict | None = None,
        stiffness: np.ndarray | None = None,
    ):
        self.uni = list(uni)
        self.bi = list(bi)
        self.chars = list(chars)
        self.W_uni = _q(W_uni).reshape(len(self.uni), _N_OUT)
        self.W_bi = _q(W_bi).reshape(len(self.bi), _N_OUT)
        self.W_char = _q(W_char).reshape(len(self.chars), _N_OUT)
        self.W_dense = _q(W_dense).reshape(_N_DENSE, _N_OUT)
        self.bias = _q(bias).reshape(_N_OUT)
        self.complaint_threshold = float(complaint_threshold)
        self.suggestion_threshold = float(suggestion_threshold)
        self.char_range = (int(char_range[0]), int(char_range[1]))
        self.meta = dict(meta or {})
        # Per-feature stiffness for fine-tuning (rows: uni, then bi, then char, then dense):
        # the diagonal Fisher information of the base training data, a compact sufficient
        # statistic of "how much the base data relies on this weight".
        n_rows = len(self.uni) + len(self.bi) + len(self.chars) + _N_DENSE
        self.stiffness = None if stiffness is None else _q(stiffness).reshape(n_rows)
        self._uni_index = {w: i for i, w in enumerate(self.uni)}
        self._char_index = {g: i for i, g in enumerate(self.chars)}
        n_bi = len(self.bi)
        self._bi_index = {w: i for i, w in enumerate(self.bi)}
        # Row table used at inference: bigram rows first, then lazily cached token rows.
        self._rows = np.zeros((n_bi + 8192, _N_OUT), dtype=np.float32)
        self._rows[:n_bi] = self.W_bi
        self._row_names: list[str] = list(self.bi)
        self._tok_cache: dict[str, int] = {}
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- construction/io
    @classmethod
    def default(cls) -> "TextModel":
        """The bundled artefact in core/engine/learning/model/, loaded once and cached."""
        if cls._default_cache is None:
            with cls._default_lock:
                if cls._default_cache is None:
                    cls._default_cache = cls.load(_MODEL_DIR / _MODEL_FILE)
        return cls._default_cache

    @classmethod
    def load(cls, path) -> "TextModel":
        path = Path(path)
        if path.is_dir():
            path = path / _MODEL_FILE
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta"]).decode("utf-8"))
            if meta.get("format_version") != FORMAT_VERSION:
                raise ValueError(f"unsupported text model format {meta.get('format_version')!r} in {path}")

            def strings(key):
                raw = bytes(z[key]).decode("utf-8")
                return raw.split("\n") if raw else []

            return cls(
                strings("uni"),
                z["W_uni"].astype(np.float32),
                strings("bi"),
                z["W_bi"].astype(np.float32),
                strings("chars"),
                z["W_char"].astype(np.float32),
                z["W_dense"].astype(np.float32),
                z["bias"].astype(np.float32),
                complaint_threshold=meta["complaint_threshold"],
                suggestion_threshold=meta["suggestion_threshold"],
                char_range=tuple(meta["char_range"]),
                meta=meta.get("info", {}),
                stiffness=z["stiffness"].astype(np.float32) if "stiffness" in z.files else None,
            )

    def save(self, path) -> None:
        path = Path(path)
        if path.suffix != ".npz":
            path.mkdir(parents=True, exist_ok=True)
            path = path / _MODEL_FILE
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "format_version": FORMAT_VERSION,
            "labels": list(SENTIMENT_LABELS),
            "columns": list(SENTIMENT_LABELS) + ["complaint", "suggestion"],
            "dense": list(DENSE_NAMES),
            "complaint_threshold": self.complaint_threshold,
            "suggestion_threshold": self.suggestion_threshold,
            "char_range": list(self.char_range),
            "info": self.meta,
        }

        def enc(s: str) -> np.ndarray:
            return np.frombuffer(s.encode("utf-8"), dtype=np.uint8)

        buf = io.BytesIO()
        np.savez_compressed(
            buf,
            meta=enc(json.dumps(meta, sort_keys=True)),
            uni=enc("\n".join(self.uni)),
            W_uni=self.W_uni.astype(np.float16),
            bi=enc("\n".join(self.bi)),
            W_bi=self.W_bi.astype(np.float16),
            chars=enc("\n".join(self.chars)),
            W_char=self.W_char.astype(np.float16),
            W_dense=self.W_dense.astype(np.float16),
            **({} if self.stiffness is None else {"stiffness": self.stiffness.astype(np.float16)}),
            bias=self.bias.astype(np.float16),
        )
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(buf.getvalue())
        os.replace(tmp, path)

    def copy(self) -> "TextModel":
        return TextModel(
            self.uni, self.W_uni.copy(), self.bi, self.W_bi.copy(), self.chars, self.W_char.copy(),
            self.W_dense.copy(), self.bias.copy(), complaint_threshold=self.complaint_threshold,
            suggestion_threshold=self.suggestion_threshold, char_range=self.char_range, meta=self.meta,
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
            grown = np.zeros((max(need, 2 * len(self._rows)), _N_OUT), dtype=np.float32)
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
            ids = [i for i in map(cg, _char_grams(t, *cr)) if i is not None]
            if ids:
                starts.append(len(flat))
                has.append(j)
                flat.extend(ids)
            u = ug(t)
            if u is not None:
                uni_pos.append(j)
                uni_ids.append(u)
        block = np.zeros((len(toks), _N_OUT), dtype=np.float32)
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
            lexicon = _vader_scores([_normalise(t or "") for t in texts])
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
            toks, cues = _tokenise(_normalise(text or ""))
            dense.append(_dense(lexicon[k] or {}, cues))
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
                idx.extend([b for b in map(bg, _bigrams(toks)) if b is not None])
        D = np.asarray(dense, dtype=np.float32).reshape(n, _N_DENSE)
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
        pc = _sigmoid(logits[:, _COL_COMPLAINT].astype(np.float64))
        ps = _sigmoid(logits[:, _COL_SUGGESTION].astype(np.float64))
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
        keys = np.concatenate([seg * (R + _N_DENSE) + ia, (np.arange(n)[:, None] * (R + _N_DENSE) + R + np.arange(_N_DENSE)).ravel()])
        vals = np.concatenate([contrib, dcon.ravel()]).astype(np.float64)
        uk, inv = np.unique(keys, return_inverse=True)
        tot = np.bincount(inv, weights=vals, minlength=len(uk))
        pos = tot > 0
        uk, tot = uk[pos], tot[pos]
        text_of = uk // (R + _N_DENSE)
        feat = uk % (R + _N_DENSE)
        order = np.lexsort((-tot, text_of))
        text_of, feat, tot = text_of[order], feat[order], tot[order]
        first = np.searchsorted(text_of, np.arange(n))
        rank = np.arange(len(text_of)) - first[text_of]
        top = rank < 5
        out: list[list[tuple[str, float]]] = [[] for _ in range(n)]
        names = self._row_names
        for k, f, v in zip(text_of[top].tolist(), feat[top].tolist(), tot[top].tolist()):
            out[k].append((_display(names[f]) if f < R else DENSE_NAMES[f - R], round(v, 3)))
        return out

    # convenience
    def predict_sentiment(self, texts: list[str], lexicon: list[dict] | None = None) -> list[str]:
        with self._lock:
            logits = self._logits(list(texts), lexicon)
        return [SENTIMENT_LABELS[i] for i in logits[:, :3].argmax(axis=1).tolist()]


def _display(name: str) -> str:
    """A feature as people read it: negation-scope marks become words."""
    if "~" not in name:
        return name
    words = name.split(" ")
    plain = " ".join(w[1:] if w.startswith("~") and len(w) > 1 else w for w in words)
    if words[0].startswith("~") and len(words[0]) > 1:
        return plain + " (negated)"
    return plain


def _q(a) -> np.ndarray:
    """Round to float16 precision (stored as float32) so that save/load is exact."""
    return np.asarray(a, dtype=np.float32).astype(np.float16).astype(np.float32)


# --------------------------------------------------------------------------------------
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
    alpha_char_suggestion=0.5,
    alpha_bi=1.0,
    alpha_dense=1.0,
    # scale of the training-only word-embedding features (0 disables them); see _embeddings()
    emb_sentiment=0.0,
    emb_complaint=3.0,
    emb_suggestion=0.0,
    emb_dim=150,
    C_sentiment=1.0,
    C_complaint=5.0,
    C_suggestion=1.0,
    # weight of an auxiliary (distant-supervision) complaint row relative to an average main complaint
    # row (each set class-balanced on its own); 0 ignores complaint_aux_rows (see train(),
    # airline_complaint_rows()); chosen, with C_complaint, by cross-validation on the complaints 80%
    complaint_aux_weight=0.1,
    sentiment_class_weight="balanced",
    complaint_class_weight="balanced",
    suggestion_class_weight="balanced",
    stack_sentiment=True,
    # drop n-grams whose largest |weight| over the five outputs is below these (artefact size)
    prune_uni=0.02,
    prune_bi=0.08,
    prune_char=0.05,
    seed=13,
)
_HEADS = ("sentiment", "complaint", "suggestion")


class _Analysed:
    """Texts turned into tokens + dense features (training / fine-tuning side)."""

    def __init__(self, texts: Sequence[str], lexicon: Sequence[dict] | None = None):
        texts = [_normalise(t or "") for t in texts]
        if lexicon is None:
            lexicon = _vader_scores(texts)
        self.toks: list[list[str]] = []
        dense = []
        for t, lex in zip(texts, lexicon):
            toks, cues = _tokenise(t)
            self.toks.append(toks)
            dense.append(_dense(lex or {}, cues))
        self.dense = np.asarray(dense, dtype=np.float64).reshape(len(texts), _N_DENSE)

    def __len__(self):
        return len(self.toks)


def _bigrams(toks: list[str]) -> list[str]:
    return [a + " " + b for a, b in zip(toks, toks[1:])]


class _Space:
    """Column layout of the sparse feature matrix: [uni | bi | char | dense].

    Values: token / bigram / char-gram counts times 1/sqrt(n_tokens), dense features as is.
    This is exactly what TextModel computes at inference (there the unigram and char-gram
    weights of a token are pre-summed into one row)."""

    def __init__(self, uni, bi, chars, char_range):
        self.uni = list(uni)
        self.bi = list(bi)
        self.chars = list(chars)
        self.char_range = tuple(char_range)
        self.ui = {w: i for i, w in enumerate(self.uni)}
        self.bo = len(self.uni)
        self.bidx = {w: i for i, w in enumerate(self.bi)}
        self.co = self.bo + len(self.bi)
        self.cidx = {g: i for i, g in enumerate(self.chars)}
        self.do = self.co + len(self.chars)
        self.ncol = self.do + _N_DENSE
        self._tokcols: dict[str, list[int]] = {}

    @classmethod
    def build(cls, corpora: Iterable[_Analysed], opts: dict) -> "_Space":
        from collections import Counter

        cu, cb, cc = Counter(), Counter(), Counter()
        cr = tuple(opts["char_range"])
        gram_cache: dict[str, list[str]] = {}
        for corpus in corpora:
            for toks in corpus.toks:
                st = set(toks)
                cu.update(st)
                cb.update(set(_bigrams(toks)))
                gs = set()
                for t in st:
                    g = gram_cache.get(t)
                    if g is None:
                        g = gram_cache[t] = _char_grams(t, *cr)
                    gs.update(g)
                cc.update(gs)
        uni = sorted(w for w, c in cu.items() if c >= opts["min_df_uni"])
        bi = sorted(w for w, c in cb.items() if c >= opts["min_df_bi"])
        chars = sorted(g for g, c in cc.items() if c >= opts["min_df_char"])
        return cls(uni, bi, chars, cr)

    @classmethod
    def of_model(cls, model: "TextModel") -> "_Space":
        return cls(model.uni, model.bi, model.chars, model.char_range)

    def _cols_of_token(self, t: str) -> list[int]:
        cols = self._tokcols.get(t)
        if cols is None:
            cols = []
            u = self.ui.get(t)
            if u is not None:
                cols.append(u)
            co = self.co
            cg = self.cidx.get
            cols.extend(co + i for i in map(cg, _char_grams(t, *self.char_range)) if i is not None)
            self._tokcols[t] = cols
        return cols

    def csr_arrays(self, corpus: _Analysed) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(indptr, indices, data) of the corpus's feature rows: counts scaled by 1/sqrt(tokens), dense cues as they are."""
        indptr = [0]
        indices: list[int] = []
        data: list[float] = []
        bo, do = self.bo, self.do
        bg = self.bidx.get
        for toks, dense in zip(corpus.toks, corpus.dense.tolist()):
            s = 1.0 / math.sqrt(len(toks) or 1)
            row: dict[int, float] = {}
            for t in toks:
                for c in self._cols_of_token(t):
                    row[c] = row.get(c, 0.0) + s
            for b in map(bg, _bigrams(toks)):
                if b is not None:
                    c = bo + b
                    row[c] = row.get(c, 0.0) + s
            for j, v in enumerate(dense):
                if v:
                    row[do + j] = v
            indices.extend(row.keys())
            data.extend(row.values())
            indptr.append(len(indices))
        return (np.asarray(indptr, dtype=np.int64), np.asarray(indices, dtype=np.int64),
                np.asarray(data, dtype=np.float64))

    def matrix(self, corpus: _Analysed):
        """The corpus's feature rows as a scipy CSR matrix (training)."""
        import scipy.sparse as sp

        indptr, indices, data = self.csr_arrays(corpus)
        return sp.csr_matrix((data, indices, indptr), shape=(len(corpus), self.ncol))

    def block_scales(self, alpha_char: float, alpha_bi: float, alpha_dense: float) -> np.ndarray:
        d = np.ones(self.ncol)
        d[self.bo : self.co] = alpha_bi
        d[self.co : self.do] = alpha_char
        d[self.do :] = alpha_dense
        return d


def _embeddings(space: _Space, corpora: Sequence[_Analysed], dim: int, seed: int) -> np.ndarray:
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


def _head_matrix(space: _Space, X, head: str, opts: dict, E: np.ndarray | None, sent_coef: np.ndarray,
                 sent_bias: np.ndarray):
    """What one head is fitted on: the feature rows X scaled per block, then (if the options say so) the
    training-only word-embedding features and the sentiment head's centred negative and positive logits.

    Returns (matrix, block scales). sent_coef / sent_bias: the sentiment head's weights in model space."""
    import scipy.sparse as sp

    d = space.block_scales(opts[f"alpha_char_{head}"], opts["alpha_bi"], opts["alpha_dense"])
    parts = [X @ sp.diags(d)]
    emb = opts[f"emb_{head}"]
    if emb:
        parts.append(sp.csr_matrix((X[:, : len(space.uni)] @ E) * emb))
    if head != "sentiment" and opts["stack_sentiment"]:
        L = X @ sent_coef + sent_bias
        L = L - L.mean(axis=1, keepdims=True)
        parts.append(sp.csr_matrix(L[:, [0, 2]]))
    return sp.hstack(parts, format="csr"), d


def _fit_lr(X, y, C, class_weight, seed, aux=None):
    """Logistic regression on (X, y); aux = (X_aux, y_aux, w_aux) adds down-weighted auxiliary rows.

    With auxiliary rows, class weights are computed separately over the main rows and over the
    auxiliary rows (class_weight applies to both; "balanced" weights average 1 per row), and
    every auxiliary row's weight is then multiplied by w_aux."""
    import scipy.sparse as sp
    from sklearn.linear_model import LogisticRegression

    if aux is None or not len(aux[1]):
        clf = LogisticRegression(C=C, class_weight=class_weight, max_iter=3000, tol=1e-4, random_state=seed, solver="lbfgs")
        clf.fit(X, y)
        return clf
    Xa, ya, wa = aux
    cw, cw_aux = _class_weights(y, class_weight), _class_weights(ya, class_weight)
    weights = np.concatenate([cw[y], wa * cw_aux[ya]])
    clf = LogisticRegression(C=C, max_iter=3000, tol=1e-4, random_state=seed, solver="lbfgs")
    clf.fit(sp.vstack([X, Xa], format="csr"), np.concatenate([y, ya]), sample_weight=weights)
    return clf


def _class_weights(y: np.ndarray, class_weight) -> np.ndarray:
    """Weight per class (indexed by label 0/1) as sklearn's class_weight would give it for rows y."""
    if class_weight is None:
        return np.ones(2)
    if class_weight != "balanced":
        return np.array([float(class_weight.get(0, 1.0)), float(class_weight.get(1, 1.0))])
    counts = np.bincount(np.asarray(y, dtype=int), minlength=2).astype(float)
    return np.where(counts > 0, len(y) / (2 * np.maximum(counts, 1)), 0.0)


def _best_f1_threshold(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    best = (0.0, 0.5)
    y = np.asarray(y).astype(bool)
    for t in np.arange(0.05, 0.951, 0.01):
        f = f1_binary(y.tolist(), (p >= t).tolist())
        if f > best[0] + 1e-12:
            best = (f, float(round(t, 2)))
    return best


def _oof_threshold(X, y, C, class_weight, seed, folds=5, aux=None) -> float:
    """F1-optimal threshold from out-of-fold predictions on the training rows.

    Auxiliary rows (aux, see _fit_lr) are in every training fold and never scored."""
    n = X.shape[0]
    if min(int(y.sum()), n - int(y.sum())) < 2 * folds:
        return 0.5
    rng = np.random.RandomState(seed)
    fold = rng.permutation(n) % folds
    p = np.zeros(n)
    for f in range(folds):
        tr, te = fold != f, fold == f
        clf = _fit_lr(X[tr], y[tr], C, class_weight, seed, aux)
        p[te] = clf.predict_proba(X[te])[:, 1]
    return _best_f1_threshold(y, p)[1]


def _stiffness(X_by_head: dict, coef: np.ndarray, bias: np.ndarray, row_weights: dict | None = None) -> np.ndarray:
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
            p = _sigmoid(Z[:, _COL_COMPLAINT if h == "complaint" else _COL_SUGGESTION])
            w = p * (1 - p)
        if h in row_weights:
            w = w * row_weights[h]
        f = np.asarray(X.multiply(X).T @ w).ravel()
        F = f if F is None else F + f
    return np.minimum(F, 60000.0)


def train(sentiment_rows, complaint_rows, suggestion_rows, complaint_aux_rows=(), **options) -> TextModel:
    """Train the three heads (see :func:`_train` for rows and options) on one BLAS thread.

    More threads split BLAS sums differently; the last bits of the weights then differ with the core count,
    and on a flat F1 curve that is enough to move an out-of-fold threshold. One thread makes the same rows
    give the same artefact on any machine with the same numpy and scikit-learn.
    """
    with one_blas_thread():
        return _train(sentiment_rows, complaint_rows, suggestion_rows, complaint_aux_rows, **options)


def one_blas_thread():
    """A context in which scipy and scikit-learn compute on one BLAS/OpenMP thread (see :func:`train`)."""
    # Load every library that brings its own BLAS first: the limit reaches only those already loaded.
    import scipy.linalg  # noqa: F401
    import scipy.optimize  # noqa: F401
    import sklearn.linear_model  # noqa: F401
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def _train(sentiment_rows, complaint_rows, suggestion_rows, complaint_aux_rows=(), **options) -> TextModel:
    """Train the three heads.  Rows are dicts as in the shared datasets' JSON Lines
    ({"text", "sentiment"} / {"text", "complaint"} / {"text", "suggestion"}).

    Options (defaults in DEFAULT_OPTIONS): C_<head> (inverse L2 strength),
    <head>_class_weight, alpha_char_<head> / alpha_bi / alpha_dense (block scales),
    emb_<head> (scale of training-only LSA word-embedding features, 0 = off), min_df_*,
    char_range, prune_uni / prune_bi / prune_char (drop n-grams whose largest |weight| is below these), stack_sentiment
    (complaint and suggestion heads also see the sentiment head's logits; folded into their
    weights), complaint_threshold / suggestion_threshold (default: F1-optimal threshold of
    5-fold out-of-fold predictions on the training rows), info (dict kept in the artefact),
    lexicons ({"sentiment"|"complaint"|"suggestion"|"complaint_aux": list of VADER dicts}, optional).

    complaint_aux_rows: auxiliary ("distant") complaint rows ({"text", "complaint"}), e.g. from
    :func:`airline_complaint_rows`.  They join the complaint head's training rows, each weighing
    ``complaint_aux_weight`` times an average main row (the auxiliary rows are class-balanced
    among themselves, the main rows among themselves); the threshold is still chosen on
    out-of-fold predictions of the main rows only (auxiliary rows are in every training fold).
    Their texts also count for the vocabulary and the LSA embeddings.
    Needs scikit-learn (the ``socialcrm[train]`` extra).  Deterministic for fixed inputs.
    """
    import scipy.sparse as sp

    opts = dict(DEFAULT_OPTIONS)
    unknown = set(options) - set(opts) - {"complaint_threshold", "suggestion_threshold", "info", "lexicons"}
    if unknown:
        raise TypeError(f"unknown training options: {sorted(unknown)}")
    opts.update(options)
    seed = int(opts["seed"])
    lex = opts.get("lexicons") or {}
    sent_rows = [r for r in sentiment_rows if r.get("sentiment") in SENTIMENT_LABELS]
    comp_rows = [r for r in complaint_rows if r.get("complaint") is not None]
    sugg_rows = [r for r in suggestion_rows if r.get("suggestion") is not None]
    aux_rows = [r for r in complaint_aux_rows if r.get("complaint") is not None] if opts["complaint_aux_weight"] else []
    if len({r["sentiment"] for r in sent_rows}) < 2:
        raise ValueError("train() needs sentiment rows with at least two different labels")
    A = {
        "sentiment": _Analysed([r["text"] for r in sent_rows], lex.get("sentiment")),
        "complaint": _Analysed([r["text"] for r in comp_rows], lex.get("complaint")),
        "suggestion": _Analysed([r["text"] for r in sugg_rows], lex.get("suggestion")),
    }
    corpora = list(A.values())
    if aux_rows:
        A_aux = _Analysed([r["text"] for r in aux_rows], lex.get("complaint_aux"))
        corpora.append(A_aux)
    space = _Space.build(corpora, opts)
    X = {h: space.matrix(A[h]) for h in _HEADS}
    X_aux = space.matrix(A_aux) if aux_rows else None
    y = {
        "sentiment": np.array([SENTIMENT_LABELS.index(r["sentiment"]) for r in sent_rows]),
        "complaint": np.array([bool(r["complaint"]) for r in comp_rows], dtype=int),
        "suggestion": np.array([bool(r["suggestion"]) for r in sugg_rows], dtype=int),
    }
    E = None
    if any(opts[f"emb_{h}"] for h in _HEADS):
        E = _embeddings(space, corpora, int(opts["emb_dim"]), seed)
    U = len(space.uni)

    coef = np.zeros((space.ncol, _N_OUT))  # in model space (block scales already applied)
    bias = np.zeros(_N_OUT)
    thresholds = {}

    def head_matrix(h, Xh):
        return _head_matrix(space, Xh, h, opts, E, coef[:, :3], bias[:3])

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
    clf = _fit_lr(Xh, y["sentiment"], opts["C_sentiment"], opts["sentiment_class_weight"], seed)
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
    untrained = []
    for col, h in ((_COL_COMPLAINT, "complaint"), (_COL_SUGGESTION, "suggestion")):
        if len(set(y[h].tolist())) < 2:
            # no (or one-class) rows for this head: it stays constant at the rows' rate
            rate = float(y[h].mean()) if len(y[h]) else 0.0
            rate = min(max(rate, 1e-4), 1 - 1e-4)
            bias[col] = math.log(rate / (1 - rate))
            thresholds[f"{h}_threshold"] = opts.get(f"{h}_threshold") or 0.5
            untrained.append(h)
            continue
        Xh, d = head_matrix(h, X[h])
        d_of[h] = d
        C, cw = opts[f"C_{h}"], opts[f"{h}_class_weight"]
        aux = None
        if h == "complaint" and aux_rows:
            aux = (head_matrix(h, X_aux)[0], np.array([bool(r["complaint"]) for r in aux_rows], dtype=int),
                   float(opts["complaint_aux_weight"]))
        clf = _fit_lr(Xh, y[h], C, cw, seed, aux)
        w, stack = unpack(h, clf.coef_[0])
        coef[:, col] = w
        bias[col] = clf.intercept_[0]
        if stack is not None:
            # fold a_neg * (l_neg - mean(l)) + a_pos * (l_pos - mean(l)) into the head
            a = np.array([stack[0], 0.0, stack[1]])
            a_c = a - a.sum() / 3.0
            coef[:, col] += coef[:, :3] @ a_c
            bias[col] += bias[:3] @ a_c
        key = f"{h}_threshold"
        thresholds[key] = opts.get(key)
        if thresholds[key] is None:
            thresholds[key] = _oof_threshold(Xh, y[h], C, cw, seed, aux=aux)

    W_uni, W_bi, W_char = coef[: space.bo], coef[space.bo : space.co], coef[space.co : space.do]
    W_dense = coef[space.do :]
    X_fisher, row_weights = dict(X), {}
    if aux_rows:  # the auxiliary rows count for the stiffness at their training weight
        X_fisher["complaint"] = sp.vstack([X["complaint"], X_aux], format="csr")
        row_weights["complaint"] = np.concatenate([np.ones(len(comp_rows)), np.full(len(aux_rows), float(opts["complaint_aux_weight"]))])
    F = _stiffness(X_fisher, _q(coef), _q(bias), row_weights)
    keep_u = np.abs(W_uni).max(axis=1) >= opts["prune_uni"]
    keep_b = np.abs(W_bi).max(axis=1) >= opts["prune_bi"]
    keep_c = np.abs(W_char).max(axis=1) >= opts["prune_char"]
    info = dict(opts.get("info") or {})
    info.setdefault("options", {k: (list(v) if isinstance(v, tuple) else v) for k, v in opts.items() if k in DEFAULT_OPTIONS})
    info.setdefault("rows", {"sentiment": len(sent_rows), "complaint": len(comp_rows), "suggestion": len(sugg_rows)})
    if aux_rows:
        info["rows"].setdefault("complaint_aux", len(aux_rows))
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
        char_range=space.char_range,
        meta=info,
        stiffness=np.concatenate([F[: space.bo][keep_u], F[space.bo : space.co][keep_b], F[space.co : space.do][keep_c], F[space.do :]]),
    )


def _read_jsonl(path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def airline_complaint_rows(rows) -> list[dict]:
    """Distant complaint labels from airline sentiment rows (Twitter US Airline Sentiment).

    A negative tweet to an airline that the annotators gave a reason for (late flight, lost
    luggage, customer service, ... or "Can't Tell") is taken as a complaint; a positive or
    neutral one (thanks, praise, questions, requests) as no complaint."""
    out = []
    for r in rows:
        if r.get("sentiment") == "negative" and r.get("negative_reason"):
            out.append({"id": r["id"], "text": r["text"], "complaint": True})
        elif r.get("sentiment") in ("positive", "neutral"):
            out.append({"id": r["id"], "text": r["text"], "complaint": False})
    return out


def load_datasets(datasets_dir) -> dict[str, list[dict]]:
    """The shared datasets split the way train_default() and the tests use them."""
    d = Path(datasets_dir)
    comp = _read_jsonl(d / "complaints" / "train.jsonl")
    return {
        "airline_train": _read_jsonl(d / "airline_sentiment" / "train.jsonl"),
        "sentiment_train": _read_jsonl(d / "tweeteval_sentiment" / "train.jsonl"),
        "sentiment_val": _read_jsonl(d / "tweeteval_sentiment" / "val.jsonl"),
        "complaint_train": [r for r in comp if not holdout_fold(r["id"])],
        "complaint_val": [r for r in comp if holdout_fold(r["id"])],
        "suggestion_train": _read_jsonl(d / "semeval2019_task9_suggestions" / "train.jsonl"),
        "suggestion_val": _read_jsonl(d / "semeval2019_task9_suggestions" / "val.jsonl"),
    }


def train_default(datasets_dir) -> TextModel:
    """The recipe that produced the committed artefact (deterministic)."""
    data = load_datasets(datasets_dir)
    return train(
        data["sentiment_train"],
        data["complaint_train"],
        data["suggestion_train"],
        complaint_aux_rows=airline_complaint_rows(data["airline_train"]),
        info={
            "recipe": "train_default",
            "datasets": [
                "tweeteval_sentiment",
                "complaints (80%)",
                "semeval2019_task9_suggestions",
                "airline_sentiment train (complaint head only: distant labels, down-weighted)",
            ],
        },
    )


# --------------------------------------------------------------------------------------
# Fine-tuning (numpy only)
# --------------------------------------------------------------------------------------

FINE_TUNE_OPTIONS = dict(
    l2=1.0,  # pull of every weight towards its base value
    stiffness=0.3,  # extra pull proportional to the base data's Fisher information (EWC-style)
    l2_dense=1000.0,  # pull on the dense features' weights
    l2_bias=1000.0,  # pull on the biases
    new_vocab_min_count=2,  # new word unigrams / bigrams seen this often in the rows get their own weight
    class_weight="balanced",  # or None
    iterations=300,
)


class _CSR:
    """Minimal CSR matrix on numpy arrays (fine-tuning must not need scipy)."""

    def __init__(self, indptr, indices, data, ncol):
        self.indptr = np.asarray(indptr, dtype=np.int64)
        self.indices = np.asarray(indices, dtype=np.int64)
        self.data = np.asarray(data, dtype=np.float64)
        self.ncol = ncol
        self.nrow = len(self.indptr) - 1
        self.row_of = np.repeat(np.arange(self.nrow), np.diff(self.indptr))

    def dot(self, W: np.ndarray) -> np.ndarray:
        """X @ W."""
        return self._gather_sum(W, self.indices, self.row_of, self.nrow)

    def tdot(self, G: np.ndarray) -> np.ndarray:
        """X.T @ G."""
        return self._gather_sum(G, self.row_of, self.indices, self.ncol)

    def _gather_sum(self, M: np.ndarray, take: np.ndarray, into: np.ndarray, n: int) -> np.ndarray:
        """Each stored value times row ``take`` of M, summed into row ``into`` of an (n, M's columns) result."""
        out = np.zeros((n, M.shape[1]))
        if len(self.indices):
            V = self.data[:, None] * M[take]
            for k in range(M.shape[1]):
                out[:, k] = np.bincount(into, weights=V[:, k], minlength=n)
        return out


def _numpy_matrix(space: _Space, corpus: _Analysed) -> _CSR:
    return _CSR(*space.csr_arrays(corpus), space.ncol)


def fine_tune(base: TextModel, rows, **options) -> TextModel:
    """Fold people's corrections into a customer's model.

    rows: dicts with "text" and any of "sentiment" (label), "complaint" (bool),
    "suggestion" (bool).  The base model is left unchanged; the result is a new model whose
    weights are base + delta, where delta minimises the (class-balanced) log-loss of the
    corrections with the base model's logits as offset plus an L2 penalty that pulls delta
    towards zero, i.e. towards the base weights.  Word unigrams and bigrams that are new to
    the model and occur at least ``new_vocab_min_count`` times get their own weights.
    Deterministic; needs only numpy.  Options: see FINE_TUNE_OPTIONS.
    """
    opts = dict(FINE_TUNE_OPTIONS)
    unknown = set(options) - set(opts)
    if unknown:
        raise TypeError(f"unknown fine-tuning options: {sorted(unknown)}")
    opts.update(options)
    rows = [r for r in rows if r.get("text")]
    if not rows:
        return base.copy()
    corpus = _Analysed([r["text"] for r in rows])

    # vocabulary: the base model's plus frequent new words / bigrams from the corrections
    from collections import Counter

    known_u, known_b = set(base.uni), set(base.bi)
    cu, cb = Counter(), Counter()
    for toks in corpus.toks:
        cu.update(t for t in set(toks) if t not in known_u)
        cb.update(b for b in set(_bigrams(toks)) if b not in known_b)
    k = int(opts["new_vocab_min_count"])
    new_u = sorted(w for w, c in cu.items() if c >= k)
    new_b = sorted(w for w, c in cb.items() if c >= k)
    uni = base.uni + new_u
    bi = base.bi + new_b
    space = _Space(uni, bi, base.chars, base.char_range)
    W0 = np.concatenate(
        [
            base.W_uni,
            np.zeros((len(new_u), _N_OUT), np.float32),
            base.W_bi,
            np.zeros((len(new_b), _N_OUT), np.float32),
            base.W_char,
            base.W_dense,
        ]
    ).astype(np.float64)
    X = _numpy_matrix(space, corpus)
    offset = X.dot(W0) + base.bias

    # targets and per-row weights for each head
    n = len(rows)
    Y = np.zeros((n, 3))
    ws = np.zeros(n)
    for i, r in enumerate(rows):
        lab = r.get("sentiment")
        if lab in SENTIMENT_LABELS:
            Y[i, SENTIMENT_LABELS.index(lab)] = 1.0
            ws[i] = 1.0
    yb = np.zeros((n, 2))
    wb = np.zeros((n, 2))
    for j, key in enumerate(("complaint", "suggestion")):
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
        for j in range(2):
            m = wb[:, j] > 0
            y = yb[m, j].astype(int)
            if 0 < y.sum() < len(y):  # both classes present: weigh them as training does
                wb[m, j] = _class_weights(y, "balanced")[y]
    active = [ws.sum() > 0, wb[:, 0].sum() > 0, wb[:, 1].sum() > 0]

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
    colmask = np.array([active[0]] * 3 + [active[1], active[2]], dtype=float)
    # only the feature rows present in the corrections can move: optimise over those
    cols = np.unique(X.indices)
    remap = np.zeros(space.ncol, dtype=np.int64)
    remap[cols] = np.arange(len(cols))
    Xa = _CSR(X.indptr, remap[X.indices], X.data, len(cols))
    pen = pen[cols]

    def grad(delta, dbias):
        Z = offset + Xa.dot(delta) + dbias
        G = np.zeros_like(Z)
        S = Z[:, :3] - Z[:, :3].max(axis=1, keepdims=True)
        P = np.exp(S)
        P /= P.sum(axis=1, keepdims=True)
        G[:, :3] = (P - Y) * ws[:, None]
        G[:, 3:] = (_sigmoid(Z[:, 3:]) - yb) * wb
        gD = Xa.tdot(G) + pen * delta
        gb = G.sum(axis=0) + pen_b * dbias
        return gD * colmask, gb * colmask

    # step size from the curvature bound 0.5 * max row weight * sigma_max([X 1])^2 + penalty
    v = np.ones((len(cols), 1)) / math.sqrt(len(cols) or 1)
    vb1 = np.ones(1)
    sig2 = 1.0
    for _ in range(30):  # power iteration on [X 1]^T [X 1]
        u = Xa.dot(v) + vb1
        v_new = Xa.tdot(u)
        vb_new = u.sum(axis=0)
        sig2 = math.sqrt(float((v_new**2).sum() + (vb_new**2).sum()))
        v, vb1 = v_new / sig2, vb_new / sig2
    wmax = max(ws.max(initial=0.0), wb.max(initial=0.0), 1e-9)
    # diagonal majoriser: data curvature bound + each weight's own penalty
    L_data = 0.5 * wmax * sig2 * 1.05
    step = 1.0 / (L_data + pen)
    step_b = 1.0 / (L_data + pen_b)
    delta = np.zeros((len(cols), _N_OUT))
    dbias = np.zeros(_N_OUT)
    vd, vb = delta.copy(), dbias.copy()
    t_prev = 1.0
    for _ in range(int(opts["iterations"])):
        # FISTA-style accelerated gradient descent (smooth, convex objective)
        gD, gb = grad(vd, vb)
        nd, nb = vd - step * gD, vb - step_b * gb
        t_next = (1 + math.sqrt(1 + 4 * t_prev * t_prev)) / 2
        mom = (t_prev - 1) / t_next
        vd = nd + mom * (nd - delta)
        vb = nb + mom * (nb - dbias)
        delta, dbias, t_prev = nd, nb, t_next

    W = W0.copy()
    W[cols] += delta
    U, B = len(uni), len(bi)
    W_uni, W_bi, W_char, W_dense = W[:U], W[U : U + B], W[U + B : space.do], W[space.do :]
    meta = dict(base.meta)
    meta["fine_tuned"] = list(base.meta.get("fine_tuned", [])) + [
        {"rows": n, "new_unigrams": len(new_u), "new_bigrams": len(new_b), "options": opts}
    ]
    return TextModel(
        uni, W_uni, bi, W_bi, base.chars, W_char, W_dense, base.bias + dbias,
        complaint_threshold=base.complaint_threshold,
        suggestion_threshold=base.suggestion_threshold,
        char_range=base.char_range,
        meta=meta,
        stiffness=stiff,
    )
