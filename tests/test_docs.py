"""Every hook is documented in docs/hooks.md and exercised by a test (datasette-style)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bigmodel.core import hookspecs
from bigmodel.core._manager import hook_callables

ROOT = Path(__file__).resolve().parents[1]
HOOKS = sorted(hook_callables())


def test_hookspecs_are_found():
    assert HOOKS == ["register_datasets", "register_loaders", "register_metrics", "register_models",
                     "register_sectors", "register_value_factors"]


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_documented(hook):
    doc = (ROOT / "docs" / "hooks.md").read_text()
    assert re.search(rf"^### {hook}$", doc, re.M), f"docs/hooks.md has no '### {hook}' section"
    assert f"`{hook}(register:" in doc, f"docs/hooks.md does not show {hook}'s signature"
    assert getattr(hookspecs, hook).__doc__, f"{hook} has no docstring"


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_exercised_by_a_test(hook):
    sources = [p for p in ROOT.glob("tests/**/*.py") if p.name != "test_docs.py"]
    sources += list(ROOT.glob("sectors/*/tests/**/*.py"))
    users = [p for p in sources if re.search(rf"def {hook}\(", p.read_text())]
    assert users, f"no test or test fixture implements {hook}"
