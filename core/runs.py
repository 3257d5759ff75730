"""The run directory: what training writes and everything else reads (docs/run-format.md).

:class:`Run` reads a complete run; the ``write_*``/``save_*`` helpers are what training and
evaluation use to write one. Loading a run imports neither torch nor transformers; only
:meth:`Run.build_model` does.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from .specs import LabelMap, atomic_write_text, resolve_callable
from .tasks.base import Preprocessor, load_preprocessor

__all__ = [
    "FORMAT_VERSION",
    "HELDOUT_MAX",
    "PARTIAL_SUFFIX",
    "REQUIRED_FILES",
    "Run",
    "RunError",
    "partial_path",
    "write_json",
    "read_json",
    "save_heldout",
    "load_heldout",
    "save_predictions",
    "callable_ref",
    "finalize",
    "write_run",
]

FORMAT_VERSION = 1
HELDOUT_MAX = 512
PARTIAL_SUFFIX = ".partial"
REQUIRED_FILES = (
    "run.json",
    "label_map.json",
    "recipe.json",
    "model.json",
    "model.safetensors",
    "preprocess/preprocess.json",
    "metrics.json",
    "environment.json",
    "README.md",
    "heldout/heldout.json",
)


class RunError(ValueError):
    """A run directory that is missing, incomplete or inconsistent."""


def partial_path(out: str | os.PathLike) -> Path:
    """Where a run being trained into ``out`` lives until it is complete."""
    out = Path(out)
    return out.with_name(out.name + PARTIAL_SUFFIX)


def write_json(path: str | os.PathLike, data: Any) -> None:
    from .metrics import json_safe

    atomic_write_text(path, json.dumps(json_safe(data), indent=2, ensure_ascii=False, allow_nan=False) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunError(f"{path}: missing") from None
    except json.JSONDecodeError as exc:
        raise RunError(f"{path}: not valid JSON ({exc})") from None


def callable_ref(obj: Any) -> str:
    """``"module:qualname"`` of a function/class/object (strings pass through)."""
    if isinstance(obj, str):
        return obj
    target = obj if hasattr(obj, "__qualname__") else type(obj)
    module = getattr(target, "__module__", None)
    if not module or "<locals>" in target.__qualname__:
        raise ValueError(f"{obj!r} has no importable 'module:name' reference; register it by name instead")
    return f"{module}:{target.__qualname__}"


def _atomic_file(path: Path, write: Any) -> None:
    """Call ``write(tmp_path)`` then move the result to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# -- held-out examples ----------------------------------------------------------------------


def save_heldout(directory: str | os.PathLike, kind: str, split: Any, *, split_name: str,
                 limit: int = HELDOUT_MAX, seed: int = 0) -> int:
    """Store up to ``limit`` real examples of ``split`` (raw inputs, labels, sources); returns the count."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    n = len(split)
    chosen = np.sort(np.random.default_rng(seed).permutation(n)[: min(limit, n)])
    part = split.take(chosen)
    _atomic_file(directory / "labels.npy", lambda tmp: np.save(tmp, np.asarray(part.labels, dtype=np.int64)))
    write_json(directory / "sources.json", list(part.sources))
    if kind == "text":
        write_json(directory / "inputs.json", [str(t) for t in part.inputs])
        files = ["inputs.json"]
    elif kind == "image":
        arrays = {f"i{i:05d}": np.asarray(img) for i, img in enumerate(part.inputs)}
        _atomic_file(directory / "images.npz", lambda tmp: np.savez_compressed(tmp, **arrays))
        files = ["images.npz"]
    elif kind == "tabular":
        columns = []
        for name, values in part.inputs.items():
            values = np.asarray(values)
            if values.dtype == object or values.dtype.kind in "US":
                columns.append({"name": name, "type": "categorical",
                                "values": [None if v is None else str(v) for v in values.tolist()]})
            else:
                columns.append({"name": name, "type": "numeric", "dtype": str(values.dtype),
                                "values": [None if (isinstance(v, float) and not np.isfinite(v)) else v
                                           for v in values.tolist()]})
        write_json(directory / "columns.json", {"columns": columns})
        files = ["columns.json"]
    else:
        raise ValueError(f"unknown task kind {kind!r}")
    write_json(directory / "heldout.json", {"kind": kind, "split": split_name, "count": int(len(chosen)),
                                            "files": files + ["labels.npy", "sources.json"]})
    return int(len(chosen))


def load_heldout(directory: str | os.PathLike) -> tuple[Any, np.ndarray]:
    """The held-out raw inputs (in the Split.inputs format of the kind) and their label ids."""
    directory = Path(directory)
    info = read_json(directory / "heldout.json")
    labels = np.load(directory / "labels.npy", allow_pickle=False)
    kind = info["kind"]
    if kind == "text":
        inputs: Any = read_json(directory / "inputs.json")
    elif kind == "image":
        with np.load(directory / "images.npz", allow_pickle=False) as archive:
            inputs = [archive[key] for key in sorted(archive.files)]
    elif kind == "tabular":
        inputs = {}
        for column in read_json(directory / "columns.json")["columns"]:
            if column["type"] == "categorical":
                inputs[column["name"]] = np.array(column["values"], dtype=object)
            else:
                values = [np.nan if v is None else v for v in column["values"]]
                inputs[column["name"]] = np.asarray(values, dtype=np.float64)
    else:
        raise RunError(f"{directory / 'heldout.json'}: unknown kind {kind!r}")
    return inputs, labels


def save_predictions(directory: str | os.PathLike, split: str, labels: np.ndarray, proba: np.ndarray) -> Path:
    path = Path(directory) / "predictions" / f"{split}.npz"
    _atomic_file(path, lambda tmp: np.savez_compressed(tmp, labels=np.asarray(labels, dtype=np.int64),
                                                          proba=np.asarray(proba, dtype=np.float64)))
    return path


# -- completing a run -------------------------------------------------------------------------


def finalize(partial: Path, out: Path, *, overwrite: bool) -> Path:
    """Rename the finished ``partial`` directory to ``out`` (replacing a complete run if ``overwrite``)."""
    missing = [name for name in REQUIRED_FILES if not (partial / name).exists()]
    if missing:
        raise RunError(f"{partial}: cannot complete the run, missing {missing}")
    old = None
    if out.exists():
        if not overwrite:
            raise RunError(f"{out} already exists; pass --overwrite to replace it")
        old = out.with_name(f".{out.name}.replaced-{os.getpid()}")
        os.replace(out, old)
    os.replace(partial, out)
    if old is not None:
        shutil.rmtree(old)
    return out


def write_run(out: str | os.PathLike, *, kind: str, model: Any, preprocessor: Any, label_map: LabelMap,
              builder: str, heldout: Any, heldout_split: str = "test", rebuild_base: str | None = None,
              sector: str = "external", task: str | None = None, model_name: str = "external",
              licences: dict[str, str] | None = None, recipe: dict[str, Any] | None = None,
              decision: dict[str, Any] | None = None, overwrite: bool = False) -> Path:
    """A run directory for a model that ``bigmodel train`` did not train (a model fitted elsewhere,
    or a pretrained checkpoint to export and serve), so that export, the gate and predict take it.

    ``builder`` (``"module:function"``) rebuilds the architecture from ``rebuild_base``; the weights
    come from ``model``'s state dict; ``heldout`` (a :class:`~bigmodel.core.data.Split` of real
    examples) is what the export gate compares on. No metrics are recorded. Written under
    ``<out>.partial`` and renamed when complete.
    """
    from safetensors.torch import save_model

    out = Path(out)
    partial = partial_path(out)
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    recipe = dict(recipe or {})
    write_json(partial / "run.json", {
        "format": FORMAT_VERSION, "status": "complete", "sector": sector, "task": task or f"{kind}_task",
        "kind": kind, "model": model_name, "base": rebuild_base,
        "licences": licences or {"model": "unknown", "data": "unknown"},
    })
    label_map.save(partial / "label_map.json")
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]
    write_json(partial / "recipe.json", {"values": recipe, "digest": digest, "class": "Recipe"})
    write_json(partial / "model.json", {"builder": builder, "rebuild_base": rebuild_base, "rebuild_base_in_run": False})
    save_model(model, str(partial / "model.safetensors"))
    preprocessor.save(partial / "preprocess")
    write_json(partial / "metrics.json", {})
    write_json(partial / "environment.json", {})
    atomic_write_text(partial / "README.md", f"# {model_name}\n\nA {kind} model written by `bigmodel.core.runs.write_run` "
                                             f"(not trained by bigmodel: no metrics).\n")
    if decision is not None:
        write_json(partial / "decision.json", decision)
    save_heldout(partial / "heldout", kind, heldout, split_name=heldout_split)
    return finalize(partial, out, overwrite=overwrite)


# -- reading -----------------------------------------------------------------------------------


def _members(model_info: dict) -> int:
    """How many members a run's model.json describes (a bagged run or deep ensemble: k, else 1)."""
    return max(int(model_info.get("bagging", 1) or 1), int(model_info.get("ensemble", 1) or 1))


class Run:
    """A complete run directory."""

    path: Path
    info: dict
    label_map: LabelMap
    recipe: dict
    recipe_digest: str
    decision: dict | None

    def __init__(self, path: Path, info: dict, label_map: LabelMap, recipe: dict, recipe_digest: str,
                 recipe_class: str, decision: dict | None) -> None:
        self.path = path
        self.info = info
        self.label_map = label_map
        self.recipe = recipe
        self.recipe_digest = recipe_digest
        self.recipe_class = recipe_class
        self.decision = decision

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Run":
        path = Path(path).expanduser()
        if path.name.endswith(PARTIAL_SUFFIX):
            raise RunError(f"{path} is an unfinished run (training was interrupted); resume it with "
                           f"`bigmodel train ... --out {str(path)[: -len(PARTIAL_SUFFIX)]} --resume`")
        if not path.is_dir():
            hint = ""
            if partial_path(path).is_dir():
                hint = f"; {partial_path(path)} holds an unfinished run: resume it with --resume"
            raise RunError(f"{path}: no such run directory{hint}")
        missing = [name for name in REQUIRED_FILES if not (path / name).exists()]
        if missing:
            raise RunError(f"{path}: not a complete run directory (missing {', '.join(missing)})")
        info = read_json(path / "run.json")
        if info.get("status") != "complete":
            raise RunError(f"{path / 'run.json'}: status is {info.get('status')!r}, not 'complete'")
        if info.get("format", FORMAT_VERSION) > FORMAT_VERSION:
            raise RunError(f"{path}: run format {info.get('format')} is newer than this bigmodel understands ({FORMAT_VERSION})")
        try:
            label_map = LabelMap.load(path / "label_map.json")
        except ValueError as exc:
            raise RunError(f"{path / 'label_map.json'}: {exc}") from None
        recipe = read_json(path / "recipe.json")
        decision = read_json(path / "decision.json") if (path / "decision.json").exists() else None
        return cls(path, info, label_map, dict(recipe["values"]), str(recipe["digest"]), str(recipe["class"]), decision)

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, sector={self.info.get('sector')!r}, task={self.info.get('task')!r})"

    @property
    def kind(self) -> str:
        return self.info["kind"]

    def recipe_values(self) -> SimpleNamespace:
        """The resolved recipe as an attribute namespace (what model builders read)."""
        return SimpleNamespace(**self.recipe)

    def preprocessor(self) -> Preprocessor:
        return load_preprocessor(self.path / "preprocess")

    def model_info(self) -> dict:
        return read_json(self.path / "model.json")

    def build_model(self):
        """The trained torch module (rebuilt offline from model.json, weights loaded, eval mode); a
        bagged run or deep ensemble (model.json ``bagging`` or ``ensemble`` k > 1) rebuilds its k members inside a mean ensemble, a
        heterogeneous ensemble (model.json ``members``) each member from its own recipe, base and input, and a
        run with ``logit_adjustment`` wraps each member in its logit offset (the values come with the weights)."""
        from safetensors.torch import load_model

        from .tasks.base import logit_offset, mean_ensemble, member_input

        spec = self.model_info()
        builder = resolve_callable(spec["builder"])
        preprocess = read_json(self.path / "preprocess" / "preprocess.json")

        def base_of(info: dict) -> str | None:
            base = info.get("rebuild_base")
            return str(self.path / base) if base is not None and info.get("rebuild_base_in_run") else base

        # (recipe, base, preprocessing, logit adjustment) per member: a heterogeneous ensemble's each its own
        if spec.get("members"):
            plans = [(SimpleNamespace(**{**self.recipe, **entry}), base_of(member), member["preprocess"],
                      member.get("logit_adjustment")) for entry, member in zip(self.recipe["members"], spec["members"])]
        else:
            plans = [(self.recipe_values(), base_of(spec), preprocess, spec.get("logit_adjustment"))] * _members(spec)
        members = []
        for m, (recipe, base, member_preprocess, adjusted) in enumerate(plans):
            member = builder(label_map=self.label_map, recipe=recipe, base=base, preprocess=member_preprocess,
                             pretrained=False)
            if adjusted:
                member = logit_offset(member, np.zeros(len(self.label_map)))
            members.append(member_input(member, preprocess, member_preprocess, member=m))
        model = members[0] if len(members) == 1 else mean_ensemble(members)
        try:
            load_model(model, str(self.path / "model.safetensors"), strict=True)
        except RuntimeError as exc:
            raise RunError(f"{self.path / 'model.safetensors'}: weights do not fit the rebuilt model ({exc})") from None
        return model.eval()

    def heldout(self) -> tuple[Any, np.ndarray]:
        return load_heldout(self.path / "heldout")

    def metrics(self) -> dict:
        return read_json(self.path / "metrics.json")

    def predictions(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        path = self.path / "predictions" / f"{split}.npz"
        if not path.is_file():
            available = sorted(p.stem for p in (self.path / "predictions").glob("*.npz"))
            raise RunError(f"{path}: no predictions for split {split!r} (available: {available})")
        with np.load(path, allow_pickle=False) as data:
            return data["labels"], data["proba"]
