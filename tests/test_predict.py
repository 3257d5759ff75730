"""ONNX Runtime inference through the CLI and ``bigmodel.load``, providers, doctor and bench."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from click.testing import CliRunner

import bigmodel
from bigmodel.cli import cli
from bigmodel.testing import BANKING77_SAMPLE_LABELS as TEXT_LABELS
from bigmodel.testing import centroid_text_run


DECISION_MODULE = '''
import numpy as np

class Handoff:
    """Hand the case to a human when the top probability is below the threshold."""

    @staticmethod
    def apply(proba, params, label_map):
        top = np.asarray(proba).max(axis=1)
        return [{"handoff": bool(p < params["threshold"]), "threshold": params["threshold"]} for p in top]

HANDOFF = Handoff()
'''


@pytest.fixture(scope="module")
def exported(tmp_path_factory, minilm_path, shared_data):
    """A text run with a decision, exported once (fp32) for all tests of this module."""
    import torch

    from bigmodel.core.export import export_onnx

    torch.set_num_threads(1)
    site = tmp_path_factory.mktemp("site")
    (site / "bm_test_decision.py").write_text(DECISION_MODULE)
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(site))
        run = centroid_text_run(tmp_path_factory.mktemp("runs") / "text", base=minilm_path, data=shared_data,
                                decision={"ref": "bm_test_decision:HANDOFF", "params": {"threshold": 0.9}})
        onnx_path = export_onnx(run, echo=lambda line: None)
        yield run, onnx_path, site


TEXTS = ["I lost my card yesterday, please block it", "what exchange rate do you use for euros?",
         "my top up did not go through"]


def test_python_api_matches_pytorch_and_adds_decision_fields(exported):
    import torch

    from bigmodel.core.runs import Run

    run_dir, onnx_path, _ = exported
    run = Run.load(run_dir)
    texts, _ = run.heldout()
    predictor = bigmodel.load(str(onnx_path), provider="cpu", batch_size=5)
    assert predictor.provider == "CPUExecutionProvider"
    results = predictor.predict(texts[:12], top_k=3)
    with torch.inference_mode():
        arrays = run.preprocessor()(texts[:12])
        proba = torch.softmax(run.build_model()(**{k: torch.from_numpy(v) for k, v in arrays.items()}), -1).numpy()
    assert [r["label"] for r in results] == [TEXT_LABELS[i] for i in proba.argmax(1)]
    np.testing.assert_allclose([r["score"] for r in results], proba.max(1), atol=1e-5)
    for r in results:
        assert len(r["top_k"]) == 3 and r["top_k"][0] == {"label": r["label"], "score": r["score"]}
        assert r["top_k"][0]["score"] >= r["top_k"][1]["score"] >= r["top_k"][2]["score"]
        assert r["handoff"] is (r["score"] < 0.9) and r["threshold"] == 0.9
    assert predictor.predict([]) == []
    with pytest.raises(ValueError, match="list"):
        predictor.predict("a single string")


def test_load_accepts_a_run_directory(exported):
    run_dir, _, _ = exported
    predictor = bigmodel.load(str(run_dir), provider="cpu")
    assert predictor.path == run_dir / "export" / "model.onnx"
    assert predictor.predict(TEXTS[:1])[0]["label"] in TEXT_LABELS


def test_run_without_export_says_to_export(tmp_path, minilm_path, shared_data):
    run = centroid_text_run(tmp_path / "run", base=minilm_path, data=shared_data, n_heldout=1)
    with pytest.raises(FileNotFoundError, match="bigmodel export --onnx"):
        bigmodel.load(str(run))


def test_cli_predict_texts_and_files_json(exported, tmp_path):
    run_dir, onnx_path, _ = exported
    csv_file = tmp_path / "inputs.csv"
    csv_file.write_text('id,text\n1,"my card still has not arrived"\n2,how much is the fee to exchange money\n')
    txt_file = tmp_path / "inputs.txt"
    txt_file.write_text("top up failed again\n\nwhere is my card\n")
    result = CliRunner().invoke(cli, ["predict", str(onnx_path), TEXTS[0], str(csv_file), str(txt_file),
                                      "--json", "--top-k", "2", "--provider", "cpu", "--batch-size", "2"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["input"] for r in rows] == [TEXTS[0], "my card still has not arrived",
                                          "how much is the fee to exchange money", "top up failed again",
                                          "where is my card"]
    for row in rows:
        assert row["label"] in TEXT_LABELS and 0 < row["score"] <= 1 and len(row["top_k"]) == 2
        assert "handoff" in row
    assert "provider: CPUExecutionProvider" in result.stderr


def test_cli_predict_plain_output_says_provider(exported):
    run_dir, _, _ = exported
    result = CliRunner().invoke(cli, ["predict", str(run_dir), *TEXTS])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 3 and all(line.split("\t")[0] in TEXT_LABELS for line in lines)
    assert "provider: CPUExecutionProvider (auto:" in result.stderr


def test_provider_cuda_fails_loudly_without_cuda(exported):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has a CUDA-enabled onnxruntime")
    _, onnx_path, _ = exported
    result = CliRunner().invoke(cli, ["predict", str(onnx_path), "hello", "--provider", "cuda"])
    assert result.exit_code != 0
    assert "--provider cuda" in result.output and "CUDAExecutionProvider" in result.output
    assert "Traceback" not in result.output
    from bigmodel.core.providers import ProviderError

    with pytest.raises(ProviderError, match="CUDA"):
        bigmodel.load(str(onnx_path), provider="cuda")


def test_io_binding_gives_the_same_logits(exported):
    from bigmodel.core.providers import create_session, run_with_binding

    _, onnx_path, _ = exported
    predictor = bigmodel.load(str(onnx_path), provider="cpu")
    session = create_session(onnx_path, "cpu")
    arrays = predictor.preprocessor(TEXTS)
    plain = session.session.run(["logits"], arrays)[0]
    np.testing.assert_allclose(run_with_binding(session, arrays), plain, rtol=0, atol=1e-6)


def test_predict_needs_the_files_beside_the_model(exported, tmp_path):
    _, onnx_path, _ = exported
    lonely = tmp_path / "copy.onnx"
    lonely.write_bytes(onnx_path.read_bytes())
    with pytest.raises(FileNotFoundError, match="copy.preprocess"):
        bigmodel.load(str(lonely))
    other = tmp_path / "copy.preprocess"
    other.mkdir()
    spec = json.loads((onnx_path.parent / "model.preprocess" / "preprocess.json").read_text())
    (other / "tokenizer.json").write_bytes((onnx_path.parent / "model.preprocess" / "tokenizer.json").read_bytes())
    (other / "preprocess.json").write_text(json.dumps({**spec, "max_length": 16}))
    with pytest.raises(ValueError, match="differs from the preprocessing spec"):
        bigmodel.load(str(lonely))


def test_predict_imports_no_torch(exported):
    _, onnx_path, site = exported
    code = textwrap.dedent(f"""
        import sys, bigmodel
        p = bigmodel.load({str(onnx_path)!r}, provider="cpu")
        r = p.predict(["where is my new card"])
        assert r[0]["label"], r
        heavy = sorted(m for m in ("torch", "transformers", "sklearn") if m in sys.modules)
        print("HEAVY", heavy)
    """)
    env_path = str(site)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**__import__("os").environ, "PYTHONPATH": env_path})
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stdout


def test_doctor_flags_both_runtimes(monkeypatch):
    from importlib import metadata

    real = metadata.version

    def fake(name):
        if name == "onnxruntime-gpu":
            return "1.32.0"
        return real(name)

    monkeypatch.setattr(metadata, "version", fake)
    result = CliRunner().invoke(cli, ["doctor"])
    assert result.exit_code == 1
    assert "both installed" in result.output and "pip uninstall" in result.output
    assert "onnxruntime-gpu  1.32.0" in result.output


def test_doctor_clean_setup_and_cuda_report(monkeypatch):
    result = CliRunner().invoke(cli, ["doctor", "--json"])
    report = json.loads(result.stdout)
    assert result.exit_code == (1 if report["problems"] else 0)
    assert report["versions"]["onnxruntime"] and report["versions"]["torch"]
    assert set(report["cuda"]) == {"listed", "loads", "error", "missing_library"}
    if not report["cuda"]["loads"]:
        assert report["cuda"]["error"]


def test_missing_library_is_named():
    from bigmodel.core.providers import _missing_library

    err = "libcudnn.so.9: cannot open shared object file: No such file or directory"
    assert _missing_library(err) == "libcudnn.so.9"
    assert _missing_library("something else") is None


def test_bench_of_an_onnx_file(exported):
    _, onnx_path, _ = exported
    result = CliRunner().invoke(cli, ["bench", str(onnx_path), "--batch-sizes", "1,2", "--iters", "5",
                                      "--provider", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [(r["variant"], r["batch"]) for r in rows] == [("ort-fp32", 1), ("ort-fp32", 2)]
    assert all(r["p50_ms"] > 0 and r["p99_ms"] >= r["p50_ms"] and r["throughput"] > 0 for r in rows)


def test_bench_of_a_run_compares_eager_fp32_fp16_int8(exported):
    run_dir, _, _ = exported
    result = CliRunner().invoke(cli, ["bench", str(run_dir), "--batch-sizes", "1", "--seq-len", "16",
                                      "--iters", "5", "--provider", "cpu", "--threads", "1"])
    assert result.exit_code == 0, result.output
    table = result.stdout
    for variant in ("torch-eager", "ort-fp32", "ort-fp16", "ort-int8"):
        assert variant in table
    assert "vs eager" in table and "1.00x" in table


def test_session_options_default_to_all_optimizations_and_physical_cores():
    import onnxruntime as ort

    from bigmodel.core.providers import physical_cores, session_options

    cores = physical_cores()
    assert 1 <= cores <= (os.cpu_count() or 1)
    options = session_options()
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert options.intra_op_num_threads == cores and options.inter_op_num_threads == 1
    assert session_options(3).intra_op_num_threads == 3
