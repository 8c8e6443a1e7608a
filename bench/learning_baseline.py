"""The light baseline of bench/learning.py: TF-IDF + LinearSVC with fixed settings, on the same folds.

What anyone could fit in ten lines with scikit-learn: word 1-2-grams and character 2-5-grams (within word
boundaries), sublinear TF-IDF, a linear SVM with balanced class weights. Nothing is tuned, per dataset or
otherwise: each fold's classifier is fitted on the dataset's other folds only (no validation file, no other
dataset) and predicts the fold's rows.
"""
from __future__ import annotations

from typing import Sequence

SETTINGS = ("TfidfVectorizer(word 1-2-grams, min_df 2, sublinear_tf) + TfidfVectorizer(char_wb 2-5-grams, "
            "min_df 2, sublinear_tf) -> LinearSVC(C=0.5, class_weight='balanced')")


def pipeline():
    """A fresh, unfitted classifier with the fixed settings."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline, make_union
    from sklearn.svm import LinearSVC
    return make_pipeline(
        make_union(TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
                   TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True)),
        LinearSVC(C=0.5, class_weight="balanced"),
    )


def cross_validated(texts: Sequence[str], labels: Sequence, folds: Sequence[int]) -> list:
    """Out-of-fold predictions: row i predicted by the classifier fitted on every row of another fold.

    A fold whose training part holds a single class predicts that class (there is nothing to separate)."""
    if len(set(folds)) < 2:
        raise ValueError("the TF-IDF baseline needs rows in at least two folds")
    predictions: list = [None] * len(texts)
    for fold in sorted(set(folds)):
        train = [i for i, f in enumerate(folds) if f != fold]
        test = [i for i, f in enumerate(folds) if f == fold]
        classes = {labels[i] for i in train}
        if len(classes) < 2:
            (only,) = classes
            for i in test:
                predictions[i] = only
            continue
        model = pipeline().fit([texts[i] for i in train], [labels[i] for i in train])
        for i, label in zip(test, model.predict([texts[i] for i in test])):
            predictions[i] = label.item() if hasattr(label, "item") else label
    return predictions
