"""Value-factor items of the customer-service sector, each measured from a finished run directory.

Every measure takes the run directory and returns ``(value in [0, 1], one line of evidence naming
the metric, the number and the file)`` or ``None`` when the item does not apply to the run:

- T ``gain_over_tfidf``: test macro-F1 minus that of a TF-IDF + logistic-regression baseline trained on
  the run's own training split and scored on its own test split (re-read from the run's recorded data
  source, seed and subsets; written to ``baseline_tfidf.json``); ``clip(gain / 0.10, 0, 1)``.
- K ``intents_mastered``: share of intents with test F1 >= 0.9 (``per_intent_f1`` in metrics.json).
- U ``calibration``: ``clip(1 - ECE / 0.15, 0, 1)`` from the test ECE in metrics.json.
- U ``coverage_at_target``: test coverage at the validation-chosen hand-off threshold, 0 when the
  target precision was not reached on validation (``coverage_at_precision`` in metrics.json).
- R ``cost_per_1k``: seconds of the serving path (tokenisation, ONNX Runtime on CPU, hand-off) per
  1000 messages on the measuring machine, ``10 / (10 + s)``; read from ``cost_per_1k.json`` or, when
  absent, measured on the run's held-out messages with its exported model and written there (the
  file records the CPU, the core count and the load average at the time). Not applicable (None)
  before the run is exported.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

__all__ = [
    "gain_over_tfidf",
    "intents_mastered",
    "calibration",
    "coverage_at_target",
    "cost_per_1k",
    "baseline_for_run",
    "run_splits",
    "measure_cost",
    "GAIN_FOR_FULL_VALUE",
    "ECE_FOR_ZERO_VALUE",
    "MASTERED_F1",
    "COST_HALF_VALUE_SECONDS",
]

GAIN_FOR_FULL_VALUE = 0.10
ECE_FOR_ZERO_VALUE = 0.15
MASTERED_F1 = 0.9
COST_HALF_VALUE_SECONDS = 10.0
BASELINE_FILE = "baseline_tfidf.json"
COST_FILE = "cost_per_1k.json"
_TEST = "test"


def _clip(x: float) -> float:
    return float(min(1.0, max(0.0, x)))


def _read(path: Path) -> Any:
    from bigmodel.core.runs import read_json  # errors name the file

    return read_json(path)


def _test_metrics(run_dir: Path) -> dict[str, Any] | None:
    """The test-split metrics of the run, or None when it has no test split."""
    metrics = _read(Path(run_dir) / "metrics.json")
    split = metrics.get(_TEST)
    return split if isinstance(split, dict) else None


def _number(metrics: dict[str, Any], name: str, run_dir: Path) -> float:
    value = metrics.get(name)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise ValueError(f"{Path(run_dir) / 'metrics.json'}: test metric {name!r} is {value!r}, not a number")
    return float(value)


def _write_json(path: Path, data: Any) -> None:
    from bigmodel.core.specs import atomic_write_text

    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n")


# -- T: gain over the TF-IDF + logistic-regression baseline ---------------------------------


def run_splits(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The run's train and test splits, rebuilt exactly as training built them.

    From run.json (dataset or data path, loader, options, seed) and recipe.json (validation fraction,
    subsets); checked against the run's stored test labels (``predictions/test.npz``) and train count,
    so anything computed on them is computed on the run's own messages.
    """
    import numpy as np

    from bigmodel.core.data import load_splits, subset
    from bigmodel.core.runs import Run

    run = Run.load(run_dir)
    info, recipe = run.info, run.recipe
    if info.get("dataset"):
        from bigmodel.core import get_registry

        source: Any = get_registry().dataset(info["dataset"])
        where = info["dataset"]
    elif info.get("data_path"):
        source = where = Path(info["data_path"])
    else:
        raise ValueError(f"{run.path / 'run.json'}: records neither 'dataset' nor 'data_path'")
    seed = int(info.get("seed", 0))
    splits, _ = load_splits(
        source, label_map=run.label_map, loader=info.get("loader"), options=info.get("loader_options") or {},
        task=run.kind, extend_labels=False, seed=seed,
        validation_fraction=float(recipe.get("validation_fraction", 0.1)), progress=False,
    )
    if "test" not in splits:
        raise ValueError(f"{where}: the run's data has no test split")
    train = subset(splits["train"], int(recipe.get("train_subset", 0)), seed)
    test = subset(splits["test"], int(recipe.get("eval_subset", 0)), seed)
    stored_labels, _ = run.predictions("test")
    expected_train = info.get("counts", {}).get("train")
    if not np.array_equal(np.asarray(stored_labels), test.labels) or len(train) != expected_train:
        raise ValueError(
            f"{run.path}: the data re-read from {where} no longer gives the run's splits (train {len(train)} vs "
            f"{expected_train} in run.json, or test labels differ from predictions/test.npz)"
        )
    return {"run": run, "train": train, "test": test, "source": str(where)}


def baseline_for_run(run_dir: str | os.PathLike) -> dict[str, Any]:
    """Train and score the baseline on the run's own train/test split; write ``baseline_tfidf.json``."""
    from .baseline import tfidf_logreg_baseline

    parts = run_splits(run_dir)
    run, train, test = parts["run"], parts["train"], parts["test"]
    result = tfidf_logreg_baseline(train.inputs, train.labels, test.inputs, test.labels, len(run.label_map))
    result["source"] = parts["source"]
    _write_json(run.path / BASELINE_FILE, result)
    return result


def gain_over_tfidf(run_dir: str | os.PathLike) -> tuple[float, str] | None:
    run_dir = Path(run_dir)
    test = _test_metrics(run_dir)
    if test is None:
        return None
    model_f1 = _number(test, "macro_f1", run_dir)
    path = run_dir / BASELINE_FILE
    baseline = _read(path) if path.is_file() else baseline_for_run(run_dir)
    base_f1 = float(baseline["macro_f1"])
    gain = model_f1 - base_f1
    value = _clip(gain / GAIN_FOR_FULL_VALUE)
    return value, (
        f"test macro_f1 {model_f1:.4f} (metrics.json) vs TF-IDF+LR {base_f1:.4f} ({BASELINE_FILE}, same "
        f"{baseline['train_examples']} train / {baseline['test_examples']} test messages): gain {gain:+.4f}, "
        f"/ {GAIN_FOR_FULL_VALUE:g} -> {value:.3f}"
    )


# -- K: intents the model masters -----------------------------------------------------------


def intents_mastered(run_dir: str | os.PathLike) -> tuple[float, str] | None:
    run_dir = Path(run_dir)
    test = _test_metrics(run_dir)
    if test is None:
        return None
    per_intent = (test.get("per_intent_f1") or {}).get("per_intent")
    if not isinstance(per_intent, dict) or not per_intent:
        raise ValueError(f"{run_dir / 'metrics.json'}: test metric 'per_intent_f1' is missing; run `bigmodel evaluate`")
    mastered = sum(1 for f1 in per_intent.values() if f1 is not None and f1 >= MASTERED_F1)
    value = mastered / len(per_intent)
    return value, (
        f"{mastered}/{len(per_intent)} intents with test F1 >= {MASTERED_F1:g} "
        f"(per_intent_f1, metrics.json) -> {value:.3f}"
    )


# -- U: calibration and automatic coverage --------------------------------------------------


def calibration(run_dir: str | os.PathLike) -> tuple[float, str] | None:
    run_dir = Path(run_dir)
    test = _test_metrics(run_dir)
    if test is None:
        return None
    ece = _number(test, "ece", run_dir)
    value = _clip(1.0 - ece / ECE_FOR_ZERO_VALUE)
    return value, f"test ece {ece:.4f} (metrics.json): 1 - ece / {ECE_FOR_ZERO_VALUE:g} -> {value:.3f}"


def coverage_at_target(run_dir: str | os.PathLike) -> tuple[float, str] | None:
    run_dir = Path(run_dir)
    test = _test_metrics(run_dir)
    if test is None:
        return None
    cov = test.get("coverage_at_precision")
    if not isinstance(cov, dict) or "coverage" not in cov:
        raise ValueError(f"{run_dir / 'metrics.json'}: test metric 'coverage_at_precision' is missing; run `bigmodel evaluate`")
    target = cov.get("target_precision")
    reached = bool(cov.get("target_reached", True))
    value = _clip(float(cov["coverage"])) if reached else 0.0
    where = "validation-chosen threshold" if cov.get("source") == "decision" else "in-sample threshold"
    return value, (
        f"test coverage {float(cov['coverage']):.4f} with covered accuracy {float(cov['covered_accuracy']):.4f} at the "
        f"{where} {float(cov['threshold']):.4f} for target precision {target} "
        f"(coverage_at_precision, metrics.json){'' if reached else '; target not reached on validation -> 0'}"
    )


# -- R: inference cost ------------------------------------------------------------------------


def _cpu_name() -> str:
    fallback = platform.processor() or platform.machine()
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:  # not Linux
        return fallback
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else fallback


def measure_cost(run_dir: str | os.PathLike, *, batch_size: int = 32, messages: int = 1000,
                 threads: int | None = None) -> dict[str, Any]:
    """Time the serving path (``bigmodel.load(...).predict``) on CPU; write cost_per_1k.json.

    Uses ``export/model.int8.onnx`` when present (what one would deploy on CPU), else
    ``export/model.onnx``. Tokenisation, ONNX Runtime and the hand-off decision are included.
    ``messages`` (the run's held-out messages, repeated as needed) are predicted in batches of
    ``batch_size`` after one warm-up pass; the best of three passes is kept.
    """
    from bigmodel.core.predict import Predictor
    from bigmodel.core.runs import Run

    run = Run.load(run_dir)
    candidates = [run.path / "export" / "model.int8.onnx", run.path / "export" / "model.onnx"]
    model_path = next((p for p in candidates if p.is_file()), None)
    if model_path is None:
        raise FileNotFoundError(f"{run.path / 'export'}: no model.onnx or model.int8.onnx; run `bigmodel export --onnx {run.path}`")
    predictor = Predictor.load(model_path, provider="cpu", batch_size=batch_size, threads=threads)
    texts, _ = run.heldout()
    texts = [texts[i % len(texts)] for i in range(messages)]

    def one_pass() -> float:
        start = time.perf_counter()
        predictor.predict(texts, top_k=1)
        return time.perf_counter() - start

    one_pass()  # warm-up
    seconds = min(one_pass() for _ in range(3))
    result = {
        "seconds_per_1k": round(seconds * 1000 / len(texts), 4),
        "model_file": str(model_path.relative_to(run.path)),
        "provider": predictor.provider,
        "batch_size": batch_size,
        "messages": len(texts),
        "threads": threads,
        "cpu_count": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "hardware": _cpu_name(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    _write_json(run.path / COST_FILE, result)
    return result


def cost_per_1k(run_dir: str | os.PathLike) -> tuple[float, str] | None:
    run_dir = Path(run_dir)
    path = run_dir / COST_FILE
    if path.is_file():
        cost, how = _read(path), "read from"
    elif (run_dir / "export" / "model.onnx").is_file() or (run_dir / "export" / "model.int8.onnx").is_file():
        cost, how = measure_cost(run_dir), "measured now, written to"
    else:
        return None  # not exported: no deployable model to cost
    seconds = float(cost["seconds_per_1k"])
    value = COST_HALF_VALUE_SECONDS / (COST_HALF_VALUE_SECONDS + seconds)
    return value, (
        f"{seconds:.3f} s per 1000 messages with {cost['model_file']} on {cost['hardware']} "
        f"({cost['provider']}, batch {cost['batch_size']}, {cost.get('cpu_count')} cores, load "
        f"{cost.get('load_average_1min')}; {how} {COST_FILE}): "
        f"{COST_HALF_VALUE_SECONDS:g} / ({COST_HALF_VALUE_SECONDS:g} + s) -> {value:.3f}"
    )
