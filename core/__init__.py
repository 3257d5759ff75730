"""The plugin core: hook specs, spec models, the plugin manager and registry."""

from __future__ import annotations

from ._manager import (
    ENTRY_POINT_GROUP,
    PluginError,
    PluginInfo,
    __version__,
    get_manager,
    get_registry,
    plugin_infos,
    reset,
)
from ._registry import Registry, RegistryError, normalise_sector_name
from .hookspecs import hookimpl
from .specs import (
    DataFile,
    DatasetSpec,
    LabelMap,
    LoaderSpec,
    MetricSpec,
    ModelSpec,
    Recipe,
    SectorSpec,
    SectorTask,
    ValueFactor,
    ValueFactorSpec,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "DataFile",
    "DatasetSpec",
    "LabelMap",
    "LoaderSpec",
    "MetricSpec",
    "ModelSpec",
    "PluginError",
    "PluginInfo",
    "Recipe",
    "Registry",
    "RegistryError",
    "SectorSpec",
    "SectorTask",
    "ValueFactor",
    "ValueFactorSpec",
    "__version__",
    "get_manager",
    "get_registry",
    "hookimpl",
    "normalise_sector_name",
    "plugin_infos",
    "reset",
]
