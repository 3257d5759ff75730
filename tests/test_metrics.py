"""Generic metrics against scikit-learn, and the charts they feed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bigmodel.core import LabelMap
from bigmodel.core import metrics as M


def _random(n: int, k: int, seed: int):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 2.0 * np.eye(k)[y] * rng.random((n, 1))
    return y, M.softmax(logits)


@pytest.mark.parametrize("k", [2, 5])
def test_accuracy_and_macro_f1_match_sklearn(k):
    from sklearn.metrics import accuracy_score, f1_score

    y, p = _random(300, k, seed=k)
    assert M.accuracy(y, p) == pytest.approx(accuracy_score(y, p.argmax(1)))
    assert M.macro_f1(y, p) == pytest.approx(f1_score(y, p.argmax(1), average="macro"))


def test_macro_f1_ignores_classes_absent_from_labels_and_predictions():
    from sklearn.metrics import f1_score

    y = np.array([0, 0, 1, 1])
    p = np.array([[0.9, 0.1, 0], [0.4, 0.6, 0], [0.2, 0.8, 0], [0.3, 0.7, 0]])
    assert M.macro_f1(y, p) == pytest.approx(f1_score(y, p.argmax(1), average="macro"))


def test_auroc_matches_sklearn_with_ties_and_respects_positive_class():
    from sklearn.metrics import roc_auc_score

    y, p = _random(400, 2, seed=3)
    p = np.round(p, 1)  # many ties
    p = p / p.sum(1, keepdims=True)
    assert M.auroc(y, p) == pytest.approx(roc_auc_score(y, p[:, 1]))
    first_positive = LabelMap.from_names(["bad", "good"], positive="bad")
    assert M.auroc(y, p, first_positive) == pytest.approx(roc_auc_score(y == 0, p[:, 0]))
    assert math.isnan(M.auroc(np.zeros(4, int), np.full((4, 2), 0.5)))
    with pytest.raises(ValueError, match="binary"):
        M.auroc(*_random(10, 3, seed=0))


def test_ece_by_hand():
    # two bins hit: conf 0.9 (2 right of 2) and conf 0.6 (1 right of 2)
    y = np.array([0, 0, 1, 0])
    p = np.array([[0.9, 0.1], [0.9, 0.1], [0.4, 0.6], [0.4, 0.6]])
    assert M.ece(y, p) == pytest.approx(0.5 * abs(1 - 0.9) + 0.5 * abs(0.5 - 0.6))
    perfect = np.eye(3)[[0, 1, 2]]
    assert M.ece(np.array([0, 1, 2]), perfect) == pytest.approx(0.0)


def test_shape_errors_are_clear():
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        M.accuracy(np.array([0, 1]), np.array([0.5, 0.5]))
    with pytest.raises(ValueError, match="label ids"):
        M.accuracy(np.array([0, 3]), np.full((2, 2), 0.5))


def test_compute_metrics_generic_and_registered():
    lm2 = LabelMap.from_names(["no", "yes"])
    y, p = _random(50, 2, seed=1)
    out = M.compute_metrics(y, p, lm2, kind="text", names=["accuracy", "auroc"])
    assert set(out) == {"n", "accuracy", "macro_f1", "ece", "auroc"}
    y5, p5 = _random(50, 5, seed=1)
    out5 = M.compute_metrics(y5, p5, LabelMap.from_names(list("abcde")), kind="image", names=["auroc"])
    assert "auroc" not in out5 and out5["n"] == 50
    with pytest.raises(LookupError, match="nope"):
        M.compute_metrics(y, p, lm2, kind="text", names=["nope"])


def test_json_safe_turns_nan_into_null():
    assert M.json_safe({"a": float("nan"), "b": np.float32(1.5), "c": [np.int64(2)]}) == {"a": None, "b": 1.5, "c": [2]}


def test_charts_write_pngs(tmp_path):
    from bigmodel.core import charts

    y, p = _random(60, 3, seed=2)
    files = [
        charts.confusion_matrix_png(tmp_path / "cm.png", M.confusion_matrix(y, p.argmax(1), 3), ["a", "b", "c"]),
        charts.reliability_png(tmp_path / "rel.png", y, p),
        charts.training_curve_png(tmp_path / "curve.png", {"train": [{"step": 1, "loss": 1.0}, {"step": 2, "loss": 0.5}],
                                                          "eval": [{"step": 2, "loss": 0.7, "macro_f1": 0.4}]},
                                  metric="macro_f1"),
    ]
    for f in files:
        assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cm.png", "curve.png", "rel.png"]  # no temp files left
