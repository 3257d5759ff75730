"""Screening and grading operating points on constructed validation scores."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bigmodel.core import LabelMap
from bigmodel_medical.decision import choose_threshold, grading, screening
from bigmodel_medical.recipes import GradingRecipe, ScreeningRecipe

BREAST = LabelMap(id2label={0: "malignant", 1: "normal_or_benign"}, positive="malignant")
RETINA = LabelMap.from_names(["no_dr", "mild", "moderate", "severe", "proliferative"])


def _binary(pos_scores, neg_scores):
    """labels (0 = malignant) and probabilities with P(malignant) = the given scores."""
    s = np.array(list(pos_scores) + list(neg_scores), dtype=float)
    y = np.array([0] * len(pos_scores) + [1] * len(neg_scores))
    return y, np.stack([s, 1 - s], axis=1)


def test_threshold_is_the_highest_reaching_the_target():
    pos = [0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.45, 0.4, 0.3, 0.1]  # 10 positives
    y = [1] * 10 + [0]
    assert choose_threshold(y, pos + [0.2], 0.9) == 0.3  # 9 of 10 at >= 0.3
    assert choose_threshold(y, pos + [0.2], 0.5) == 0.6
    assert choose_threshold(y, pos + [0.2], 1.0) == 0.1
    assert choose_threshold(y, pos + [0.0], 0.85) == 0.3  # ceil(8.5) = 9 positives
    with pytest.raises(ValueError, match="no positive"):
        choose_threshold([0, 0], [0.1, 0.2], 0.9)


def test_screening_fit_reaches_target_sensitivity_on_validation():
    rng = np.random.default_rng(0)
    y, p = _binary(rng.uniform(0.3, 1.0, 40), rng.uniform(0.0, 0.6, 120))
    params = screening.fit(y, p, BREAST, ScreeningRecipe())
    assert params["positive"] == "malignant" and params["negative"] == "normal_or_benign"
    assert params["validation_sensitivity"] >= 0.9
    called = p[:, 0] >= params["threshold"]
    assert called[y == 0].mean() == pytest.approx(params["validation_sensitivity"])
    # the highest such threshold: nudging it up loses sensitivity below the target
    assert (p[y == 0, 0] >= np.nextafter(params["threshold"], 2)).mean() < 0.9
    json.dumps(params)  # decision.json and ONNX metadata need plain JSON


def test_screening_apply_gives_decision_and_refer_band():
    params = screening.fit(*_binary([0.9, 0.8, 0.75, 0.2], [0.1, 0.05, 0.5, 0.4]), BREAST,
                           ScreeningRecipe(target_sensitivity=0.75, refer_band=(0.3, 0.7)))
    assert params["threshold"] == 0.75
    rows = screening.apply(np.array([[0.8, 0.2], [0.72, 0.28], [0.5, 0.5], [0.1, 0.9], [0.75, 0.25]]), params, BREAST)
    assert [r["decision"] for r in rows] == ["malignant", "normal_or_benign", "normal_or_benign",
                                             "normal_or_benign", "malignant"]
    assert [r["refer"] for r in rows] == [False, False, True, False, False]
    assert rows[0]["positive_score"] == pytest.approx(0.8)
    assert params["threshold_in_refer_band"] is False


def test_screening_needs_a_positive_class_and_both_classes():
    y, p = _binary([0.9], [0.1])
    with pytest.raises(ValueError, match="positive class"):
        screening.fit(y, p, LabelMap.from_names(["a", "b"]), ScreeningRecipe())
    with pytest.raises(ValueError, match="no negative"):
        screening.fit(np.array([0, 0]), np.array([[0.9, 0.1], [0.8, 0.2]]), BREAST, ScreeningRecipe())
    with pytest.raises(ValueError, match="shape"):
        screening.fit(y, np.ones((2, 3)) / 3, BREAST, ScreeningRecipe())


def test_grading_refers_from_the_referable_grade():
    y = np.array([0, 1, 2, 3, 4, 0, 1, 2])
    p = np.full((8, 5), 0.02)
    p[np.arange(8), y] = 0.92  # confident and right
    params = grading.fit(y, p, RETINA, GradingRecipe())
    assert params["referable_from"] == "moderate"
    rows = grading.apply(p, params, RETINA)
    assert [r["refer"] for r in rows] == [g >= 2 for g in y]
    assert rows[4]["expected_grade"] == pytest.approx(0.92 * 4 + 0.02 * (0 + 1 + 2 + 3))
    with pytest.raises(ValueError, match="referable_grade"):
        grading.fit(y, p, RETINA, GradingRecipe(referable_grade=5))


def test_recipe_rejects_bad_band_and_mean():
    with pytest.raises(ValueError, match="refer_band"):
        ScreeningRecipe(refer_band=(0.8, 0.2))
    with pytest.raises(ValueError, match="mean needs 3"):
        ScreeningRecipe(mean=[0.5])
