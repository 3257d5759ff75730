"""Medical imaging recipes (pydantic only: built when plugins load).

Field names line up with what the core image preprocessor (``bigmodel.core.tasks.image``) reads:
``image_size``, ``in_chans``, ``grey_to_rgb``, ``mean``, ``std``, ``augment_hflip`` / ``augment_vflip``
(probabilities), ``augment_rotation`` (degrees), ``augment_intensity`` (relative brightness/contrast
jitter), ``architecture``, ``dropout`` and ``tta_hflip`` (model builder). The screening and grading fields are read
by :mod:`bigmodel_medical.decision` and :mod:`bigmodel_medical.metrics`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from bigmodel.core import Recipe
from bigmodel.core.specs import LRScheduler

__all__ = ["ImagingRecipe", "ScreeningRecipe", "GradingRecipe"]


class ImagingRecipe(Recipe):
    """Fine-tuning an ImageNet image backbone on medical images."""

    learning_rate: float = Field(default=1e-3, gt=0, le=1)
    epochs: float = Field(default=30, gt=0)
    batch_size: int = Field(default=64, ge=1)
    eval_batch_size: int = Field(default=128, ge=1)
    weight_decay: float = Field(default=1e-4, ge=0)
    warmup_ratio: float = Field(default=0.05, ge=0, lt=1)
    lr_scheduler: LRScheduler = "cosine"
    early_stopping_patience: int = Field(default=5, ge=0, description="evaluations without gain before stopping (0: off)")

    image_size: int = Field(default=224, ge=16, le=1024, description="square input size the images are resized to")
    in_chans: Literal[1, 3] = Field(default=3, description="channels the model takes")
    grey_to_rgb: bool = Field(default=True, description="replicate a grey image into 3 channels for an RGB model")
    mean: list[float] | None = Field(default_factory=lambda: [0.5, 0.5, 0.5], description="per-channel normalisation mean (EfficientNet-Lite: 0.5); None: the timm model's")
    std: list[float] | None = Field(default_factory=lambda: [0.5, 0.5, 0.5], description="per-channel normalisation std (EfficientNet-Lite: 0.5); None: the timm model's")
    augment_hflip: float = Field(default=0.5, ge=0, le=1, description="probability of a horizontal flip")
    augment_vflip: float = Field(default=0.0, ge=0, le=1, description="probability of a vertical flip")
    augment_rotation: float = Field(default=10.0, ge=0, le=180, description="random rotation in ±degrees")
    augment_intensity: float = Field(default=0.1, ge=0, le=1, description="relative brightness/contrast jitter")
    tta_hflip: bool = Field(default=False, description="test-time augmentation: average the logits of each image and its "
                                                       "mirror image (in eval, export and serving)")
    class_weights: Literal["none", "balanced"] = Field(
        default="balanced", description="loss weights per class: 'balanced' = n / (classes · count) on the training split"
    )
    pretrained: bool = Field(default=True, description="start from the base model's weights (false: the timm "
                                                       "architecture from random initialisation)")
    architecture: str = Field(default="tf_efficientnet_lite0", min_length=1, description="timm architecture for package/local weights")
    small_stem: bool = Field(default=False, description="replace a timm ResNet's 7x7 stride-2 stem and max-pool with a "
                                                        "3x3 stride-1 convolution, for small inputs such as 28 px "
                                                        "(MedMNIST's ResNet (28)); the stem trains from scratch")
    dropout: float = Field(default=0.2, ge=0, lt=1, description="dropout before the classifier head")
    target_sensitivity: float = Field(default=0.90, gt=0, le=1, description="sensitivity the validation-chosen threshold must reach")

    @model_validator(mode="after")
    def _mean_std(self) -> "ImagingRecipe":
        for name in ("mean", "std"):
            value = getattr(self, name)
            if value is not None and len(value) != self.in_chans:
                raise ValueError(f"{name} needs {self.in_chans} values (in_chans), got {value}")
        if self.std is not None and any(s <= 0 for s in self.std):
            raise ValueError(f"std values must be positive, got {self.std}")
        return self


class ScreeningRecipe(ImagingRecipe):
    """Binary screening (e.g. malignant vs normal/benign): early stopping on validation AUROC."""

    metric_for_best_model: str = "auroc"
    refer_band: tuple[float, float] = Field(
        default=(0.3, 0.7), description="positive-class probabilities [low, high] flagged refer=true (uncertain)"
    )
    reference_specificity: float = Field(default=0.90, gt=0, lt=1, description="specificity at which K reads the sensitivity")

    @field_validator("refer_band")
    @classmethod
    def _band(cls, value: tuple[float, float]) -> tuple[float, float]:
        low, high = value
        if not 0 <= low <= high <= 1:
            raise ValueError(f"refer_band must be [low, high] with 0 <= low <= high <= 1, got {list(value)}")
        return value


class GradingRecipe(ImagingRecipe):
    """Ordinal grading (e.g. retinopathy 0..4): early stopping on validation macro one-vs-rest AUROC."""

    metric_for_best_model: str = "macro_auroc_ovr"
    referable_grade: int = Field(default=2, ge=1, description="grades >= this are 'referable' for the refer flag")
