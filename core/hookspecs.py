"""The hooks a bigmodel plugin may implement.

Every hook is a registration hook called once when plugins load: it receives a
``register`` callable and calls it with spec objects from :mod:`bigmodel.core.specs`.
The manager records which plugin registered what, so duplicates are reported with
both names. Implementations must be cheap: no torch import at module or hook level.
"""

from __future__ import annotations

from typing import Callable

import pluggy

from .specs import DatasetSpec, LoaderSpec, MetricSpec, ModelSpec, SectorSpec, ValueFactorSpec

__all__ = ["hookspec", "hookimpl", "PROJECT"]

PROJECT = "bigmodel"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# -- building blocks: readers and models the engine can use ------------------------------


@hookspec
def register_loaders(register: Callable[[LoaderSpec], None]) -> None:
    """Register data readers (CSV text, image folders, npz, DICOM, tabular CSV, ...).

    :param register: call with a :class:`LoaderSpec` for each reader.
    """


@hookspec
def register_models(register: Callable[[ModelSpec], None]) -> None:
    """Register model families and their default pretrained weights.

    :param register: call with a :class:`ModelSpec` for each family.
    """


@hookspec
def register_metrics(register: Callable[[MetricSpec], None]) -> None:
    """Register evaluation metrics computed from labels and probabilities.

    :param register: call with a :class:`MetricSpec` for each metric.
    """


# -- sector solutions: what a sector plugin brings --------------------------------------


@hookspec
def register_sectors(register: Callable[[SectorSpec], None]) -> None:
    """Register sector solutions (label maps, tasks, recipes, presets).

    :param register: call with a :class:`SectorSpec` for each sector.
    """


@hookspec
def register_datasets(register: Callable[[DatasetSpec], None]) -> None:
    """Register datasets with their official URLs, hashes, licence and loader.

    :param register: call with a :class:`DatasetSpec` for each dataset.
    """


# -- after a run: the value model --------------------------------------------------------


@hookspec
def register_value_factors(register: Callable[[ValueFactorSpec], None]) -> None:
    """Register value-factor items a sector measures from a finished run directory.

    :param register: call with a :class:`ValueFactorSpec` for each item.
    """
