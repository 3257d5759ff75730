"""The plugin core: hook specs, spec models, the plugin manager and registry.

Names are imported on first use (PEP 562), so ``import bigmodel.core`` stays cheap and
``bigmodel --help`` does not pay for pydantic or pluggy.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._version import __version__
from .errors import PluginError, RegistryError

_LAZY = {
    "ENTRY_POINT_GROUP": "._manager",
    "PluginInfo": "._manager",
    "get_manager": "._manager",
    "get_registry": "._manager",
    "plugin_infos": "._manager",
    "reset": "._manager",
    "Registry": "._registry",
    "normalise_sector_name": "._registry",
    "hookimpl": ".hookspecs",
    "DataFile": ".specs",
    "DatasetSpec": ".specs",
    "LabelMap": ".specs",
    "LoaderSpec": ".specs",
    "MetricSpec": ".specs",
    "ModelSpec": ".specs",
    "Recipe": ".specs",
    "SectorSpec": ".specs",
    "SectorTask": ".specs",
    "ValueFactor": ".specs",
    "ValueFactorSpec": ".specs",
}

__all__ = sorted([*_LAZY, "PluginError", "RegistryError", "__version__"])


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'bigmodel.core' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
