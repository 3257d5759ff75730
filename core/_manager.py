"""Plugin loading: built-ins first, then the ``bigmodel`` entry-point group.

A plugin that fails (import error, bad hook, version mismatch, duplicate names,
dangling references) is recorded as broken and isolated; ``BIGMODEL_STRICT_PLUGINS=1``
turns the first failure into an exception. ``BIGMODEL_LOAD_PLUGINS=a,b`` loads only
the named entry points (an empty value loads none but the built-ins).
"""

from __future__ import annotations

import difflib
import importlib
import os
import threading
from dataclasses import asdict, dataclass, field
from importlib import metadata
from types import ModuleType
from typing import Any, Callable

import pluggy

from . import hookspecs
from ._version import __version__
from .errors import PluginError
from ._registry import KINDS, Registry, normalise_sector_name

__all__ = [
    "ENTRY_POINT_GROUP",
    "BUILTIN_PLUGINS",
    "PluginError",
    "PluginInfo",
    "get_manager",
    "get_registry",
    "plugin_infos",
    "reset",
    "__version__",
]

ENTRY_POINT_GROUP = "bigmodel"
BUILTIN_PLUGINS = {
    "bigmodel.loaders": "bigmodel.plugins.loaders",
    "bigmodel.models": "bigmodel.plugins.models",
    "bigmodel.metrics": "bigmodel.plugins.metrics",
}



@dataclass
class PluginInfo:
    name: str
    module: str
    distribution: str | None = None
    version: str | None = None
    builtin: bool = False
    status: str = "ok"  # ok | broken | incompatible
    error: str | None = None
    hooks: list[str] = field(default_factory=list)
    requires: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_lock = threading.RLock()
_state: dict[str, Any] = {}


def reset() -> None:
    """Forget loaded plugins (tests, or after installing a plugin in-process)."""
    with _lock:
        _state.clear()


def _strict() -> bool:
    return os.environ.get("BIGMODEL_STRICT_PLUGINS", "").strip().lower() in {"1", "true", "yes", "on"}


def _selected() -> set[str] | None:
    raw = os.environ.get("BIGMODEL_LOAD_PLUGINS")
    if raw is None:
        return None
    return {normalise_sector_name(p) for p in raw.split(",") if p.strip()}


def _entry_points() -> list[metadata.EntryPoint]:
    seen: dict[str, metadata.EntryPoint] = {}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        seen.setdefault(ep.name, ep)  # first on sys.path wins, as with imports
    return sorted(seen.values(), key=lambda ep: ep.name)


def _fail(info: PluginInfo, message: str, status: str = "broken") -> None:
    info.status, info.error = status, message
    if _strict():
        raise PluginError(f"plugin {info.name!r}: {message}")


def _check_hooks(pm: pluggy.PluginManager, module: ModuleType, name: str) -> str | None:
    """Reject misspelled or unmarked hook functions; pluggy checks the arguments."""
    specs = {n for n in dir(hookspecs) if n.startswith("register_")}
    for attr in dir(module):
        obj = getattr(module, attr, None)
        if not callable(obj) or getattr(obj, "__module__", None) != module.__name__:
            continue
        marked = pm.parse_hookimpl_opts(module, attr) is not None
        if marked and attr not in specs:
            close = difflib.get_close_matches(attr, sorted(specs), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; hooks are {sorted(specs)}"
            return f"hook {attr!r} is not a bigmodel hook{hint}"
        if not marked and attr in specs:
            return f"function {attr!r} is not marked with @bigmodel.hookimpl"
    return None


def _register(pm: pluggy.PluginManager, module: ModuleType, info: PluginInfo) -> bool:
    problem = _check_hooks(pm, module, info.name)
    if problem:
        _fail(info, problem)
        return False
    try:
        pm.register(module, name=info.name)
    except pluggy.PluginValidationError as exc:
        # pluggy's message names the hook and the offending argument
        _fail(info, f"invalid hook implementation: {exc}")
        return False
    except ValueError as exc:  # already registered under another name
        _fail(info, str(exc))
        return False
    info.hooks = sorted(h.name for h in pm.get_hookcallers(module) or [])
    return True


def _check_version(module: ModuleType, info: PluginInfo) -> bool:
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.version import Version

    requires = getattr(module, "BIGMODEL_REQUIRES", None)
    if requires is None:
        return True
    info.requires = str(requires)
    try:
        spec = SpecifierSet(str(requires))
    except InvalidSpecifier:
        _fail(info, f"BIGMODEL_REQUIRES {requires!r} is not a valid PEP 440 specifier")
        return False
    if Version(__version__) not in spec:
        _fail(info, f"supports bigmodel{spec} but bigmodel {__version__} is installed", status="incompatible")
        return False
    return True


def _load() -> dict[str, Any]:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    infos: dict[str, PluginInfo] = {}

    for name, modname in BUILTIN_PLUGINS.items():
        info = infos[name] = PluginInfo(name=name, module=modname, builtin=True, version=__version__, distribution="bigmodel")
        _register(pm, importlib.import_module(modname), info)

    selected = _selected()
    for ep in _entry_points():
        if selected is not None and normalise_sector_name(ep.name) not in selected:
            continue
        dist = ep.dist
        info = infos[ep.name] = PluginInfo(
            name=ep.name,
            module=ep.value,
            distribution=dist.metadata["Name"] if dist else None,
            version=dist.version if dist else None,
        )
        try:
            module = ep.load()
        except Exception as exc:
            _fail(info, f"failed to import {ep.value}: {type(exc).__name__}: {exc}")
            continue
        if _check_version(module, info):
            _register(pm, module, info)

    registry = _build_registry(pm, infos)
    return {"pm": pm, "infos": infos, "registry": registry}


def _build_registry(pm: pluggy.PluginManager, infos: dict[str, PluginInfo]) -> Registry:
    registry = Registry()
    claims: dict[tuple[str, str], list[str]] = {}
    staged: dict[str, list[tuple[str, str, Any]]] = {}

    for hook_name, (kind, spec_type, key_of) in KINDS.items():
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            plugin = impl.plugin_name
            if infos[plugin].status != "ok":
                continue

            def register(spec: Any, *, _p: str = plugin, _h: str = hook_name, _k=kind, _t=spec_type, _key=key_of) -> None:
                if not isinstance(spec, _t):
                    raise TypeError(f"{_h} expects {_t.__name__} objects, got {type(spec).__name__}")
                staged.setdefault(_p, []).append((_k, _key(spec), spec))

            try:
                impl.function(register=register)
            except Exception as exc:
                staged.pop(plugin, None)
                _fail(infos[plugin], f"hook {hook_name} raised {type(exc).__name__}: {exc}")

    for plugin, items in staged.items():
        if infos[plugin].status != "ok":
            continue
        for kind, key, _spec in items:
            claims.setdefault((kind, key), []).append(plugin)
    for (kind, key), owners in claims.items():
        if len(owners) > 1:
            msg = f"{kind} {key!r} is registered by both {owners[0]!r} and {owners[1]!r}"
            for owner in set(owners):
                _fail(infos[owner], msg)
    for plugin, items in staged.items():
        if infos[plugin].status != "ok":
            for kind, key, _spec in items:
                registry.unavailable[kind][key] = f"plugin {plugin!r} is {infos[plugin].status}: {infos[plugin].error}"
            continue
        for kind, key, spec in items:
            registry.add(kind, key, spec, plugin)

    for plugin, messages in registry.problems().items():
        _fail(infos[plugin], "; ".join(messages))
        registry.drop_plugin(plugin, infos[plugin].error or "")
    return registry


def _get() -> dict[str, Any]:
    with _lock:
        if not _state:
            _state.update(_load())
        return _state


def get_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager (loads plugins on first use)."""
    return _get()["pm"]


def get_registry() -> Registry:
    """Everything the loaded plugins registered."""
    return _get()["registry"]


def plugin_infos() -> list[PluginInfo]:
    """One record per plugin that was considered: built-ins first, then entry points by name."""
    return list(_get()["infos"].values())


def broken_plugins() -> list[PluginInfo]:
    return [i for i in plugin_infos() if i.status != "ok"]


def require_plugin_ok(name: str) -> PluginInfo:
    """The named plugin's record; raises PluginError if it is missing or broken."""
    for info in plugin_infos():
        if normalise_sector_name(info.name) == normalise_sector_name(name):
            if info.status != "ok":
                raise PluginError(f"plugin {info.name!r} is {info.status}: {info.error}")
            return info
    raise PluginError(f"no plugin named {name!r} is installed")


def hook_callables() -> dict[str, Callable[..., Any]]:  # for docs tests
    return {n: getattr(hookspecs, n) for n in dir(hookspecs) if n.startswith("register_")}
