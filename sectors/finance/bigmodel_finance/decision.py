"""Cost-sensitive credit decisions: calibration and the expected-cost threshold (numpy only).

A bad applicant accepted costs ``cost_fn`` (default 5), a good applicant rejected costs
``cost_fp`` (default 1): German Credit's published cost matrix. On the validation split
:data:`DECISION` ``.fit`` first calibrates P(bad) (temperature scaling or isotonic regression),
then picks the threshold ``t`` minimising the empirical cost per applicant when applicants with
calibrated P(bad) >= t are rejected. ``apply`` repeats the calibration from the stored parameters
(numpy only: it runs inside the ONNX predictor) and returns the decision and its expected cost.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = [
    "DECISION",
    "CreditDecision",
    "positive_scores",
    "policy_costs",
    "best_threshold",
    "fit_calibration",
    "apply_calibration",
    "brier",
]

_EPS = 1e-12


def positive_scores(proba: Any, positive_id: int = 1) -> np.ndarray:
    """P(positive) as a 1-D float64 array from an ``(n, 2)`` probability matrix or an ``(n,)`` vector."""
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim == 2:
        if p.shape[1] != 2:
            raise ValueError(f"credit decisions need 2 classes; probabilities have {p.shape[1]} columns")
        p = p[:, positive_id]
    if p.ndim != 1:
        raise ValueError(f"probabilities must be (n,) or (n, 2), got shape {p.shape}")
    if p.size and (not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1):
        raise ValueError("probabilities must be finite and within [0, 1]")
    return p


def brier(y: np.ndarray, p: np.ndarray) -> float:
    """Mean squared error between the 0/1 outcome and P(positive)."""
    y = np.asarray(y, dtype=np.float64)
    return float(np.mean((np.asarray(p, dtype=np.float64) - y) ** 2))


def policy_costs(y: np.ndarray, p: np.ndarray, threshold: float, cost_fn: float, cost_fp: float) -> float:
    """Cost per applicant when rejecting ``p >= threshold``: cost_fn per accepted bad, cost_fp per rejected good."""
    y = np.asarray(y).astype(bool)
    reject = np.asarray(p) >= threshold
    return float((cost_fn * np.sum(y & ~reject) + cost_fp * np.sum(~y & reject)) / max(len(y), 1))


def best_threshold(y: Any, p: Any, cost_fn: float, cost_fp: float) -> tuple[float, float]:
    """``(threshold, cost per applicant)`` minimising the empirical cost of rejecting ``p >= threshold``.

    Candidates are every cut between distinct scores (the midpoint) plus reject-all (0) and
    accept-all (just above the largest score, never above 1 + eps). Ties in cost go to the cut
    closest to the Bayes threshold ``cost_fp / (cost_fp + cost_fn)``, which is optimal for
    calibrated probabilities.
    """
    y = np.asarray(y).astype(bool)
    p = np.asarray(p, dtype=np.float64)
    if y.shape != p.shape or y.ndim != 1 or y.size == 0:
        raise ValueError(f"labels and scores must be equal-length non-empty vectors, got {y.shape} and {p.shape}")
    if cost_fn <= 0 or cost_fp <= 0:
        raise ValueError(f"costs must be positive, got cost_fn={cost_fn}, cost_fp={cost_fp}")
    values = np.unique(p)  # ascending
    # cut k rejects every score >= values[k]; k = len(values) rejects nobody
    cuts = np.concatenate([[0.0], (values[1:] + values[:-1]) / 2, [values[-1] + max(1e-9, 1e-9 * abs(values[-1]))]])
    bad_at = np.bincount(np.searchsorted(values, p[y]), minlength=len(values))
    good_at = np.bincount(np.searchsorted(values, p[~y]), minlength=len(values))
    accepted_bad = np.concatenate([[0], np.cumsum(bad_at)])          # scores below cut k
    rejected_good = np.concatenate([np.cumsum(good_at[::-1])[::-1], [0]])  # scores at or above cut k
    cost = (cost_fn * accepted_bad + cost_fp * rejected_good) / len(y)
    bayes = cost_fp / (cost_fp + cost_fn)
    best = np.flatnonzero(np.isclose(cost, cost.min(), rtol=0, atol=1e-12))
    k = best[np.argmin(np.abs(cuts[best] - bayes))]
    return float(cuts[k]), float(cost[k])


# -- calibration ---------------------------------------------------------------------------


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.where(z >= 0, 1 / (1 + np.exp(-np.abs(z))), np.exp(-np.abs(z)) / (1 + np.exp(-np.abs(z))))


def _nll(y: np.ndarray, z: np.ndarray) -> float:
    # binary cross-entropy on logits, numerically stable
    return float(np.mean(np.logaddexp(0.0, z) - y * z))


def fit_calibration(y: Any, p: Any, method: str) -> dict[str, Any]:
    """Calibration parameters fitted on validation labels ``y`` and scores ``p`` (P(positive)).

    ``temperature``: P = sigmoid(logit(p) / T) with T minimising the log loss (convex in 1/T,
    golden-section search). ``isotonic``: scikit-learn's IsotonicRegression; its breakpoints are
    stored so :func:`apply_calibration` reproduces it with ``np.interp`` (clipped at the ends).
    ``none``: identity.
    """
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    if method == "none":
        return {"method": "none"}
    if method == "temperature":
        z = _logit(p)
        lo, hi = math.log(1e-3), math.log(1e3)  # search log(1/T)
        golden = (math.sqrt(5) - 1) / 2
        a, b = hi - golden * (hi - lo), lo + golden * (hi - lo)
        fa, fb = _nll(y, z * math.exp(a)), _nll(y, z * math.exp(b))
        for _ in range(100):
            if fa < fb:
                hi, b, fb = b, a, fa
                a = hi - golden * (hi - lo)
                fa = _nll(y, z * math.exp(a))
            else:
                lo, a, fa = a, b, fb
                b = lo + golden * (hi - lo)
                fb = _nll(y, z * math.exp(b))
        return {"method": "temperature", "temperature": float(1 / math.exp((lo + hi) / 2))}
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip").fit(p, y)
        return {
            "method": "isotonic",
            "x": [float(v) for v in iso.X_thresholds_],
            "y": [float(v) for v in iso.y_thresholds_],
        }
    raise ValueError(f"calibration {method!r} is not one of 'temperature', 'isotonic', 'none'")


def apply_calibration(p: Any, params: dict[str, Any]) -> np.ndarray:
    """Calibrated P(positive) from raw scores and :func:`fit_calibration`'s parameters (numpy only)."""
    p = np.asarray(p, dtype=np.float64)
    method = params.get("method")
    if method == "none":
        return p
    if method == "temperature":
        return _sigmoid(_logit(p) / float(params["temperature"]))
    if method == "isotonic":
        x, y = np.asarray(params["x"], dtype=np.float64), np.asarray(params["y"], dtype=np.float64)
        if x.size == 1:
            return np.full_like(p, y[0])
        return np.interp(p, x, y)
    raise ValueError(f"calibration parameters: unknown method {method!r}")


# -- the decision object the engine calls ---------------------------------------------------


class CreditDecision:
    """``fit`` on validation (calibration, then the cost-minimising threshold); ``apply`` per applicant."""

    def fit(self, val_labels: Any, val_proba: Any, label_map: Any, recipe: Any) -> dict[str, Any]:
        positive = _positive_id(label_map)
        y = (np.asarray(val_labels) == positive).astype(np.float64)
        raw = positive_scores(val_proba, positive)
        cost_fn = float(getattr(recipe, "cost_fn", 5.0))
        cost_fp = float(getattr(recipe, "cost_fp", 1.0))
        method = str(getattr(recipe, "calibration", "temperature"))
        calibration = fit_calibration(y, raw, method)
        calibrated = apply_calibration(raw, calibration)
        threshold, cost = best_threshold(y, calibrated, cost_fn, cost_fp)
        n = len(y)
        return {
            "positive": label_map.id2label[positive],
            "cost_fn": cost_fn,
            "cost_fp": cost_fp,
            "calibration": calibration,
            "threshold": threshold,
            "bayes_threshold": cost_fp / (cost_fp + cost_fn),
            "validation": {
                "n": n,
                "brier_before": brier(y, raw),
                "brier_after": brier(y, calibrated),
                "expected_cost": cost,
                "accept_all_cost": float(cost_fn * y.sum() / n),
                "reject_all_cost": float(cost_fp * (n - y.sum()) / n),
            },
        }

    def apply(self, proba: Any, params: dict[str, Any], label_map: Any) -> list[dict[str, Any]]:
        p = apply_calibration(positive_scores(proba, _positive_id(label_map, params.get("positive"))), params["calibration"])
        reject = p >= float(params["threshold"])
        cost = np.where(reject, (1 - p) * float(params["cost_fp"]), p * float(params["cost_fn"]))
        return [
            {"decision": "reject" if r else "accept", "p_default": round(float(q), 6), "expected_cost": round(float(c), 6)}
            for r, q, c in zip(reject, p, cost)
        ]


def _positive_id(label_map: Any, name: str | None = None) -> int:
    name = name or getattr(label_map, "positive", None)
    if name is None:
        raise ValueError("the label map names no positive class; credit decisions need positive='bad'")
    return label_map.label2id[name]


DECISION = CreditDecision()
