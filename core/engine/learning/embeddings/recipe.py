"""The recipe of the committed embedding heads: the text model's rows, stacked on a base text model."""
from __future__ import annotations

from pathlib import Path

from socialcrm.core.engine.learning.textmodel import TextModel, load_datasets
from socialcrm.core.engine.learning.textmodel.recipe import Exclude, read_jsonl
from socialcrm.core.engine.learning.embeddings.encoder import Encoder
from socialcrm.core.engine.learning.embeddings.model import EmbeddingTextModel
from socialcrm.core.engine.learning.embeddings.training import train

#: Roles the text model's recipe may not load yet -> (shared dataset folder, the label field that must be set).
#: load_datasets' own rows win wherever it has the role.
EXTRA_ROLES = {"multilingual_train": ("xlmt_sentiment", "sentiment"), "question_train": ("tweet_acts", "question")}


def load_rows(datasets_dir, exclude: Exclude | None = None) -> dict[str, list[dict]]:
    """:func:`load_datasets`' rows, plus the multilingual and question training rows where it has none."""
    data = load_datasets(datasets_dir, exclude)
    for key, (folder, field) in EXTRA_ROLES.items():
        path = Path(datasets_dir) / folder / "train.jsonl"
        if key in data or not path.exists():
            continue
        rows = [r for r in read_jsonl(path) if r.get(field) is not None]
        data[key] = [r for r in rows if not exclude(folder, r)] if exclude else rows
    return data


def train_default(datasets_dir, base: TextModel, exclude: Exclude | None = None,
                  encoder: Encoder | None = None) -> EmbeddingTextModel:
    """The recipe of the committed heads (deterministic for a fixed base and encoder).

    ``exclude(dataset_folder, row)`` leaves rows out, for cross-validation of the whole recipe."""
    return train(load_rows(datasets_dir, exclude), base, encoder)


def main(argv=None) -> None:
    """``python -m socialcrm.core.engine.learning.embeddings.recipe DATASETS [--cache DIR]``: rebuild the
    committed heads on the bundled text model (run it again whenever the bundled text model changes)."""
    import argparse
    import logging

    from socialcrm.core.engine.learning.embeddings.model import DEFAULT_HEADS_PATH

    parser = argparse.ArgumentParser(description=main.__doc__.splitlines()[0])
    parser.add_argument("datasets", type=Path, help="the shared datasets folder (../shared/datasets)")
    parser.add_argument("--cache", type=Path, help="folder keeping the texts' embeddings across runs")
    parser.add_argument("--out", type=Path, default=DEFAULT_HEADS_PATH)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    model = train_default(args.datasets, TextModel.default(), encoder=Encoder(cache_dir=args.cache))
    model.save(args.out)
    logging.info("saved %s: thresholds complaint %.2f suggestion %.2f question %.2f; rows %s", args.out,
                 model.complaint_threshold, model.suggestion_threshold, model.question_threshold, model.meta["rows"])


if __name__ == "__main__":
    main()
