"""Generic metrics (numpy only) and the registry-driven computation of a task's metrics.

Every metric has the registered signature ``(y_true, proba, label_map, **context) -> float | dict``:
``y_true`` int ids (N,), ``proba`` class probabilities (N, C). A value that is undefined
(e.g. AUROC when the split holds one class) is ``nan`` and written to JSON as ``null``.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np

from .specs import LabelMap, resolve_callable

__all__ = [
    "GENERIC_METRICS",
    "accuracy",
    "macro_f1",
    "auroc",
    "ece",
    "confusion_matrix",
    "softmax",
    "compute_metrics",
    "json_safe",
]

GENERIC_METRICS = ("accuracy", "macro_f1", "auroc", "ece")


def _check(y_true: Any, proba: Any) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true).astype(np.int64).reshape(-1)
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] != y.shape[0]:
        raise ValueError(f"proba must be (N, C) with N = len(y_true) = {y.shape[0]}, got shape {p.shape}")
    if y.size and (y.min() < 0 or y.max() >= p.shape[1]):
        raise ValueError(f"label ids must lie in [0, {p.shape[1]}), got [{y.min()}, {y.max()}]")
    return y, p


def softmax(logits: Any) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def accuracy(y_true: Any, proba: Any, label_map: LabelMap | None = None, **context: Any) -> float:
    y, p = _check(y_true, proba)
    return float(np.mean(p.argmax(axis=1) == y)) if y.size else math.nan


def confusion_matrix(y_true: Any, y_pred: Any, num_classes: int) -> np.ndarray:
    """Counts ``[true, predicted]``."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return cm


def macro_f1(y_true: Any, proba: Any, label_map: LabelMap | None = None, **context: Any) -> float:
    """Unweighted mean F1 over the classes present in the labels or the predictions (as scikit-learn)."""
    y, p = _check(y_true, proba)
    if not y.size:
        return math.nan
    pred = p.argmax(axis=1)
    cm = confusion_matrix(y, pred, p.shape[1])
    tp = np.diag(cm).astype(np.float64)
    support, predicted = cm.sum(axis=1), cm.sum(axis=0)
    present = (support + predicted) > 0
    denom = support + predicted
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return float(f1[present].mean())


def _positive_id(label_map: LabelMap | None, num_classes: int) -> int:
    if num_classes != 2:
        raise ValueError(f"AUROC here is for binary tasks; this one has {num_classes} classes")
    if label_map is not None and label_map.positive_id is not None:
        return label_map.positive_id
    return 1


def auroc(y_true: Any, proba: Any, label_map: LabelMap | None = None, **context: Any) -> float:
    """Area under the ROC curve of the positive class (label_map.positive, else id 1); ties averaged."""
    y, p = _check(y_true, proba)
    pos = _positive_id(label_map, p.shape[1])
    is_pos = y == pos
    n_pos, n_neg = int(is_pos.sum()), int((~is_pos).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    scores = p[:, pos]
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = scores[order]
    # average ranks over ties
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(scores)]])
    for start, end in zip(starts, ends):
        ranks[order[start:end]] = (start + end + 1) / 2.0
    return float((ranks[is_pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def ece(y_true: Any, proba: Any, label_map: LabelMap | None = None, *, bins: int = 15, **context: Any) -> float:
    """Expected calibration error over ``bins`` equal-width bins of top-class confidence."""
    y, p = _check(y_true, proba)
    if not y.size:
        return math.nan
    confidence = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(total)


def json_safe(value: Any) -> Any:
    """Numbers and nested containers made JSON-safe (numpy scalars -> Python, nan/inf -> None)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    return value


def compute_metrics(
    y_true: Any,
    proba: Any,
    label_map: LabelMap,
    *,
    kind: str,
    names: Iterable[str] = (),
    context: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The generic metrics plus the registered metrics ``names`` (a task's list), JSON-safe.

    Binary-only metrics are skipped for multi-class tasks and metrics registered for other task
    kinds are refused. ``context`` goes to every registered metric as keyword arguments (the
    engine passes ``decision``, ``recipe``, ``split``, ``task`` and ``kind``).
    """
    from . import get_registry

    y, p = _check(y_true, proba)
    binary = p.shape[1] == 2
    out: dict[str, Any] = {
        "n": int(y.size),
        "accuracy": accuracy(y, p, label_map),
        "macro_f1": macro_f1(y, p, label_map),
        "ece": ece(y, p, label_map),
    }
    if binary:
        out["auroc"] = auroc(y, p, label_map)
    registry = get_registry()
    for name in names:
        if name in out or (name == "auroc" and not binary):
            continue
        spec = registry.metric(name)
        if spec.binary_only and not binary:
            continue
        if kind not in spec.tasks:
            raise ValueError(f"metric {name!r} is registered for {spec.tasks} tasks, not {kind}")
        fn = resolve_callable(spec.compute)
        try:
            out[name] = fn(y, p, label_map, **(context or {}))
        except Exception as exc:
            raise RuntimeError(f"metric {name!r} ({spec.compute}) failed: {type(exc).__name__}: {exc}") from exc
    return json_safe(out)
