"""The folds of bench/learning.py's cross-validation, and the cache of the models trained for them.

A row's fold is ``int(sha256("cv|<dataset>|<id>"), 16) % K`` (the contract of ``recipe.train_default``'s
``exclude``), so every dataset is split the same way by every system in the benchmark and in every run.
``--quick`` keeps a fixed tenth of each dataset (``sha256("quick|<dataset>|<id>")``), for training and
scoring alike: a smoke test of the harness, not a figure.

Fold models take minutes each, so they are saved under a cache directory outside the repository, keyed by
the recipe's hash: the bytes of the text-model package (what ``train_default`` runs), the dataset files, the
versions of the libraries that train, K and the quick flag. Change any of them and the folds train afresh;
change only the classifier or the benchmark and they are reused.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

log = logging.getLogger("bench.learning")

QUICK_SHARE = 10  # --quick keeps one row in this many
LIBRARIES = ("numpy", "scipy", "scikit-learn", "vaderSentiment")


def fold_of(dataset: str, row_id: str, folds: int) -> int:
    """The cross-validation fold of a dataset's row."""
    return int(hashlib.sha256(f"cv|{dataset}|{row_id}".encode("utf-8")).hexdigest(), 16) % folds


def in_quick_sample(dataset: str, row_id: str) -> bool:
    """True for the fixed tenth of a dataset that ``--quick`` keeps."""
    return int(hashlib.sha256(f"quick|{dataset}|{row_id}".encode("utf-8")).hexdigest(), 16) % QUICK_SHARE == 0


def excluder(fold: int, folds: int, quick: bool, touched: set[str]) -> Callable[[str, dict], bool]:
    """``exclude(dataset_folder, row)`` for ``train_default``: drops the fold's rows (and, quick, the rows
    outside the quick sample); records in ``touched`` which datasets the recipe trains on."""
    def exclude(dataset: str, row: dict) -> bool:
        touched.add(dataset)
        row_id = str(row["id"])
        return fold_of(dataset, row_id, folds) == fold or (quick and not in_quick_sample(dataset, row_id))
    return exclude


def _package_dir(module) -> Path:
    return Path(module.__file__).resolve().parent


def recipe_hash(datasets_dir: Path, folds: int, quick: bool, extra_sources: tuple[Path, ...] = ()) -> str:
    """The cache key of fold models: what trains them (code, data, libraries) and how they are split."""
    from socialcrm.core.engine import evaluation
    from socialcrm.core.engine.learning import textmodel
    digest = hashlib.sha256(f"folds={folds}|quick={quick}".encode())
    sources = sorted(_package_dir(textmodel).rglob("*.py")) + [Path(evaluation.__file__)] + list(extra_sources)
    for path in sources:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    for path in sorted(Path(datasets_dir).rglob("*.jsonl")):
        digest.update(str(path.relative_to(datasets_dir)).encode() + b"\0" + path.read_bytes())
    for library in LIBRARIES:
        try:
            digest.update(f"{library}={importlib.metadata.version(library)}".encode())
        except importlib.metadata.PackageNotFoundError:
            digest.update(f"{library}=absent".encode())
    return digest.hexdigest()[:16]


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/socialcrm/bench-learning`` (``~/.cache`` without it): outside the repository."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "socialcrm" / "bench-learning"


@dataclass
class FoldModels:
    """Trains, or loads from the cache, the recipe's model for each fold."""

    datasets_dir: Path
    folds: int
    quick: bool
    cache_dir: Path
    trainer: Callable | None = None  # (datasets_dir, exclude=...) -> TextModel; default recipe.train_default
    trained: int = 0
    cached: int = 0
    train_seconds: float = 0.0
    trained_on: set[str] = field(default_factory=set)  # dataset folders the recipe read training rows from

    def __post_init__(self):
        if self.trainer is None:
            from socialcrm.core.engine.learning.textmodel import train_default
            self.trainer = train_default
        self.key = recipe_hash(self.datasets_dir, self.folds, self.quick)

    def exclude(self, fold: int) -> Callable[[str, dict], bool]:
        """The ``exclude`` that leaves fold ``fold`` out (for other trainers, e.g. the embeddings extra)."""
        return excluder(fold, self.folds, self.quick, set())

    def path(self, fold: int) -> Path:
        """Where fold ``fold``'s model is kept."""
        return self.cache_dir / self.key / f"fold-{fold}-of-{self.folds}"

    def model(self, fold: int):
        """The recipe trained without fold ``fold`` (from the cache when it is there)."""
        from socialcrm.core.engine.learning.textmodel import TextModel
        target = self.path(fold)
        if (target / "textmodel.npz").exists() and (target / "trained_on.json").exists():
            self.cached += 1
            self.trained_on.update(json.loads((target / "trained_on.json").read_text(encoding="utf-8")))
            log.info("fold %d/%d: cached model %s", fold + 1, self.folds, target)
            return TextModel.load(target)
        touched: set[str] = set()
        log.info("fold %d/%d: training the recipe without this fold's rows%s", fold + 1, self.folds,
                 " (quick sample)" if self.quick else "")
        started = time.perf_counter()
        model = self.trainer(self.datasets_dir, exclude=excluder(fold, self.folds, self.quick, touched))
        self.train_seconds += time.perf_counter() - started
        self.trained += 1
        self.trained_on.update(touched)
        self._save(target, model, touched)
        return model

    @staticmethod
    def _save(target: Path, model, touched: set[str]) -> None:
        # written beside the target and renamed into place, so an interrupted run leaves no half a model
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(dir=target.parent, prefix=target.name + "."))
        try:
            model.save(partial)
            (partial / "trained_on.json").write_text(json.dumps(sorted(touched)), encoding="utf-8")
            if target.exists():
                shutil.rmtree(target)
            partial.rename(target)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
