"""The conformance suite (bigmodel.testing) catches each way tests/fixtures/conformance_broken is broken,
with a message naming the spec, the check and the numbers, and passes the task that is not broken."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bigmodel.testing import (
    ConformanceError,
    check_dataset,
    check_export,
    check_metric,
    check_model,
    check_plugin_loads,
    check_task,
    check_value_factors,
    plugin_items,
    tiny_run,
)

FIXTURE = Path(__file__).parent / "fixtures" / "conformance_broken"


@pytest.fixture
def broken(plugin_site, monkeypatch, tmp_path):
    """The broken plugin installed as 'confbroken' (only it loads), with a fresh data cache."""
    plugin_site.root.joinpath("bigmodel_confbroken").symlink_to(FIXTURE / "bigmodel_confbroken")
    plugin_site.add("confbroken", module="bigmodel_confbroken.plugin", dist="bigmodel-confbroken", version="0.1.0",
                    package_dir=FIXTURE / "bigmodel_confbroken")
    monkeypatch.setenv("BIGMODEL_LOAD_PLUGINS", "confbroken")
    monkeypatch.setenv("BIGMODEL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("BIGMODEL_DATA_MIRROR", raising=False)
    yield plugin_site
    for name in [m for m in sys.modules if m.startswith("bigmodel_confbroken")]:
        del sys.modules[name]


def test_parametrizes_over_everything_the_plugin_registers(broken):
    check_plugin_loads("confbroken")
    items = plugin_items("confbroken")
    tasks = ["good", "bad_names", "bad_ids", "diverging", "dropout_in_eval"]
    assert items.tasks == sorted(f"confbroken/{t}" for t in tasks) or items.tasks == [f"confbroken/{t}" for t in tasks]
    assert set(items.datasets) == {f"confbroken/{t}/tiny" for t in tasks}
    assert items.metrics == ["confbroken_half", "confbroken_recall_high"]
    assert items.value_factors == ["confbroken/bad_item", "confbroken/ok_item"]


def test_unknown_plugin_is_named():
    with pytest.raises(ConformanceError, match=r"plugin 'nosuchplugin': installed: no plugin of that name"):
        check_plugin_loads("nosuchplugin")


def test_the_good_task_passes_task_dataset_model_and_metric_checks(broken, monkeypatch):
    check_task("confbroken/good")
    check_dataset("confbroken/good/tiny", monkeypatch)  # file:// data, found offline through its layout
    check_model("confbroken/good", monkeypatch)
    check_metric("confbroken_recall_high")


def test_label_names_that_are_not_the_datas_labels_fail_the_dataset_check(broken, monkeypatch):
    with pytest.raises(ConformanceError) as info:
        check_dataset("confbroken/bad_names/tiny", monkeypatch)
    message = str(info.value)
    assert message.startswith("dataset confbroken/tiny (task confbroken/bad_names): load: ")
    assert re.search(r"train\.csv:2: unknown label '(low|high)' \(known: small, big\)", message), message


def test_a_label_map_built_bypassing_pydantic_fails_the_task_check(broken):
    with pytest.raises(ConformanceError) as info:
        check_task("confbroken/bad_ids")
    assert str(info.value).startswith("task confbroken/bad_ids: label map: ids must be contiguous from 0; got [0, 2]")


def test_a_metric_that_is_not_1_on_perfect_predictions_fails(broken):
    with pytest.raises(ConformanceError) as info:
        check_metric("confbroken_half")
    assert str(info.value).startswith("metric 'confbroken_half': perfect predictions: gave 0.5, expected 1 (higher is better")
    check_metric("confbroken_half", expected={"confbroken_half": 0.5})  # a declared expectation is honoured


def test_dropout_left_on_in_eval_mode_fails_the_model_check(broken, monkeypatch):
    with pytest.raises(ConformanceError, match=r"^task confbroken/dropout_in_eval \(model 'confbroken_dropout_in_eval'\): "
                                               r"eval determinism: two eval-mode forward passes differ by \d"):
        check_model("confbroken/dropout_in_eval", monkeypatch)


@pytest.mark.slow
def test_export_divergence_and_out_of_range_value_factors_are_caught_on_tiny_runs(broken, monkeypatch, tmp_path):
    good = tiny_run("confbroken/good", tmp_path, monkeypatch)
    assert check_export("confbroken/good", good).is_file()
    with pytest.raises(ConformanceError) as info:
        check_value_factors("confbroken/good", good)
    assert "value factors of sector 'confbroken' (task confbroken/good): measure:" in str(info.value)
    assert "item R.bad_item: measure bigmodel_confbroken.metrics:bad_item returned value 1.5; expected a number in [0, 1]" \
        in str(info.value)

    diverging = tiny_run("confbroken/diverging", tmp_path, monkeypatch)
    with pytest.raises(ConformanceError) as info:
        check_export("confbroken/diverging", diverging)
    message = str(info.value)
    assert message.startswith("task confbroken/diverging: ONNX export round trip: validation gate failed")
    assert re.search(r"max \|logit diff\| [0-9.e+-]+ > tolerance 0\.0001", message), message


def test_the_generated_pytest_tests_report_each_failure(broken, tmp_path):
    """`conformance_tests(globals(), plugin=...)` in a plugin's test module: each broken spec fails by name."""
    tests = tmp_path / "plugin_tests"
    tests.mkdir()
    (tests / "test_conformance.py").write_text(textwrap.dedent("""
        from bigmodel.testing import conformance_tests

        conformance_tests(globals(), plugin="confbroken")
    """))
    env = {**broken.env(), "BIGMODEL_LOAD_PLUGINS": "confbroken", "BIGMODEL_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("BIGMODEL_DATA_MIRROR", None)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(tests), "-q", "-p", "no:cacheprovider", "--import-mode=importlib",
         "-m", "not slow", "-rfE", "--tb=line", "-W", "ignore::DeprecationWarning"],
        capture_output=True, text=True, env=env, cwd=tmp_path,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    failed = set(re.findall(r"^FAILED \S+::(\S+)", out, re.M))
    assert failed == {
        "test_task[confbroken/bad_ids]",
        "test_dataset[confbroken/bad_names/tiny]",
        "test_dataset[confbroken/bad_ids/tiny]",
        "test_model[confbroken/bad_names]",
        "test_model[confbroken/bad_ids]",
        "test_model[confbroken/dropout_in_eval]",
        "test_metric[confbroken_half]",
    }, out
    assert "metric 'confbroken_half': perfect predictions: gave 0.5, expected 1" in out
    assert "eval determinism: two eval-mode forward passes differ by" in out
    for passing in ("test_task[confbroken/good]", "test_dataset[confbroken/good/tiny]", "test_model[confbroken/good]",
                    "test_metric[confbroken_recall_high]"):
        assert passing not in failed
