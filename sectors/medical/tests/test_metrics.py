"""Screening and grading metrics on constructed scores, checked by hand and against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest

from bigmodel.core import LabelMap
from bigmodel_medical import metrics as M

BREAST = LabelMap(id2label={0: "malignant", 1: "normal_or_benign"}, positive="malignant")


def test_auroc_by_hand_with_ties():
    # positives 0.9, 0.5; negatives 0.5, 0.1: pairs (0.9>0.5), (0.9>0.1), (0.5=0.5 -> 1/2), (0.5>0.1)
    assert M.auroc([1, 1, 0, 0], [0.9, 0.5, 0.5, 0.1]) == pytest.approx(3.5 / 4)
    assert M.auroc([1, 0], [0.2, 0.8]) == 0.0


def test_auroc_matches_sklearn_on_random_scores():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300)
    s = np.round(rng.random(300) + 0.3 * y, 2)  # rounding makes ties
    assert M.auroc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_auroc_needs_both_classes():
    with pytest.raises(ValueError, match="both positive and negative"):
        M.auroc([1, 1, 1], [0.1, 0.2, 0.3])


def test_roc_curve_points():
    fpr, tpr, thr = M.roc_curve([1, 0, 1, 0], [0.9, 0.8, 0.4, 0.1])
    assert np.isinf(thr[0])
    np.testing.assert_allclose(tpr, [0, 0.5, 0.5, 1, 1])
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 0.5, 1])


def test_bootstrap_interval_is_seeded_and_brackets_the_point():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    s = rng.random(200) + 0.5 * y
    a = M.bootstrap_auroc_ci(y, s)
    b = M.bootstrap_auroc_ci(y, s)
    assert a == b  # fixed seed
    assert a["ci_low"] < a["auroc"] < a["ci_high"]
    assert 0.05 < a["ci_high"] - a["ci_low"] < 0.3
    c = M.bootstrap_auroc_ci(y, s, seed=1)
    assert c["ci_low"] != a["ci_low"]


def test_confusion_at_threshold():
    out = M.confusion_at([1, 1, 1, 0, 0, 0, 0], [0.9, 0.6, 0.2, 0.7, 0.3, 0.1, 0.05], 0.5)
    assert (out["tp"], out["fn"], out["fp"], out["tn"]) == (2, 1, 1, 3)
    assert out["sensitivity"] == pytest.approx(2 / 3)
    assert out["specificity"] == pytest.approx(3 / 4)
    assert out["ppv"] == pytest.approx(2 / 3)
    assert out["npv"] == pytest.approx(3 / 4)
    nothing = M.confusion_at([1, 0], [0.1, 0.2], 0.9)
    assert np.isnan(nothing["ppv"]) and nothing["specificity"] == 1.0


def test_sensitivity_at_specificity():
    y = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    s = [0.95, 0.9, 0.6, 0.3, 0.92, 0.5, 0.4, 0.2, 0.2, 0.1, 0.1, 0.1, 0.05, 0.0]
    out = M.sensitivity_at_specificity(y, s, 0.9)  # 10 negatives: at most 1 false positive allowed
    # threshold 0.6 finds 3 of 4 with one false positive (0.92); 0.5 would add a second one
    assert out["sensitivity"] == pytest.approx(0.75) and out["threshold"] == 0.6
    assert out["specificity"] == pytest.approx(0.9)
    assert M.sensitivity_at_specificity(y, s, 0.0)["sensitivity"] == 1.0


def test_quadratic_weighted_kappa_matches_sklearn_and_hand_cases():
    from sklearn.metrics import cohen_kappa_score

    rng = np.random.default_rng(1)
    a = rng.integers(0, 5, 400)
    b = np.clip(a + rng.integers(-1, 2, 400), 0, 4)
    assert M.quadratic_weighted_kappa(a, b, 5) == pytest.approx(cohen_kappa_score(a, b, weights="quadratic"))
    assert M.quadratic_weighted_kappa([0, 1, 2, 3, 4], [0, 1, 2, 3, 4], 5) == pytest.approx(1.0)
    # far-off errors cost more than near ones
    near = M.quadratic_weighted_kappa([0, 1, 2, 3, 4] * 4, [1, 2, 3, 4, 3] * 4, 5)
    far = M.quadratic_weighted_kappa([0, 1, 2, 3, 4] * 4, [4, 4, 0, 0, 0] * 4, 5)
    assert near > 0.5 > far


def test_macro_auroc_ovr_matches_sklearn():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(2)
    y = rng.integers(0, 5, 300)
    logits = rng.normal(size=(300, 5)) + 1.5 * np.eye(5)[y]
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert M.macro_auroc_ovr(y, p) == pytest.approx(roc_auc_score(y, p, multi_class="ovr", average="macro"))


def test_registered_entry_points_use_the_positive_class():
    y = np.array([0, 0, 1, 1, 1])  # 0 = malignant is the positive class
    p = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8], [0.65, 0.35]])
    ci = M.metric_auroc_ci(y, p, BREAST)
    assert ci["auroc"] == pytest.approx(5 / 6)  # positives 0.9, 0.6 vs negatives 0.3, 0.2, 0.65
    op = M.metric_operating_point(y, p, BREAST, decision={"threshold": 0.6})
    assert op["sensitivity"] == 1.0 and op["specificity"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="threshold chosen on validation"):
        M.metric_operating_point(y, p, BREAST)
    with pytest.raises(ValueError, match="positive class"):
        M.metric_auroc_ci(y, p, LabelMap.from_names(["a", "b"]))
    assert M.metric_qwk(np.array([0, 1, 2]), np.eye(3), LabelMap.from_names(["0", "1", "2"])) == pytest.approx(1.0)


def test_roc_png_is_written(tmp_path):
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 80)
    p1 = np.clip(rng.random(80) * 0.6 + 0.4 * (y == 0), 0, 1)
    p = np.stack([p1, 1 - p1], axis=1)
    out = M.write_roc_png(y, p, BREAST, tmp_path / "charts" / "roc.png", threshold=0.5)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [f.name for f in out.parent.iterdir()] == ["roc.png"]  # no temp file left behind
