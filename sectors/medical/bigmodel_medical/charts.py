"""The ROC chart of a run: :func:`roc_for_run` is the screening task's ``SectorTask.report``, called by the
engine after train and after evaluate."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from .metrics import write_roc_png

__all__ = ["roc_chart", "roc_for_run"]


def _slug(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", key).strip("_") or "split"


def roc_chart(directory: Path, key: str, y_true: np.ndarray, proba: np.ndarray, label_map: Any,
              decision: dict | None = None) -> list[Path]:
    """``roc_<key>.png`` in ``directory`` for the positive class (with the screening threshold if any).

    Tasks without a positive class (grading) get no ROC chart: returns ``[]``.
    """
    if label_map.positive is None:
        return []
    threshold = None if not decision else decision.get("threshold")
    return [write_roc_png(y_true, proba, label_map, Path(directory) / f"roc_{_slug(key)}.png",
                          threshold=threshold, title=f"ROC, {label_map.positive} ({key})")]


def roc_for_run(run_dir: str | Path, split: str = "test") -> list[Path]:
    """Draw the ROC chart of ``split`` from a run's saved predictions and decision parameters."""
    from bigmodel.core.runs import Run

    run = Run.load(run_dir)
    labels, proba = run.predictions(split)
    params = (run.decision or {}).get("params")
    return roc_chart(run.path, split, labels, proba, run.label_map, params)
