"""The text model's file: a numpy ``.npz`` without pickles (format version 1).

Entries: ``meta`` (UTF-8 JSON: format version, labels, columns, dense feature names, thresholds,
character n-gram range, ``info``), ``uni`` / ``bi`` / ``chars`` (newline-joined UTF-8 vocabularies),
``W_uni`` / ``W_bi`` / ``W_char`` (n, 6), ``W_dense`` (18, 6), ``bias`` (6,) and optionally
``stiffness`` (one value per feature row), all float16.  The columns are negative, neutral, positive,
complaint, suggestion, question; files from before the question head have the first five only (and no
``question_threshold``) and the first 16 dense features only, and still load: their question is always 0
and the missing dense features weigh 0.  Weights are held as
float16-representable float32 values in memory (:func:`quantise`), so save/load reproduces scores exactly.
"""
from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from socialcrm.core.engine.learning.textmodel.features import DENSE_NAMES, SENTIMENT_LABELS

FORMAT_VERSION = 1
MODEL_FILE = "textmodel.npz"
DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[1] / "model"  # core/engine/learning/model


def quantise(a) -> np.ndarray:
    """Round to float16 precision (stored as float32) so that save/load is exact."""
    return np.asarray(a, dtype=np.float32).astype(np.float16).astype(np.float32)


def model_path(path, *, creating: bool = False) -> Path:
    """The ``.npz`` a path names: the path itself, or ``textmodel.npz`` inside a folder."""
    path = Path(path)
    if creating:
        return path if path.suffix == ".npz" else path / MODEL_FILE
    return path / MODEL_FILE if path.is_dir() else path


def read_model(path) -> dict[str, Any]:
    """The constructor arguments of :class:`TextModel` stored in ``path`` (a ``.npz`` or its folder)."""
    path = model_path(path)
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(bytes(z["meta"]).decode("utf-8"))
        if meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"unsupported text model format {meta.get('format_version')!r} in {path}")

        def strings(key):
            raw = bytes(z[key]).decode("utf-8")
            return raw.split("\n") if raw else []

        W_dense = z["W_dense"].astype(np.float32)
        stiffness = z["stiffness"].astype(np.float32) if "stiffness" in z.files else None
        missing = len(DENSE_NAMES) - W_dense.shape[0]
        if missing > 0:  # a file from before the last dense features: they get zero weight (and stiffness)
            if list(meta.get("dense", [])) != list(DENSE_NAMES[: W_dense.shape[0]]):
                raise ValueError(f"{path}: its dense features {meta.get('dense')} are not a prefix of {list(DENSE_NAMES)}")
            W_dense = np.vstack([W_dense, np.zeros((missing, W_dense.shape[1]), np.float32)])
            if stiffness is not None:
                stiffness = np.concatenate([stiffness, np.zeros(missing, np.float32)])
        return dict(
            uni=strings("uni"),
            W_uni=z["W_uni"].astype(np.float32),
            bi=strings("bi"),
            W_bi=z["W_bi"].astype(np.float32),
            chars=strings("chars"),
            W_char=z["W_char"].astype(np.float32),
            W_dense=W_dense,
            bias=z["bias"].astype(np.float32),
            complaint_threshold=meta["complaint_threshold"],
            suggestion_threshold=meta["suggestion_threshold"],
            question_threshold=meta.get("question_threshold"),
            char_range=tuple(meta["char_range"]),
            meta=meta.get("info", {}),
            stiffness=stiffness,
        )


def write_model(model, path) -> None:
    """Save a :class:`TextModel` to ``path`` (a ``.npz``, or a folder to hold ``textmodel.npz``), atomically."""
    path = model_path(path, creating=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = list(SENTIMENT_LABELS) + ["complaint", "suggestion"]
    meta = {
        "format_version": FORMAT_VERSION,
        "labels": list(SENTIMENT_LABELS),
        "columns": columns,
        "dense": list(DENSE_NAMES),
        "complaint_threshold": model.complaint_threshold,
        "suggestion_threshold": model.suggestion_threshold,
        "char_range": list(model.char_range),
        "info": model.meta,
    }
    if model.question_head:
        columns.append("question")
        meta["question_threshold"] = model.question_threshold
    n = len(columns)  # a model without a question head is saved as it was loaded: five columns

    def enc(s: str) -> np.ndarray:
        return np.frombuffer(s.encode("utf-8"), dtype=np.uint8)

    buf = io.BytesIO()
    np.savez_compressed(
        buf,
        meta=enc(json.dumps(meta, sort_keys=True)),
        uni=enc("\n".join(model.uni)),
        W_uni=model.W_uni[:, :n].astype(np.float16),
        bi=enc("\n".join(model.bi)),
        W_bi=model.W_bi[:, :n].astype(np.float16),
        chars=enc("\n".join(model.chars)),
        W_char=model.W_char[:, :n].astype(np.float16),
        W_dense=model.W_dense[:, :n].astype(np.float16),
        **({} if model.stiffness is None else {"stiffness": model.stiffness.astype(np.float16)}),
        bias=model.bias[:n].astype(np.float16),
    )
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, path)
