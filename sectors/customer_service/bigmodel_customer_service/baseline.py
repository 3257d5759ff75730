"""The TF-IDF + logistic-regression baseline the fine-tuned model is compared with (value factor T).

Trained on the run's own training split and scored on its test split, so the comparison is on the
same examples. scikit-learn, deterministic; a few seconds on BANKING77.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np

__all__ = ["tfidf_logreg_baseline", "BASELINE_NAME"]

BASELINE_NAME = "tfidf_word1-2_char2-5+logreg_C10"


def tfidf_logreg_baseline(
    train_texts: Sequence[str],
    train_labels: Any,
    test_texts: Sequence[str],
    test_labels: Any,
    num_labels: int,
) -> dict[str, Any]:
    """Fit TF-IDF (word 1-2-grams + char 2-5-grams, sublinear tf) + logistic regression; score on test.

    Returns ``{"name", "accuracy", "macro_f1", "train_examples", "test_examples", "fit_seconds"}``.
    Macro-F1 averages over every class of ``range(num_labels)`` present in test or predicted.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.pipeline import make_pipeline, make_union

    y_train = np.asarray(train_labels, dtype=np.int64)
    y_test = np.asarray(test_labels, dtype=np.int64)
    if len(train_texts) != y_train.size or len(test_texts) != y_test.size:
        raise ValueError("baseline: texts and labels differ in length")
    if y_train.size == 0 or y_test.size == 0:
        raise ValueError("baseline: empty train or test split")
    if len(np.unique(y_train)) < 2:
        raise ValueError("baseline: the training split has fewer than 2 classes")
    start = time.perf_counter()
    model = make_pipeline(
        make_union(
            TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, lowercase=True),
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, lowercase=True),
        ),
        LogisticRegression(C=10.0, max_iter=2000),
    )
    model.fit(list(train_texts), y_train)
    fit_seconds = time.perf_counter() - start
    pred = model.predict(list(test_texts))
    labels = np.union1d(np.unique(y_test), np.unique(pred))
    labels = labels[(labels >= 0) & (labels < num_labels)]
    return {
        "name": BASELINE_NAME,
        "accuracy": float(accuracy_score(y_test, pred)),
        "macro_f1": float(f1_score(y_test, pred, labels=labels, average="macro", zero_division=0.0)),
        "train_examples": int(y_train.size),
        "test_examples": int(y_test.size),
        "fit_seconds": round(fit_seconds, 3),
    }
