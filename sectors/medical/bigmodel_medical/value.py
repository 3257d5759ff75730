"""Value-factor items measured from a finished run directory (``bigmodel value RUN``).

Each measure takes the run directory and returns ``(value in [0, 1], one-line evidence)``. Evidence names
the metric, the number and the file it came from. Two items need work beyond reading files, and cache
what they measured in ``<run>/medical_value.json`` (written atomically) so repeated calls agree:

- T, ``auroc_gain``: a logistic regression on raw pixels (images resized to 28x28, scaled to [0, 1],
  flattened, standardised; scikit-learn, L2, C=0.1) is fitted on the *same* training examples the run
  used and scored on the *same* test examples (their labels must equal ``predictions/test.npz``'s, else
  the measure fails). Gain = share of the AUROC headroom the model closes: ``(A - A_lr) / (1 - A_lr)``.
- R, ``inference_cost``: CPU seconds per 1000 studies, timed with one thread on the run's held-out images
  (preprocessing + PyTorch forward, batch 32), mapped as ``1 / (1 + s / 60)``.

Screening tasks score the label map's positive class; grading tasks (no positive class) score
"referable" (grade >= ``referable_grade``) for K and the AUROC interval, and macro one-vs-rest AUROC for T.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from .metrics import bootstrap_auroc_ci, macro_auroc_ovr, positive_scores, sensitivity_at_specificity

__all__ = ["auroc_gain", "sensitivity_at_spec", "calibration", "interval_width", "inference_cost",
           "pixel_logreg_baseline", "CACHE_FILE"]

CACHE_FILE = "medical_value.json"
_BASELINE_SIZE = 28


def _clip01(x: float) -> float:
    return float(min(1.0, max(0.0, x)))


def _run(run_dir: Path) -> Any:
    from bigmodel.core.runs import Run

    return Run.load(run_dir)


def _test_metrics(run: Any) -> dict[str, Any]:
    metrics = run.metrics()
    if "test" not in metrics:
        raise ValueError(f"{run.path / 'metrics.json'}: no 'test' metrics; run `bigmodel evaluate {run.path}` first")
    return metrics["test"]


def _screening_scores(run: Any) -> tuple[np.ndarray, np.ndarray, str]:
    """0/1 truth and score on test for the screening question of this run, and what is scored."""
    labels, proba = run.predictions("test")
    if run.label_map.positive is not None:
        y01, s = positive_scores(labels, proba, run.label_map)
        return y01, s, f"P({run.label_map.positive})"
    grade = int(run.recipe.get("referable_grade", 2))
    return (labels >= grade).astype(np.int64), proba[:, grade:].sum(axis=1), f"P(grade >= {run.label_map.names[grade]})"


def _cache(run_dir: Path) -> dict[str, Any]:
    path = run_dir / CACHE_FILE
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc}); delete it to measure again") from None


def _store(run_dir: Path, key: str, value: dict[str, Any]) -> None:
    from bigmodel.core.specs import atomic_write_text

    data = _cache(run_dir)
    data[key] = value
    atomic_write_text(run_dir / CACHE_FILE, json.dumps(data, indent=2) + "\n")


# -- T ------------------------------------------------------------------------------------------


def _pixels(images: list[Any]) -> np.ndarray:
    from PIL import Image

    rows = []
    for image in images:
        a = np.asarray(image)
        if a.dtype == np.uint8:
            a = a.astype(np.float32) / 255.0
        elif a.dtype == np.uint16:
            a = a.astype(np.float32) / 65535.0
        a = a.astype(np.float32)
        if a.ndim == 3 and a.shape[2] == 1:
            a = a[:, :, 0]
        channels = [a] if a.ndim == 2 else [a[:, :, c] for c in range(a.shape[2])]
        resized = [np.asarray(Image.fromarray(c).resize((_BASELINE_SIZE, _BASELINE_SIZE), Image.BILINEAR)) for c in channels]
        rows.append(np.stack(resized, axis=-1).reshape(-1))
    widths = {r.size for r in rows}
    if len(widths) != 1:
        raise ValueError(f"pixel baseline: images mix channel counts ({sorted(widths)} values each)")
    return np.stack(rows)


def pixel_logreg_baseline(run: Any) -> dict[str, Any]:
    """Fit the raw-pixel logistic regression on the run's training data; its AUROC on the run's test data."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from bigmodel.core.data import load_splits, subset
    from bigmodel.core.evaluate import run_source

    info = run.info
    seed = int(info.get("seed", 0))
    splits, _ = load_splits(run_source(run), label_map=run.label_map, loader=info.get("loader"),
                            options=info.get("loader_options") or None, task=run.kind, seed=seed,
                            validation_fraction=float(run.recipe.get("validation_fraction", 0.1)), progress=False)
    train = subset(splits["train"], int(run.recipe.get("train_subset", 0)), seed)
    test = subset(splits["test"], int(run.recipe.get("eval_subset", 0)), seed)
    labels, _ = run.predictions("test")
    if not np.array_equal(test.labels, labels):
        raise ValueError(f"pixel baseline: the re-read test split does not match {run.path / 'predictions' / 'test.npz'}"
                         " (different data or order); cannot compare AUROCs")
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=3000))
    clf.fit(_pixels(train.inputs), train.labels)
    proba = np.zeros((len(test), len(run.label_map)))
    proba[:, clf.classes_] = clf.predict_proba(_pixels(test.inputs))
    if run.label_map.positive is not None:
        y01, s = positive_scores(test.labels, proba, run.label_map)
        from .metrics import auroc

        value, metric = auroc(y01, s), "auroc"
    else:
        value, metric = macro_auroc_ovr(test.labels, proba), "macro_auroc_ovr"
    return {"metric": metric, "auroc": float(value), "n_train": len(train), "n_test": len(test),
            "features": f"{_BASELINE_SIZE}x{_BASELINE_SIZE} pixels, standardised", "model": "LogisticRegression(C=0.1)"}


def auroc_gain(run_dir: Path) -> tuple[float, str]:
    run_dir = Path(run_dir)
    run = _run(run_dir)
    cached = _cache(run_dir).get("pixel_logreg")
    if cached is None:
        cached = pixel_logreg_baseline(run)
        _store(run_dir, "pixel_logreg", cached)
    metric = cached["metric"]
    model_auroc = _test_metrics(run).get(metric)
    if model_auroc is None:
        raise ValueError(f"{run_dir / 'metrics.json'}: test metrics lack {metric!r}")
    base = float(cached["auroc"])
    gain = (float(model_auroc) - base) / (1.0 - base) if base < 1 else 0.0
    return _clip01(gain), (f"test {metric} {float(model_auroc):.3f} vs raw-pixel logistic regression {base:.3f} "
                           f"(metrics.json, {CACHE_FILE}): {gain:+.2f} of the AUROC headroom closed, clipped to [0, 1]")


# -- K ------------------------------------------------------------------------------------------


def sensitivity_at_spec(run_dir: Path) -> tuple[float, str]:
    run = _run(Path(run_dir))
    reference = float(run.recipe.get("reference_specificity", 0.90))
    y01, s, what = _screening_scores(run)
    out = sensitivity_at_specificity(y01, s, reference)
    return _clip01(out["sensitivity"]), (f"test sensitivity {out['sensitivity']:.3f} of {what} at specificity "
                                        f">= {reference:.2f} (predictions/test.npz)")


# -- U ------------------------------------------------------------------------------------------


def calibration(run_dir: Path) -> tuple[float, str]:
    run = _run(Path(run_dir))
    ece = _test_metrics(run).get("ece")
    if ece is None:
        raise ValueError(f"{run.path / 'metrics.json'}: test metrics lack 'ece'")
    return _clip01(1.0 - 5.0 * float(ece)), f"test ece {float(ece):.3f} (metrics.json): 1 - 5·ECE"


def interval_width(run_dir: Path) -> tuple[float, str]:
    run = _run(Path(run_dir))
    y01, s, what = _screening_scores(run)
    ci = bootstrap_auroc_ci(y01, s)
    width = ci["ci_high"] - ci["ci_low"]
    return _clip01(1.0 - 2.0 * width), (f"test AUROC of {what} {ci['auroc']:.3f}, 95% bootstrap interval "
                                       f"[{ci['ci_low']:.3f}, {ci['ci_high']:.3f}] width {width:.3f} (predictions/test.npz)")


# -- R ------------------------------------------------------------------------------------------


def _time_inference(run: Any, *, batch_size: int = 32, limit: int = 128) -> dict[str, Any]:
    import torch

    inputs, _ = run.heldout()
    inputs = list(inputs)[:limit]
    if not inputs:
        raise ValueError(f"{run.path / 'heldout'}: no held-out images to time")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = run.build_model().cpu()
        pre = run.preprocessor()
        with torch.inference_mode():
            model(**{k: torch.from_numpy(v) for k, v in pre(inputs[:2]).items()})  # warm-up
            start = time.process_time()
            for i in range(0, len(inputs), batch_size):
                batch = pre(inputs[i:i + batch_size])
                model(**{k: torch.from_numpy(v) for k, v in batch.items()})
            seconds = time.process_time() - start
    finally:
        torch.set_num_threads(threads)
    return {"cpu_seconds_per_1000": seconds / len(inputs) * 1000.0, "images": len(inputs), "batch_size": batch_size,
            "threads": 1, "engine": "pytorch", "image_size": pre.spec().get("image_size")}


def inference_cost(run_dir: Path) -> tuple[float, str]:
    run_dir = Path(run_dir)
    cached = _cache(run_dir).get("inference_cost")
    if cached is None:
        cached = _time_inference(_run(run_dir))
        _store(run_dir, "inference_cost", cached)
    seconds = float(cached["cpu_seconds_per_1000"])
    return 1.0 / (1.0 + seconds / 60.0), (f"{seconds:.1f} CPU-seconds per 1000 studies (PyTorch, 1 thread, batch "
                                          f"{cached['batch_size']}, {cached['image_size']} px; {CACHE_FILE})")
