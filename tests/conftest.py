"""Fixtures of the core's tests: fake installed plugin distributions on a temporary sys.path entry."""

from __future__ import annotations

import importlib
import os
import sys
import textwrap
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


class PluginSite:
    """A directory on sys.path holding plugin modules and ``.dist-info`` folders with entry points."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def add(self, name: str, source: str = "", *, module: str | None = None, dist: str | None = None,
            version: str = "1.0", package_dir: Path | None = None) -> str:
        """Install plugin ``name`` (entry point ``name = module``) from ``source`` or an existing package dir."""
        module = module or f"bm_test_{name}"
        dist = dist or f"bm-test-{name}"
        if package_dir is None:
            (self.root / f"{module}.py").write_text(textwrap.dedent(source))
        info = self.root / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        (info / "entry_points.txt").write_text(f"[bigmodel]\n{name} = {module}\n")
        importlib.invalidate_caches()
        return module

    def env(self) -> dict[str, str]:
        """Environment for a subprocess that sees these plugins."""
        path = os.pathsep.join([str(self.root), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        return {**os.environ, "PYTHONPATH": path}


@pytest.fixture
def plugin_site(tmp_path, monkeypatch) -> PluginSite:
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    site = PluginSite(root)
    yield site
    for name in [m for m in sys.modules if m.startswith("bm_test_") or m.startswith("bigmodel_minimal")]:
        del sys.modules[name]
    importlib.invalidate_caches()


@pytest.fixture
def minimal_sector(plugin_site) -> PluginSite:
    """The minimal sector of tests/fixtures, visible as an installed plugin named 'minimal'."""
    src = FIXTURES / "minimal_sector"
    plugin_site.root.joinpath("bigmodel_minimal").symlink_to(src / "bigmodel_minimal")
    plugin_site.add("minimal", module="bigmodel_minimal.plugin", dist="bigmodel-minimal", version="0.1.0",
                    package_dir=src / "bigmodel_minimal")
    return plugin_site
