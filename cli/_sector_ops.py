"""What ``bigmodel sector`` does, apart from printing: resolve, install, validate, roll back."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

from bigmodel.core import ENTRY_POINT_GROUP, Registry, normalise_sector_name, reset
from bigmodel.core._manager import require_plugin_ok
from bigmodel.core._registry import KINDS

_SHORT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


def source_checkout() -> Path | None:
    """The repository root when bigmodel runs from a source checkout (editable install)."""
    root = Path(__file__).resolve().parent.parent
    if (root / "sectors").is_dir() and (root / "pyproject.toml").is_file() and (root / "core" / "hookspecs.py").is_file():
        return root
    return None


def resolve_target(target: str) -> tuple[str, bool]:
    """(what pip installs, whether it is a local path)."""
    path = Path(target).expanduser()
    if path.exists():
        if not (path / "pyproject.toml").is_file() and not (path / "setup.py").is_file():
            raise ValueError(f"{path}: not a Python project (no pyproject.toml or setup.py)")
        return str(path.resolve()), True
    if _SHORT_NAME.match(target) and not target.lower().startswith("bigmodel"):
        name = normalise_sector_name(target)
        root = source_checkout()
        if root is not None and (root / "sectors" / name / "pyproject.toml").is_file():
            return str(root / "sectors" / name), True
        return "bigmodel-" + name.replace("_", "-"), False
    return target, False


def _installed() -> dict[str, str]:
    return {normalise_dist(d.metadata["Name"]): d.version for d in metadata.distributions() if d.metadata["Name"]}


def normalise_dist(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _plugins_of(dists: set[str]) -> list[str]:
    out = []
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.dist is not None and normalise_dist(ep.dist.metadata["Name"]) in dists:
            out.append(ep.name)
    return sorted(set(out))


def _pip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True)


def _last_error(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [l for l in (proc.stderr + proc.stdout).splitlines() if l.strip() and "WARNING: Location" not in l]
    errors = [l for l in lines if "ERROR" in l or "error" in l]
    return (errors or lines or ["(no output)"])[-1].strip()


def install_sector(target: str, *, editable: bool = False, upgrade: bool = False,
                   echo: Callable[[str], None] = print) -> dict[str, Any]:
    spec, is_path = resolve_target(target)
    if editable and not is_path:
        raise ValueError(f"-e needs a local path; {target!r} resolved to the requirement {spec!r}")
    before = _installed()
    args = ["install", "--disable-pip-version-check"]
    if upgrade:
        args.append("--upgrade")
    args += ["-e", spec] if editable else [spec]
    echo(f"pip {' '.join(args)}")
    proc = _pip(*args)
    after = _installed()
    changed = {d for d, v in after.items() if before.get(d) != v}
    if proc.returncode != 0:
        _rollback(before, after, changed)
        raise ValueError(f"installing {target!r} failed: {_last_error(proc)}")
    plugins = _plugins_of(changed) or _plugins_of({normalise_dist(Path(spec).name if is_path else spec)})
    if not plugins and is_path:
        plugins = _plugins_of({normalise_dist(_project_name(Path(spec)))})
    if not plugins:
        _rollback(before, after, changed)
        raise ValueError(f"{target!r} installed no plugin in the {ENTRY_POINT_GROUP!r} entry-point group; environment restored")
    # validate in a fresh interpreter: this one has cached the old entry points
    check = subprocess.run([sys.executable, "-m", "bigmodel.cli", "sector", "validate", plugins[0]],
                           capture_output=True, text=True, env={**os.environ, "BIGMODEL_STRICT_PLUGINS": ""})
    if check.returncode != 0:
        _rollback(before, after, changed)
        reason = (check.stderr.strip().splitlines() or ["unknown error"])[-1].removeprefix("Error: ")
        raise ValueError(f"{target!r} installed but failed validation, environment restored: {reason}")
    reset()
    result = json.loads(check.stdout)
    dist_name = next(iter(sorted(changed)), None) or result["distribution"]
    return {**result, "distribution": result.get("distribution") or dist_name}


def _project_name(path: Path) -> str:
    import tomllib

    try:
        return tomllib.loads((path / "pyproject.toml").read_text())["project"]["name"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return path.name


def _rollback(before: dict[str, str], after: dict[str, str], changed: set[str]) -> None:
    new = sorted(d for d in changed if d not in before)
    if new:
        _pip("uninstall", "-y", *new)
    for dist in sorted(changed - set(new)):
        _pip("install", "--no-deps", f"{dist}=={before[dist]}")


def validate_plugin(name: str) -> dict[str, Any]:
    reset()
    info = require_plugin_ok(name)
    from bigmodel.core import get_registry

    registry = get_registry()
    registered: dict[str, list[str]] = {}
    for kind, *_ in KINDS.values():
        keys = [k for k, e in registry.entries[kind].items() if e.plugin == info.name]
        registered[kind + "s"] = sorted(keys)
    return {"plugin": info.name, "distribution": info.distribution, "version": info.version, "registered": registered}


def distribution_of_plugin(name: str) -> str:
    wanted = normalise_sector_name(name)
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if normalise_sector_name(ep.name) == wanted and ep.dist is not None:
            return ep.dist.metadata["Name"]
    dist = "bigmodel-" + wanted.replace("_", "-")
    try:
        return metadata.distribution(dist).metadata["Name"]
    except metadata.PackageNotFoundError:
        raise ValueError(f"no installed sector plugin named {name!r}") from None


def describe(registry: Registry, name: str) -> dict[str, Any]:
    spec = registry.sector(name)
    tasks = []
    for task in spec.tasks:
        model = registry.model(task.model)
        tasks.append({
            "name": task.name, "kind": task.kind, "description": task.description,
            "model": task.model, "base_model": model.default_base, "model_licence": model.licence,
            "labels": task.label_map.names, "positive": task.label_map.positive,
            "datasets": [f"{spec.name}/{d}" for d in task.datasets], "metrics": task.metrics,
            "recipe_class": task.recipe.__name__, "recipe": task.recipe().model_dump(mode="json"),
            "presets": task.presets,
        })
    datasets = [{"key": d.key, "task": d.task, "licence": d.licence, "urls": d.source_urls,
                 "files": [f.model_dump() for f in d.files], "loader": d.loader} for d in registry.datasets_of(spec.name)]
    factors = [{"factor": v.factor, "name": v.name, "weight": v.weight, "description": v.description}
               for v in registry.value_factors(spec.name)]
    return {"name": spec.name, "title": spec.title, "description": spec.description, "tasks": tasks,
            "datasets": datasets, "value_factors": factors, "plugin": registry.plugin_of("sector", spec.name)}


__all__ = ["install_sector", "validate_plugin", "distribution_of_plugin", "describe", "resolve_target", "source_checkout"]
