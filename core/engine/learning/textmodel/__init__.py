"""A small, fast linear text model for social-media mentions: sentiment, complaint, suggestion and question heads.

One module per job:

* :mod:`.features`  -- tokenising, word and character n-grams, dense cues, the feature space;
* :mod:`.modelfile` -- the ``.npz`` file format (load/save);
* :mod:`.inference` -- :class:`TextModel` (scoring, the token-row cache) and :class:`TextScores`;
* :mod:`.training`  -- :func:`train` (scikit-learn, the ``train`` extra);
* :mod:`.finetune`  -- :func:`fine_tune` (scipy: sparse matrices and L-BFGS);
* :mod:`.recipe`    -- :func:`train_default`: which shared datasets made the committed artefact.

Metrics live in :mod:`socialcrm.core.engine.evaluation`; ``macro_recall`` and ``f1_binary`` are
re-exported here for the callers that always imported them from the text model.
"""
from socialcrm.core.engine.evaluation import f1_binary, macro_recall
from socialcrm.core.engine.learning.textmodel.features import DENSE_NAMES, SENTIMENT_LABELS
from socialcrm.core.engine.learning.textmodel.finetune import FINE_TUNE_OPTIONS, fine_tune
from socialcrm.core.engine.learning.textmodel.inference import TextModel, TextScores
from socialcrm.core.engine.learning.textmodel.modelfile import DEFAULT_MODEL_DIR, MODEL_FILE
from socialcrm.core.engine.learning.textmodel.recipe import (
    DATASET_FOLDERS,
    XLMT_LANGUAGES,
    airline_complaint_rows,
    holdout_fold,
    load_datasets,
    question_rows,
    sentiment_groups,
    train_default,
)
from socialcrm.core.engine.learning.textmodel.threads import one_blas_thread
from socialcrm.core.engine.learning.textmodel.training import DEFAULT_OPTIONS, train

__all__ = [
    "DATASET_FOLDERS",
    "DEFAULT_MODEL_DIR",
    "DEFAULT_OPTIONS",
    "DENSE_NAMES",
    "FINE_TUNE_OPTIONS",
    "MODEL_FILE",
    "SENTIMENT_LABELS",
    "TextModel",
    "TextScores",
    "XLMT_LANGUAGES",
    "airline_complaint_rows",
    "f1_binary",
    "fine_tune",
    "holdout_fold",
    "load_datasets",
    "macro_recall",
    "one_blas_thread",
    "question_rows",
    "sentiment_groups",
    "train",
    "train_default",
]
