"""A short real fine-tune on BreastMNIST: train -> evaluate -> export -> predict on PNG and DICOM, and bad inputs.

One module-scoped run (64 training images at 32 px, 6 optimizer steps, 1 CPU thread) is shared by the tests.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

torch = pytest.importorskip("torch")
pytest.importorskip("timm")

TINY = ["train_subset=64", "eval_subset=40", "max_steps=6", "batch_size=16", "image_size=32",
        "eval_strategy=steps", "eval_steps=3", "early_stopping_patience=0", "tta_hflip=true"]


def _cli(*args: str) -> str:
    from click.testing import CliRunner

    from bigmodel.cli import cli

    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout  # messages such as the provider line go to stderr


@contextlib.contextmanager
def _fresh_single_thread():
    """A fresh plugin registry and one torch thread (the CLI runs share the test process)."""
    from bigmodel.core import reset

    reset()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def breast_npz() -> Path:
    from bigmodel.testing import find_shared_data

    shared = find_shared_data()
    if shared is None:
        pytest.skip("real data sets not found: set BIGMODEL_SHARED_DATA to the shared/data directory")
    return shared / "medmnist" / "breastmnist.npz"


@pytest.fixture(scope="module")
def run_dir(breast_npz, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("medical") / "breast"
    with _fresh_single_thread():
        sets = [a for s in TINY for a in ("--set", s)]
        _cli("train", "medical", "--task", "breast_screening", "--data", str(breast_npz), "--preset", "demo",
             *sets, "--out", str(out), "--seed", "0", "--quiet")
        _cli("evaluate", str(out))
        _cli("export", "--onnx", str(out))
    return out


def test_run_has_screening_metrics_and_operating_point(run_dir):
    decision = json.loads((run_dir / "decision.json").read_text())
    params = decision["params"]
    assert decision["ref"] == "bigmodel_medical.decision:screening"
    assert params["positive"] == "malignant" and params["validation_sensitivity"] >= 0.9
    test = json.loads((run_dir / "metrics.json").read_text())["test"]
    op = test["operating_point"]
    assert op["threshold"] == pytest.approx(params["threshold"])
    assert {"sensitivity", "specificity", "ppv", "npv"} <= set(op)
    assert op["tp"] + op["fn"] == 11  # 40 stratified test images, 42/156 malignant
    ci = test["auroc_ci"]
    assert ci["ci_low"] <= test["auroc"] <= ci["ci_high"]
    assert ci["auroc"] == pytest.approx(test["auroc"])


def test_roc_chart_is_written_by_the_sector_report(run_dir):
    # SectorTask.report (charts:roc_for_run) ran after train and evaluate
    png = run_dir / "roc_test.png"
    assert png.read_bytes()[:4] == b"\x89PNG"
    from bigmodel_medical.charts import roc_for_run

    assert roc_for_run(run_dir) == [png]


def test_onnx_metadata_carries_decision_and_preprocessing(run_dir):
    from bigmodel.core.export import read_metadata

    meta = read_metadata(run_dir / "export" / "model.onnx")
    assert meta["decision"]["params"]["positive"] == "malignant"
    assert meta["preprocess"]["image_size"] == [32, 32] and meta["preprocess"]["mean"] == [0.5, 0.5, 0.5]
    assert meta["label_map"]["positive"] == "malignant"
    report = json.loads((run_dir / "export" / "export_report.json").read_text())
    assert report["passed"]
    # the model family's gate tolerance travels with the run and is what the gate used
    assert json.loads((run_dir / "model.json").read_text())["export_atol"] == {"fp32": 1e-3}
    assert report["tolerance"] == 1e-3 and report["tolerance_source"] == "model family export_atol"


def _png(path: Path, array: np.ndarray) -> Path:
    from PIL import Image

    Image.fromarray(array).save(path)
    return path


def test_predict_png_and_dicom_through_onnx(run_dir, breast_npz, tmp_path):
    from pydicom.data import get_testdata_file

    import bigmodel

    with np.load(breast_npz) as data:
        image = data["test_images"][0]
    png = _png(tmp_path / "case.png", image)
    ct = get_testdata_file("CT_small.dcm")  # grey CT, 128x128, rescale slope/intercept
    us = get_testdata_file("US1_UNCR.dcm")  # colour ultrasound, 480x640x3
    assert ct and us, "pydicom test files missing: install this sector's test extra (pydicom-data)"
    predictor = bigmodel.load(str(run_dir / "export" / "model.onnx"))
    rows = predictor.predict([str(png), ct, us])
    assert len(rows) == 3
    for row in rows:
        assert row["label"] in ("malignant", "normal_or_benign")
        assert row["decision"] in ("malignant", "normal_or_benign")
        assert isinstance(row["refer"], bool) and 0.0 <= row["positive_score"] <= 1.0
    # the PNG's score through ONNX equals PyTorch's on the same array
    from bigmodel.core.evaluate import predict_proba
    from bigmodel.core.runs import Run

    run = Run.load(run_dir)
    torch_p = predict_proba(run.build_model(), run.preprocessor(), [image])[0, 0]
    assert rows[0]["positive_score"] == pytest.approx(float(torch_p), abs=1e-4)

    # flip test-time augmentation is in the exported graph: an image and its mirror score alike
    mirrored = predictor.predict([image[:, ::-1].copy()])[0]["positive_score"]
    assert mirrored == pytest.approx(rows[0]["positive_score"], abs=1e-6)

    out = _cli("predict", str(run_dir / "export" / "model.onnx"), str(png), ct, "--json")
    cli_rows = json.loads(out)
    assert [r["decision"] for r in cli_rows] == [r["decision"] for r in rows[:2]]


def test_bad_inputs_give_clear_errors(run_dir, tmp_path):
    from pydicom.data import get_testdata_file

    import bigmodel

    predictor = bigmodel.load(str(run_dir / "export" / "model.onnx"))
    not_image = tmp_path / "notes.png"
    not_image.write_text("this is not an image\n")
    with pytest.raises(ValueError, match=r"notes\.png: cannot read the image"):
        predictor.predict([str(not_image)])
    no_pixels = get_testdata_file("rtplan.dcm")  # an RT plan: DICOM without pixel data
    with pytest.raises(ValueError, match=r"rtplan\.dcm: DICOM has no pixel data"):
        predictor.predict([no_pixels])
    two_channels = np.zeros((28, 28, 2), dtype=np.uint8)
    with pytest.raises(ValueError, match="2 channels, but the model takes 3"):
        predictor.predict([two_channels])


def test_value_factors_are_measured_from_the_run(run_dir):
    from bigmodel.core import get_registry
    from bigmodel.core.value import measured_items

    items, not_applicable = measured_items(run_dir, get_registry())
    by_name = {i.name: i for i in items}
    assert set(by_name) == {"auroc_gain_over_pixel_logreg", "sensitivity_at_reference_specificity", "calibration",
                            "auroc_interval_width", "inference_cost_per_1000_studies"}
    for item in items:
        assert 0.0 <= item.value <= 1.0 and item.kind == "measured"
    assert "raw-pixel logistic regression" in by_name["auroc_gain_over_pixel_logreg"].evidence
    assert "medical_value.json" in by_name["inference_cost_per_1000_studies"].evidence
    cached = json.loads((run_dir / "medical_value.json").read_text())
    assert cached["pixel_logreg"]["n_train"] == 64 and cached["pixel_logreg"]["n_test"] == 40


def test_full_screening_trains_both_members_and_exports_one_graph(breast_npz, tmp_path, monkeypatch):
    """The ``full`` preset (shortened): a heterogeneous ensemble of the from-scratch ResNet-18 (28) with its
    stride-1 stem and the ImageNet EfficientNet-Lite0, which trains on its own 128 px preprocessing and is
    served the run's 28 px input resized to 128 px in the model; rebuilt member by member, the stored
    predictions reproduce, and the ONNX graph passes its gate."""
    import torch

    from bigmodel.core.evaluate import predict_proba
    from bigmodel.core.runs import Run
    from bigmodel.core.tasks.image import ImagePreprocessor

    trained_on = set()
    call = ImagePreprocessor.__call__

    def spy(self, inputs, *, train=False):
        if train:
            trained_on.add(self.image_size)
        return call(self, inputs, train=train)

    monkeypatch.setattr(ImagePreprocessor, "__call__", spy)
    out = tmp_path / "full"
    with _fresh_single_thread():
        sets = ["train_subset=32", "eval_subset=16", "max_steps=2", "batch_size=16"]
        _cli("train", "medical", "--task", "breast_screening", "--data", str(breast_npz), "--preset", "full",
             *[a for s in sets for a in ("--set", s)], "--out", str(out), "--quiet")
        _cli("export", "--onnx", str(out))
    assert trained_on == {(28, 28), (128, 128)}  # each member's own preprocessing (and augmentation)
    run = Run.load(out)
    assert run.info["pretrained"] is True and run.recipe["architecture"] == "resnet18" and run.recipe["image_size"] == 28
    assert [e.get("architecture") for e in run.recipe["members"]] == [None, "tf_efficientnet_lite0"]
    scratch, finetune = run.build_model().members
    assert scratch.backbone.conv1.stride == (1, 1) and scratch.architecture == "resnet18"
    assert type(finetune).__name__ == "ResizedInput" and finetune.model.architecture == "tf_efficientnet_lite0"
    seen = []
    hook = finetune.model.register_forward_pre_hook(lambda module, args: seen.append(tuple(args[0].shape[-2:])))
    with torch.no_grad():
        finetune(torch.zeros(1, 3, 28, 28))
    hook.remove()
    assert seen == [(128, 128)]
    assert "heterogeneous ensemble: 2 members" in (out / "README.md").read_text()
    inputs, _ = run.heldout()
    _, stored = run.predictions("test")
    np.testing.assert_allclose(predict_proba(run.build_model(), run.preprocessor(), inputs), stored, atol=1e-5)
    assert json.loads((out / "export" / "export_report.json").read_text())["label_disagreements"] == 0


def test_a_member_may_not_change_the_shared_preprocessing(breast_npz, tmp_path):
    """Members share the run's input: only image_size may differ; another normalisation is refused by
    name before anything is written."""
    from click.testing import CliRunner

    from bigmodel.cli import cli

    out = tmp_path / "bad"
    result = CliRunner().invoke(cli, ["train", "medical", "--task", "breast_screening", "--data", str(breast_npz),
                                      "--preset", "scratch", "--set", "members=[{}, {mean: [0.4, 0.4, 0.4]}]",
                                      "--set", "max_steps=1", "--out", str(out), "--quiet"])
    assert result.exit_code != 0
    assert "'members' entry 1: changes the preprocessing the members share (mean: [0.4, 0.4, 0.4] vs [0.5" in result.output
    assert not out.exists() and not out.with_name("bad.partial").exists()