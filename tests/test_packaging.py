"""The wheel installs only the ``bigmodel`` package (no top-level core/cli/plugins) and works when installed."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(out), str(ROOT)],
        capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (path,) = out.glob("bigmodel-*.whl")
    return path


def test_wheel_holds_only_the_bigmodel_package(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names}
    dist_info = {t for t in top if t.endswith(".dist-info")}
    assert top - dist_info == {"bigmodel"}, f"unexpected top-level entries: {sorted(top - dist_info)}"
    for module in ("bigmodel/__init__.py", "bigmodel/testing.py", "bigmodel/core/__init__.py",
                   "bigmodel/core/hookspecs.py", "bigmodel/core/tasks/text.py", "bigmodel/cli/__init__.py", "bigmodel/plugins/__init__.py"):
        assert module in names
    assert not [n for n in names if "/tests/" in n or n.startswith("sectors/")]
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "bigmodel = bigmodel.cli:main" in entry_points


def test_installed_wheel_runs(wheel, tmp_path):
    target = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(target), str(wheel)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not (target / "core").exists() and not (target / "cli").exists() and not (target / "plugins").exists()
    env = {**os.environ, "PYTHONPATH": str(target), "BIGMODEL_LOAD_PLUGINS": ""}
    code = "import bigmodel, bigmodel.cli; print(bigmodel.__file__); bigmodel.cli.main()"
    run = subprocess.run([sys.executable, "-c", code, "plugins"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    first, *rest = run.stdout.splitlines()
    assert first.startswith(str(target)), f"imported {first}, not the wheel"
    assert any(line.startswith("bigmodel.loaders") and " ok " in line for line in rest)
