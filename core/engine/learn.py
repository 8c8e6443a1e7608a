"""The learn stage as one piece: the built-in classifier, then plugins' ``learn_records``.

The pipeline, ``socialcrm classify`` and ``socialcrm evaluate`` all call ``Learner.learn``, so what
is measured and what is tried on the command line is exactly what runs in production. Routing is
the next stage, ``routing.route``.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from socialcrm.core.engine.config import Config
from socialcrm.core.sdk.errors import ConfigError
from socialcrm.core.engine.learning.classifier import Classifier
from socialcrm.core.sdk.model import Mention, Record
from socialcrm.core.engine.plugins import PluginManager

if TYPE_CHECKING:  # pragma: no cover
    from socialcrm.core.engine.learning.textmodel import TextModel

log = logging.getLogger(__name__)


def load_model(setting: str | None, base_dir: Path | str = ".", embeddings: bool = False) -> "TextModel | None":
    """The text model a ``[learning] model`` setting names: ``default`` (the bundled model, also when
    unset), ``none`` (content library and lexicon only), or a path to a model a customer trained.

    ``embeddings`` (``[learning] embeddings = true``) stacks the embeddings extra's committed heads on it."""
    if setting and setting.lower() == "none":
        if embeddings:
            raise ConfigError("[learning] embeddings = true stacks on the text model, and [learning] model = \"none\" "
                              "switches it off: set model = \"default\" (or a path), or embeddings = false")
        return None
    from socialcrm.core.engine.learning.textmodel import TextModel
    if not setting or setting.lower() == "default":
        model = TextModel.default()
    else:
        path = Path(base_dir) / setting
        try:
            model = TextModel.load(path)
        except FileNotFoundError:
            raise ConfigError(f"[learning] model: no model at {path} (train one with `socialcrm train`, "
                              f"or write model = \"default\")") from None
    return with_embeddings(model) if embeddings else model


def with_embeddings(base: "TextModel"):
    """``base`` with the embeddings extra's committed heads stacked on it; a ConfigError naming the pip line
    when the extra is not installed."""
    from socialcrm.core.engine.learning import embeddings

    try:
        return embeddings.load_default(base)
    except embeddings.EmbeddingsUnavailable as e:
        raise ConfigError(f"[learning] embeddings = true: {e} (or set embeddings = false)") from None


class Learner:
    """Classify a batch of mentions into records and let plugins add to them (routing is not its job)."""

    def __init__(self, config: Config, plugins: PluginManager, model: "TextModel | None | str" = "config"):
        self.config = config
        self.plugins = plugins
        if model == "config":
            model = load_model(config.learning.model, config.base_dir, config.learning.embeddings)
        self.classifier = Classifier(config.brand, config.learning.terms, config.learning.default_terms,
                                     config.learning.high_influence, config.learning.languages, model=model,
                                     high_reach=config.learning.high_reach)

    def learn(self, mentions: Sequence[Mention], repeats: Sequence[int] | None = None,
              followups: Sequence[int] | None = None) -> list[Record]:
        """One record per mention, in order, not yet routed (``repeats``, ``followups``: see
        ``Classifier.learn``; the pipeline counts follow-ups from the conversations the store keeps)."""
        records = self.classifier.learn(mentions, repeats, followups)
        self.plugins.learn_records(records, mentions, self.config.brand)
        return records
