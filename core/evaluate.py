"""``bigmodel evaluate``: reload a run, predict with PyTorch, write metrics and charts into it."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from .runs import Run, RunError, read_json, save_predictions, write_json

__all__ = ["predict_proba", "split_metrics", "write_charts", "evaluate", "run_source"]


def predict_proba(model: Any, preprocessor: Any, inputs: Any, *, batch_size: int = 64, device: Any = None) -> np.ndarray:
    """Class probabilities (N, C) float64 from ``model`` on raw ``inputs``, batch by batch, no augmentation."""
    import torch

    from .metrics import softmax
    from .tasks.base import count_inputs, take_inputs

    n = count_inputs(inputs)
    if n == 0:
        raise ValueError("nothing to predict: empty inputs")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.eval()
    chunks = []
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            batch = preprocessor(take_inputs(inputs, range(start, min(start + batch_size, n))), train=False)
            tensors = {k: torch.from_numpy(np.ascontiguousarray(v)).to(device) for k, v in batch.items()}
            logits = model(**tensors)
            chunks.append(logits.float().cpu().numpy())
    return softmax(np.concatenate(chunks, axis=0))


def split_metrics(y_true: np.ndarray, proba: np.ndarray, *, label_map: Any, kind: str, metric_names: list[str],
                  decision: dict | None, recipe: Any, split: str, task: str) -> dict[str, Any]:
    """Generic + the task's registered metrics for one split, with the decision params as context."""
    from .metrics import compute_metrics

    context = {"decision": (decision or {}).get("params") if decision else None, "recipe": recipe,
               "split": split, "task": task, "kind": kind}
    return compute_metrics(y_true, proba, label_map, kind=kind, names=metric_names, context=context)


def _slug(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", key).strip("_") or "split"


def write_charts(directory: Path, key: str, y_true: np.ndarray, proba: np.ndarray, names: list[str]) -> list[Path]:
    """confusion_matrix_<key>.png and reliability_<key>.png in ``directory``."""
    from .charts import confusion_matrix_png, reliability_png
    from .metrics import confusion_matrix

    slug = _slug(key)
    cm = confusion_matrix(y_true, proba.argmax(axis=1), len(names))
    return [
        confusion_matrix_png(directory / f"confusion_matrix_{slug}.png", cm, names, title=f"Confusion matrix ({key})"),
        reliability_png(directory / f"reliability_{slug}.png", y_true, proba, title=f"Reliability ({key})"),
    ]


def run_source(run: Run) -> Any:
    """The data a run was trained on: its registered dataset, or the local path it was given."""
    info = run.info
    if info.get("data_path"):
        return Path(info["data_path"])
    if info.get("dataset"):
        from . import get_registry

        return get_registry().dataset(info["dataset"])
    raise RunError(f"{run.path / 'run.json'}: records no dataset or data path; pass --data PATH")


def _read_without_carving(path: Path, *, loader: str | None, options: dict | None, run: Run) -> dict[str, Any]:
    """Every split the loader finds in ``path``, encoded with the run's label map (nothing carved out)."""
    from . import get_registry
    from .data import encode, guess_loader
    from .specs import resolve_callable

    name = loader or guess_loader(path, task=run.kind)
    spec = get_registry().loader(name)
    if spec.task != run.kind:
        raise ValueError(f"loader {name!r} reads {spec.task} data, but this run is {run.kind}")
    options = {k: v for k, v in (options or {}).items() if k != "test_fraction"}
    raw = resolve_callable(spec.load)(path, options=options)
    return {split: encode(part, run.label_map, extend=False)[0] for split, part in raw.items() if len(part)}


def evaluate(run: str | os.PathLike | Run, *, data: str | os.PathLike | None = None, split: str | None = None,
             loader: str | None = None, batch_size: int | None = None, quiet: bool = True) -> dict[str, Any]:
    """Metrics of ``run`` on ``split`` (of its own data, or of ``data`` read with the run's label map).

    ``split`` defaults to "test"; for ``data`` holding a single split (one file) that split is used.

    Updates metrics.json (key ``split``, or ``<data name>/<split>`` for new data), writes
    predictions and the confusion-matrix / reliability PNGs; returns the metrics.
    """
    from .data import load_splits, subset

    run = run if isinstance(run, Run) else Run.load(run)
    info = run.info
    if data is None:
        source: Any = run_source(run)
        options = info.get("loader_options") or None
        key = split or "test"
    else:
        source = Path(data).expanduser()
        options = info.get("loader_options") or None if loader in (None, info.get("loader")) else None
    seed = int(info.get("seed", 0))
    if data is None:
        splits, _ = load_splits(
            source, label_map=run.label_map, loader=loader or info.get("loader"), options=options, task=run.kind,
            extend_labels=False, seed=seed, validation_fraction=float(run.recipe.get("validation_fraction", 0.1)),
            progress=not quiet,
        )
        split = split or "test"
    else:
        splits = _read_without_carving(source, loader=loader or info.get("loader"), options=options, run=run)
        if split is None:
            split = next(iter(splits)) if len(splits) == 1 else "test"
        key = f"{source.name}/{split}"
    if split not in splits:
        raise ValueError(f"{source}: no {split!r} split in this data (has {sorted(splits)}); pass --split")
    if data is None and split == "validation" and int(info.get("bagging", 1) or 1) > 1:
        raise ValueError(f"{run.path}: a bagged run's members trained on its validation examples; its out-of-fold "
                         "validation predictions and metrics were written at training (predictions/validation.npz)")
    part = splits[split]
    if data is None and split != "train":
        part = subset(part, int(run.recipe.get("eval_subset", 0)), seed)
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = run.build_model().to(device)
    labels = part.labels
    proba = predict_proba(model, run.preprocessor(), part.inputs,
                          batch_size=batch_size or int(run.recipe.get("eval_batch_size", 64)), device=device)
    save_predictions(run.path, _slug(key), labels, proba)
    metrics = split_metrics(labels, proba, label_map=run.label_map, kind=run.kind,
                            metric_names=list(info.get("metrics", [])), decision=run.decision,
                            recipe=run.recipe_values(), split=split, task=str(info.get("task")))
    all_metrics = read_json(run.path / "metrics.json")
    all_metrics[key] = metrics
    write_json(run.path / "metrics.json", all_metrics)
    write_charts(run.path, key, labels, proba, run.label_map.names)
    if info.get("report") and data is None:
        from .train import run_report

        run_report(run.path, info["report"])
    return metrics
