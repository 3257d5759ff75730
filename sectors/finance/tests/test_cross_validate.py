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
