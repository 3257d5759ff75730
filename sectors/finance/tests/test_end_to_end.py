"""A short real training on German Credit through the engine: train → evaluate → report → export → predict."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from click.testing import CliRunner


@pytest.fixture(scope="module")
def trained(tmp_path_factory, shared_data):
    """One demo run (German Credit from the shared mirror), evaluated, reported on and exported."""
    import os

    import torch

    from bigmodel.cli import cli
    from bigmodel.core import reset

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("finance")
    env = {"BIGMODEL_DATA_MIRROR": str(shared_data), "BIGMODEL_CACHE_DIR": str(root / "cache")}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    reset()
    try:
        runner = CliRunner()
        run = root / "run"
        result = runner.invoke(cli, ["train", "finance", "--preset", "demo", "--out", str(run), "--seed", "0", "--quiet"])
        assert result.exit_code == 0, result.output
        # the sector report (baselines on the same split, charts) is written by train through SectorTask.report
        assert (run / "finance_report.json").is_file()
        (run / "finance_report.json").unlink()
        result = runner.invoke(cli, ["evaluate", str(run), "--json"])
        assert result.exit_code == 0, result.output
        report = json.loads((run / "finance_report.json").read_text())  # and again by evaluate
        onnx_path = root / "credit.onnx"
        result = runner.invoke(cli, ["export", str(run), "--onnx", "--out", str(onnx_path)])
        assert result.exit_code == 0, result.output
        yield {"run": run, "report": report, "onnx": onnx_path, "root": root}
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        reset()


def test_run_holds_decision_metrics_and_report(trained):
    run = trained["run"]
    decision = json.loads((run / "decision.json").read_text())["params"]
    assert decision["cost_fn"] == 5 and decision["cost_fp"] == 1 and 0 <= decision["threshold"] <= 1
    assert decision["validation"]["brier_after"] <= decision["validation"]["brier_before"] + 1e-9
    metrics = json.loads((run / "metrics.json").read_text())["test"]
    assert metrics["n"] == 200  # 20% stratified test split of 1000 applicants
    for name in ("auroc", "gini", "ks_statistic", "brier", "expected_cost"):
        assert name in metrics
    assert metrics["gini"] == pytest.approx(2 * metrics["auroc"] - 1)
    assert metrics["expected_cost"]["threshold_source"] == "decision.json"
    report = trained["report"]
    assert set(report["models"]) == {"ft_transformer", "logistic_regression", "lightgbm"}
    # the FT-Transformer in the report is the run's own model on the run's own test split
    assert report["models"]["ft_transformer"]["test"]["auroc"] == pytest.approx(metrics["auroc"], abs=1e-9)
    assert report["models"]["ft_transformer"]["test"]["expected_cost"] == pytest.approx(
        metrics["expected_cost"]["expected_cost"], abs=1e-9)
    assert report["models"]["logistic_regression"]["test"]["auroc"] > 0.7  # a real baseline on real data
    for chart in report["charts"]:
        assert (run / chart).read_bytes()[:4] == b"\x89PNG"
    from bigmodel_finance import value

    for measure in (value.auroc_gain, value.cost_saving, value.calibration_quality, value.compute_cost):
        number, evidence = measure(run)
        assert 0 <= number <= 1 and ".json" in evidence
    assert value.fold_stability(run) is None  # no k-fold run stored with this run


def test_onnx_matches_pytorch_on_real_rows(trained):
    import onnxruntime as ort
    import torch

    from bigmodel.core.runs import Run
    from bigmodel.core.tasks.base import load_preprocessor

    run = Run.load(trained["run"])
    inputs, _ = run.heldout()
    preprocess_dir = trained["onnx"].parent / f"{trained['onnx'].stem}.preprocess"
    if not preprocess_dir.is_dir():
        preprocess_dir = run.path / "preprocess"
    batch = load_preprocessor(preprocess_dir)(inputs)
    session = ort.InferenceSession(str(trained["onnx"]), providers=["CPUExecutionProvider"])
    onnx_logits = session.run(["logits"], batch)[0]
    with torch.no_grad():
        torch_logits = run.build_model()(**{k: torch.from_numpy(v) for k, v in batch.items()}).numpy()
    assert onnx_logits.shape == (len(next(iter(inputs.values()))), 2)
    assert np.abs(onnx_logits - torch_logits).max() < 1e-4


def _write_rows_csv(path, inputs, rows):
    names = list(inputs)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(names)
        for i in rows:
            writer.writerow(["" if inputs[n][i] is None or (isinstance(inputs[n][i], float) and np.isnan(inputs[n][i]))
                             else (f"{inputs[n][i]:g}" if isinstance(inputs[n][i], float) else inputs[n][i]) for n in names])


def _predict_cli(onnx_path, *inputs):
    from bigmodel.cli import cli

    return CliRunner().invoke(cli, ["predict", str(onnx_path), *map(str, inputs), "--json"])


def test_predict_from_raw_csv_rows(trained, tmp_path):
    """`bigmodel predict` takes raw rows (readable categories, plain numbers) and applies the stored decision."""
    import torch

    from bigmodel.core.runs import Run
    from bigmodel_finance.decision import DECISION

    run = Run.load(trained["run"])
    inputs, labels = run.heldout()
    rows = list(range(12))
    _write_rows_csv(tmp_path / "applicants.csv", inputs, rows)
    result = _predict_cli(trained["onnx"], tmp_path / "applicants.csv")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert len(out) == len(rows)
    subset = {k: v[rows] for k, v in inputs.items()}
    batch = run.preprocessor()(subset)
    with torch.no_grad():
        proba = torch.softmax(run.build_model()(**{k: torch.from_numpy(v) for k, v in batch.items()}), -1).numpy()
    expected = DECISION.apply(proba, run.decision["params"], run.label_map)
    for got, want, p in zip(out, expected, proba):
        assert got["decision"] == want["decision"]
        assert got["p_default"] == pytest.approx(want["p_default"], abs=1e-4)
        assert got["expected_cost"] == pytest.approx(want["expected_cost"], abs=1e-4)
        assert dict((t["label"], t["score"]) for t in got["top_k"])["bad"] == pytest.approx(p[1], abs=1e-4)


def test_unseen_categories_and_missing_values(trained):
    """An unseen category and a missing one both land in the unknown bucket; missing numbers are imputed."""
    import bigmodel

    from bigmodel.core.runs import Run

    inputs, _ = Run.load(trained["run"]).heldout()
    row = {k: (None if isinstance(v[0], float) and np.isnan(v[0]) else v[0]) for k, v in inputs.items()}
    predictor = bigmodel.load(trained["onnx"])
    unseen = predictor.predict([{**row, "purpose": "spaceship"}, {**row, "purpose": None},
                                {**row, "duration_months": ""}, {**row, "duration_months": None}])
    assert unseen[0]["p_default"] == pytest.approx(unseen[1]["p_default"], abs=1e-6)
    assert unseen[2]["p_default"] == pytest.approx(unseen[3]["p_default"], abs=1e-6)
    for result in unseen:
        assert result["decision"] in {"accept", "reject"} and 0 <= result["p_default"] <= 1


def test_wrong_column_types_and_missing_columns_are_clear_errors(trained, tmp_path):
    from bigmodel.core.runs import Run

    inputs, _ = Run.load(trained["run"]).heldout()
    row = {k: (v[0] if isinstance(v[0], str) else float(v[0])) for k, v in inputs.items()}
    result = _predict_cli(trained["onnx"], json.dumps({**row, "duration_months": "twelve"}))
    assert result.exit_code != 0
    assert "duration_months" in result.output and "'twelve'" in result.output
    del row["age_years"]
    result = _predict_cli(trained["onnx"], json.dumps(row))
    assert result.exit_code != 0 and "missing column 'age_years'" in result.output


def test_generic_csv_errors_name_the_problem(tmp_path, shared_data, isolated_cache):
    """Training on a user's CSV: a missing target column or a non-numeric value stops with file:line."""
    from bigmodel.cli import cli
    from bigmodel_finance.german import load_german_credit

    raw = load_german_credit(shared_data / "german_credit", options={})["train"]
    names = ["duration_months", "credit_amount", "purpose", "housing"]
    with open(tmp_path / "loans.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(names + ["risk"])
        for i in range(60):
            writer.writerow([raw.inputs[n][i] if isinstance(raw.inputs[n][i], str) else f"{raw.inputs[n][i]:g}" for n in names]
                            + [raw.labels[i]])
    common = ["train", "finance", "--data", str(tmp_path / "loans.csv"), "--loader", "tabular_csv", "--preset", "demo",
              "--set", "max_steps=1", "--out", str(tmp_path / "run"), "--quiet",
              "--loader-option", "numeric=[duration_months,credit_amount]", "--loader-option", "categorical=[purpose,housing]"]
    result = CliRunner().invoke(cli, common + ["--loader-option", "target=class"])
    assert result.exit_code != 0
    assert "no target column 'class'" in result.output and "loans.csv" in result.output
    lines = (tmp_path / "loans.csv").read_text().splitlines()
    lines[5] = lines[5].replace(lines[5].split(",")[0], "twelve", 1)
    (tmp_path / "loans.csv").write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(cli, common + ["--loader-option", "target=risk"])
    assert result.exit_code != 0
    assert "loans.csv:6" in result.output and "'twelve' is not a number" in result.output


def test_bagged_run_report_uses_out_of_fold_validation(tmp_path, shared_data, isolated_cache, monkeypatch):
    """A bagged run (recipe bagging=2): the report's decision is fitted on the 800 out-of-fold scores
    the run stored, the baselines are bagged on the same folds, and the FT-Transformer's test numbers
    are the run's own."""
    import torch

    from bigmodel.core.train import train
    from bigmodel_finance.evaluation import finance_report

    torch.set_num_threads(1)
    monkeypatch.setenv("BIGMODEL_DATA_MIRROR", str(shared_data))
    run = train("finance", preset="demo", sets=["bagging=2", "max_steps=3"], out=tmp_path / "bag", seed=0, quiet=True)
    report = finance_report(run)
    assert report["bagging"] == 2
    with np.load(run / "predictions" / "validation.npz") as stored:
        assert len(stored["labels"]) == 800  # train + validation, scored out of fold
    assert set(report["models"]) == {"ft_transformer", "logistic_regression", "lightgbm"}
    test = json.loads((run / "metrics.json").read_text())["test"]
    assert report["models"]["ft_transformer"]["test"]["auroc"] == pytest.approx(test["auroc"], abs=1e-9)
    decision = json.loads((run / "decision.json").read_text())["params"]
    assert report["models"]["ft_transformer"]["threshold"] == pytest.approx(decision["threshold"])
