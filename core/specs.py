"""What plugins register: typed, validated pydantic models.

Nothing here imports torch: these objects are built at plugin registration time,
which must stay cheap (``bigmodel --help`` loads every plugin).
"""

from __future__ import annotations

import importlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

__all__ = [
    "TaskKind",
    "LRScheduler",
    "LabelMap",
    "DataFile",
    "DatasetSpec",
    "LoaderSpec",
    "ModelSpec",
    "MetricSpec",
    "Recipe",
    "SectorTask",
    "SectorSpec",
    "ValueFactor",
    "ValueFactorSpec",
    "resolve_callable",
    "atomic_write_text",
]

TaskKind = Literal["text", "image", "tabular"]
# transformers' schedule names, plus "multistep" (built by the engine's trainer; docs/architecture.md).
# Sector recipes that change the default reuse this type, so every recipe accepts every schedule.
LRScheduler = Literal["linear", "cosine", "constant", "constant_with_warmup", "multistep"]
FactorLetter = Literal["T", "K", "U", "R"]

_NAME_PATTERN = r"^[a-z][a-z0-9_]*$"
# recipe fields that shape the whole run (its data, splits, ensemble and evaluation), not one member
_RUN_LEVEL = frozenset({"members", "bagging", "ensemble", "train_subset", "eval_subset", "validation_fraction",
                        "metric_for_best_model", "eval_strategy", "eval_steps", "eval_batch_size"})


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def resolve_callable(ref: str | Callable[..., Any]) -> Callable[..., Any]:
    """Turn ``"package.module:attr"`` into the object it names (callables pass through)."""
    if callable(ref):
        return ref
    module_name, sep, attr = ref.partition(":")
    if not sep or not attr:
        raise ValueError(f"callable reference {ref!r} must look like 'package.module:attribute'")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class LabelMap(_Spec):
    """A bijection between class ids (contiguous from 0) and unique class names."""

    id2label: dict[int, str]
    positive: str | None = Field(
        default=None, description="name of the positive class for binary screening metrics"
    )

    @field_validator("id2label")
    @classmethod
    def _contiguous_unique(cls, value: dict[int, str]) -> dict[int, str]:
        if not value:
            raise ValueError("label map is empty")
        ids = sorted(value)
        if ids != list(range(len(ids))):
            missing = sorted(set(range(len(ids))) - set(ids))
            raise ValueError(f"ids must be contiguous from 0; got {ids[:10]}, missing {missing[:10]}")
        names = list(value.values())
        for name in names:
            if not isinstance(name, str) or not name.strip():
                raise ValueError(f"label names must be non-empty strings; got {name!r}")
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"label names must be unique; duplicated: {dupes}")
        return {i: value[i] for i in ids}

    @model_validator(mode="after")
    def _positive_known(self) -> "LabelMap":
        if self.positive is not None and self.positive not in self.id2label.values():
            raise ValueError(f"positive class {self.positive!r} is not one of the label names")
        return self

    @classmethod
    def from_names(cls, names: list[str], positive: str | None = None) -> "LabelMap":
        return cls(id2label=dict(enumerate(names)), positive=positive)

    @property
    def names(self) -> list[str]:
        return [self.id2label[i] for i in range(len(self.id2label))]

    @property
    def label2id(self) -> dict[str, int]:
        return {name: i for i, name in self.id2label.items()}

    @property
    def positive_id(self) -> int | None:
        return None if self.positive is None else self.label2id[self.positive]

    def __len__(self) -> int:
        return len(self.id2label)

    def encode(self, name: str) -> int:
        try:
            return self.label2id[name]
        except KeyError:
            raise KeyError(f"unknown label {name!r}; known: {self.names[:10]}{'…' if len(self) > 10 else ''}") from None

    def to_json(self) -> str:
        data: dict[str, Any] = {"id2label": {str(i): n for i, n in self.id2label.items()}}
        if self.positive is not None:
            data["positive"] = self.positive
        return json.dumps(data, indent=2, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> "LabelMap":
        return cls.model_validate(json.loads(text))

    def save(self, path: str | os.PathLike) -> None:
        atomic_write_text(path, self.to_json() + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> "LabelMap":
        try:
            return cls.from_json(Path(path).read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from None


class DataFile(_Spec):
    """One file of a dataset: where it comes from and the hash that vouches for it."""

    filename: str
    url: str = Field(description="official download URL (a file, or an archive holding `member`)")
    hash: str = Field(description="'sha256:<hex>' or 'md5:<hex>' of the file (of the member for archives)")
    member: str | None = Field(default=None, description="path of the file inside the archive at `url`")

    @field_validator("hash")
    @classmethod
    def _hash_form(cls, value: str) -> str:
        algo, sep, digest = value.partition(":")
        algo = algo.lower()
        lengths = {"sha256": 64, "md5": 32}
        if not sep or algo not in lengths or len(digest) != lengths[algo] or any(
            c not in "0123456789abcdef" for c in digest.lower()
        ):
            raise ValueError(f"hash {value!r} must be 'sha256:<64 hex>' or 'md5:<32 hex>'")
        return f"{algo}:{digest.lower()}"


class DatasetSpec(_Spec):
    """A dataset a sector declares: provenance, licence, files and the loader that reads them."""

    name: str = Field(pattern=_NAME_PATTERN)
    sector: str = Field(pattern=_NAME_PATTERN)
    task: TaskKind
    licence: str
    description: str = ""
    homepage: str = ""
    files: list[DataFile]
    loader: str = Field(description="name of a registered loader")
    loader_options: dict[str, Any] = Field(default_factory=dict)
    mirror_subdir: str | None = Field(
        default=None, description="folder of this dataset's files under a mirror (default: the dataset name)"
    )

    @property
    def key(self) -> str:
        return f"{self.sector}/{self.name}"

    @property
    def source_urls(self) -> list[str]:
        return sorted({f.url for f in self.files})

    @field_validator("files")
    @classmethod
    def _files_unique(cls, value: list[DataFile]) -> list[DataFile]:
        if not value:
            raise ValueError("a dataset declares at least one file")
        names = [f.filename for f in value]
        if len(set(names)) != len(names):
            raise ValueError(f"file names must be unique; got {names}")
        return value


class LoaderSpec(_Spec):
    """A data reader: turns a file or directory into labelled splits for one task kind."""

    name: str = Field(pattern=_NAME_PATTERN)
    task: TaskKind
    load: str | Callable[..., Any] = Field(description="'module:function' or callable; see docs/hooks.md")
    description: str = ""
    suffixes: list[str] = Field(default_factory=list, description="file suffixes it reads, e.g. ['.csv']")


class ModelSpec(_Spec):
    """A model family: how to build it and which pretrained weights it starts from."""

    name: str = Field(pattern=_NAME_PATTERN)
    task: TaskKind
    builder: str | Callable[..., Any] = Field(description="'module:function' building the torch model")
    default_base: str | None = Field(
        default=None, description="default pretrained weights: a hub id, a local path, or 'package:<module>'"
    )
    licence: str = Field(description="licence of the default pretrained weights (or of the architecture)")
    description: str = ""
    export_atol: dict[Literal["fp32", "fp16"], float] = Field(
        default_factory=dict,
        description="the export gate's max |logit diff| for this family where the defaults (fp32 1e-4, fp16 2e-2) "
                    "are too tight, e.g. deep conv nets; stored with each run, shown by the gate, --atol overrides",
    )

    @field_validator("export_atol")
    @classmethod
    def _positive_atol(cls, value: dict[str, float]) -> dict[str, float]:
        bad = {k: v for k, v in value.items() if not v > 0}
        if bad:
            raise ValueError(f"export_atol must be positive, got {bad}")
        return value


class MetricSpec(_Spec):
    """A metric computed from labels and predicted probabilities."""

    name: str = Field(pattern=_NAME_PATTERN)
    compute: str | Callable[..., Any] = Field(
        description="'module:function' with signature (y_true, proba, label_map, **context) -> float | dict"
    )
    tasks: list[TaskKind] = Field(default_factory=lambda: ["text", "image", "tabular"])
    higher_is_better: bool = True
    binary_only: bool = False
    description: str = ""


class Recipe(BaseModel):
    """Fine-tuning hyperparameters shared by every sector; sectors subclass it to add their own."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    learning_rate: float = Field(default=5e-5, gt=0, le=1)
    epochs: float = Field(default=3, gt=0)
    max_steps: int = Field(default=-1, ge=-1, description="stop after this many optimizer steps (-1: use epochs)")
    batch_size: int = Field(default=32, ge=1)
    eval_batch_size: int = Field(default=64, ge=1)
    gradient_accumulation_steps: int = Field(default=1, ge=1)
    weight_decay: float = Field(default=0.01, ge=0)
    warmup_ratio: float = Field(default=0.0, ge=0, lt=1)
    lr_scheduler: LRScheduler = "linear"
    label_smoothing: float = Field(default=0.0, ge=0, lt=1)
    mixup_alpha: float = Field(default=0.0, ge=0, description="> 0: mixup (Zhang et al. 2018): each training batch's "
                               "floating-point inputs and its loss are blended with a shuffled copy of the batch, "
                               "weight ~ Beta(alpha, alpha); image and tabular tasks (0: off)")
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"
    early_stopping_patience: int = Field(default=0, ge=0, description="evaluations without gain before stopping (0: off)")
    metric_for_best_model: str = "macro_f1"
    eval_strategy: Literal["epoch", "steps"] = "epoch"
    eval_steps: int = Field(default=100, ge=1)
    validation_fraction: float = Field(default=0.1, gt=0, lt=1, description="share of train carved out as validation when a dataset has none")
    bagging: int = Field(default=1, ge=1, le=20, description="k > 1: k members, each trained on k-1 stratified folds of "
                         "train + validation with early stopping on the other; the model averages their logits and the "
                         "validation predictions are out-of-fold")
    ensemble: int = Field(default=1, ge=1, le=20, description="k > 1: a deep ensemble: k members trained on the same "
                          "train split from seeds seed, seed + 1000, ..., each with its own early stopping on validation; "
                          "the model averages their logits (not with bagging)")
    logit_adjustment: bool = Field(default=False, description="after training, subtract log(class weight) from each "
                                   "class's logit, so a model trained with class weights predicts under the training "
                                   "label frequencies again (needs class_weights)")
    ema_decay: float = Field(default=0.0, ge=0, lt=1, description="> 0: evaluate, checkpoint and keep an exponential "
                             "moving average of the weights (buffers included), updated after every optimizer step "
                             "with this decay; training goes on from the raw weights (0: off)")
    members: list[dict[str, Any]] = Field(default_factory=list, description="two or more entries: a heterogeneous "
                                          "ensemble; member m trains with this recipe updated by entry m ({} = as is) "
                                          "from seed seed + 1000 m on its own preprocessing (only augmentation and "
                                          "image_size may differ from the run's), is served from the run's input "
                                          "(resized in the model to its image_size), and the model averages their logits")
    train_subset: int = Field(default=0, ge=0, description="use a stratified subset of this many training examples (0: all)")
    eval_subset: int = Field(default=0, ge=0, description="use a stratified subset of this many validation/test examples (0: all)")

    @model_validator(mode="after")
    def _one_kind_of_ensemble(self) -> "Recipe":
        if self.ensemble > 1 and self.bagging > 1:
            raise ValueError(f"recipe fields 'ensemble' = {self.ensemble} and 'bagging' = {self.bagging}: choose one kind "
                             "of ensemble (bagging's members are already averaged)")
        return self

    @model_validator(mode="after")
    def _members_are_recipes(self) -> "Recipe":
        if not self.members:
            return self
        if len(self.members) < 2:
            raise ValueError(f"recipe field 'members' lists {len(self.members)} entry; an ensemble needs at least 2")
        if self.ensemble > 1 or self.bagging > 1:
            raise ValueError("recipe field 'members' is an ensemble of its own; leave 'ensemble' and 'bagging' at 1")
        for m, entry in enumerate(self.members):
            shared = sorted(set(entry) & _RUN_LEVEL)
            if shared:
                raise ValueError(f"recipe field 'members' entry {m}: {', '.join(shared)} "
                                 f"{'applies' if len(shared) == 1 else 'apply'} to the whole run, not to one member")
            try:
                type(self).model_validate({**self.model_dump(exclude={"members"}), **entry})
            except ValidationError as exc:
                err = exc.errors()[0]
                field = ".".join(str(p) for p in err["loc"])
                got = f" (got {err.get('input')!r})" if field else ""
                raise ValueError(f"recipe field 'members' entry {m}: {field or 'value'}: "
                                 f"{err['msg'].removeprefix('Value error, ')}{got}") from None
        return self

    def member_recipes(self) -> list["Recipe"]:
        """The recipe of each member of a heterogeneous ensemble (``members``), in order; [] without."""
        base = self.model_dump(exclude={"members"})
        return [type(self).model_validate({**base, **entry}) for entry in self.members]

    @model_validator(mode="after")
    def _logit_adjustment_needs_weights(self) -> "Recipe":
        weights = getattr(self, "class_weights", None)
        if not self.logit_adjustment:
            return self
        if weights in (None, "none"):
            raise ValueError("recipe field 'logit_adjustment' undoes class weights, but class_weights is "
                             f"{weights!r}: set class_weights too, or leave it off")
        if isinstance(weights, (list, tuple)) and min(weights, default=1) <= 0:
            raise ValueError(f"recipe field 'logit_adjustment' takes the log of class_weights {list(weights)}: "
                             "every weight must be positive")
        return self

    def with_overrides(self, overrides: dict[str, Any], *, source: str = "override") -> "Recipe":
        """A copy with ``overrides`` applied and validated; errors name the field and the source."""
        from pydantic import ValidationError

        unknown = sorted(set(overrides) - set(type(self).model_fields))
        if unknown:
            known = ", ".join(sorted(type(self).model_fields))
            raise ValueError(f"{source}: unknown recipe field {unknown[0]!r} (known: {known})")
        try:
            return type(self).model_validate({**self.model_dump(), **overrides})
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"])
            if not field:  # a check across fields names them itself
                raise ValueError(f"{source}: {err['msg'].removeprefix('Value error, ')}") from None
            raise ValueError(f"{source}: recipe field {field!r}: {err['msg']} (got {err.get('input')!r})") from None

    def with_sets(self, assignments: list[str]) -> "Recipe":
        """Apply ``key=value`` strings (values parsed as YAML scalars, then type-checked)."""
        import yaml

        overrides: dict[str, Any] = {}
        for item in assignments:
            key, sep, raw = item.partition("=")
            if not sep or not key.strip():
                raise ValueError(f"--set {item!r}: expected key=value")
            try:
                overrides[key.strip()] = yaml.safe_load(raw) if raw.strip() else raw
            except yaml.YAMLError:
                overrides[key.strip()] = raw
        return self.with_overrides(overrides, source="--set")

    def with_file(self, path: str | os.PathLike) -> "Recipe":
        """Apply overrides from a TOML or YAML file (a flat table of recipe fields)."""
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"recipe file {path} does not exist")
        text = path.read_text(encoding="utf-8")
        try:
            if path.suffix == ".toml":
                import tomllib

                data = tomllib.loads(text)
            elif path.suffix in {".yaml", ".yml"}:
                import yaml

                data = yaml.safe_load(text) or {}
            else:
                raise ValueError(f"recipe file {path}: use a .toml, .yaml or .yml file")
        except ValueError:
            raise
        except Exception as exc:  # tomllib.TOMLDecodeError, yaml.YAMLError
            raise ValueError(f"recipe file {path}: cannot parse ({exc})") from None
        if not isinstance(data, dict):
            raise ValueError(f"recipe file {path}: expected a table of recipe fields")
        data = data.get("recipe", data)
        return self.with_overrides(data, source=str(path))

    def digest(self) -> str:
        """A stable hash of the resolved values (embedded in exports)."""
        import hashlib

        # without members the field is left out, so recipes written before it existed keep their digest
        values = self.model_dump(mode="json", exclude=None if self.members else {"members"})
        payload = json.dumps({"class": type(self).__name__, **values}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


class SectorTask(_Spec):
    """One problem a sector solves: its label map, data, model, recipe and metrics."""

    name: str = Field(pattern=_NAME_PATTERN)
    kind: TaskKind
    description: str = ""
    label_map: LabelMap
    datasets: list[str] = Field(default_factory=list, description="names of this sector's datasets; first is the default")
    model: str = Field(description="name of a registered model")
    recipe: type[Recipe] = Recipe
    presets: dict[str, dict[str, Any]] = Field(default_factory=dict)
    metrics: list[str] = Field(default_factory=list, description="registered metric names reported for this task")
    decision: str | Callable[..., Any] | None = Field(
        default=None,
        description="'module:object' with fit(val_labels, val_proba, label_map, recipe) -> dict and "
        "apply(proba, params, label_map) -> list[dict]: operating point chosen on validation",
    )
    report: str | Callable[..., Any] | None = Field(
        default=None,
        description="'module:function' (run_dir: Path) -> None writing the sector's reports of a finished run "
        "(baselines measured on the same split, charts); called after train and after evaluate",
    )

    @model_validator(mode="after")
    def _presets_valid(self) -> "SectorTask":
        for preset, overrides in self.presets.items():
            try:
                self.recipe().with_overrides(overrides, source=f"preset {preset!r}")
            except ValueError as exc:
                raise ValueError(f"task {self.name!r}: {exc}") from None
        return self

    def resolve_recipe(self, preset: str | None = None) -> Recipe:
        recipe = self.recipe()
        if preset is not None:
            if preset not in self.presets:
                raise ValueError(f"unknown preset {preset!r} for task {self.name!r}; choose from {sorted(self.presets)}")
            recipe = recipe.with_overrides(self.presets[preset], source=f"preset {preset!r}")
        return recipe


class SectorSpec(_Spec):
    """A sector solution: the tasks it brings."""

    name: str = Field(pattern=_NAME_PATTERN)
    title: str
    description: str = ""
    tasks: list[SectorTask]

    @field_validator("tasks")
    @classmethod
    def _tasks_unique(cls, value: list[SectorTask]) -> list[SectorTask]:
        if not value:
            raise ValueError("a sector brings at least one task")
        names = [t.name for t in value]
        if len(set(names)) != len(names):
            raise ValueError(f"task names must be unique; got {names}")
        return value

    def task(self, name: str | None = None) -> SectorTask:
        if name is None:
            return self.tasks[0]
        for task in self.tasks:
            if task.name == name:
                return task
        raise ValueError(f"sector {self.name!r} has no task {name!r}; choose from {[t.name for t in self.tasks]}")


class ValueFactor(_Spec):
    """One factor item of the value model: measured from a run, or declared by a user."""

    factor: FactorLetter
    name: str = Field(pattern=_NAME_PATTERN)
    weight: float = Field(ge=0)
    value: float = Field(ge=0, le=1)
    evidence: str = Field(min_length=1, description="where the number came from: metric, value, file")
    kind: Literal["measured", "declared"]


class ValueFactorSpec(_Spec):
    """A factor item a sector measures from a run directory."""

    sector: str = Field(pattern=_NAME_PATTERN)
    factor: FactorLetter
    name: str = Field(pattern=_NAME_PATTERN)
    weight: float = Field(default=1.0, ge=0, description="default weight within its factor")
    description: str = Field(min_length=1, description="one line: what is measured and how it maps to [0, 1]")
    measure: str | Callable[..., Any] = Field(
        description="'module:function' (run_dir: Path) -> (value in [0,1], evidence str), or None when not applicable"
    )
