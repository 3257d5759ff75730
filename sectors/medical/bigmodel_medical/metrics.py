"""Screening and grading metrics, numpy only (matplotlib for the ROC chart, imported inside).

Two layers:

- plain functions on arrays (``auroc``, ``roc_curve``, ``bootstrap_auroc_ci``, ``confusion_at``,
  ``sensitivity_at_specificity``, ``quadratic_weighted_kappa``, ``macro_auroc_ovr``), and
- the metric entry points registered through ``register_metrics``, with the core's signature
  ``(y_true, proba, label_map, **context) -> float | dict``.

Binary screening metrics score the label map's *positive* class (``LabelMap.positive``,
"malignant" for BreastMNIST): ``score = proba[:, positive_id]``, and a case is called positive when
``score >= threshold``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "positive_scores",
    "auroc",
    "roc_curve",
    "bootstrap_auroc_ci",
    "confusion_at",
    "sensitivity_at_specificity",
    "quadratic_weighted_kappa",
    "macro_auroc_ovr",
    "metric_auroc_ci",
    "metric_operating_point",
    "metric_sensitivity_at_specificity",
    "metric_qwk",
    "metric_macro_auroc_ovr",
    "write_roc_png",
    "BOOTSTRAP_SEED",
    "BOOTSTRAP_SAMPLES",
]

BOOTSTRAP_SEED = 20240101
BOOTSTRAP_SAMPLES = 1000
DEFAULT_REFERENCE_SPECIFICITY = 0.90


# -- inputs ----------------------------------------------------------------------------------


def _as_arrays(y_true: Any, proba: Any) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true).astype(np.int64).reshape(-1)
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"proba must be a (n, classes) array, got shape {p.shape}")
    if p.shape[0] != y.shape[0]:
        raise ValueError(f"{y.shape[0]} labels but {p.shape[0]} rows of probabilities")
    if y.size and (y.min() < 0 or y.max() >= p.shape[1]):
        raise ValueError(f"label ids must lie in 0..{p.shape[1] - 1}; got {int(y.min())}..{int(y.max())}")
    return y, p


def positive_scores(y_true: Any, proba: Any, label_map: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(is_positive, score)``: 0/1 truth and the positive class's probability, per example."""
    y, p = _as_arrays(y_true, proba)
    pos = getattr(label_map, "positive_id", None)
    if pos is None:
        raise ValueError("screening metrics need a label map with a positive class (LabelMap.positive)")
    return (y == pos).astype(np.int64), p[:, pos]


def _both_classes(y01: np.ndarray, what: str) -> None:
    n_pos = int(y01.sum())
    if n_pos == 0 or n_pos == y01.size:
        raise ValueError(f"{what} needs both positive and negative examples; got {n_pos} positive of {y01.size}")


# -- ROC and AUROC -----------------------------------------------------------------------------


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their average rank (as scipy.stats.rankdata's default)."""
    order = np.argsort(values, kind="mergesort")
    sorted_vals = values[order]
    # boundaries of runs of equal values
    starts = np.concatenate(([0], np.flatnonzero(np.diff(sorted_vals)) + 1))
    ends = np.concatenate((starts[1:], [values.size]))
    avg = (starts + ends + 1) / 2.0  # mean of (start+1 .. end)
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = np.repeat(avg, ends - starts)
    return ranks


def auroc(y01: Any, scores: Any) -> float:
    """Area under the ROC curve (Mann-Whitney U with ties counted as one half)."""
    y01 = np.asarray(y01).astype(bool).reshape(-1)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    _both_classes(y01.astype(np.int64), "AUROC")
    ranks = _average_ranks(s)
    n_pos = int(y01.sum())
    n_neg = y01.size - n_pos
    return float((ranks[y01].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def roc_curve(y01: Any, scores: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fpr, tpr, thresholds)`` for "positive when score >= threshold", from (0, 0) to (1, 1).

    ``thresholds[0]`` is ``+inf`` (nothing called positive); each later threshold is a distinct score.
    """
    y01 = np.asarray(y01).astype(np.int64).reshape(-1)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    _both_classes(y01, "a ROC curve")
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y01[order]
    last_of_run = np.concatenate((np.flatnonzero(np.diff(s_sorted)), [s.size - 1]))
    tps = np.cumsum(y_sorted)[last_of_run]
    fps = (last_of_run + 1) - tps
    n_pos, n_neg = int(y01.sum()), int(y01.size - y01.sum())
    tpr = np.concatenate(([0.0], tps / n_pos))
    fpr = np.concatenate(([0.0], fps / n_neg))
    thresholds = np.concatenate(([np.inf], s_sorted[last_of_run]))
    return fpr, tpr, thresholds


def bootstrap_auroc_ci(
    y01: Any, scores: Any, *, n_boot: int = BOOTSTRAP_SAMPLES, level: float = 0.95, seed: int = BOOTSTRAP_SEED
) -> dict[str, float]:
    """AUROC with a percentile bootstrap interval (cases resampled with replacement, fixed seed).

    Resamples holding a single class are drawn again (counted in ``skipped``), so every one of the
    ``n_boot`` replicates is a valid AUROC.
    """
    y01 = np.asarray(y01).astype(np.int64).reshape(-1)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    point = auroc(y01, s)
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    rng = np.random.default_rng(seed)
    values = np.empty(n_boot, dtype=np.float64)
    n, done, skipped = y01.size, 0, 0
    while done < n_boot:
        idx = rng.integers(0, n, size=n)
        yb = y01[idx]
        n_pos = int(yb.sum())
        if n_pos == 0 or n_pos == n:
            skipped += 1
            if skipped > 10 * n_boot:
                raise ValueError(f"bootstrap: almost every resample of {n} cases holds one class; too few positives")
            continue
        values[done] = auroc(yb, s[idx])
        done += 1
    alpha = (1 - level) / 2
    low, high = np.quantile(values, [alpha, 1 - alpha])
    return {"auroc": point, "ci_low": float(low), "ci_high": float(high), "n_boot": n_boot, "seed": seed,
            "level": level, "skipped": skipped}


# -- operating points ---------------------------------------------------------------------------


def confusion_at(y01: Any, scores: Any, threshold: float) -> dict[str, float]:
    """Counts and rates when cases with ``score >= threshold`` are called positive.

    A rate whose denominator is zero (e.g. PPV when nothing is called positive) is ``nan``.
    """
    y = np.asarray(y01).astype(bool).reshape(-1)
    called = np.asarray(scores, dtype=np.float64).reshape(-1) >= threshold
    tp = int(np.sum(called & y))
    fp = int(np.sum(called & ~y))
    fn = int(np.sum(~called & y))
    tn = int(np.sum(~called & ~y))

    def rate(a: int, b: int) -> float:
        return a / (a + b) if a + b else float("nan")

    return {
        "threshold": float(threshold),
        "sensitivity": rate(tp, fn),
        "specificity": rate(tn, fp),
        "ppv": rate(tp, fp),
        "npv": rate(tn, fn),
        "tp": tp, "fp": fp, "tn": tn, "fn": fn,
    }


def sensitivity_at_specificity(y01: Any, scores: Any, specificity: float) -> dict[str, float]:
    """The highest sensitivity of any threshold whose specificity is at least ``specificity``."""
    if not 0 <= specificity <= 1:
        raise ValueError(f"specificity must be in [0, 1], got {specificity}")
    fpr, tpr, thresholds = roc_curve(y01, scores)
    ok = (1 - fpr) >= specificity - 1e-12
    best = int(np.flatnonzero(ok)[np.argmax(tpr[ok])])  # the (0, 0) point always qualifies
    return {"sensitivity": float(tpr[best]), "specificity": float(1 - fpr[best]),
            "threshold": float(thresholds[best]), "reference_specificity": float(specificity)}


# -- grading -------------------------------------------------------------------------------------


def quadratic_weighted_kappa(y_true: Any, y_pred: Any, n_classes: int) -> float:
    """Cohen's kappa with quadratic weights (ordinal agreement; 1 perfect, 0 chance level)."""
    a = np.asarray(y_true).astype(np.int64).reshape(-1)
    b = np.asarray(y_pred).astype(np.int64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"{a.size} true grades but {b.size} predicted grades")
    if n_classes < 2:
        raise ValueError("quadratic weighted kappa needs at least 2 grades")
    for name, arr in (("true", a), ("predicted", b)):
        if arr.size and (arr.min() < 0 or arr.max() >= n_classes):
            raise ValueError(f"{name} grades must lie in 0..{n_classes - 1}")
    observed = np.zeros((n_classes, n_classes), dtype=np.float64)
    np.add.at(observed, (a, b), 1.0)
    expected = np.outer(observed.sum(1), observed.sum(0)) / max(a.size, 1)
    grid = np.arange(n_classes)
    weights = (grid[:, None] - grid[None, :]) ** 2 / (n_classes - 1) ** 2
    denominator = float((weights * expected).sum())
    if denominator == 0.0:
        raise ValueError("quadratic weighted kappa is undefined when truth and predictions are each a single grade")
    return float(1.0 - (weights * observed).sum() / denominator)


def macro_auroc_ovr(y_true: Any, proba: Any) -> float:
    """Unweighted mean of one-vs-rest AUROCs over the classes present (with at least one negative)."""
    y, p = _as_arrays(y_true, proba)
    aucs = []
    for c in range(p.shape[1]):
        y01 = (y == c).astype(np.int64)
        if 0 < y01.sum() < y01.size:
            aucs.append(auroc(y01, p[:, c]))
    if len(aucs) < 2 and p.shape[1] > 2:
        raise ValueError(f"macro AUROC needs at least two classes present; got {len(aucs)}")
    if not aucs:
        raise ValueError("macro AUROC needs both positive and negative examples of some class")
    return float(np.mean(aucs))


# -- registered metric entry points ------------------------------------------------------------


def _threshold_from_context(context: dict[str, Any]) -> float:
    decision = context.get("decision") or context.get("decision_params")
    if isinstance(decision, dict) and "threshold" in decision:
        return float(decision["threshold"])
    if "threshold" in context:
        return float(context["threshold"])
    raise ValueError(
        "operating_point needs the threshold chosen on validation: pass decision=<decision.json params> "
        "(or threshold=) in the metric context"
    )


def metric_auroc_ci(y_true, proba, label_map, **context) -> dict[str, float]:
    """AUROC of the positive class with a bootstrap 95% interval (fixed seed)."""
    y01, s = positive_scores(y_true, proba, label_map)
    return bootstrap_auroc_ci(y01, s)


def metric_operating_point(y_true, proba, label_map, **context) -> dict[str, float]:
    """Sensitivity, specificity, PPV and NPV at the validation-chosen screening threshold."""
    y01, s = positive_scores(y_true, proba, label_map)
    return confusion_at(y01, s, _threshold_from_context(context))


def metric_sensitivity_at_specificity(y_true, proba, label_map, **context) -> dict[str, float]:
    """Best sensitivity on the ROC curve at specificity >= recipe.reference_specificity (default 0.90)."""
    y01, s = positive_scores(y_true, proba, label_map)
    recipe = context.get("recipe")
    spec = getattr(recipe, "reference_specificity", None)
    if spec is None and isinstance(recipe, dict):
        spec = recipe.get("reference_specificity")
    return sensitivity_at_specificity(y01, s, DEFAULT_REFERENCE_SPECIFICITY if spec is None else float(spec))


def metric_qwk(y_true, proba, label_map, **context) -> float:
    """Quadratic weighted kappa between true grades and the argmax grade (class ids are ordered)."""
    y, p = _as_arrays(y_true, proba)
    return quadratic_weighted_kappa(y, p.argmax(axis=1), p.shape[1])


def metric_macro_auroc_ovr(y_true, proba, label_map, **context) -> float:
    """Macro one-vs-rest AUROC."""
    return macro_auroc_ovr(y_true, proba)


# -- chart ---------------------------------------------------------------------------------------


def write_roc_png(
    y_true: Any, proba: Any, label_map: Any, path: str | os.PathLike, *, threshold: float | None = None,
    title: str | None = None,
) -> Path:
    """Draw the positive class's ROC curve (with its AUROC interval and the operating point) to ``path``.

    Written through a temporary file and a rename, so a reader never sees half a PNG.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    y01, s = positive_scores(y_true, proba, label_map)
    fpr, tpr, _ = roc_curve(y01, s)
    ci = bootstrap_auroc_ci(y01, s)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=120)
    try:
        ax.plot(fpr, tpr, drawstyle="steps-post", lw=2,
                label=f"AUROC {ci['auroc']:.3f} [{ci['ci_low']:.3f}, {ci['ci_high']:.3f}]")
        ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1)
        if threshold is not None:
            op = confusion_at(y01, s, threshold)
            ax.plot(1 - op["specificity"], op["sensitivity"], "o", color="crimson",
                    label=f"threshold {threshold:.3f}: sens {op['sensitivity']:.2f}, spec {op['specificity']:.2f}")
        ax.set_xlabel("1 - specificity")
        ax.set_ylabel(f"sensitivity ({label_map.positive})")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.01)
        ax.set_title(title or f"ROC: {label_map.positive} (n={y01.size}, {int(y01.sum())} positive)")
        ax.legend(loc="lower right", fontsize=7)
        fig.tight_layout()
    except BaseException:
        plt.close(fig)
        raise
    from bigmodel.core.charts import save_png

    return save_png(fig, path)
