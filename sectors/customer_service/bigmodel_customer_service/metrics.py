"""Sector metrics: top-3 accuracy, per-intent F1 (worst intents listed), coverage at the target precision.

Signature of each: ``(y_true, proba, label_map, **context) -> float | dict`` (see MetricSpec).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .decision import coverage_report, select_threshold

__all__ = ["top3_accuracy", "per_intent_f1", "coverage_at_precision", "WORST_LISTED"]

WORST_LISTED = 10


def _arrays(y_true: Any, proba: Any) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=np.int64).ravel()
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] != y.size or y.size == 0:
        raise ValueError(f"expected {y.size} rows of class probabilities, got shape {p.shape}")
    return y, p


def top3_accuracy(y_true: Any, proba: Any, label_map: Any, **context: Any) -> float:
    """Share of messages whose true intent is among the three most probable."""
    y, p = _arrays(y_true, proba)
    k = min(3, p.shape[1])
    top = np.argpartition(-p, k - 1, axis=1)[:, :k]
    return float((top == y[:, None]).any(axis=1).mean())


def per_intent_f1(y_true: Any, proba: Any, label_map: Any, **context: Any) -> dict[str, Any]:
    """F1 of every intent by name, and the ``WORST_LISTED`` worst as ``[[name, f1], ...]``.

    Intents absent from ``y_true`` and never predicted have no F1 and are left out (listed in
    ``absent``), so a subset evaluation does not report them as failures.
    """
    from sklearn.metrics import f1_score

    y, p = _arrays(y_true, proba)
    pred = p.argmax(axis=1)
    names = list(label_map.names)
    present = np.union1d(np.unique(y), np.unique(pred))
    scores = f1_score(y, pred, labels=present, average=None, zero_division=0.0)
    by_name = {names[int(c)]: round(float(s), 6) for c, s in zip(present, scores)}
    worst = sorted(by_name.items(), key=lambda kv: (kv[1], kv[0]))[:WORST_LISTED]
    seen = set(present.tolist())
    return {
        "per_intent": by_name,
        "worst": [[name, f1] for name, f1 in worst],
        "absent": [n for i, n in enumerate(names) if i not in seen],
    }


def _decision_params(context: dict[str, Any]) -> dict[str, Any] | None:
    for key in ("decision", "decision_params"):
        value = context.get(key)
        if isinstance(value, dict) and "threshold" in value:
            return value
    return None


def coverage_at_precision(y_true: Any, proba: Any, label_map: Any, **context: Any) -> dict[str, Any]:
    """Coverage, accuracy on covered messages and hand-off rate at the hand-off threshold.

    Uses the threshold chosen on validation when the evaluation passes it (context ``decision``,
    the contents of decision.json): ``source`` is then ``"decision"``. Otherwise the threshold is
    chosen on these very messages for ``context['target_precision']`` (default 0.95) -- an
    optimistic, in-sample figure marked ``source: "in-sample"``.
    """
    y, p = _arrays(y_true, proba)
    params = _decision_params(context)
    source = "decision"
    if params is None:
        target = float(context.get("target_precision", getattr(context.get("recipe"), "target_precision", 0.95)))
        params = select_threshold(p.max(axis=1), p.argmax(axis=1) == y, target)
        source = "in-sample"
    report = coverage_report(y, p, params)
    return {
        **report,
        "threshold": float(params["threshold"]),
        "target_precision": params.get("target_precision"),
        "target_reached": bool(params.get("target_reached", True)),
        "source": source,
    }
