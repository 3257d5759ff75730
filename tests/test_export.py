"""ONNX export with the validation gate, on real MiniLM weights and real held-out banking77 texts.

The run directories are written without training by ``bigmodel.core.runs.write_run`` (the text run by
``bigmodel.testing.centroid_text_run``: MiniLM with a closed-form head over 4 banking77 intents).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from click.testing import CliRunner

from bigmodel.cli import cli
from bigmodel.testing import BANKING77_SAMPLE_LABELS as TEXT_LABELS


# -- building run directories -----------------------------------------------------------------


def _finish_run(path: Path, *, kind: str, model, preprocessor, label_map, recipe: dict, builder: str,
                rebuild_base: str | None, heldout, labels, decision: dict | None = None,
                licences: dict | None = None) -> Path:
    from bigmodel.core.data import Split
    from bigmodel.core.runs import write_run

    split = Split(inputs=heldout, labels=np.asarray(labels, dtype=np.int64),
                  sources=[f"heldout[{i}]" for i in range(len(labels))])
    return write_run(path, kind=kind, model=model, preprocessor=preprocessor, label_map=label_map, builder=builder,
                     heldout=split, rebuild_base=rebuild_base, sector="testsector", task=f"{kind}_task",
                     model_name=f"{kind}_model", licences=licences or {"model": "Apache-2.0", "data": "CC-BY-4.0"},
                     recipe=recipe, decision=decision)


def build_text_run(path: Path, minilm_path: Path, shared_data: Path, *, n_per_label: int = 12,
                   decision: dict | None = None) -> Path:
    """A MiniLM classifier (real weights, closed-form 4-label head) with real held-out banking77 texts."""
    from bigmodel.testing import centroid_text_run

    return centroid_text_run(path, base=minilm_path, data=shared_data, n_heldout=n_per_label, sector="testsector",
                             task="text_task", model_name="text_model", decision=decision)


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def text_run(tmp_path_factory, minilm_path, shared_data) -> Path:
    import torch

    torch.set_num_threads(1)
    return build_text_run(tmp_path_factory.mktemp("runs") / "text", minilm_path, shared_data)


@pytest.fixture(scope="module")
def fp32_export(text_run) -> Path:
    from bigmodel.core.export import export_onnx

    return export_onnx(text_run, echo=lambda line: None)


# -- tests -------------------------------------------------------------------------------------


def test_fp32_export_passes_gate_and_writes_report(fp32_export, text_run):
    assert fp32_export == text_run / "export" / "model.onnx"
    report = json.loads((text_run / "export" / "export_report.json").read_text())
    assert report["passed"] is True
    assert report["samples"] == 48
    assert report["max_abs_logit_diff"] <= 1e-4
    assert report["label_disagreements"] == 0
    assert {1, 7, 32} <= set(report["batch_sizes"])
    assert (text_run / "export" / "model.preprocess" / "tokenizer.json").is_file()
    assert not [p for p in (text_run / "export").iterdir() if p.name.startswith(".")]  # no temp leftovers


def test_exported_graph_has_dynamic_batch_and_sequence(fp32_export, text_run):
    import onnxruntime as ort
    import torch

    from bigmodel.core.runs import Run

    run = Run.load(text_run)
    session = ort.InferenceSession(str(fp32_export), providers=["CPUExecutionProvider"])
    for inp in session.get_inputs():
        assert isinstance(inp.shape[0], str) and isinstance(inp.shape[1], str), inp.shape
    texts, _ = run.heldout()
    model, pre = run.build_model(), run.preprocessor()
    for batch in (texts[:1], texts[3:10], ["hi", "my card has not arrived yet and I ordered it two weeks ago, where is it?"]):
        arrays = pre(batch)
        got = session.run(["logits"], arrays)[0]
        with torch.inference_mode():
            ref = model(**{k: torch.from_numpy(v) for k, v in arrays.items()}).numpy()
        assert got.shape == (len(batch), 4)
        np.testing.assert_allclose(got, ref, atol=1e-4)


def test_inspect_round_trips_metadata(fp32_export, text_run):
    result = CliRunner().invoke(cli, ["inspect", str(fp32_export), "--json"])
    assert result.exit_code == 0, result.output
    meta = json.loads(result.output)
    assert meta["sector"] == "testsector" and meta["task"] == "text_task" and meta["kind"] == "text"
    assert meta["label_map"]["id2label"] == {str(i): n for i, n in enumerate(TEXT_LABELS)}
    assert meta["preprocess"]["max_length"] == 32 and meta["preprocess"]["tokenizer_file"] == "tokenizer.json"
    assert meta["input_names"] == ["input_ids", "attention_mask", "token_type_ids"]
    recipe = json.loads((text_run / "recipe.json").read_text())
    assert meta["recipe_digest"] == recipe["digest"] and len(recipe["digest"]) == 16
    assert meta["model_licence"] == "Apache-2.0" and meta["data_licence"] == "CC-BY-4.0"
    assert meta["precision"] == "fp32" and int(meta["opset"]) >= 17
    assert meta["bigmodel_version"]
    plain = CliRunner().invoke(cli, ["inspect", str(fp32_export)])
    assert plain.exit_code == 0 and "card_arrival" in plain.output and "testsector" in plain.output


def test_inspect_rejects_a_file_without_metadata(tmp_path):
    bad = tmp_path / "x.onnx"
    bad.write_bytes(b"not an onnx file")
    result = CliRunner().invoke(cli, ["inspect", str(bad)])
    assert result.exit_code != 0 and "x.onnx" in result.output


def test_int8_export_via_cli_reports_metric_change(text_run, fp32_export):
    result = CliRunner().invoke(cli, ["export", "--onnx", str(text_run), "--quantize", "int8", "--optimize"])
    assert result.exit_code == 0, result.output
    assert "gate PASSED" in result.output and "macro-F1" in result.output
    out = text_run / "export" / "model.int8.onnx"
    report = json.loads((text_run / "export" / "model.int8.export_report.json").read_text())
    assert report["passed"] and report["precision"] == "int8" and report["tolerance"] is None
    assert report["label_disagreement_rate"] <= 0.01
    assert set(report["metrics"]["change"]) == {"accuracy", "macro_f1"}
    import onnx

    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert "MatMulInteger" in ops or "DynamicQuantizeMatMul" in ops, sorted(ops)
    # the fast path: BERT fusions found with the config's shape, attention quantised as QAttention
    assert report["exporter"] == "torchscript"
    assert report["attention"] == {"num_heads": 12, "hidden_size": 384}
    assert report["fused_operators"]["Attention"] == 6 and report["fused_operators"]["SkipLayerNormalization"] == 12
    assert "fused operators: Attention x6" in result.output
    assert "QAttention" in ops, sorted(ops)
    assert (text_run / "export" / "model.onnx").is_file()  # fp32 export left alone


def test_feed_forward_matmuls_found_by_structure(text_run, fp32_export):
    """Both the exporter's graph (erf GELU) and the optimised one (fused BiasGelu) give 6 + 6."""
    import onnx

    from bigmodel.core.export import _optimize, ffn_matmuls, int8_fp32_nodes

    raw = ffn_matmuls(onnx.load(str(fp32_export)))
    assert len(raw["input"]) == len(raw["output"]) == 6
    assert all("intermediate/dense" in name for name in raw["input"]), raw["input"]
    assert all("/output/dense" in name and "attention" not in name for name in raw["output"]), raw["output"]
    optimized = fp32_export.with_name("opt-check.onnx")
    try:
        _optimize(fp32_export, optimized, transformer=True, fp16=False, num_heads=12, hidden_size=384)
        model = onnx.load(str(optimized))
        assert "BiasGelu" in {n.op_type for n in model.graph.node}
        assert ffn_matmuls(model) == raw  # the fused graph keeps the MatMul names
        assert int8_fp32_nodes(model, "none") == []
        assert sorted(int8_fp32_nodes(model, "ffn-output")) == sorted(raw["output"])
        assert sorted(int8_fp32_nodes(model, "ffn")) == sorted(raw["input"] + raw["output"])
    finally:
        optimized.unlink(missing_ok=True)


def test_int8_keep_fp32_leaves_the_feed_forward_layers_unquantised(text_run, tmp_path):
    import onnx

    from bigmodel.core.export import export_onnx, read_metadata

    out = export_onnx(text_run, out=tmp_path / "m.int8.onnx", optimize=True, quantize="int8", keep_fp32="ffn",
                      echo=lambda line: None)
    graph = onnx.load(str(out)).graph
    fp32_matmuls = [n.name for n in graph.node if n.op_type == "MatMul"]
    assert len(fp32_matmuls) == 12 and all("dense" in name for name in fp32_matmuls), fp32_matmuls
    assert {"QAttention", "MatMulInteger"} & {n.op_type for n in graph.node}  # the rest is int8
    report = json.loads((tmp_path / "m.int8.export_report.json").read_text())
    assert report["int8_keep_fp32"] == "ffn" and report["int8_fp32_nodes"] == 12
    assert [a["int8_keep_fp32"] for a in report["int8_attempts"]] == ["ffn"]
    assert read_metadata(out)["int8_keep_fp32"] == "ffn"


def _noisy_int8(real, levels_to_break):
    """Wrap ``_quantize_int8`` so that the levels named get random signs and sizes on every
    quantised weight scale (the gate then fails for real); the others are left alone."""
    def quantize(src, dst, keep_fp32="none"):
        import onnx
        from onnx import numpy_helper

        kept = real(src, dst, keep_fp32)
        if keep_fp32 in levels_to_break:
            proto = onnx.load(str(dst))
            for init in proto.graph.initializer:
                if init.name.endswith("_scale") and init.data_type == 1:
                    values = numpy_helper.to_array(init)
                    noise = np.random.default_rng(len(init.name)).uniform(-2, 2, values.shape)
                    init.CopyFrom(numpy_helper.from_array((values * noise).astype(np.float32), init.name))
            onnx.save(proto, str(dst))
        return kept
    return quantize


def test_int8_auto_falls_back_to_fp32_feed_forward_when_the_gate_fails(text_run, tmp_path, monkeypatch):
    from bigmodel.core import export as export_mod

    monkeypatch.setattr(export_mod, "_quantize_int8", _noisy_int8(export_mod._quantize_int8, {"none"}))
    out = tmp_path / "auto" / "model.int8.onnx"
    result = CliRunner().invoke(cli, ["export", "--onnx", str(text_run), "--optimize", "--quantize", "int8",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "int8, every layer quantised (0 MatMul nodes in fp32)" in result.output
    assert "gate failed: labels disagree" in result.output
    assert "int8, feed-forward output layers kept in fp32 (6 MatMul nodes in fp32)" in result.output
    report = json.loads((out.parent / "model.int8.export_report.json").read_text())
    assert report["passed"] and report["int8_keep_fp32"] == "ffn-output"
    assert [(a["int8_keep_fp32"], a["passed"]) for a in report["int8_attempts"]] == [("none", False), ("ffn-output", True)]
    assert export_mod.read_metadata(out)["int8_keep_fp32"] == "ffn-output"


def test_int8_gate_failing_at_every_level_removes_the_output(text_run, tmp_path, monkeypatch):
    from bigmodel.core import export as export_mod

    monkeypatch.setattr(export_mod, "_quantize_int8",
                        _noisy_int8(export_mod._quantize_int8, set(export_mod.INT8_KEEP_FP32)))
    out = tmp_path / "fail" / "model.int8.onnx"
    result = CliRunner().invoke(cli, ["export", "--onnx", str(text_run), "--optimize", "--quantize", "int8",
                                      "--out", str(out)])
    assert result.exit_code != 0 and "validation gate failed" in result.output
    assert sorted(p.name for p in out.parent.iterdir()) == ["model.int8.export_report.json"]
    report = json.loads((out.parent / "model.int8.export_report.json").read_text())
    assert [a["int8_keep_fp32"] for a in report["int8_attempts"]] == ["none", "ffn-output", "ffn"]
    assert not any(a["passed"] for a in report["int8_attempts"])


def test_corrupted_export_is_rejected_and_removed(text_run, monkeypatch, tmp_path):
    import onnx
    from onnx import numpy_helper

    from bigmodel.core import export as export_mod

    real = export_mod._torch_export

    def corrupted(model, example, kind, path, opset, **kwargs):
        real(model, example, kind, path, opset, **kwargs)
        proto = onnx.load(str(path))
        init = max(proto.graph.initializer, key=lambda t: int(np.prod(t.dims)) if t.data_type == 1 else 0)
        weights = numpy_helper.to_array(init).copy()
        weights += np.random.default_rng(0).normal(0, 0.05, weights.shape).astype(np.float32)  # noise on the largest weight
        init.CopyFrom(numpy_helper.from_array(weights, init.name))
        onnx.save(proto, str(path))

    monkeypatch.setattr(export_mod, "_torch_export", corrupted)
    out = tmp_path / "bad" / "model.onnx"
    out.parent.mkdir()
    out.write_bytes(b"stale file from an earlier export")
    result = CliRunner().invoke(cli, ["export", "--onnx", str(text_run), "--out", str(out)])
    assert result.exit_code != 0
    assert "gate FAILED" in result.output and "validation gate failed" in result.output
    assert "max |logit diff|" in result.output
    assert not out.exists() and not (out.parent / "model.preprocess").exists()
    report = json.loads((out.parent / "export_report.json").read_text())
    assert report["passed"] is False and report["max_abs_logit_diff"] > 1e-4
    assert sorted(p.name for p in out.parent.iterdir()) == ["export_report.json"]


def test_export_rejects_bad_arguments(text_run, tmp_path):
    runner = CliRunner()
    r = runner.invoke(cli, ["export", "--onnx", str(text_run), "--quantize", "int4"])
    assert r.exit_code != 0 and "int4" in r.output
    r = runner.invoke(cli, ["export", "--onnx", str(text_run), "--fp16", "--quantize", "int8"])
    assert r.exit_code != 0 and "--fp16" in r.output
    r = runner.invoke(cli, ["export", "--onnx", str(text_run), "--out", str(tmp_path / "m.bin")])
    assert r.exit_code != 0 and ".onnx" in r.output
    r = runner.invoke(cli, ["export", "--onnx", str(tmp_path / "nope")])
    assert r.exit_code != 0 and "nope" in r.output
    r = runner.invoke(cli, ["export", "--onnx", str(text_run), "--opset", "21", "--out", str(tmp_path / "m.onnx")])
    assert r.exit_code != 0 and "--opset 21" in r.output and "TorchScript" in r.output
    r = runner.invoke(cli, ["export", "--onnx", str(text_run), "--keep-fp32", "ffn"])
    assert r.exit_code != 0 and "--keep-fp32 applies to --quantize int8" in r.output
    r = runner.invoke(cli, ["export", "--onnx", str(text_run), "--quantize", "int8", "--keep-fp32", "attention"])
    assert r.exit_code != 0 and "attention" in r.output


def build_tabular_run(path: Path, shared_data: Path, n: int = 64) -> tuple[Path, list[dict]]:
    """A fresh tabular MLP over real German-credit rows; returns the run and raw string rows."""
    import torch

    from bigmodel.core.data import Split
    from bigmodel.core.specs import LabelMap
    from bigmodel.core.tasks.tabular import TabularPreprocessor, build_mlp

    torch.manual_seed(0)
    lines = (shared_data / "german_credit" / "german.data").read_text().split("\n")
    rows = [line.split() for line in lines if line.strip()][: n + 200]
    names = [f"a{i + 1}" for i in range(20)]
    raw = [dict(zip(names, r[:20])) for r in rows]
    columns = {name: (np.array([r[name] for r in raw], dtype=object) if raw[0][name].startswith("A")
                      else np.array([float(r[name]) for r in raw])) for name in names}
    labels = np.array([int(r[20]) - 1 for r in rows], dtype=np.int64)
    label_map = LabelMap.from_names(["good", "bad"], positive="bad")
    pre = TabularPreprocessor()
    pre.fit(Split(inputs={k: v[200:] for k, v in columns.items()}, labels=labels[200:], sources=[]))
    recipe = {"hidden_size": 16, "num_layers": 1, "dropout": 0.0, "embedding_dim": 4}
    model = build_mlp(label_map=label_map, recipe=SimpleNamespace(**recipe), base=None, preprocess=pre.spec())
    run = _finish_run(path, kind="tabular", model=model, preprocessor=pre, label_map=label_map, recipe=recipe,
                      builder="bigmodel.core.tasks.tabular:build_mlp", rebuild_base=None,
                      heldout={k: v[:n] for k, v in columns.items()}, labels=labels[:n])
    return run, raw[:n]


def test_tabular_export_and_predict_from_raw_rows(tmp_path, shared_data):
    import bigmodel
    from bigmodel.core.export import export_onnx

    run, raw_rows = build_tabular_run(tmp_path / "tab", shared_data)
    out = export_onnx(run, quantize="int8", echo=lambda line: None)
    report = json.loads((out.parent / "model.int8.export_report.json").read_text())
    assert report["passed"]
    assert [a["int8_keep_fp32"] for a in report["int8_attempts"]] == ["none"]  # no feed-forward GELU to keep
    fp32 = export_onnx(run, echo=lambda line: None)
    predictor = bigmodel.load(str(fp32), provider="cpu", batch_size=7)
    results = predictor.predict(raw_rows[:9])  # string values, as read from a file
    from bigmodel.core.runs import Run

    loaded = Run.load(run)
    import torch

    inputs, _ = loaded.heldout()
    with torch.inference_mode():
        arrays = loaded.preprocessor()({k: v[:9] for k, v in inputs.items()})
        logits = loaded.build_model()(**{k: torch.from_numpy(v) for k, v in arrays.items()}).numpy()
    assert [r["label"] for r in results] == [["good", "bad"][i] for i in logits.argmax(1)]
    row = {**raw_rows[0], "a5": ""}  # a missing numeric value is allowed
    assert predictor.predict([row])[0]["label"] in ("good", "bad")
    with pytest.raises(ValueError, match="a3"):
        predictor.predict([{k: v for k, v in raw_rows[0].items() if k != "a3"}])


def test_image_export_with_timm_backbone(tmp_path, shared_data):
    import torch
    from PIL import Image

    import bigmodel
    from bigmodel.core.export import export_onnx
    from bigmodel.core.specs import LabelMap
    from bigmodel.core.tasks.image import ImagePreprocessor, build_model

    torch.manual_seed(0)
    data = np.load(shared_data / "medmnist" / "breastmnist.npz")
    images, labels = list(data["test_images"][:24]), data["test_labels"][:24].astype(np.int64)
    label_map = LabelMap.from_names(["malignant", "normal_benign"])
    pre = ImagePreprocessor(image_size=(32, 32), channels=3, mean=[0.5] * 3, std=[0.5] * 3)
    recipe = {"image_size": 32}
    model = build_model(label_map=label_map, recipe=SimpleNamespace(**recipe), base="tf_efficientnet_lite0",
                        preprocess=pre.spec(), pretrained=False)
    run = _finish_run(tmp_path / "img", kind="image", model=model, preprocessor=pre, label_map=label_map,
                      recipe=recipe, builder="bigmodel.core.tasks.image:build_model",
                      rebuild_base="tf_efficientnet_lite0", heldout=images, labels=labels)
    out = export_onnx(run, echo=lambda line: None)
    report = json.loads((out.parent / "export_report.json").read_text())
    assert report["passed"] and report["max_abs_logit_diff"] <= 1e-4
    png = tmp_path / "x.png"
    Image.fromarray(images[0]).save(png)
    predictor = bigmodel.load(str(out), provider="cpu")
    from_file = predictor.predict([str(png)])[0]
    from_array = predictor.predict([images[0]])[0]
    assert from_file["label"] == from_array["label"] and abs(from_file["score"] - from_array["score"]) < 1e-6
    result = CliRunner().invoke(cli, ["predict", str(out), str(png), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["label"] == from_file["label"]


def _shift_model(path: Path, shift: list[float]) -> Path:
    """An ONNX graph ``logits = x + shift``: its only difference from the identity 'PyTorch' logits."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "shift"], ["logits"])], "shift",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", len(shift)])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", len(shift)])],
        [numpy_helper.from_array(np.asarray([shift], dtype=np.float32), "shift")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_gate_reports_ties_and_counts_them_unless_told(tmp_path):
    """One flip between two classes 2e-5 apart, with every logit within the 1e-4 tolerance: the label
    rule counts it (1/40 > 0.1%) and says it is a tie; ``ignore_ties`` leaves it out; a flip that
    is not a tie still counts with ``ignore_ties``."""
    from bigmodel.core.export import _batches, _gate, format_report
    from bigmodel.core.specs import LabelMap

    rng = np.random.default_rng(0)
    x = (rng.normal(size=(40, 3)) * 3).astype(np.float32)
    x[0] = [1.0, 1.0 - 2e-5, 0.0]
    rows, labels = list(x), x.argmax(1)
    reference = [x[idx] for idx in _batches(len(x))]
    label_map = LabelMap.from_names(["a", "b", "c"])

    def pre(batch):
        return {"x": np.asarray(batch, dtype=np.float32)}

    tie = _shift_model(tmp_path / "tie.onnx", [0.0, 5e-5, 0.0])
    report = _gate(reference, pre, rows, labels, tie, "fp32", None, label_map)
    assert not report["passed"] and report["max_abs_logit_diff"] < 1e-4
    assert report["label_disagreements"] == 1 and report["label_ties_within_tolerance"] == 1
    assert "--ignore-ties" in report["failures"][0]
    assert "(1 ties within 2 x tolerance)" in format_report(report)[1]
    report = _gate(reference, pre, rows, labels, tie, "fp32", None, label_map, ignore_ties=True)
    assert report["passed"] and report["label_disagreement_rate"] == 0 and report["ignore_ties"]

    far = _shift_model(tmp_path / "far.onnx", [0.0, 0.5, 0.0])  # moves class b up by 0.5
    report = _gate(reference, pre, rows, labels, far, "fp32", 0.01, label_map, ignore_ties=True)
    assert not report["passed"]
    assert report["label_disagreements"] > report["label_ties_within_tolerance"] >= 1  # row 0 is still a tie
    assert any(f.startswith("labels disagree") and "not counting 1 ties" in f for f in report["failures"])


def test_model_family_tolerance_is_used_and_atol_overrides_it(tmp_path, shared_data):
    from pydantic import ValidationError

    from bigmodel.core import ModelSpec
    from bigmodel.core.export import export_onnx
    from bigmodel.core.runs import read_json, write_json

    run, _ = build_tabular_run(tmp_path / "tab", shared_data)
    info = read_json(run / "model.json")
    write_json(run / "model.json", {**info, "export_atol": {"fp32": 0.25}})
    lines: list[str] = []
    out = export_onnx(run, echo=lines.append)
    report = json.loads((out.parent / "export_report.json").read_text())
    assert report["tolerance"] == 0.25 and report["tolerance_source"] == "model family export_atol"
    assert any("gate tolerance 0.25 for fp32" in line for line in lines)
    out = export_onnx(run, atol=1e-4, echo=lambda line: None)
    report = json.loads((out.parent / "export_report.json").read_text())
    assert report["tolerance"] == 1e-4 and report["tolerance_source"] == "--atol"
    with pytest.raises(ValidationError, match="export_atol"):
        ModelSpec(name="m", task="image", builder="x:y", licence="MIT", export_atol={"fp32": 0})


def test_cli_passes_ignore_ties_and_keep_fp32_through(tmp_path, shared_data):
    run, _ = build_tabular_run(tmp_path / "tab", shared_data)
    out = tmp_path / "m.onnx"
    result = CliRunner().invoke(cli, ["export", "--onnx", str(run), "--out", str(out), "--ignore-ties"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "m.export_report.json").read_text())["ignore_ties"] is True
    out8 = tmp_path / "m8.onnx"
    result = CliRunner().invoke(cli, ["export", "--onnx", str(run), "--out", str(out8), "--quantize", "int8",
                                      "--keep-fp32", "ffn"])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "m8.export_report.json").read_text())
    assert report["int8_keep_fp32"] == "ffn" and report["int8_fp32_nodes"] == 0  # an MLP has no GELU block
