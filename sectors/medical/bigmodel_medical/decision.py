"""Operating points chosen on validation, applied per prediction (numpy only: runs beside ONNX Runtime).

``screening`` (binary, e.g. BreastMNIST): the score is the probability of the label map's positive
class ("malignant"). ``fit`` picks the *highest* threshold whose validation sensitivity reaches
``recipe.target_sensitivity`` (default 0.90), i.e. the most specific threshold that still finds the
target share of positives. ``apply`` gives, per row::

    {"positive_score": P(positive), "decision": <positive name if score >= threshold else the other class>,
     "refer": low <= score <= high}

(the core's own ``label``/``score`` fields stay the argmax class and its probability).

``refer`` flags an *uncertain* score for a human reader: ``recipe.refer_band = (low, high)`` is a band of
positive-class probability (default 0.3 to 0.7), independent of the threshold. ``decision`` always
comes from the threshold, so a referred case still carries the model's call.

``grading`` (ordinal, e.g. RetinaMNIST grades 0..4): the score is P(grade >= recipe.referable_grade)
(default 2: "referable" retinopathy), thresholded the same way for the target sensitivity; rows get
``expected_grade`` (probability-weighted mean grade id), ``referable_score`` and ``refer``
(score >= threshold: send to an ophthalmologist); the core's ``label`` is the argmax grade.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["choose_threshold", "Screening", "Grading", "screening", "grading"]


def _recipe_value(recipe: Any, name: str, default: Any) -> Any:
    if recipe is None:
        return default
    if isinstance(recipe, dict):
        return recipe.get(name, default)
    return getattr(recipe, name, default)


def choose_threshold(y01: Any, scores: Any, target_sensitivity: float) -> float:
    """The highest threshold t with sensitivity(score >= t) >= target on these labels."""
    y = np.asarray(y01).astype(bool).reshape(-1)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if y.shape != s.shape:
        raise ValueError(f"{y.size} labels but {s.size} scores")
    if not 0 < target_sensitivity <= 1:
        raise ValueError(f"target_sensitivity must be in (0, 1], got {target_sensitivity}")
    pos = np.sort(s[y])[::-1]
    if pos.size == 0:
        raise ValueError("cannot choose a screening threshold: the validation split has no positive example")
    if int((~y).sum()) == 0:
        raise ValueError("cannot choose a screening threshold: the validation split has no negative example")
    k = math.ceil(target_sensitivity * pos.size - 1e-9)  # positives that must score >= t
    return float(pos[max(k, 1) - 1])


def _rates(y01: np.ndarray, scores: np.ndarray, threshold: float) -> tuple[float, float]:
    called = scores >= threshold
    sens = float(np.mean(called[y01])) if y01.any() else float("nan")
    spec = float(np.mean(~called[~y01])) if (~y01).any() else float("nan")
    return sens, spec


def _check_proba(proba: Any, n_classes: int) -> np.ndarray:
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != n_classes:
        raise ValueError(f"expected probabilities of shape (n, {n_classes}), got {p.shape}")
    return p


def _band(recipe: Any) -> list[float]:
    low, high = (float(v) for v in _recipe_value(recipe, "refer_band", (0.3, 0.7)))
    if not 0 <= low <= high <= 1:
        raise ValueError(f"refer_band must be two probabilities low <= high in [0, 1], got {[low, high]}")
    return [low, high]


class Screening:
    """Binary screening for the positive class: threshold for a target sensitivity, refer band."""

    kind = "screening"

    def fit(self, val_labels: Any, val_proba: Any, label_map: Any, recipe: Any) -> dict[str, Any]:
        pos = label_map.positive_id
        if pos is None:
            raise ValueError("screening needs a label map with a positive class (LabelMap.positive)")
        p = _check_proba(val_proba, len(label_map))
        y = np.asarray(val_labels).astype(np.int64).reshape(-1) == pos
        target = float(_recipe_value(recipe, "target_sensitivity", 0.90))
        threshold = choose_threshold(y, p[:, pos], target)
        sens, spec = _rates(y, p[:, pos], threshold)
        low, high = _band(recipe)
        negatives = [n for n in label_map.names if n != label_map.positive]
        return {
            "kind": self.kind,
            "positive": label_map.positive,
            "negative": negatives[0] if len(negatives) == 1 else "not " + label_map.positive,
            "threshold": threshold,
            "target_sensitivity": target,
            "validation_sensitivity": sens,
            "validation_specificity": spec,
            "validation_positives": int(y.sum()),
            "validation_negatives": int((~y).sum()),
            "refer_band": [low, high],
            "threshold_in_refer_band": bool(low <= threshold <= high),
        }

    def apply(self, proba: Any, params: dict[str, Any], label_map: Any) -> list[dict[str, Any]]:
        pos = label_map.label2id[params["positive"]]
        p = _check_proba(proba, len(label_map))
        threshold = float(params["threshold"])
        low, high = params["refer_band"]
        rows = []
        for score in p[:, pos]:
            rows.append({
                "positive_score": float(score),
                "decision": params["positive"] if score >= threshold else params["negative"],
                "refer": bool(low <= score <= high),
            })
        return rows


class Grading:
    """Ordinal grading: argmax grade, expected grade, and a referable flag thresholded on validation."""

    kind = "grading"

    def fit(self, val_labels: Any, val_proba: Any, label_map: Any, recipe: Any) -> dict[str, Any]:
        n = len(label_map)
        p = _check_proba(val_proba, n)
        referable = int(_recipe_value(recipe, "referable_grade", 2))
        if not 1 <= referable < n:
            raise ValueError(f"referable_grade must be in 1..{n - 1} for {n} grades, got {referable}")
        y = np.asarray(val_labels).astype(np.int64).reshape(-1) >= referable
        scores = p[:, referable:].sum(axis=1)
        target = float(_recipe_value(recipe, "target_sensitivity", 0.90))
        threshold = choose_threshold(y, scores, target)
        sens, spec = _rates(y, scores, threshold)
        return {
            "kind": self.kind,
            "referable_grade": referable,
            "referable_from": label_map.names[referable],
            "threshold": threshold,
            "target_sensitivity": target,
            "validation_sensitivity": sens,
            "validation_specificity": spec,
            "validation_positives": int(y.sum()),
            "validation_negatives": int((~y).sum()),
        }

    def apply(self, proba: Any, params: dict[str, Any], label_map: Any) -> list[dict[str, Any]]:
        p = _check_proba(proba, len(label_map))
        referable = int(params["referable_grade"])
        threshold = float(params["threshold"])
        grades = np.arange(p.shape[1], dtype=np.float64)
        rows = []
        for row in p:
            score = float(row[referable:].sum())
            rows.append({
                "expected_grade": float(row @ grades / max(row.sum(), 1e-12)),
                "referable_score": score,
                "refer": bool(score >= threshold),
            })
        return rows


screening = Screening()
grading = Grading()
