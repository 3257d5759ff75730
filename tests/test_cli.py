"""The command line: version, light start-up, sector install/uninstall with roll-back."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from click.testing import CliRunner

from bigmodel.cli import cli
from bigmodel.cli._sector_ops import resolve_target, source_checkout
from bigmodel.core import __version__

FIXTURES = Path(__file__).parent / "fixtures"
HEAVY = ("torch", "transformers", "onnxruntime", "sklearn", "matplotlib", "timm")


def _bigmodel(*args: str, env=None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bigmodel.cli", *args], capture_output=True, text=True, env=env)


def _installed(dist: str) -> bool:
    try:
        metadata.distribution(dist)
        return True
    except metadata.PackageNotFoundError:
        return False


def test_version():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"bigmodel, version {__version__}"


@pytest.mark.parametrize("args", [["--help"], ["plugins"], ["sector", "list"]])
def test_light_commands_import_no_heavy_library(args):
    code = (
        "import sys\n"
        "from bigmodel.cli import cli\n"
        f"try:\n    cli({args!r}, prog_name='bigmodel')\nexcept SystemExit:\n    pass\n"
        f"print('HEAVY=' + ','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "HEAVY=", f"{args} imported heavy modules: {proc.stdout}"


def test_help_does_not_load_plugins():
    """--help stays near Python's own start-up: no pydantic, no pluggy, no plugin modules."""
    code = (
        "import sys\n"
        "from bigmodel.cli import cli\n"
        "try:\n    cli(['--help'], prog_name='bigmodel')\nexcept SystemExit:\n    pass\n"
        "print('LOADED=' + ','.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'pydantic', 'pluggy', 'numpy', 'bigmodel_medical', 'bigmodel_finance', 'bigmodel_customer_service'})))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "LOADED="


def test_help_lists_the_commands():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for command in ("plugins", "sector"):
        assert f"  {command} " in result.output


def test_short_names_resolve_to_bundled_sectors_in_a_checkout(tmp_path, monkeypatch):
    root = source_checkout()
    assert root is not None and (root / "sectors").is_dir(), "tests run from a source checkout"
    from bigmodel.cli import _sector_ops

    (tmp_path / "sectors" / "legal").mkdir(parents=True)
    (tmp_path / "sectors" / "legal" / "pyproject.toml").write_text("[project]\nname='bigmodel-legal'\n")
    monkeypatch.setattr(_sector_ops, "source_checkout", lambda: tmp_path)
    assert resolve_target("legal") == (str(tmp_path / "sectors" / "legal"), True)
    assert resolve_target("Legal") == (str(tmp_path / "sectors" / "legal"), True)
    # not bundled: the distribution named after the sector
    assert resolve_target("insurance") == ("bigmodel-insurance", False)
    monkeypatch.setattr(_sector_ops, "source_checkout", lambda: None)
    assert resolve_target("Customer-Service") == ("bigmodel-customer-service", False)
    assert resolve_target("bigmodel-legal>=1.0") == ("bigmodel-legal>=1.0", False)


def test_install_path_that_is_not_a_project(tmp_path):
    result = CliRunner().invoke(cli, ["sector", "install", str(tmp_path)])
    assert result.exit_code == 1
    assert f"{tmp_path}: not a Python project" in result.output


def test_install_list_and_uninstall_a_sector_from_a_path(tmp_path):
    src = tmp_path / "minimal_sector"
    shutil.copytree(FIXTURES / "minimal_sector", src)
    assert not _installed("bigmodel-minimal")
    try:
        proc = _bigmodel("sector", "install", str(src))
        assert proc.returncode == 0, proc.stderr
        assert "installed bigmodel-minimal 0.1.0: plugin 'minimal'" in proc.stdout
        assert "sectors: minimal" in proc.stdout and "datasets: minimal/tiny" in proc.stdout
        listing = _bigmodel("sector", "list", "--json")
        assert "minimal" in [row["name"] for row in json.loads(listing.stdout)]
    finally:
        proc = _bigmodel("sector", "uninstall", "minimal", "-y")
    assert proc.returncode == 0, proc.stderr
    assert "uninstalled bigmodel-minimal" in proc.stdout
    assert not _installed("bigmodel-minimal")


def test_failed_validation_rolls_the_install_back(tmp_path):
    src = tmp_path / "broken_sector"
    shutil.copytree(FIXTURES / "broken_sector", src)
    proc = _bigmodel("sector", "install", str(src))
    assert proc.returncode == 1
    assert "failed validation, environment restored" in proc.stderr
    assert "uses unknown model 'no_such_model'" in proc.stderr
    assert not _installed("bigmodel-brokensector")


def test_uninstall_works_when_the_plugin_is_broken(tmp_path):
    src = tmp_path / "minimal_sector"
    shutil.copytree(FIXTURES / "minimal_sector", src)
    proc = _bigmodel("sector", "install", "-e", str(src))
    assert proc.returncode == 0, proc.stderr
    try:
        (src / "bigmodel_minimal" / "plugin.py").write_text("raise ImportError('half-upgraded')\n")
        plugins = _bigmodel("plugins")
        assert plugins.returncode == 0 and "half-upgraded" in plugins.stdout
    finally:
        proc = _bigmodel("sector", "uninstall", "minimal", "-y")
    assert proc.returncode == 0, proc.stderr
    assert not _installed("bigmodel-minimal")


def test_uninstall_unknown_sector():
    result = CliRunner().invoke(cli, ["sector", "uninstall", "astrology", "-y"])
    assert result.exit_code == 1 and "no installed sector plugin named 'astrology'" in result.output


def test_invalid_label_map_file_is_a_one_line_error(tmp_path, minimal_sector, monkeypatch):
    monkeypatch.setenv("BIGMODEL_LOAD_PLUGINS", "minimal")
    labels = tmp_path / "labels.json"
    labels.write_text('{"id2label": {"0": "a", "2": "b"}}')
    result = CliRunner().invoke(cli, ["train", "minimal", "--labels", str(labels), "--out", str(tmp_path / "run")])
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == \
        "Error: LabelMap: field 'id2label': ids must be contiguous from 0; got [0, 2], missing [1]"
    assert not (tmp_path / "run").exists() and not (tmp_path / "run.partial").exists()
