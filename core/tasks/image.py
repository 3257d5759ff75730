"""Image classification: a PIL/numpy preprocessor and a timm backbone with a fresh head.

Inputs are HxW or HxWxC arrays: uint8 (scaled by 1/255), uint16 (1/65535) or float already in
[0, 1]. The preprocessor resizes, turns grey into RGB when the model wants 3 channels, scales and
normalises with the model's mean/std, and returns NCHW float32 ``pixel_values``. Training-time
augmentation (recipe fields ``augment_hflip``, ``augment_vflip``, ``augment_rotation`` in
degrees, ``augment_intensity`` as a relative brightness/contrast jitter) runs only with
``train=True``.

Test-time augmentation: with recipe ``tta_hflip = true`` the model, in eval mode, returns the mean
of the logits of each image and its mirror image. It is part of the model, so evaluation, the
validation metric that picks the checkpoint, the exported ONNX graph and serving all include it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..specs import LabelMap
from .base import Preprocessor, resolve_base

__all__ = ["ImagePreprocessor", "PREPROCESSOR", "build_model", "init_head", "flip_tta_logits", "resized_input", "DEFAULT_IMAGE_SIZE",
           "WEIGHT_SUFFIXES"]

DEFAULT_IMAGE_SIZE = 224
WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin", ".ckpt")
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def _size_pair(value: Any) -> tuple[int, int]:
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return int(value[0]), int(value[1])
    raise ValueError(f"recipe field 'image_size': expected an int or [height, width], got {value!r}")


class ImagePreprocessor(Preprocessor):
    kind = "image"

    def __init__(self, *, image_size: tuple[int, int], channels: int, mean: list[float], std: list[float],
                 grey_to_rgb: bool = True, augment: dict[str, float] | None = None, seed: int = 0) -> None:
        if channels not in (1, 3):
            raise ValueError(f"image models take 1 or 3 channels, not {channels}")
        if len(mean) != channels or len(std) != channels:
            raise ValueError(f"mean/std need {channels} values each, got {list(mean)} / {list(std)}")
        if any(s <= 0 for s in std):
            raise ValueError(f"std values must be positive, got {list(std)}")
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.channels = channels
        self.mean = [float(m) for m in mean]
        self.std = [float(s) for s in std]
        self.grey_to_rgb = bool(grey_to_rgb)
        self.augment = {k: float(v) for k, v in (augment or {}).items() if v}
        self.rng = np.random.default_rng(seed)

    @classmethod
    def create(cls, *, base: str | None, recipe: Any, label_map: LabelMap) -> "ImagePreprocessor":
        mean = getattr(recipe, "mean", None)
        std = getattr(recipe, "std", None)
        channels = int(getattr(recipe, "in_chans", 3))
        if mean is None or std is None:
            cfg_mean, cfg_std = _timm_mean_std(base, recipe)
            mean = cfg_mean if mean is None else mean
            std = cfg_std if std is None else std
        if channels == 1 and len(mean) == 3:
            mean, std = [float(np.mean(mean))], [float(np.mean(std))]
        augment = {
            name: getattr(recipe, f"augment_{name}", 0.0) or 0.0
            for name in ("hflip", "vflip", "rotation", "intensity")
        }
        return cls(
            image_size=_size_pair(getattr(recipe, "image_size", DEFAULT_IMAGE_SIZE)),
            channels=channels, mean=list(mean), std=list(std),
            grey_to_rgb=bool(getattr(recipe, "grey_to_rgb", True)), augment=augment,
        )

    # -- one image --------------------------------------------------------------------------
    def _to_float(self, image: Any, index: int) -> np.ndarray:
        array = np.asarray(image)
        if array.ndim == 3 and array.shape[2] not in (1, 3) and array.shape[0] in (1, 3):
            raise ValueError(f"image [{index}]: shape {array.shape} looks channels-first; expected HxW or HxWxC")
        if array.ndim == 2:
            array = array[:, :, None]
        if array.ndim != 3 or array.shape[0] < 1 or array.shape[1] < 1:
            raise ValueError(f"image [{index}]: expected an HxW or HxWxC array, got shape {array.shape}")
        if array.dtype == np.uint8:
            out = array.astype(np.float32) / 255.0
        elif array.dtype == np.uint16:
            out = array.astype(np.float32) / 65535.0
        elif np.issubdtype(array.dtype, np.floating):
            out = array.astype(np.float32)
            if not np.isfinite(out).all():
                raise ValueError(f"image [{index}]: contains NaN or infinite values")
            low, high = float(out.min()), float(out.max())
            if low < -1e-3 or high > 1 + 1e-3:
                raise ValueError(f"image [{index}]: float pixels must lie in [0, 1], got [{low:g}, {high:g}]")
            out = np.clip(out, 0.0, 1.0)
        else:
            raise ValueError(f"image [{index}]: pixel type {array.dtype} not supported (uint8, uint16 or float in [0, 1])")
        have = out.shape[2]
        if have == self.channels:
            return out
        if have == 1 and self.channels == 3:
            if not self.grey_to_rgb:
                raise ValueError(f"image [{index}]: grey image but the model takes 3 channels (recipe grey_to_rgb is off)")
            return np.repeat(out, 3, axis=2)
        raise ValueError(f"image [{index}]: {have} channels, but the model takes {self.channels}")

    def _augment(self, image: np.ndarray) -> np.ndarray:
        rng = self.rng
        if rng.random() < self.augment.get("hflip", 0.0):
            image = image[:, ::-1]
        if rng.random() < self.augment.get("vflip", 0.0):
            image = image[::-1]
        degrees = self.augment.get("rotation", 0.0)
        if degrees:
            from PIL import Image

            angle = float(rng.uniform(-degrees, degrees))
            image = np.stack(
                [np.asarray(Image.fromarray(np.ascontiguousarray(image[:, :, c])).rotate(angle, resample=Image.BILINEAR))
                 for c in range(image.shape[2])], axis=2)
        jitter = self.augment.get("intensity", 0.0)
        if jitter:
            contrast = 1.0 + float(rng.uniform(-jitter, jitter))
            brightness = float(rng.uniform(-jitter, jitter))
            centre = image.mean()
            image = np.clip((image - centre) * contrast + centre + brightness, 0.0, 1.0)
        return image

    def _resize(self, image: np.ndarray) -> np.ndarray:
        height, width = self.image_size
        if image.shape[:2] == (height, width):
            return image
        from PIL import Image

        return np.stack(
            [np.asarray(Image.fromarray(np.ascontiguousarray(image[:, :, c])).resize((width, height), resample=Image.BILINEAR))
             for c in range(image.shape[2])], axis=2)

    def __call__(self, inputs: Any, *, train: bool = False) -> dict[str, np.ndarray]:
        if isinstance(inputs, np.ndarray) and inputs.ndim in (3, 4) and inputs.dtype != object:
            inputs = list(inputs)  # a stacked batch (N, H, W[, C])
        if not isinstance(inputs, (list, tuple)) or not inputs:
            raise ValueError("image inputs must be a non-empty list of HxW or HxWxC arrays")
        batch = np.empty((len(inputs), self.channels, *self.image_size), dtype=np.float32)
        mean = np.asarray(self.mean, dtype=np.float32)[:, None, None]
        std = np.asarray(self.std, dtype=np.float32)[:, None, None]
        for i, image in enumerate(inputs):
            pixels = self._to_float(image, i)
            if train and self.augment:
                pixels = self._augment(pixels)
            pixels = self._resize(pixels)
            batch[i] = (pixels.transpose(2, 0, 1) - mean) / std
        return {"pixel_values": batch}

    def spec(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "input_names": ["pixel_values"],
            "image_size": list(self.image_size),
            "channels": self.channels,
            "mean": self.mean,
            "std": self.std,
            "grey_to_rgb": self.grey_to_rgb,
            "resample": "bilinear",
            "scale": {"uint8": 1 / 255, "uint16": 1 / 65535, "float": 1.0},
            "layout": "NCHW",
            "dtype": "float32",
            "augment": self.augment,
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any], directory: Path | None = None) -> "ImagePreprocessor":
        try:
            return cls(image_size=_size_pair(spec["image_size"]), channels=int(spec["channels"]),
                       mean=spec["mean"], std=spec["std"], grey_to_rgb=bool(spec.get("grey_to_rgb", True)),
                       augment=spec.get("augment"))
        except KeyError as exc:
            raise ValueError(f"image preprocessing spec lacks field {exc.args[0]!r}") from None


PREPROCESSOR = ImagePreprocessor


# -- models -----------------------------------------------------------------------------------


def _architecture(base: str | None, recipe: Any) -> tuple[str, str | None]:
    """(timm model name, local checkpoint path or None) for a base string."""
    resolved = resolve_base(base)
    architecture = getattr(recipe, "architecture", None)
    if resolved is not None and Path(resolved).exists():
        if not architecture:
            raise ValueError(
                f"base model {base!r} is a local checkpoint: set the recipe field 'architecture' to its timm model name"
            )
        return str(architecture), resolved
    name = resolved or architecture
    if not name:
        raise ValueError("an image model needs a timm model name (--base-model NAME or recipe 'architecture')")
    return str(name), None


def _timm_mean_std(base: str | None, recipe: Any) -> tuple[list[float], list[float]]:
    try:
        name, _ = _architecture(base, recipe)
    except ValueError:
        return list(_IMAGENET_MEAN), list(_IMAGENET_STD)
    import timm

    try:
        cfg = timm.get_pretrained_cfg(name)
    except RuntimeError:
        cfg = None
    if cfg is None:
        return list(_IMAGENET_MEAN), list(_IMAGENET_STD)
    return list(cfg.mean), list(cfg.std)


def _checkpoint_file(path: str) -> Path:
    location = Path(path)
    if location.is_file():
        return location
    found = sorted(p for p in location.rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    if len(found) != 1:
        raise ValueError(f"{location}: expected exactly one weights file ({', '.join(WEIGHT_SUFFIXES)}), found {[str(p) for p in found]}")
    return found[0]


def _read_state_dict(path: Path) -> dict[str, Any]:
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ValueError(f"{path}: not a state dict (got {type(state).__name__})")
    return dict(state)


def _load_backbone(backbone: Any, path: Path, mapping: str) -> None:
    """Load ``path`` into a head-less timm model: by parameter names, or by order with shapes checked."""
    target = backbone.state_dict()
    source = _read_state_dict(path)
    if mapping == "names":
        missing = [k for k in target if k not in source]
        if missing:
            raise ValueError(
                f"{path}: checkpoint lacks {len(missing)} backbone tensors (first: {missing[0]!r}); "
                "if it names them differently but in the same order, set recipe checkpoint_mapping='order'"
            )
        state = {k: source[k] for k in target}  # extra tensors (the old head) are dropped
    elif mapping == "order":
        items = list(source.items())
        if len(items) < len(target):
            raise ValueError(f"{path}: {len(items)} tensors, fewer than the backbone's {len(target)}")
        state = {}
        for (name, expected), (src_name, tensor) in zip(target.items(), items):
            if tuple(tensor.shape) != tuple(expected.shape):
                raise ValueError(
                    f"{path}: tensor {src_name!r} has shape {tuple(tensor.shape)}, but {name!r} needs "
                    f"{tuple(expected.shape)}: the checkpoint does not match this architecture in order"
                )
            state[name] = tensor
    else:
        raise ValueError(f"recipe field 'checkpoint_mapping': expected 'names' or 'order', got {mapping!r}")
    for name, expected in target.items():
        if tuple(state[name].shape) != tuple(expected.shape):
            raise ValueError(f"{path}: tensor {name!r} has shape {tuple(state[name].shape)}, expected {tuple(expected.shape)}")
    backbone.load_state_dict(state, strict=True)


def init_head(model: Any) -> None:
    """A small fresh classifier head: N(0, 0.01) weights, zero bias.

    timm's EfficientNet init draws head weights from U(±1/sqrt(num_classes)) (±0.71 for two classes),
    which puts the first logits near ±30 and the first loss near 10; a small head starts at chance.
    """
    import torch

    head = model.get_classifier()
    if isinstance(head, torch.nn.Linear):
        with torch.no_grad():
            head.weight.normal_(0.0, 0.01)
            if head.bias is not None:
                head.bias.zero_()


def flip_tta_logits(net: Any, pixel_values: Any, *, hflip: bool, training: bool) -> Any:
    """``net(pixel_values)``, averaged with ``net`` of the horizontally mirrored batch when
    ``hflip`` and not ``training`` (test-time augmentation; training sees single images)."""
    logits = net(pixel_values)
    if hflip and not training:
        logits = (logits + net(pixel_values.flip(-1))) / 2
    return logits


def resized_input(model: Any, size: Any) -> Any:
    """``model`` taking ``pixel_values`` of any size, resized (bilinear) to ``size`` = [height, width] first:
    an ensemble member whose recipe ``image_size`` differs from the run's (recipe ``members``)."""
    import torch

    from .base import _like

    height, width = _size_pair(size)

    class ResizedInput(torch.nn.Module):
        """forward(pixel_values) -> logits of ``model`` on pixel_values resized to (height, width)."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, pixel_values):
            resized = torch.nn.functional.interpolate(pixel_values, size=(height, width), mode="bilinear",
                                                      align_corners=False)
            return self.model(resized)

    return _like(ResizedInput, model)()


def build_model(*, label_map: LabelMap, recipe: Any, base: str | None, preprocess: dict, pretrained: bool = True):
    """A timm classifier taking ``pixel_values`` (NCHW float32) and returning logits.

    ``base`` is a timm model name (ImageNet weights through timm when ``pretrained``), or a local
    checkpoint (file, directory holding one weights file, or ``package:<module>``) whose
    architecture is the recipe's ``architecture``; its head is dropped and a fresh one of
    ``len(label_map)`` classes added. ``checkpoint_mapping`` ('names' or 'order') says how
    checkpoint tensors meet the architecture's. ``tta_hflip`` adds flip test-time augmentation.
    """
    import timm
    import torch

    name, checkpoint = _architecture(base, recipe)
    channels = int(preprocess.get("channels", 3))
    dropout = float(getattr(recipe, "dropout", 0.0) or 0.0)
    if checkpoint is not None and pretrained:
        model = timm.create_model(name, pretrained=False, num_classes=0, in_chans=channels, drop_rate=dropout)
        _load_backbone(model, _checkpoint_file(checkpoint), str(getattr(recipe, "checkpoint_mapping", "names")))
        model.reset_classifier(len(label_map))
    else:
        model = timm.create_model(name, pretrained=pretrained, num_classes=len(label_map), in_chans=channels, drop_rate=dropout)
    init_head(model)
    tta_hflip = bool(getattr(recipe, "tta_hflip", False))

    class ImageClassifier(torch.nn.Module):
        """forward(pixel_values) -> logits (batch, num_labels)."""

        input_names = ["pixel_values"]

        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.model = inner

        def forward(self, pixel_values):
            return flip_tta_logits(self.model, pixel_values, hflip=tta_hflip, training=self.training)

        def save_config(self, directory: Path) -> str:
            """Images rebuild from the timm name alone: returns it as the base."""
            return name

    return ImageClassifier(model)
