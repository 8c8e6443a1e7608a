"""The text model's file: a numpy ``.npz`` without pickles (format version 1).

Entries: ``meta`` (UTF-8 JSON: format version, labels, columns, dense feature names, thresholds,
character n-gram range, ``info``), ``uni`` / ``bi`` / ``chars`` (newline-joined UTF-8 vocabularies),
``W_uni`` / ``W_bi`` / ``W_char`` (n, 5), ``W_dense`` (16, 5), ``bias`` (5,) and optionally
``stiffness`` (one value per feature row), all float16.  Weights are held as float16-representable
float32 values in memory (:func:`quantise`), so save/load reproduces scores exactly.
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

        return dict(
            uni=strings("uni"),
            W_uni=z["W_uni"].astype(np.float32),
            bi=strings("bi"),
            W_bi=z["W_bi"].astype(np.float32),
            chars=strings("chars"),
            W_char=z["W_char"].astype(np.float32),
            W_dense=z["W_dense"].astype(np.float32),
            bias=z["bias"].astype(np.float32),
            complaint_threshold=meta["complaint_threshold"],
            suggestion_threshold=meta["suggestion_threshold"],
            char_range=tuple(meta["char_range"]),
            meta=meta.get("info", {}),
            stiffness=z["stiffness"].astype(np.float32) if "stiffness" in z.files else None,
        )


def write_model(model, path) -> None:
    """Save a :class:`TextModel` to ``path`` (a ``.npz``, or a folder to hold ``textmodel.npz``), atomically."""
    path = model_path(path, creating=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "format_version": FORMAT_VERSION,
        "labels": list(SENTIMENT_LABELS),
        "columns": list(SENTIMENT_LABELS) + ["complaint", "suggestion"],
        "dense": list(DENSE_NAMES),
        "complaint_threshold": model.complaint_threshold,
        "suggestion_threshold": model.suggestion_threshold,
        "char_range": list(model.char_range),
        "info": model.meta,
    }

    def enc(s: str) -> np.ndarray:
        return np.frombuffer(s.encode("utf-8"), dtype=np.uint8)

    buf = io.BytesIO()
    np.savez_compressed(
        buf,
        meta=enc(json.dumps(meta, sort_keys=True)),
        uni=enc("\n".join(model.uni)),
        W_uni=model.W_uni.astype(np.float16),
        bi=enc("\n".join(model.bi)),
        W_bi=model.W_bi.astype(np.float16),
        chars=enc("\n".join(model.chars)),
        W_char=model.W_char.astype(np.float16),
        W_dense=model.W_dense.astype(np.float16),
        **({} if model.stiffness is None else {"stiffness": model.stiffness.astype(np.float16)}),
        bias=model.bias.astype(np.float16),
    )
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, path)
