"""Cost threshold search against brute force, calibration, and the decision object's round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bigmodel_finance.decision import (
    DECISION,
    apply_calibration,
    best_threshold,
    brier,
    fit_calibration,
    policy_costs,
)
from bigmodel_finance.plugin import LABEL_MAP, CreditRiskRecipe


def brute_force(y, p, cost_fn, cost_fp):
    """Every threshold worth trying (each score, and above all of them), evaluated directly."""
    candidates = np.concatenate([np.unique(p), [np.inf]])
    return min(policy_costs(y, p, t, cost_fn, cost_fp) for t in candidates)


@pytest.mark.parametrize("seed", range(12))
def test_threshold_search_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 300))
    y = rng.random(n) < rng.uniform(0.05, 0.6)
    # scores with ties (rounded) and signal
    p = np.clip(np.round(0.3 * y + rng.normal(0.35, 0.2, n), int(rng.integers(1, 4))), 0, 1)
    cost_fn, cost_fp = float(rng.uniform(0.5, 10)), float(rng.uniform(0.5, 3))
    threshold, cost = best_threshold(y, p, cost_fn, cost_fp)
    assert cost == pytest.approx(brute_force(y, p, cost_fn, cost_fp), abs=1e-12)
    # the returned threshold really achieves the returned cost
    assert policy_costs(y, p, threshold, cost_fn, cost_fp) == pytest.approx(cost, abs=1e-12)


def test_threshold_on_constructed_data_is_the_obvious_cut():
    # bad applicants score 0.6..0.9, good 0.1..0.4: any cut in (0.4, 0.6) costs nothing
    y = np.array([0, 0, 0, 0, 1, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.4, 0.6, 0.8, 0.9])
    threshold, cost = best_threshold(y, p, 5, 1)
    assert cost == 0 and threshold == pytest.approx(0.5)


def test_trivial_policies_win_when_the_score_is_useless():
    y = np.array([1, 0, 1, 0])
    p = np.full(4, 0.5)
    # accepting a bad costs 5, rejecting a good costs 1: reject everybody (cost 0.5 per applicant)
    threshold, cost = best_threshold(y, p, 5, 1)
    assert cost == pytest.approx(0.5) and threshold <= 0.5
    # and the other way round: accept everybody
    threshold, cost = best_threshold(y, p, 1, 5)
    assert cost == pytest.approx(0.5) and threshold > 0.5


def test_bad_threshold_inputs_are_refused():
    with pytest.raises(ValueError, match="costs must be positive"):
        best_threshold([0, 1], [0.1, 0.9], 0, 1)
    with pytest.raises(ValueError, match="equal-length"):
        best_threshold([0, 1, 1], [0.1, 0.9], 5, 1)


def _miscalibrated(seed=0, n=4000):
    rng = np.random.default_rng(seed)
    true_p = rng.uniform(0.02, 0.98, n)
    y = (rng.random(n) < true_p).astype(float)
    logit = np.log(true_p / (1 - true_p))
    overconfident = 1 / (1 + np.exp(-3.0 * logit))  # a model three times too sure of itself
    return y, overconfident


@pytest.mark.parametrize("method", ["temperature", "isotonic"])
def test_calibration_improves_brier_on_overconfident_scores(method):
    y, p = _miscalibrated()
    params = fit_calibration(y, p, method)
    json.dumps(params)  # stored in decision.json and ONNX metadata
    calibrated = apply_calibration(p, params)
    assert brier(y, calibrated) < brier(y, p) - 0.01
    if method == "temperature":
        assert params["temperature"] == pytest.approx(3.0, rel=0.15)
    # numpy-only application reproduces scikit-learn's isotonic regression exactly
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(p, y)
        probe = np.concatenate([p[:200], [0.0, 1.0]])
        np.testing.assert_allclose(apply_calibration(probe, params), iso.predict(probe), atol=1e-12)


def test_decision_fit_and_apply_round_trip():
    y, p = _miscalibrated(seed=1, n=600)
    proba = np.stack([1 - p, p], axis=1)
    recipe = CreditRiskRecipe(calibration="temperature", cost_fn=5, cost_fp=1)
    params = DECISION.fit(y.astype(np.int64), proba, LABEL_MAP, recipe)
    params = json.loads(json.dumps(params))
    assert params["validation"]["brier_after"] < params["validation"]["brier_before"]
    assert params["validation"]["expected_cost"] <= min(params["validation"]["accept_all_cost"],
                                                         params["validation"]["reject_all_cost"])
    rows = DECISION.apply(proba[:50], params, LABEL_MAP)
    assert len(rows) == 50
    for row, raw in zip(rows, p[:50]):
        assert row["decision"] in {"accept", "reject"}
        q = row["p_default"]
        assert (row["decision"] == "reject") == (q >= params["threshold"])
        expected = (1 - q) * 1 if row["decision"] == "reject" else q * 5
        assert row["expected_cost"] == pytest.approx(expected, abs=1e-5)
    # calibration is monotone: a riskier applicant never gets a lower P(default)
    order = np.argsort(p[:50])
    assert np.all(np.diff([rows[i]["p_default"] for i in order]) >= -1e-9)


def test_decision_needs_a_positive_class():
    from bigmodel.core import LabelMap

    with pytest.raises(ValueError, match="positive"):
        DECISION.fit(np.array([0, 1]), np.array([[0.5, 0.5], [0.2, 0.8]]), LabelMap.from_names(["a", "b"]),
                     CreditRiskRecipe())
