"""A short real fine-tune of all-MiniLM-L6-v2 on a stratified BANKING77 subset, through the CLI:
train -> evaluate -> export (ONNX, validation gate) -> predict with hand-off -> value factors."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from bigmodel.cli._main import cli

TINY = [
    "train_subset=154",  # 2 messages per intent
    "eval_subset=77",  # 1 per intent in validation and test
    "max_steps=4",
    "batch_size=16",
    "eval_batch_size=77",
    "max_length=32",
    "learning_rate=2e-4",
]


def _ok(result):
    """stdout of a successful command (click's ``output`` also holds stderr notes such as the provider)."""
    assert result.exit_code == 0, result.output + (repr(result.exception) if result.exception else "")
    return result.stdout


@pytest.mark.slow
def test_train_evaluate_export_predict_with_handoff(shared_data, minilm_path, isolated_cache, monkeypatch, tmp_path):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(2)
    monkeypatch.setenv("BIGMODEL_DATA_MIRROR", str(shared_data))
    runner = CliRunner()
    run = tmp_path / "run"
    args = ["train", "customer-service", "--preset", "demo", "--out", str(run), "--quiet", "--seed", "7",
            "--base-model", str(minilm_path)]
    for item in TINY:
        args += ["--set", item]
    _ok(runner.invoke(cli, args))

    # the run carries the 77 intents and the hand-off operating point chosen on validation
    info = json.loads((run / "run.json").read_text())
    assert info["sector"] == "customer_service" and info["dataset"] == "customer_service/banking77"
    assert info["counts"] == {"train": 154, "validation": 77, "test": 77}
    decision = json.loads((run / "decision.json").read_text())
    assert decision["ref"] == "bigmodel_customer_service.decision:handoff"
    params = decision["params"]
    assert params["target_precision"] == 0.95 and 0 <= params["val_coverage"] <= 1
    metrics = json.loads((run / "metrics.json").read_text())
    assert len(json.loads((run / "label_map.json").read_text())["id2label"]) == 77

    out = _ok(runner.invoke(cli, ["evaluate", str(run), "--json"]))
    test = json.loads(out)
    for name in ("accuracy", "macro_f1", "ece", "top3_accuracy", "per_intent_f1", "coverage_at_precision"):
        assert name in test, name
    assert test["top3_accuracy"] >= test["accuracy"]
    assert len(test["per_intent_f1"]["worst"]) == 10
    cov = test["coverage_at_precision"]
    assert cov["source"] == "decision" and cov["threshold"] == pytest.approx(params["threshold"])
    assert cov["coverage"] + cov["handoff_rate"] == pytest.approx(1.0)
    assert test["accuracy"] == pytest.approx(metrics["test"]["accuracy"])

    _ok(runner.invoke(cli, ["export", "--onnx", str(run)]))
    onnx_path = run / "export" / "model.onnx"
    assert onnx_path.is_file()

    # the threshold travels in the ONNX metadata and drives `handoff` in predictions
    import bigmodel

    predictor = bigmodel.load(str(onnx_path), provider="cpu")
    assert predictor.metadata["decision"]["params"] == params
    messages = ["I still have not received my new card", "Why was I charged a fee for my transfer?",
                "My card got stolen yesterday", "Can I top up with Apple Pay?"]
    rows = predictor.predict(messages)
    assert len(rows) == len(messages)
    for row in rows:
        assert isinstance(row["handoff"], bool)
        expected = row["score"] < params["threshold"] or not params["target_reached"]
        assert row["handoff"] == expected, (row["score"], params)

    out = _ok(runner.invoke(cli, ["predict", str(run), *messages, "--json", "--provider", "cpu"]))
    cli_rows = json.loads(out)
    assert [r["label"] for r in cli_rows] == [r["label"] for r in rows]
    assert [r["handoff"] for r in cli_rows] == [r["handoff"] for r in rows]

    # value factors: each measured from the run's files, with evidence naming them
    from bigmodel_customer_service import value

    t_value, t_evidence = value.gain_over_tfidf(run)
    baseline = json.loads((run / "baseline_tfidf.json").read_text())
    assert baseline["train_examples"] == 154 and baseline["test_examples"] == 77
    assert 0 <= t_value <= 1 and "baseline_tfidf.json" in t_evidence and "metrics.json" in t_evidence
    k_value, k_evidence = value.intents_mastered(run)
    assert 0 <= k_value <= 1 and "/77 intents" in k_evidence
    assert value.cost_per_1k(tmp_path / "nowhere") is None  # nothing exported: not applicable
    cost = value.measure_cost(run, messages=64)  # kept short for the test; the default is 1000
    r_value, r_evidence = value.cost_per_1k(run)  # reads the file just written
    assert 0 < r_value < 1 and "read from cost_per_1k.json" in r_evidence and "export/model.onnx" in r_evidence
    assert f"{cost['seconds_per_1k']:.3f} s per 1000 messages" in r_evidence
