"""The registry: every spec plugins registered, with the plugin that registered it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from .errors import RegistryError
from .specs import DatasetSpec, LoaderSpec, MetricSpec, ModelSpec, SectorSpec, ValueFactorSpec

__all__ = ["Registry", "RegistryError", "KINDS"]

S = TypeVar("S")

# hook name -> (kind label, spec type, key function)
KINDS: dict[str, tuple[str, type, Any]] = {
    "register_loaders": ("loader", LoaderSpec, lambda s: s.name),
    "register_models": ("model", ModelSpec, lambda s: s.name),
    "register_metrics": ("metric", MetricSpec, lambda s: s.name),
    "register_sectors": ("sector", SectorSpec, lambda s: s.name),
    "register_datasets": ("dataset", DatasetSpec, lambda s: s.key),
    "register_value_factors": ("value factor", ValueFactorSpec, lambda s: f"{s.sector}/{s.name}"),
}


@dataclass(frozen=True)
class Entry(Generic[S]):
    spec: S
    plugin: str


@dataclass
class Registry:
    """Specs by kind and key. Built by :func:`bigmodel.core.get_registry`."""

    entries: dict[str, dict[str, Entry[Any]]] = field(default_factory=lambda: {k[0]: {} for k in KINDS.values()})
    # key -> reason, for names whose plugin failed, so lookups can say why
    unavailable: dict[str, dict[str, str]] = field(default_factory=lambda: {k[0]: {} for k in KINDS.values()})

    def add(self, kind: str, key: str, spec: Any, plugin: str) -> None:
        self.entries[kind][key] = Entry(spec, plugin)

    def get(self, kind: str, key: str) -> Any:
        table = self.entries[kind]
        if key in table:
            return table[key].spec
        if key in self.unavailable[kind]:
            raise RegistryError(f"{kind} {key!r} is unavailable: {self.unavailable[kind][key]}")
        known = ", ".join(sorted(table)) or "none"
        raise RegistryError(f"unknown {kind} {key!r} (registered: {known})")

    def plugin_of(self, kind: str, key: str) -> str:
        return self.entries[kind][key].plugin

    def all(self, kind: str) -> dict[str, Any]:
        return {k: e.spec for k, e in sorted(self.entries[kind].items())}

    # typed conveniences -----------------------------------------------------------------
    def sector(self, name: str) -> SectorSpec:
        return self.get("sector", normalise_sector_name(name))

    def dataset(self, key: str) -> DatasetSpec:
        sector, sep, name = key.partition("/")
        if not sep:
            raise RegistryError(f"dataset {key!r}: expected SECTOR/DATASET")
        return self.get("dataset", f"{normalise_sector_name(sector)}/{name}")

    def model(self, name: str) -> ModelSpec:
        return self.get("model", name)

    def metric(self, name: str) -> MetricSpec:
        return self.get("metric", name)

    def loader(self, name: str) -> LoaderSpec:
        return self.get("loader", name)

    def value_factors(self, sector: str) -> list[ValueFactorSpec]:
        sector = normalise_sector_name(sector)
        return [s for s in self.all("value factor").values() if s.sector == sector]

    def datasets_of(self, sector: str) -> list[DatasetSpec]:
        sector = normalise_sector_name(sector)
        return [s for s in self.all("dataset").values() if s.sector == sector]

    def problems(self) -> dict[str, list[str]]:
        """Cross-references that do not resolve, by the plugin that made them."""
        out: dict[str, list[str]] = {}

        def bad(kind: str, key: str, msg: str) -> None:
            out.setdefault(self.plugin_of(kind, key), []).append(msg)

        for key, ds in self.all("dataset").items():
            if ds.loader not in self.entries["loader"]:
                bad("dataset", key, f"dataset {key!r} uses unknown loader {ds.loader!r}")
            elif self.loader(ds.loader).task != ds.task:
                bad("dataset", key, f"dataset {key!r} is a {ds.task} dataset but loader {ds.loader!r} reads {self.loader(ds.loader).task}")
        for name, sector in self.all("sector").items():
            for task in sector.tasks:
                where = f"sector {name!r} task {task.name!r}"
                if task.model not in self.entries["model"]:
                    bad("sector", name, f"{where} uses unknown model {task.model!r}")
                elif self.model(task.model).task != task.kind:
                    bad("sector", name, f"{where} is {task.kind} but model {task.model!r} is {self.model(task.model).task}")
                for ds in task.datasets:
                    if f"{name}/{ds}" not in self.entries["dataset"]:
                        bad("sector", name, f"{where} uses unknown dataset {name}/{ds}")
                for metric in task.metrics:
                    if metric not in self.entries["metric"]:
                        bad("sector", name, f"{where} uses unknown metric {metric!r}")
        for key, vf in self.all("value factor").items():
            if vf.sector not in self.entries["sector"]:
                bad("value factor", key, f"value factor {key!r} is for unknown sector {vf.sector!r}")
        return out

    def drop_plugin(self, plugin: str, reason: str) -> None:
        for kind, table in self.entries.items():
            for key in [k for k, e in table.items() if e.plugin == plugin]:
                del table[key]
                self.unavailable[kind][key] = f"plugin {plugin!r} is broken: {reason}"


def normalise_sector_name(name: str) -> str:
    """``customer-service`` and ``Customer_Service`` both mean ``customer_service``."""
    return name.strip().lower().replace("-", "_")
