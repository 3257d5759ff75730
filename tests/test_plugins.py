"""Plugin loading: validation, isolation, selection, version checks, duplicates."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from bigmodel.cli import cli
from bigmodel.core import PluginError, RegistryError, get_registry, plugin_infos

GOOD = """
from bigmodel.core import hookimpl, LoaderSpec

@hookimpl
def register_loaders(register):
    register(LoaderSpec(name="{name}_reader", task="text", load="json:loads"))
"""


def _info(name):
    return next(i for i in plugin_infos() if i.name == name)


def test_builtins_are_plugins_registered_through_the_manager(monkeypatch):
    monkeypatch.setenv("BIGMODEL_LOAD_PLUGINS", "")
    infos = plugin_infos()
    assert [i.name for i in infos] == ["bigmodel.loaders", "bigmodel.models", "bigmodel.metrics"]
    assert all(i.builtin and i.status == "ok" for i in infos)
    registry = get_registry()
    assert registry.plugin_of("loader", "text_table") == "bigmodel.loaders"
    assert registry.plugin_of("model", "hf_text_classifier") == "bigmodel.models"
    assert registry.plugin_of("metric", "macro_f1") == "bigmodel.metrics"


def test_misspelled_hook_is_rejected_naming_plugin_and_hook(plugin_site, monkeypatch):
    plugin_site.add("typo", """
        from bigmodel.core import hookimpl
        @hookimpl
        def register_model(register):
            pass
    """)
    monkeypatch.setenv("BIGMODEL_LOAD_PLUGINS", "typo")
    info = _info("typo")
    assert info.status == "broken"
    assert "register_model" in info.error and "did you mean 'register_models'" in info.error
    monkeypatch.setenv("BIGMODEL_STRICT_PLUGINS", "1")
    from bigmodel.core import reset

    reset()
    with pytest.raises(PluginError, match=r"plugin 'typo': hook 'register_model'"):
        plugin_infos()


def test_unknown_hook_argument_is_rejected(plugin_site, monkeypatch):
    plugin_site.add("badarg", """
        from bigmodel.core import hookimpl
        @hookimpl
        def register_models(register, extra):
            pass
    """)
    monkeypatch.setenv("BIGMODEL_LOAD_PLUGINS", "badarg")
    info = _info("badarg")
    assert info.status == "broken"
    assert "register_models" in info.error and "extra" in info.error and "badarg" in info.error


def test_unmarked_hook_function_is_rejected(plugin_site, monkeypatch):
    plugin_site.add("unmarked", """
        def register_models(register):
            pass
    """)
    monkeypatch.setenv("BIGMODEL_LOAD_PLUGINS", "unmarked")
    assert "not marked with @bigmodel.hookimpl" in _info("unmarked").error


def test_plugin_raising_on_import_is_isolated(plugin_site, monkeypatch):
    plugin_site.add("good", GOOD.format(name="good"))
    plugin_site.add("boom", "raise RuntimeError('database not reachable')\n")
    monkeypatch.setenv("BIGMODEL_LOAD_PLUGINS", "good,boom")
    runner = CliRunner()
    result = runner.invoke(cli, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.output)}
    assert rows["boom"]["status"] == "broken"
    assert "RuntimeError: database not reachable" in rows["boom"]["error"]
    assert rows["good"]["status"] == "ok" and rows["good"]["hooks"] == ["register_loaders"]
    assert rows["good"]["version"] == "1.0" and rows["good"]["distribution"] == "bm-test-good"
    assert get_registry().loader("good_reader").name == "good_reader"
    # the rest of the CLI keeps working
    assert runner.invoke(cli, ["sector", "list"]).exit_code == 0


def test_strict_mode_makes_a_broken_plugin_fatal(plugin_site):
    plugin_site.add("boom", "raise RuntimeError('database not reachable')\n")
    env = {**plugin_site.env(), "BIGMODEL_LOAD_PLUGINS": "boom", "BIGMODEL_STRICT_PLUGINS": "1"}
    proc = subprocess.run([sys.executable, "-m", "bigmodel.cli", "plugins"], env=env, capture_output=True, text=True)
    assert proc.returncode != 0
    assert "plugin 'boom': failed to import bm_test_boom: RuntimeError: database not reachable" in proc.stderr
    env["BIGMODEL_STRICT_PLUGINS"] = "0"
    proc = subprocess.run([sys.executable, "-m", "bigmodel.cli", "plugins"], env=env, capture_output=True, text=True)
    assert proc.returncode == 0 and "broken" in proc.stdout


def test_load_plugins_selects_and_empty_loads_only_builtins(plugin_site, monkeypatch):
    plugin_site.add("a", GOOD.format(name="a"))
    plugin_site.add("b", GOOD.format(name="b"))
    plugin_site.add("c", GOOD.format(name="c"))
    monkeypatch.setenv("BIGMODEL_LOAD_PLUGINS", "a,c")
    names = {i.name for i in plugin_infos() if not i.builtin}
    assert names == {"a", "c"}
    from bigmodel.core import reset

    monkeypatch.setenv("BIGMODEL_LOAD_PLUGINS", "")
    reset()
    assert all(i.builtin for i in plugin_infos())
    monkeypatch.delenv("BIGMODEL_LOAD_PLUGINS")
    reset()
    assert {"a", "b", "c"} <= {i.name for i in plugin_infos()}


def test_version_mismatch_is_a_clear_error(plugin_site, monkeypatch):
    plugin_site.add("future", 'BIGMODEL_REQUIRES = ">=99"\n' + GOOD.format(name="future"))
    monkeypatch.setenv("BIGMODEL_LOAD_PLUGINS", "future")
    info = _info("future")
    assert info.status == "incompatible"
    assert info.error.startswith("supports bigmodel>=99 but bigmodel ")
    with pytest.raises(RegistryError, match="unknown loader 'future_reader'"):
        get_registry().loader("future_reader")


def test_invalid_version_specifier(plugin_site, monkeypatch):
    plugin_site.add("badspec", 'BIGMODEL_REQUIRES = "version one"\n')
    monkeypatch.setenv("BIGMODEL_LOAD_PLUGINS", "badspec")
    assert "not a valid PEP 440 specifier" in _info("badspec").error


def test_duplicate_names_name_both_plugins(plugin_site, monkeypatch):
    plugin_site.add("first", GOOD.format(name="same"))
    plugin_site.add("second", GOOD.format(name="same"))
    monkeypatch.setenv("BIGMODEL_LOAD_PLUGINS", "first,second")
    for name in ("first", "second"):
        info = _info(name)
        assert info.status == "broken"
        assert "loader 'same_reader' is registered by both 'first' and 'second'" in info.error
    with pytest.raises(RegistryError, match="unavailable: plugin '(first|second)' is broken: loader 'same_reader' is registered by both"):
        get_registry().loader("same_reader")


def test_duplicate_of_a_builtin_name(plugin_site, monkeypatch):
    plugin_site.add("clash", """
        from bigmodel.core import hookimpl, MetricSpec
        @hookimpl
        def register_metrics(register):
            register(MetricSpec(name="accuracy", compute="json:loads"))
    """)
    monkeypatch.setenv("BIGMODEL_LOAD_PLUGINS", "clash")
    assert "registered by both 'bigmodel.metrics' and 'clash'" in _info("clash").error


def test_hook_raising_and_wrong_spec_type_are_isolated(plugin_site, monkeypatch):
    plugin_site.add("raiser", """
        from bigmodel.core import hookimpl
        @hookimpl
        def register_metrics(register):
            raise KeyError("oops")
    """)
    plugin_site.add("wrongtype", """
        from bigmodel.core import hookimpl
        @hookimpl
        def register_models(register):
            register({"name": "x"})
    """)
    monkeypatch.setenv("BIGMODEL_LOAD_PLUGINS", "raiser,wrongtype")
    assert _info("raiser").error == "hook register_metrics raised KeyError: 'oops'"
    assert "register_models expects ModelSpec objects, got dict" in _info("wrongtype").error


def test_dangling_references_break_only_that_plugin(plugin_site, monkeypatch):
    plugin_site.add("dangling", """
        from bigmodel.core import hookimpl, SectorSpec, SectorTask, LabelMap
        @hookimpl
        def register_sectors(register):
            register(SectorSpec(name="legal", title="Legal", tasks=[SectorTask(
                name="clauses", kind="text", label_map=LabelMap.from_names(["a", "b"]),
                datasets=["contracts"], model="no_such_model", metrics=["accuracy", "nope"])]))
    """)
    monkeypatch.setenv("BIGMODEL_LOAD_PLUGINS", "dangling")
    error = _info("dangling").error
    assert "uses unknown model 'no_such_model'" in error
    assert "uses unknown dataset legal/contracts" in error
    assert "uses unknown metric 'nope'" in error
    with pytest.raises(RegistryError, match="sector 'legal' is unavailable"):
        get_registry().sector("legal")


def test_minimal_sector_loads_and_is_described(minimal_sector, monkeypatch):
    monkeypatch.setenv("BIGMODEL_LOAD_PLUGINS", "minimal")
    assert _info("minimal").status == "ok", _info("minimal").error
    assert _info("minimal").hooks == ["register_datasets", "register_metrics", "register_sectors", "register_value_factors"]
    runner = CliRunner()
    out = runner.invoke(cli, ["sector", "list"])
    assert out.exit_code == 0 and "minimal" in out.output and "sentiment" in out.output
    info = runner.invoke(cli, ["sector", "info", "minimal", "--json"])
    assert info.exit_code == 0, info.output
    data = json.loads(info.output)
    task = data["tasks"][0]
    assert task["labels"] == ["negative", "positive"] and task["positive"] == "positive"
    assert task["presets"] == {"demo": {"max_steps": 4, "batch_size": 8}}
    assert task["recipe"]["max_length"] == 32
    assert data["datasets"][0]["key"] == "minimal/tiny"
    assert data["value_factors"][0]["factor"] == "T"
    text = runner.invoke(cli, ["sector", "info", "minimal"])
    assert "labels: negative, positive" in text.output and "value factor T.accuracy" in text.output


def test_unknown_sector_is_a_one_line_error(monkeypatch):
    monkeypatch.setenv("BIGMODEL_LOAD_PLUGINS", "")
    result = CliRunner().invoke(cli, ["sector", "info", "astrology"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == ["Error: unknown sector 'astrology' (registered: none)"]
