"""k-fold cross-validation through the engine, with the baselines on the same rows."""

from __future__ import annotations

import json

import pytest


def test_cross_validate_two_folds(tmp_path, shared_data, isolated_cache, monkeypatch):
    import torch

    from bigmodel_finance.evaluation import CV_FILE, cross_validate
    from bigmodel_finance.value import fold_stability

    torch.set_num_threads(1)
    monkeypatch.setenv("BIGMODEL_DATA_MIRROR", str(shared_data))
    result = cross_validate(shared_data / "german_credit", out=tmp_path / "cv", preset="demo",
                            sets=["max_steps=4"], folds=2, seed=0)
    stored = json.loads((tmp_path / "cv" / CV_FILE).read_text())
    assert stored["summary"] == result["summary"]
    assert stored["folds"] == 2 and stored["rows"] == 1000
    for name in ("ft_transformer", "logistic_regression", "lightgbm"):
        folds = stored["per_fold"][name]
        assert len(folds) == 2 and sum(f["n"] for f in folds) == 1000  # every applicant is tested exactly once
        assert stored["summary"][name]["auroc"]["std"] >= 0
        for fold in folds:
            assert fold["reject_all"] == pytest.approx(0.7, abs=0.01)  # stratified: 30% bad in every fold
    assert stored["summary"]["logistic_regression"]["auroc"]["mean"] > 0.72
    assert not (tmp_path / "cv" / "fold-0").exists()  # fold runs are removed unless keep_runs
    value, evidence = fold_stability(tmp_path)  # cv/cv.json under a run directory
    assert 0 <= value <= 1 and "2-fold AUROC" in evidence and "cv/cv.json" in evidence


def test_bagged_baseline_is_scored_out_of_fold_on_the_engines_folds():
    """With bagging, a baseline trains one member per engine fold of train + validation: each pooled
    row's validation score comes from the member that did not see it, the test score is the mean."""
    import numpy as np

    from bigmodel.core.data import Split, join_splits
    from bigmodel.core.train import bagging_folds
    from bigmodel_finance.baselines import logistic_regression
    from bigmodel_finance.evaluation import _fit_baseline

    rng = np.random.default_rng(0)

    def split(n):
        x = rng.normal(size=n)
        y = (x + rng.normal(scale=0.8, size=n) > 0.5).astype(np.int64)
        return Split({"x": x, "c": np.array(["a", "b"] * (n // 2), dtype=object)}, y, [f"r:{i}" for i in range(n)])

    splits = {"train": split(120), "validation": split(40), "test": split(50)}
    labels, out_of_fold, test = _fit_baseline(logistic_regression, splits, bagging=4, positive_id=1, seed=7)
    pool = join_splits([splits["train"], splits["validation"]])
    np.testing.assert_array_equal(labels, pool.labels)
    expected_test = []
    for train_idx, val_idx in bagging_folds(pool.labels, 4, seed=7):
        held = pool.take(val_idx)
        probs = logistic_regression(pool.take(train_idx), {"v": held, "t": splits["test"]}, positive_id=1, seed=7)
        np.testing.assert_allclose(out_of_fold[val_idx], probs["v"])
        expected_test.append(probs["t"])
    np.testing.assert_allclose(test, np.mean(expected_test, axis=0))
    single = _fit_baseline(logistic_regression, splits, bagging=1, positive_id=1, seed=7)
    np.testing.assert_array_equal(single[0], splits["validation"].labels)
