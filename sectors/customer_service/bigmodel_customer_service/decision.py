"""Human hand-off: a confidence threshold chosen on validation to reach a target precision.

A message is answered automatically ("kept", "covered") when the model's top-class probability is
at least ``threshold``; otherwise it is handed to a human. On the validation split the threshold is
the *lowest* confidence (so the most coverage) at which the precision of the kept messages -- the
share of them whose top intent is right -- reaches ``target_precision``. Messages with equal
confidence are always kept or handed off together, so the chosen operating point is one the rule
can actually reproduce.

Numpy only: this module also runs in the ONNX Runtime predictor.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "HANDOFF_ALL",
    "HandoffDecision",
    "handoff",
    "handoff_mask",
    "select_threshold",
    "coverage_report",
]

# A threshold above every probability: with it every message goes to a human. It is a finite
# float (JSON has no infinity) that no float32/float64 probability in [0, 1] reaches.
HANDOFF_ALL = 1.0 + 1e-6
# Precision is a ratio of counts; compare with a tolerance so 19/20 reaches 0.95.
_EPS = 1e-12


def _confidence_and_correct(labels: Any, proba: Any) -> tuple[np.ndarray, np.ndarray]:
    proba = np.asarray(proba, dtype=np.float64)
    labels = np.asarray(labels)
    if proba.ndim != 2 or proba.shape[0] == 0:
        raise ValueError(f"probabilities must be a non-empty (n, classes) array; got shape {proba.shape}")
    if labels.shape != (proba.shape[0],):
        raise ValueError(f"{labels.shape[0] if labels.ndim else 0} labels for {proba.shape[0]} probability rows")
    return proba.max(axis=1), proba.argmax(axis=1) == labels


def select_threshold(confidence: Any, correct: Any, target_precision: float) -> dict[str, Any]:
    """The lowest confidence threshold whose kept messages reach ``target_precision``.

    ``confidence``: top-class probability per message; ``correct``: whether its top class is right.
    Returns ``{threshold, target_precision, target_reached, val_coverage, val_precision, val_kept,
    val_total}``. When no threshold reaches the target (even the most confident group is too often
    wrong) the threshold is :data:`HANDOFF_ALL`, ``target_reached`` is False, coverage is 0 and
    ``val_precision`` is the best precision any threshold achieved.
    """
    conf = np.asarray(confidence, dtype=np.float64).ravel()
    hit = np.asarray(correct, dtype=bool).ravel()
    if conf.size == 0:
        raise ValueError("cannot choose a hand-off threshold on an empty validation split")
    if hit.size != conf.size:
        raise ValueError(f"{conf.size} confidences but {hit.size} correctness flags")
    if not np.all(np.isfinite(conf)):
        raise ValueError("confidences must be finite numbers")
    if not 0.0 < float(target_precision) <= 1.0:
        raise ValueError(f"target_precision must be in (0, 1]; got {target_precision!r}")

    order = np.argsort(-conf, kind="stable")
    conf_sorted, hit_sorted = conf[order], hit[order]
    kept = np.arange(1, conf.size + 1)
    precision = np.cumsum(hit_sorted) / kept
    # a threshold can only cut between distinct confidences: the last index of each tie group
    group_end = np.flatnonzero(np.r_[conf_sorted[1:] != conf_sorted[:-1], True])
    reaches = group_end[precision[group_end] >= float(target_precision) - _EPS]
    base = {"target_precision": float(target_precision), "val_total": int(conf.size)}
    if reaches.size == 0:
        return {
            **base,
            "threshold": HANDOFF_ALL,
            "target_reached": False,
            "val_coverage": 0.0,
            "val_precision": float(precision[group_end].max()),
            "val_kept": 0,
        }
    end = int(reaches.max())  # the most coverage that still reaches the target
    return {
        **base,
        "threshold": float(conf_sorted[end]),
        "target_reached": True,
        "val_coverage": float(kept[end] / conf.size),
        "val_precision": float(precision[end]),
        "val_kept": int(kept[end]),
    }


def handoff_mask(proba: Any, params: dict[str, Any]) -> np.ndarray:
    """True where a message goes to a human under ``params`` (from :func:`select_threshold`)."""
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2:
        raise ValueError(f"probabilities must be an (n, classes) array; got shape {proba.shape}")
    try:
        threshold = float(params["threshold"])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"hand-off parameters need a numeric 'threshold'; got {params!r}") from None
    mask = proba.max(axis=1) < threshold
    if params.get("target_reached") is False:
        mask[:] = True
    return mask


def coverage_report(labels: Any, proba: Any, params: dict[str, Any]) -> dict[str, float]:
    """Coverage, accuracy on covered messages and hand-off rate of ``params`` on labelled data.

    ``covered_accuracy`` is NaN-free: it is reported as 0.0 with ``covered`` 0 when nothing is kept.
    """
    conf, correct = _confidence_and_correct(labels, proba)
    handed = handoff_mask(proba, params)
    kept = ~handed
    n_kept = int(kept.sum())
    return {
        "coverage": float(n_kept / conf.size),
        "covered_accuracy": float(correct[kept].mean()) if n_kept else 0.0,
        "handoff_rate": float(handed.mean()),
        "covered": n_kept,
        "total": int(conf.size),
    }


class HandoffDecision:
    """The sector's decision object (``SectorTask.decision``): fit on validation, apply per row."""

    default_target = 0.95

    def fit(self, val_labels: Any, val_proba: Any, label_map: Any, recipe: Any) -> dict[str, Any]:
        target = float(getattr(recipe, "target_precision", self.default_target))
        conf, correct = _confidence_and_correct(val_labels, val_proba)
        return select_threshold(conf, correct, target)

    def apply(self, proba: Any, params: dict[str, Any], label_map: Any) -> list[dict[str, bool]]:
        return [{"handoff": bool(h)} for h in handoff_mask(proba, params)]


handoff = HandoffDecision()
