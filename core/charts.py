"""PNG charts for a run: confusion matrix, reliability diagram, training curve (matplotlib, Agg)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["confusion_matrix_png", "reliability_png", "training_curve_png", "save_png"]


def _figure(width: float = 6.0, height: float = 5.0):
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt, plt.figure(figsize=(width, height), dpi=100)


def save_png(fig: Any, path: str | Path, **savefig: Any) -> Path:
    """Write ``fig`` to ``path`` as PNG through a temporary file and a rename, then close it.

    Every chart of bigmodel and its sectors goes through here, so a reader never sees half a PNG.
    """
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, format="png", **savefig)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        plt.close(fig)
    return path


def _save(plt: Any, fig: Any, path: str | Path) -> Path:
    fig.tight_layout()
    return save_png(fig, path)


def confusion_matrix_png(path: str | Path, cm: np.ndarray, names: list[str], *, title: str = "Confusion matrix") -> Path:
    """Row-normalised confusion matrix (true rows, predicted columns); counts printed up to 20 classes."""
    cm = np.asarray(cm)
    n = len(names)
    size = min(4 + 0.25 * n, 24)
    plt, fig = _figure(size, size * 0.85)
    ax = fig.add_subplot(111)
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros(cm.shape, dtype=float), where=rows > 0)
    image = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    ticks = np.arange(n)
    fontsize = 8 if n <= 20 else max(3, 8 - n // 15)
    ax.set_xticks(ticks, labels=names, rotation=90, fontsize=fontsize)
    ax.set_yticks(ticks, labels=names, fontsize=fontsize)
    if n <= 20:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    return _save(plt, fig, path)


def reliability_png(path: str | Path, y_true: np.ndarray, proba: np.ndarray, *, bins: int = 15, title: str = "Reliability") -> Path:
    """Accuracy against top-class confidence per bin, with the diagonal of perfect calibration."""
    from .metrics import ece

    y = np.asarray(y_true)
    p = np.asarray(proba, dtype=float)
    confidence, correct = p.max(axis=1), (p.argmax(axis=1) == y).astype(float)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    centres = (edges[:-1] + edges[1:]) / 2
    accs = [correct[which == b].mean() if (which == b).any() else np.nan for b in range(bins)]
    counts = [int((which == b).sum()) for b in range(bins)]
    plt, fig = _figure(6, 5)
    ax = fig.add_subplot(111)
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    ax.bar(centres, np.nan_to_num(accs), width=1 / bins, edgecolor="black", alpha=0.7, label="accuracy in bin")
    for c, a, k in zip(centres, accs, counts):
        if k:
            ax.text(c, min(np.nan_to_num(a) + 0.02, 0.97), str(k), ha="center", fontsize=6)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (top class)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"{title} (ECE {ece(y, p):.3f})")
    ax.legend(loc="upper left")
    return _save(plt, fig, path)


def training_curve_png(path: str | Path, curve: dict[str, list[dict[str, Any]]], *, metric: str | None = None) -> Path:
    """Training and validation loss by step, and the validation ``metric`` on a second axis."""
    plt, fig = _figure(7, 4.5)
    ax = fig.add_subplot(111)
    train = [r for r in curve.get("train", []) if r.get("loss") is not None]
    evals = [r for r in curve.get("eval", []) if r.get("loss") is not None]
    if train:
        ax.plot([r["step"] for r in train], [r["loss"] for r in train], "-o", markersize=3, label="train loss")
    if evals:
        ax.plot([r["step"] for r in evals], [r["loss"] for r in evals], "-s", markersize=4, label="validation loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    handles, labels = ax.get_legend_handles_labels()
    scored = [r for r in curve.get("eval", []) if metric and r.get(metric) is not None]
    if scored:
        twin = ax.twinx()
        twin.plot([r["step"] for r in scored], [r[metric] for r in scored], "-^", color="tab:green", label=f"validation {metric}")
        twin.set_ylabel(metric)
        h2, l2 = twin.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    if handles:
        ax.legend(handles, labels, loc="best")
    ax.set_title("Training curve")
    return _save(plt, fig, path)
