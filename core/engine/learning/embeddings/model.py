"""The combined model: the text model's logits and a sentence embedding, stacked by logistic-regression heads.

:class:`EmbeddingTextModel` quacks like :class:`~socialcrm.core.engine.learning.textmodel.TextModel` for
the classifier: ``score()`` gives :class:`TextScores` (sentiment, complaint, suggestion, question), and it
has the four thresholds' attributes, ``languages`` and ``meta``. Each head is one linear map over
``[embedding, base features]``, where the base features are the base model's centred sentiment
log-probabilities and its binary heads' logits (:func:`base_features`).

The heads' file is a numpy ``.npz`` without pickles: ``meta`` (UTF-8 JSON: format version, encoder, base
feature names, heads, thresholds, languages, the base it was stacked on, ``info``) and per head ``W_<head>``
(features, outputs) and ``b_<head>`` (outputs), float32.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from socialcrm.core.engine.learning.textmodel import SENTIMENT_LABELS, TextModel, TextScores
from socialcrm.core.engine.learning.textmodel.inference import sigmoid
from socialcrm.core.engine.learning.embeddings.encoder import ENCODERS, Encoder

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
HEADS_FILE = "embedding_heads.npz"
DEFAULT_HEADS_PATH = Path(__file__).resolve().parents[1] / "model" / HEADS_FILE  # core/engine/learning/model
BINARY_HEADS = ("complaint", "suggestion", "question")
HEADS = ("sentiment",) + BINARY_HEADS
_EPS = 1e-6


def has_question_head(model) -> bool:
    """Whether a text model's question head is trained (a threshold above 1 means "never a question")."""
    return float(getattr(model, "question_threshold", 1.01)) <= 1.0


def base_feature_names(base) -> list[str]:
    """The names of :func:`base_features`' columns for this base model."""
    names = [f"base_{label}" for label in SENTIMENT_LABELS] + ["base_complaint", "base_suggestion"]
    return names + (["base_question"] if has_question_head(base) else [])


def base_features(scores: Sequence[TextScores], with_question: bool) -> np.ndarray:
    """The base model's outputs as stacking features: centred sentiment log-probabilities, binary logits."""
    P = np.array([[s.sentiment[label] for label in SENTIMENT_LABELS] for s in scores], dtype=np.float64)
    L = np.log(np.clip(P, _EPS, 1.0))
    L -= L.mean(axis=1, keepdims=True)
    cols = [L]
    for name in ("complaint", "suggestion") + (("question",) if with_question else ()):
        p = np.clip(np.array([getattr(s, name) for s in scores], dtype=np.float64), _EPS, 1 - _EPS)
        cols.append(np.log(p / (1 - p))[:, None])
    return np.hstack(cols).reshape(len(scores), -1).astype(np.float32)


def fingerprint(base) -> str:
    """A short hash of a text model's weights and thresholds: which base a heads file was stacked on."""
    h = hashlib.sha256()
    for name in ("W_dense", "bias"):
        h.update(np.ascontiguousarray(getattr(base, name, np.zeros(1)), dtype=np.float32).tobytes())
    for name in ("complaint_threshold", "suggestion_threshold", "question_threshold"):
        h.update(repr(round(float(getattr(base, name, 0.0)), 6)).encode())
    h.update(str(len(getattr(base, "uni", ()))).encode())
    return h.hexdigest()[:16]


class EmbeddingTextModel:
    """A base :class:`TextModel` whose outputs, with a sentence embedding, feed logistic-regression heads.

    ``weights[head] = (W, b)``: W has one row per feature (the embedding's, then the base features') and
    one column per output (3 for sentiment, 1 for each binary head). A binary head that is absent keeps
    the base model's score and threshold."""

    def __init__(self, base: TextModel, encoder: Encoder, weights: dict[str, tuple[np.ndarray, np.ndarray]], *,
                 thresholds: dict[str, float], languages: Sequence[str] = (), meta: dict | None = None,
                 base_question: bool | None = None):
        self.base = base
        self.encoder = encoder
        # base_question: whether the heads read the base's question logit (default: when the base has one)
        self.with_question = has_question_head(base) if base_question is None else bool(base_question)
        if self.with_question and not has_question_head(base):
            raise ValueError("these heads read the base model's question head, and this base model has none")
        self.n_base = 5 + int(self.with_question)
        n_features = encoder.dim + self.n_base
        self.weights = {}
        for head, (W, b) in weights.items():
            W = np.asarray(W, dtype=np.float32).reshape(n_features, -1)
            self.weights[head] = (W, np.asarray(b, dtype=np.float32).reshape(W.shape[1]))
        if "sentiment" not in self.weights:
            raise ValueError("an embedding model needs a sentiment head")
        self.complaint_threshold = float(thresholds.get("complaint", base.complaint_threshold))
        self.suggestion_threshold = float(thresholds.get("suggestion", base.suggestion_threshold))
        self.question_threshold = float(thresholds.get("question", getattr(base, "question_threshold", 1.01)))
        self._languages = tuple(dict.fromkeys([*base.languages, *languages]))
        self.meta = dict(meta or {})

    @property
    def languages(self) -> tuple[str, ...]:
        """The languages the base or the heads were trained on."""
        return self._languages

    def features(self, texts: Sequence[str], base_scores: Sequence[TextScores]) -> np.ndarray:
        """The heads' input rows: the embedding of each text, then the base features."""
        E = self.encoder.encode(texts)
        return np.hstack([E, base_features(base_scores, self.with_question)])

    def score(self, texts: list[str], lexicon: list[dict] | None = None, *, evidence: bool = True) -> list[TextScores]:
        """Score a batch of texts (lexicon[i]: VADER's polarity_scores of texts[i], computed if None)."""
        texts = list(texts)
        if not texts:
            return []
        base_scores = self.base.score(texts, lexicon, evidence=evidence)
        X = self.features(texts, base_scores)
        W, b = self.weights["sentiment"]
        Z = X @ W + b
        S = Z - Z.max(axis=1, keepdims=True)
        P = np.exp(S)
        P /= P.sum(axis=1, keepdims=True)
        binary = {}
        for head in BINARY_HEADS:
            if head in self.weights:
                Wh, bh = self.weights[head]
                binary[head] = sigmoid((X @ Wh + bh)[:, 0].astype(np.float64)).tolist()
        emb_part = None
        if evidence:  # what the embedding adds to the winning label's centred logit
            win = Z.argmax(axis=1)
            Ze = X[:, : self.encoder.dim] @ W[: self.encoder.dim]
            Ze -= Ze.mean(axis=1, keepdims=True)
            emb_part = Ze[np.arange(len(texts)), win].tolist()
        out = []
        for k, s in enumerate(base_scores):
            ev = list(s.evidence)
            if emb_part is not None and emb_part[k] > 0:
                ev = sorted(ev + [("sentence embedding", round(emb_part[k], 3))], key=lambda e: -e[1])[:5]
            out.append(TextScores(
                {label: float(P[k, j]) for j, label in enumerate(SENTIMENT_LABELS)},
                binary["complaint"][k] if "complaint" in binary else s.complaint,
                binary["suggestion"][k] if "suggestion" in binary else s.suggestion,
                ev,
                binary["question"][k] if "question" in binary else s.question,
            ))
        return out

    def predict_sentiment(self, texts: list[str], lexicon: list[dict] | None = None) -> list[str]:
        """The most probable sentiment label of each text."""
        return [max(s.sentiment, key=s.sentiment.get) for s in self.score(texts, lexicon, evidence=False)]

    # ---------------------------------------------------------------- file
    def save(self, path) -> None:
        """Write the heads (not the base, not the encoder) to ``path`` (a ``.npz``)."""
        meta = {
            "format_version": FORMAT_VERSION,
            "encoder": self.encoder.name,
            "dim": self.encoder.dim,
            "base_features": base_feature_names(self.base)[: self.n_base],
            "base_fingerprint": fingerprint(self.base),
            "heads": {h: int(W.shape[1]) for h, (W, _) in self.weights.items()},
            "thresholds": {"complaint": self.complaint_threshold, "suggestion": self.suggestion_threshold,
                           "question": self.question_threshold},
            "languages": [lang for lang in self._languages if lang not in self.base.languages],
            "info": self.meta,
        }
        arrays = {"meta": np.frombuffer(json.dumps(meta, sort_keys=True).encode("utf-8"), dtype=np.uint8)}
        for head, (W, b) in self.weights.items():
            arrays[f"W_{head}"], arrays[f"b_{head}"] = W, b
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(buf.getvalue())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path, base: TextModel, encoder: Encoder | None = None) -> "EmbeddingTextModel":
        """The heads saved at ``path``, stacked on ``base`` (which must give the base features they expect)."""
        path = Path(path)
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta"]).decode("utf-8"))
            if meta.get("format_version") != FORMAT_VERSION:
                raise ValueError(f"{path}: unsupported embedding heads format {meta.get('format_version')!r}")
            weights = {h: (z[f"W_{h}"], z[f"b_{h}"]) for h in meta["heads"]}
        if encoder is None and meta["encoder"] not in ENCODERS:
            raise ValueError(f"{path}: unknown sentence encoder {meta['encoder']!r}; known: {', '.join(ENCODERS)}")
        expected = base_feature_names(base)
        if meta["base_features"] != expected[: len(meta["base_features"])]:
            raise ValueError(f"{path}: the heads were stacked on a base model with features {meta['base_features']}, "
                             f"this base gives {expected}; retrain them (embeddings.train_default)")
        if meta.get("base_fingerprint") != fingerprint(base):
            log.warning("%s was stacked on another text model (fingerprint %s, this one %s): its scores still "
                        "combine, but retrain the heads for the accuracy the model card reports",
                        path, meta.get("base_fingerprint"), fingerprint(base))
        encoder = encoder or Encoder.shared(meta["encoder"])
        if encoder.name != meta["encoder"] or encoder.dim != meta["dim"]:
            raise ValueError(f"{path}: the heads read {meta['encoder']} embeddings ({meta['dim']} floats), "
                             f"not {encoder.name}'s ({encoder.dim})")
        return cls(base, encoder, weights, thresholds=meta["thresholds"], languages=meta.get("languages", ()),
                   meta=meta.get("info", {}), base_question="base_question" in meta["base_features"])
