"""The hand-off threshold on constructed score distributions, and the sector metrics built on it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bigmodel.core import LabelMap
from bigmodel_customer_service.decision import (
    HANDOFF_ALL,
    coverage_report,
    handoff,
    handoff_mask,
    select_threshold,
)
from bigmodel_customer_service.metrics import coverage_at_precision, per_intent_f1, top3_accuracy
from bigmodel_customer_service.plugin import IntentRecipe


def test_lowest_threshold_reaching_target_is_chosen():
    # confidences 0.9..0.1; the top 5 are right, then wrong, right, wrong, wrong
    conf = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1])
    correct = np.array([1, 1, 1, 1, 1, 0, 1, 0, 0], dtype=bool)
    # keeping 7 gives 6/7 = 0.857; keeping 5 gives 1.0; keeping 6 gives 5/6 = 0.833
    params = select_threshold(conf, correct, 0.85)
    assert params["threshold"] == pytest.approx(0.3)
    assert params["target_reached"] is True
    assert params["val_kept"] == 7
    assert params["val_coverage"] == pytest.approx(7 / 9)
    assert params["val_precision"] == pytest.approx(6 / 7)
    strict = select_threshold(conf, correct, 0.95)
    assert strict["threshold"] == pytest.approx(0.5)
    assert strict["val_kept"] == 5 and strict["val_precision"] == 1.0


def test_non_monotone_precision_takes_the_widest_coverage_that_reaches_target():
    # the top message is wrong (precision 0 at first), later recovers above the target
    conf = np.array([0.99, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05])
    correct = np.array([0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0], dtype=bool)
    params = select_threshold(conf, correct, 0.9)
    assert params["val_kept"] == 10 and params["threshold"] == pytest.approx(0.1)
    assert params["val_precision"] == pytest.approx(0.9)  # 9/10 reaches exactly 0.9


def test_ties_are_kept_or_handed_off_together():
    # three messages share confidence 0.6: two right, one wrong
    conf = np.array([0.9, 0.8, 0.6, 0.6, 0.6, 0.3])
    correct = np.array([1, 1, 1, 0, 1, 1], dtype=bool)
    # a per-row cut could keep 0.9, 0.8 and two of the 0.6 rows at precision 1.0 -- impossible with a threshold
    params = select_threshold(conf, correct, 0.95)
    assert params["threshold"] == pytest.approx(0.8)
    assert params["val_kept"] == 2
    # what the rule does on the same data matches what fit reported
    proba = np.stack([conf, 1 - conf], axis=1)
    mask = handoff_mask(proba, params)
    assert (~mask).sum() == params["val_kept"]
    # with the tie group included precision is 4/5 = 0.8
    assert select_threshold(conf, correct, 0.8)["val_kept"] == 6  # 5/6 = 0.833 for all


def test_perfect_classifier_keeps_everything():
    rng = np.random.default_rng(0)
    conf = rng.uniform(0.3, 1.0, size=200)
    params = select_threshold(conf, np.ones(200, dtype=bool), 0.99)
    assert params["threshold"] == pytest.approx(conf.min())
    assert params["val_coverage"] == 1.0 and params["val_precision"] == 1.0 and params["target_reached"]


def test_unreachable_target_hands_everything_off_with_a_flag():
    conf = np.array([0.95, 0.9, 0.8, 0.7])
    correct = np.array([0, 1, 0, 1], dtype=bool)  # best precision: 1/2
    params = select_threshold(conf, correct, 0.95)
    assert params["target_reached"] is False
    assert params["threshold"] == HANDOFF_ALL > 1.0
    assert params["val_coverage"] == 0.0 and params["val_kept"] == 0
    assert params["val_precision"] == pytest.approx(0.5)  # the best any threshold achieved
    proba = np.array([[1.0, 0.0], [0.5, 0.5]], dtype=np.float32)  # even probability 1.0 is handed off
    assert handoff_mask(proba, params).all()
    json.dumps(params)  # finite: survives JSON (decision.json, ONNX metadata)


def test_flag_alone_forces_handoff():
    params = {"threshold": 0.0, "target_reached": False}
    assert handoff_mask(np.array([[0.9, 0.1]]), params).all()


@pytest.mark.parametrize("bad, match", [
    (dict(confidence=[], correct=[], target_precision=0.9), "empty"),
    (dict(confidence=[0.5, 0.6], correct=[True], target_precision=0.9), "2 confidences but 1"),
    (dict(confidence=[0.5], correct=[True], target_precision=0.0), "target_precision"),
    (dict(confidence=[0.5], correct=[True], target_precision=1.5), "target_precision"),
    (dict(confidence=[np.nan], correct=[True], target_precision=0.9), "finite"),
])
def test_bad_inputs_are_rejected(bad, match):
    with pytest.raises(ValueError, match=match):
        select_threshold(**bad)


def test_decision_object_fit_and_apply_round_trip():
    rng = np.random.default_rng(1)
    n, k = 400, 5
    labels = rng.integers(0, k, size=n)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), labels] += rng.uniform(0, 4, size=n)  # informative, imperfect scores
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    label_map = LabelMap.from_names([f"i{j}" for j in range(k)])
    recipe = IntentRecipe(target_precision=0.9)
    params = handoff.fit(labels, proba, label_map, recipe)
    assert params["target_precision"] == 0.9 and params["target_reached"]
    assert set(params) >= {"threshold", "target_precision", "val_coverage", "val_precision"}
    assert json.loads(json.dumps(params)) == params
    rows = handoff.apply(proba, params, label_map)
    assert len(rows) == n and all(set(r) == {"handoff"} and isinstance(r["handoff"], bool) for r in rows)
    kept = np.array([not r["handoff"] for r in rows])
    assert kept.mean() == pytest.approx(params["val_coverage"])
    assert (proba.argmax(1) == labels)[kept].mean() >= 0.9
    report = coverage_report(labels, proba, params)
    assert report["coverage"] + report["handoff_rate"] == pytest.approx(1.0)
    assert report["covered_accuracy"] == pytest.approx(params["val_precision"])
    # the metric uses the validation-chosen threshold when the evaluation passes it
    metric = coverage_at_precision(labels, proba, label_map, decision=params)
    assert metric["source"] == "decision" and metric["threshold"] == params["threshold"]
    assert metric["coverage"] == pytest.approx(report["coverage"])


def test_coverage_metric_without_decision_is_marked_in_sample():
    proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.4, 0.6], [0.55, 0.45]])
    y = np.array([0, 0, 1, 1])  # last one wrong
    label_map = LabelMap.from_names(["a", "b"])
    metric = coverage_at_precision(y, proba, label_map, target_precision=0.95)
    assert metric["source"] == "in-sample"
    assert metric["coverage"] == 0.75 and metric["covered_accuracy"] == 1.0 and metric["handoff_rate"] == 0.25


def test_top3_accuracy_and_per_intent_f1():
    names = [f"intent_{j:02d}" for j in range(12)]
    label_map = LabelMap.from_names(names)
    y = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0])
    proba = np.full((12, 12), 0.01)
    for row, label in enumerate(y):
        proba[row, label] = 0.5  # right
    proba[1, 1], proba[1, 5], proba[1, 6], proba[1, 7] = 0.1, 0.3, 0.3, 0.3  # true class 4th: top-3 miss
    proba[2, 2], proba[2, 3] = 0.3, 0.4  # true class 2nd: top-3 hit, top-1 miss
    assert top3_accuracy(y, proba, label_map) == pytest.approx(11 / 12)
    result = per_intent_f1(y, proba, label_map)
    assert result["per_intent"]["intent_00"] == 1.0
    assert result["per_intent"]["intent_01"] == 0.0 and result["per_intent"]["intent_02"] == 0.0
    assert len(result["worst"]) == 10
    assert [n for n, _ in result["worst"][:2]] == ["intent_01", "intent_02"]
    assert result["absent"] == ["intent_11"]  # never true, never predicted: no F1
    json.dumps(result)
