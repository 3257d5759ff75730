"""Value-factor items measured from a finance run directory (``bigmodel value RUN``).

Each function takes the run directory and returns ``(value in [0, 1], one-line evidence naming
the metric, the number and the file)`` or ``None`` when the run lacks what it needs (e.g. no
``finance_report.json`` because :func:`bigmodel_finance.evaluation.finance_report` was not run).
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Any

__all__ = ["auroc_gain", "cost_saving", "calibration_quality", "fold_stability", "compute_cost"]

AUROC_GAIN_FOR_FULL_VALUE = 0.05


def _read(path: Path) -> Any | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None


def _clip(x: float) -> float:
    return float(min(1.0, max(0.0, x)))


def auroc_gain(run_dir: Path) -> tuple[float, str] | None:
    """T: test AUROC gain of the FT-Transformer over logistic regression on the same split."""
    report = _read(Path(run_dir) / "finance_report.json")
    if report is None:
        return None
    ft = report["models"]["ft_transformer"]["test"]["auroc"]
    lr = report["models"]["logistic_regression"]["test"]["auroc"]
    gain = ft - lr
    return (_clip(gain / AUROC_GAIN_FOR_FULL_VALUE),
            f"test AUROC {ft:.3f} vs logistic regression {lr:.3f} ({gain:+.3f}; +{AUROC_GAIN_FOR_FULL_VALUE} = 1) "
            "in finance_report.json")


def cost_saving(run_dir: Path) -> tuple[float, str] | None:
    """K: cost per applicant saved against the best trivial policy, as a share of that policy's cost."""
    metrics = _read(Path(run_dir) / "metrics.json")
    cost = (metrics or {}).get("test", {}).get("expected_cost")
    if not isinstance(cost, dict):
        return None
    best = min(cost["accept_all"], cost["reject_all"])
    policy = "reject-all" if cost["reject_all"] <= cost["accept_all"] else "accept-all"
    share = (best - cost["expected_cost"]) / best if best > 0 else 0.0
    return (_clip(share),
            f"test expected_cost {cost['expected_cost']:.3f} per applicant vs {policy} {best:.3f} "
            f"({share:.1%} saved) in metrics.json")


def calibration_quality(run_dir: Path) -> tuple[float, str] | None:
    """U: 1 − 5·ECE of calibrated P(default) on test (Brier in the evidence)."""
    report = _read(Path(run_dir) / "finance_report.json")
    if report is None:
        return None
    test = report["models"]["ft_transformer"]["test"]
    return (_clip(1 - 5 * test["ece"]),
            f"test ECE {test['ece']:.3f} (raw {test['ece_raw']:.3f}), Brier {test['brier']:.3f} "
            f"(raw {test['brier_raw']:.3f}) after calibration in finance_report.json")


def fold_stability(run_dir: Path) -> tuple[float, str] | None:
    """U: 1 − 10·(fold-to-fold std of AUROC) from a k-fold run saved as ``cv.json`` in or under the run."""
    run_dir = Path(run_dir)
    cv = _read(run_dir / "cv.json") or _read(run_dir / "cv" / "cv.json")
    if cv is None:
        return None
    auroc = cv["summary"]["ft_transformer"]["auroc"]
    where = "cv.json" if (run_dir / "cv.json").is_file() else "cv/cv.json"
    return (_clip(1 - 10 * auroc["std"]),
            f"{cv['folds']}-fold AUROC {auroc['mean']:.3f} ± {auroc['std']:.3f} in {where}")


def _seconds_between(start: str, end: str) -> float:
    return (_dt.datetime.fromisoformat(end) - _dt.datetime.fromisoformat(start)).total_seconds()


def compute_cost(run_dir: Path) -> tuple[float, str] | None:
    """R: 1 / (1 + training minutes / 10), scoring latency from finance_report.json alongside."""
    run_dir = Path(run_dir)
    info = _read(run_dir / "run.json")
    if not info or not info.get("created") or not info.get("finished"):
        return None
    minutes = max(0.0, _seconds_between(info["created"], info["finished"])) / 60
    evidence = f"training took {minutes:.1f} min (run.json created→finished)"
    report = _read(run_dir / "finance_report.json")
    if report is not None:
        ms = report["models"]["ft_transformer"].get("scoring_ms_per_applicant")
        if ms is not None:
            evidence += f", scoring {ms:.2f} ms/applicant on CPU (finance_report.json)"
    return _clip(1 / (1 + minutes / 10)), evidence
