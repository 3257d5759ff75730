"""Credit-risk metrics (registered through ``register_metrics``) and the two charts risk teams read.

Metric functions have the engine's signature ``(y_true, proba, label_map, **context)``; ``proba``
is the model's ``(n, 2)`` probability matrix. AUROC itself is the core's ``auroc`` metric.
``expected_cost`` needs the stored decision parameters (``context['decision']``); without them it
uses the Bayes threshold of the recipe's (or the default) cost matrix on the uncalibrated scores
and says so in its result.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .decision import apply_calibration, brier as _brier, policy_costs, positive_scores

__all__ = ["gini", "ks_statistic", "brier", "expected_cost", "auroc_of", "ece_of", "score_distribution_png", "calibration_png"]


def _binary(y_true: Any, proba: Any, label_map: Any) -> tuple[np.ndarray, np.ndarray]:
    positive = label_map.positive_id if label_map.positive_id is not None else 1
    y = (np.asarray(y_true) == positive).astype(np.int64)
    return y, positive_scores(proba, positive)


def auroc_of(y: np.ndarray, p: np.ndarray) -> float:
    """ROC AUC (ties count half); NaN when only one class is present."""
    from sklearn.metrics import roc_auc_score

    if len(np.unique(y)) < 2:
        return float("nan")
    return float(roc_auc_score(y, p))


def ece_of(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error of P(positive): 10 equal-width bins, |mean p − observed rate| weighted by bin size."""
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    index = np.minimum((p * bins).astype(np.int64), bins - 1)
    total = 0.0
    for b in range(bins):
        mask = index == b
        if mask.any():
            total += mask.sum() * abs(p[mask].mean() - y[mask].mean())
    return float(total / max(len(y), 1))


def gini(y_true: Any, proba: Any, label_map: Any, **context: Any) -> float:
    """Gini coefficient (accuracy ratio) = 2·AUROC − 1 of P(positive)."""
    y, p = _binary(y_true, proba, label_map)
    return 2 * auroc_of(y, p) - 1


def ks_statistic(y_true: Any, proba: Any, label_map: Any, **context: Any) -> float:
    """Kolmogorov–Smirnov statistic: the largest gap between the score CDFs of bad and good applicants."""
    y, p = _binary(y_true, proba, label_map)
    if y.min() == y.max():
        return float("nan")
    values = np.unique(p)
    cdf_bad = np.searchsorted(np.sort(p[y == 1]), values, side="right") / (y == 1).sum()
    cdf_good = np.searchsorted(np.sort(p[y == 0]), values, side="right") / (y == 0).sum()
    return float(np.max(np.abs(cdf_bad - cdf_good)))


def brier(y_true: Any, proba: Any, label_map: Any, **context: Any) -> float:
    """Brier score of P(positive) (calibrated with the stored decision parameters when given)."""
    y, p = _binary(y_true, proba, label_map)
    decision = context.get("decision")
    if decision and "calibration" in decision:
        p = apply_calibration(p, decision["calibration"])
    return _brier(y, p)


def expected_cost(y_true: Any, proba: Any, label_map: Any, **context: Any) -> dict[str, Any]:
    """Cost per applicant at the stored threshold, and of the accept-all and reject-all policies.

    ``context['decision']``: parameters from :data:`bigmodel_finance.decision.DECISION` (calibration,
    threshold, costs). Returns ``expected_cost`` (the headline number), ``accept_all``,
    ``reject_all``, ``saving_vs_best_trivial`` (positive: the model saves money) and ``threshold``.
    """
    y, p = _binary(y_true, proba, label_map)
    decision = context.get("decision")
    recipe = context.get("recipe")
    if decision:
        cost_fn, cost_fp = float(decision["cost_fn"]), float(decision["cost_fp"])
        p = apply_calibration(p, decision["calibration"])
        threshold, source = float(decision["threshold"]), "decision.json"
    else:
        cost_fn = float(getattr(recipe, "cost_fn", 5.0))
        cost_fp = float(getattr(recipe, "cost_fp", 1.0))
        threshold, source = cost_fp / (cost_fp + cost_fn), "bayes threshold on uncalibrated scores"
    n = len(y)
    accept_all = cost_fn * y.sum() / n
    reject_all = cost_fp * (n - y.sum()) / n
    cost = policy_costs(y, p, threshold, cost_fn, cost_fp)
    return {
        "expected_cost": cost,
        "accept_all": float(accept_all),
        "reject_all": float(reject_all),
        "saving_vs_best_trivial": float(min(accept_all, reject_all) - cost),
        "threshold": threshold,
        "threshold_source": source,
        "reject_rate": float(np.mean(p >= threshold)),
    }


# -- charts --------------------------------------------------------------------------------


def _save(fig: Any, path: Path) -> Path:
    from bigmodel.core.charts import save_png

    return save_png(fig, path, dpi=110, bbox_inches="tight")


def score_distribution_png(y: Any, p: Any, path: str | Path, *, threshold: float | None = None,
                           title: str = "Score distribution") -> Path:
    """Histograms of P(default) for good and bad applicants, with the decision threshold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    y, p = np.asarray(y).astype(bool), np.asarray(p, dtype=np.float64)
    fig, ax = plt.subplots(figsize=(6, 4))
    bins = np.linspace(0, 1, 26)
    ax.hist(p[~y], bins=bins, alpha=0.6, label=f"good (n={int((~y).sum())})", color="tab:green")
    ax.hist(p[y], bins=bins, alpha=0.6, label=f"bad (n={int(y.sum())})", color="tab:red")
    if threshold is not None:
        ax.axvline(threshold, color="black", linestyle="--", label=f"reject at ≥ {threshold:.3f}")
    ax.set_xlabel("calibrated P(default)")
    ax.set_ylabel("applicants")
    ax.set_title(title)
    ax.legend()
    return _save(fig, Path(path))


def calibration_png(y: Any, curves: dict[str, Any], path: str | Path, *, bins: int = 10,
                    title: str = "Calibration") -> Path:
    """Reliability curves (observed default rate against mean predicted P(default) per bin)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    y = np.asarray(y, dtype=np.float64)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect")
    for name, p in curves.items():
        p = np.asarray(p, dtype=np.float64)
        index = np.minimum((p * bins).astype(np.int64), bins - 1)
        xs, ys = [], []
        for b in range(bins):
            mask = index == b
            if mask.any():
                xs.append(p[mask].mean())
                ys.append(y[mask].mean())
        ax.plot(xs, ys, marker="o", label=f"{name} (Brier {_brier(y, p):.3f})")
    ax.set_xlabel("mean predicted P(default)")
    ax.set_ylabel("observed default rate")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend()
    return _save(fig, Path(path))
