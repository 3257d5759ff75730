"""What every task kind shares: the Preprocessor contract, base-model resolution, dispatch.

Numpy only at import time: the ONNX predictor loads preprocessors without torch.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..specs import LabelMap, atomic_write_text

__all__ = [
    "PREPROCESS_FILE",
    "Preprocessor",
    "resolve_base",
    "load_preprocessor",
    "make_preprocessor",
    "preprocessor_from_spec",
    "take_inputs",
    "count_inputs",
    "mean_ensemble",
    "member_input",
    "logit_offset",
]

PREPROCESS_FILE = "preprocess.json"
_MEMBER_MAY_DIFFER = frozenset({"image_size", "augment"})  # preprocessing keys a member may set for itself
_KIND_MODULES = {
    "text": "bigmodel.core.tasks.text",
    "image": "bigmodel.core.tasks.image",
    "tabular": "bigmodel.core.tasks.tabular",
}


class Preprocessor:
    """Raw inputs of one batch -> named numpy arrays (the model's and the ONNX graph's inputs).

    Subclasses set ``kind``, implement ``__call__``, ``spec`` and ``from_spec``; ``fit`` is a
    no-op except where encoders are learnt (tabular). ``save``/``load`` write and read
    ``preprocess.json`` (plus any files the spec names, e.g. ``tokenizer.json``).
    """

    kind: ClassVar[str] = ""

    def fit(self, train: Any) -> None:  # train: bigmodel.core.data.Split
        """Learn whatever the preprocessing needs from the training split (default: nothing)."""

    def __call__(self, inputs: Any, *, train: bool = False) -> dict[str, np.ndarray]:
        raise NotImplementedError

    @property
    def input_names(self) -> list[str]:
        return list(self.spec()["input_names"])

    def spec(self) -> dict[str, Any]:
        raise NotImplementedError

    def save_files(self, directory: Path) -> None:
        """Write files besides preprocess.json (default: none)."""

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.save_files(directory)
        atomic_write_text(directory / PREPROCESS_FILE, json.dumps(self.spec(), indent=2, ensure_ascii=False) + "\n")

    @classmethod
    def from_spec(cls, spec: dict[str, Any], directory: Path | None = None) -> "Preprocessor":
        raise NotImplementedError

    @classmethod
    def load(cls, directory: str | Path) -> "Preprocessor":
        directory = Path(directory)
        spec = _read_spec(directory)
        if cls.kind and spec.get("kind") != cls.kind:
            raise ValueError(f"{directory / PREPROCESS_FILE}: kind is {spec.get('kind')!r}, expected {cls.kind!r}")
        return cls.from_spec(spec, directory)


def _read_spec(directory: Path) -> dict[str, Any]:
    path = directory / PREPROCESS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no preprocessing spec (is {directory} a run's preprocess/ directory?)")
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(spec, dict) or spec.get("kind") not in _KIND_MODULES:
        raise ValueError(f"{path}: 'kind' must be one of {sorted(_KIND_MODULES)}")
    return spec


def _class_for(kind: str) -> type[Preprocessor]:
    if kind not in _KIND_MODULES:
        raise ValueError(f"unknown task kind {kind!r}; choose from {sorted(_KIND_MODULES)}")
    module = importlib.import_module(_KIND_MODULES[kind])
    return module.PREPROCESSOR


def load_preprocessor(directory: str | Path) -> Preprocessor:
    """The preprocessor saved in ``directory`` (dispatching on its ``kind``)."""
    directory = Path(directory)
    spec = _read_spec(directory)
    return _class_for(spec["kind"]).from_spec(spec, directory)


def preprocessor_from_spec(spec: dict[str, Any], directory: Path | None = None) -> Preprocessor:
    """A preprocessor from a spec dict (e.g. ONNX metadata); ``directory`` holds its files."""
    return _class_for(spec.get("kind", "")).from_spec(spec, directory)


def make_preprocessor(kind: str, *, base: str | None, recipe: Any, label_map: LabelMap) -> Preprocessor:
    """A fresh (unfitted) preprocessor for ``kind`` configured from the recipe and base model."""
    return _class_for(kind).create(base=base, recipe=recipe, label_map=label_map)


def resolve_base(base: str | None) -> str | None:
    """Turn a base-model string into something loaders understand.

    ``package:<module>`` -> ``<module>.get_model_path()`` (or the package directory);
    an existing local path -> its absolute path; anything else (a hub id, a timm name) unchanged.
    """
    if base is None:
        return None
    base = str(base)
    if base.startswith("package:"):
        module_name = base.removeprefix("package:").strip()
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ValueError(f"base model {base!r}: cannot import package {module_name!r} ({exc}); pip install it") from None
        getter = getattr(module, "get_model_path", None)
        path = Path(getter()) if callable(getter) else Path(module.__file__).parent
        if not path.exists():
            raise ValueError(f"base model {base!r}: {path} does not exist")
        return str(path.resolve())
    local = Path(base).expanduser()
    if local.exists():
        return str(local.resolve())
    if base.startswith(("/", "./", "../", "~")):
        raise ValueError(f"base model {base!r}: no such file or directory")
    return base


def take_inputs(inputs: Any, indices: Any) -> Any:
    """The raw inputs at ``indices`` (list inputs, or dict-of-columns for tabular)."""
    idx = np.asarray(indices, dtype=np.int64)
    if isinstance(inputs, dict):
        return {k: np.asarray(v)[idx] for k, v in inputs.items()}
    return [inputs[int(i)] for i in idx]


def count_inputs(inputs: Any) -> int:
    if isinstance(inputs, dict):
        lengths = {len(v) for v in inputs.values()}
        if len(lengths) > 1:
            raise ValueError(f"tabular columns have different lengths: {sorted(lengths)}")
        return lengths.pop() if lengths else 0
    return len(inputs)


def _like(wrapper: type, inner: Any) -> type:
    """Give ``wrapper`` the forward signature, ``input_names`` and ``save_config`` of ``inner``, so the
    exporters bind the preprocessor's named inputs to it as they do to the inner model."""
    import inspect

    wrapper.forward.__signature__ = inspect.signature(type(inner).forward)
    if hasattr(inner, "input_names"):
        wrapper.input_names = inner.input_names
    if hasattr(inner, "save_config"):
        wrapper.save_config = lambda self, directory: inner.save_config(directory)
    return wrapper


def mean_ensemble(members: list[Any]) -> Any:
    """A torch module returning the mean of ``members``' logits (a bagged run's model).

    Its ``forward`` carries the first member's signature, so the exporters bind the preprocessor's
    named inputs as they do for one model; ``save_config`` and ``input_names`` come from it too.
    """
    import torch

    if len(members) < 2:
        raise ValueError(f"an ensemble needs at least 2 members, got {len(members)}")

    class MeanEnsemble(torch.nn.Module):
        """forward(**inputs) -> mean of the members' logits."""

        def __init__(self) -> None:
            super().__init__()
            self.members = torch.nn.ModuleList(members)

        def forward(self, *args: Any, **kwargs: Any) -> Any:
            return torch.stack([member(*args, **kwargs) for member in self.members]).mean(0)

    return _like(MeanEnsemble, members[0])()


def member_input(model: Any, run_spec: dict[str, Any], member_spec: dict[str, Any], *, member: int) -> Any:
    """``model`` (a trained member of a heterogeneous ensemble, built for ``member_spec``) fed the run's input.

    Each member trains on its own preprocessing; the run serves them all from its own. So a member may
    differ from the run only in training-time augmentation and, for images, in ``image_size``: such a member
    gets the run's pixels resized to its own size in the model (bilinear; for images no larger than the
    run's size the pixels it trained on, up to rounding). Any other difference is refused, naming the
    preprocessing keys. With ``model`` None it only checks."""
    differ = sorted(k for k in set(run_spec) | set(member_spec)
                    if k not in _MEMBER_MAY_DIFFER and run_spec.get(k) != member_spec.get(k))
    if differ:
        raise ValueError(f"recipe field 'members' entry {member}: changes the preprocessing the members share "
                         f"({', '.join(f'{k}: {member_spec.get(k)!r} vs {run_spec.get(k)!r}' for k in differ)}); "
                         "set those fields for the whole run instead")
    if model is None or run_spec.get("image_size") == member_spec.get("image_size"):
        return model
    from .image import resized_input

    return resized_input(model, member_spec["image_size"])


def logit_offset(model: Any, offset: Any) -> Any:
    """A torch module returning ``model``'s logits plus the constant vector ``offset`` (one value per
    class, saved with the weights as the buffer ``logit_offset``): a run's logit adjustment.

    Trained with class weights w, a classifier's softmax is tilted towards the classes w favours;
    ``offset = -log(w)`` tilts it back to the training label frequencies (logit adjustment, Menon et
    al. 2021), which moves arg-max decisions and probabilities but not a binary model's ranking.
    """
    import torch

    values = torch.as_tensor(np.asarray(offset, dtype=np.float32))
    device = next((t.device for t in model.parameters()), values.device)
    if values.dim() != 1:
        raise ValueError(f"a logit offset is one value per class, got shape {tuple(values.shape)}")

    class LogitOffset(torch.nn.Module):
        """forward(**inputs) -> the inner model's logits + logit_offset."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model
            self.register_buffer("logit_offset", values.clone().to(device))

        def forward(self, *args: Any, **kwargs: Any) -> Any:
            return self.model(*args, **kwargs) + self.logit_offset

    return _like(LogitOffset, model)()
