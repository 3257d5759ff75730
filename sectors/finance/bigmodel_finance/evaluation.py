"""The finance report of a run, and stratified k-fold cross-validation against the baselines.

:func:`finance_report` reads a finished run (``bigmodel train finance``), rebuilds exactly its
splits (same data, seed and validation fraction as the engine), fits logistic regression and
LightGBM on the same training rows, applies the same decision procedure (calibration and cost
threshold on validation) to all three, and writes ``finance_report.json``,
``score_distribution_test.png`` and ``calibration_test.png`` into the run.

:func:`cross_validate` splits German Credit into ``k`` stratified folds; for each fold it trains
the FT-Transformer through the engine (``bigmodel.core.train.train``; each fold is a complete run
under ``<out>/fold-<i>``) and the baselines on the same rows, and writes ``cv.json`` with the
per-fold and mean ± std AUROC, Brier, ECE and expected cost of each model.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from .baselines import BASELINES
from .decision import DECISION, apply_calibration, brier, policy_costs
from .metrics import auroc_of, calibration_png, ece_of, score_distribution_png

__all__ = ["REPORT_FILE", "CV_FILE", "score_policy", "finance_report", "cross_validate"]

REPORT_FILE = "finance_report.json"
CV_FILE = "cv.json"
MODEL = "ft_transformer"


def _write_json(path: Path, data: Any) -> None:
    from bigmodel.core.specs import atomic_write_text

    atomic_write_text(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


def score_policy(y_val: np.ndarray, p_val: np.ndarray, y_test: np.ndarray, p_test: np.ndarray,
                 label_map: Any, recipe: Any) -> dict[str, Any]:
    """Fit the sector decision on validation P(positive) and measure it on test.

    Returns the decision parameters and the test metrics: AUROC, Brier and ECE of raw and
    calibrated P(positive), cost per applicant at the stored threshold, accept-all and reject-all.
    """
    y_val, y_test = np.asarray(y_val), np.asarray(y_test)
    positive = label_map.positive_id
    params = DECISION.fit(y_val, np.stack([1 - p_val, p_val], axis=1), label_map, recipe)
    t = (y_test == positive).astype(np.int64)
    calibrated = apply_calibration(p_test, params["calibration"])
    cost_fn, cost_fp = params["cost_fn"], params["cost_fp"]
    accept_all, reject_all = cost_fn * t.mean(), cost_fp * (1 - t.mean())
    cost = policy_costs(t, calibrated, params["threshold"], cost_fn, cost_fp)
    return {
        "decision": params,
        "test": {
            "n": int(len(t)),
            "auroc": auroc_of(t, p_test),
            "brier_raw": brier(t, p_test),
            "brier": brier(t, calibrated),
            "ece_raw": ece_of(t, p_test),
            "ece": ece_of(t, calibrated),
            "expected_cost": cost,
            "accept_all": float(accept_all),
            "reject_all": float(reject_all),
            "saving_vs_best_trivial": float(min(accept_all, reject_all) - cost),
            "reject_rate": float(np.mean(calibrated >= params["threshold"])),
        },
        "calibrated_test": calibrated,
    }


def _splits_of(run: Any) -> dict[str, Any]:
    """The run's splits, rebuilt the way ``bigmodel train`` built them."""
    from bigmodel.core import get_registry
    from bigmodel.core.data import load_splits, subset

    info = run.info
    if info.get("data_path"):
        source: Any = Path(info["data_path"])
    elif info.get("dataset"):
        source = get_registry().dataset(info["dataset"])
    else:
        raise ValueError(f"{run.path / 'run.json'}: records no dataset or data path")
    seed = int(info.get("seed", 0))
    splits, _ = load_splits(source, label_map=run.label_map, loader=info.get("loader") if info.get("data_path") else None,
                            options=info.get("loader_options") or None, task=run.kind, seed=seed, validation_fraction=float(run.recipe["validation_fraction"]),
                            progress=False)
    if "test" not in splits:
        raise ValueError(f"{run.path}: its data has no test split; the finance report compares models on test")
    splits["train"] = subset(splits["train"], int(run.recipe.get("train_subset", 0)), seed)
    for name in ("validation", "test"):
        splits[name] = subset(splits[name], int(run.recipe.get("eval_subset", 0)), seed)
    return splits


def _timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def finance_report(run_dir: str | os.PathLike) -> dict[str, Any]:
    """Compare the run's FT-Transformer with logistic regression and LightGBM on its own test split."""
    import torch

    from bigmodel.core.evaluate import predict_proba
    from bigmodel.core.runs import Run

    run = Run.load(run_dir)
    splits = _splits_of(run)
    positive = run.label_map.positive_id
    if positive is None or len(run.label_map) != 2:
        raise ValueError(f"{run.path}: the finance report needs a binary label map with a positive class")
    recipe = run.recipe_values()
    bagging = int(run.info.get("bagging", 1) or 1)
    model = run.build_model()
    preprocessor = run.preprocessor()
    with torch.inference_mode():
        test_proba, seconds = _timed(predict_proba, model, preprocessor, splits["test"].inputs, device="cpu")
    # validation scores as training wrote them (a bagged run's are out-of-fold: its members trained on those rows)
    val_labels, val_proba = run.predictions("validation")
    labels = {"validation": val_labels, "test": splits["test"].labels}
    proba = {"validation": val_proba[:, positive], "test": test_proba[:, positive]}
    models: dict[str, Any] = {MODEL: score_policy(labels["validation"], proba["validation"], labels["test"],
                                                  proba["test"], run.label_map, recipe)}
    models[MODEL]["scoring_ms_per_applicant"] = 1000 * seconds / len(labels["test"])
    calibrated = {MODEL: models[MODEL].pop("calibrated_test")}
    for name, fit in BASELINES.items():
        (y_val, p_val, p_test), fit_seconds = _timed(_fit_baseline, fit, splits, bagging=bagging, positive_id=positive,
                                                     seed=int(run.info.get("seed", 0)))
        if not np.array_equal(y_val, labels["validation"]):
            raise RuntimeError(f"{run.path}: the baselines' validation rows differ from the run's")
        models[name] = score_policy(y_val, p_val, labels["test"], p_test, run.label_map, recipe)
        models[name]["train_seconds"] = fit_seconds
        calibrated[name] = models[name].pop("calibrated_test")
    y_test = (labels["test"] == positive).astype(np.int64)
    charts = [
        score_distribution_png(y_test, calibrated[MODEL], run.path / "score_distribution_test.png",
                               threshold=models[MODEL]["decision"]["threshold"],
                               title=f"FT-Transformer, test (n={len(y_test)})"),
        calibration_png(y_test, {"raw": proba["test"], "calibrated": calibrated[MODEL]}, run.path / "calibration_test.png",
                        title="FT-Transformer calibration, test"),
    ]
    lr = models["logistic_regression"]["test"]
    report = {
        "run": str(run.path),
        "split_sizes": {k: len(v) for k, v in splits.items()},
        "bagging": bagging,
        "models": {k: {kk: vv for kk, vv in v.items() if kk != "decision"} | {"threshold": v["decision"]["threshold"],
                   "calibration": v["decision"]["calibration"]["method"]} for k, v in models.items()},
        "auroc_gain_over_logistic": models[MODEL]["test"]["auroc"] - lr["auroc"],
        "cost_vs_logistic": models[MODEL]["test"]["expected_cost"] - lr["expected_cost"],
        "charts": [p.name for p in charts],
    }
    _write_json(run.path / REPORT_FILE, report)
    return report


# -- k-fold cross-validation -------------------------------------------------------------------


def _german_rows(source: Path) -> tuple[list[str], np.ndarray, Path]:
    """Raw lines of german.data, their labels (1 = bad) and the german.doc beside it."""
    from .german import CLASS_NAMES

    data = source / "german.data" if source.is_dir() else source
    doc = data.parent / "german.doc"
    if not data.is_file() or not doc.is_file():
        raise ValueError(f"{source}: cross_validate needs german.data and german.doc there")
    lines = [line for line in data.read_text(encoding="latin-1").splitlines() if line.strip()]
    classes = [line.split()[-1] for line in lines]
    bad = [c for c in classes if c not in CLASS_NAMES]
    if bad:
        raise ValueError(f"{data}: class {bad[0]!r} is neither 1 nor 2")
    return lines, np.array([CLASS_NAMES[c] == "bad" for c in classes], dtype=np.int64), doc


def _fit_baseline(fit: Any, splits: dict[str, Any], *, bagging: int, positive_id: int,
                  seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(validation labels, validation P(positive), test P(positive)) of one baseline, trained as the
    engine trained the FT-Transformer: on the train split, or for ``bagging`` k > 1 as k members on
    the engine's folds of train + validation (out-of-fold validation scores, mean test score)."""
    evaluate = {"validation": splits["validation"], "test": splits["test"]}
    if bagging <= 1:
        probs = fit(splits["train"], evaluate, positive_id=positive_id, validation=splits["validation"], seed=seed)
        return splits["validation"].labels, probs["validation"], probs["test"]
    from bigmodel.core.data import join_splits
    from bigmodel.core.train import bagging_folds

    pool = join_splits([splits["train"], splits["validation"]])
    out_of_fold, test = np.zeros(len(pool)), []
    for train_idx, val_idx in bagging_folds(pool.labels, bagging, seed):
        held = pool.take(val_idx)
        probs = fit(pool.take(train_idx), {"validation": held, "test": splits["test"]}, positive_id=positive_id,
                    validation=held, seed=seed)
        out_of_fold[val_idx] = probs["validation"]
        test.append(probs["test"])
    return pool.labels, out_of_fold, np.mean(test, axis=0)


def cross_validate(source: str | os.PathLike | None = None, *, out: str | os.PathLike, preset: str | None = "full",
                   sets: list[str] | tuple[str, ...] = (), folds: int | None = None, seed: int = 0,
                   quiet: bool = True, keep_runs: bool = False) -> dict[str, Any]:
    """Stratified k-fold CV of the FT-Transformer, logistic regression and LightGBM on German Credit.

    ``source``: a folder holding german.data and german.doc (default: the registered dataset,
    fetched and verified). Each fold: the other folds are the training rows, a stratified
    ``validation_fraction`` of them the validation split (early stopping, calibration, threshold);
    the fold itself is the test split. All models see the same rows. Writes ``<out>/cv.json``.
    """
    from bigmodel.core import get_registry
    from bigmodel.core.data import fetch, load_splits
    from bigmodel.core.train import plan, train
    from sklearn.model_selection import StratifiedKFold

    sector = get_registry().sector("finance")
    task = sector.task()
    recipe = plan(sector, preset=preset, sets=list(sets)).recipe
    k = int(folds or recipe.cv_folds)
    if source is None:
        source = fetch(get_registry().dataset("finance/german_credit"), progress=not quiet)
    lines, y, doc = _german_rows(Path(source))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    per_fold: dict[str, list[dict[str, Any]]] = {MODEL: [], **{name: [] for name in BASELINES}}
    started = time.perf_counter()
    for i, (train_rows, test_rows) in enumerate(StratifiedKFold(k, shuffle=True, random_state=seed).split(lines, y)):
        fold_dir = out / f"fold-{i}"
        data_dir = fold_dir / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(doc, data_dir / "german.doc")
        for name, rows in (("train.data", train_rows), ("test.data", test_rows)):
            (data_dir / name).write_text("".join(lines[j] + "\n" for j in rows), encoding="latin-1")
        run_dir, seconds = _timed(train, "finance", data=data_dir, loader="german_credit", preset=preset, sets=list(sets),
                                  out=fold_dir / "run", seed=seed, quiet=quiet, overwrite=True)
        from bigmodel.core.runs import Run

        run = Run.load(run_dir)
        labels_val, proba_val = run.predictions("validation")
        labels_test, proba_test = run.predictions("test")
        positive = run.label_map.positive_id
        scored = score_policy(labels_val, proba_val[:, positive], labels_test, proba_test[:, positive],
                              run.label_map, run.recipe_values())
        per_fold[MODEL].append(scored["test"] | {"train_seconds": seconds})
        # the baselines on exactly the rows the engine used (same loader, seed and validation carve,
        # and for a bagged run the same members' folds)
        splits, _ = load_splits(data_dir, label_map=task.label_map, loader="german_credit", task="tabular",
                                seed=seed, validation_fraction=recipe.validation_fraction, progress=False)
        for name, fit in BASELINES.items():
            (y_val, p_val, p_test), fit_seconds = _timed(_fit_baseline, fit, splits, bagging=int(recipe.bagging),
                                                         positive_id=positive, seed=seed)
            if not np.array_equal(y_val, labels_val) or not np.array_equal(splits["test"].labels, labels_test):
                raise RuntimeError(f"fold {i}: the baselines' splits differ from the engine's run {run_dir}")
            scored = score_policy(y_val, p_val, splits["test"].labels, p_test, run.label_map, run.recipe_values())
            per_fold[name].append(scored["test"] | {"train_seconds": fit_seconds})
        if not keep_runs:
            shutil.rmtree(fold_dir)
    summary = {
        name: {metric: {"mean": float(np.mean([f[metric] for f in fold_list])),
                        "std": float(np.std([f[metric] for f in fold_list], ddof=1))}
               for metric in ("auroc", "brier", "ece", "expected_cost", "accept_all", "reject_all", "train_seconds")}
        for name, fold_list in per_fold.items()
    }
    result = {
        "folds": k,
        "seed": seed,
        "preset": preset,
        "sets": list(sets),
        "recipe_digest": recipe.digest(),
        "rows": len(lines),
        "seconds": time.perf_counter() - started,
        "summary": summary,
        "per_fold": per_fold,
    }
    _write_json(out / CV_FILE, result)
    return result
