"""Credit metrics against independent computations; the FT-Transformer's shapes and ONNX parity."""

from __future__ import annotations

import numpy as np
import pytest

from bigmodel_finance import metrics
from bigmodel_finance.plugin import LABEL_MAP, CreditRiskRecipe


def _scores(seed=0, n=400):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(np.int64)
    p = np.clip(0.25 + 0.3 * y + rng.normal(0, 0.2, n), 0.001, 0.999)
    return y, np.stack([1 - p, p], axis=1)


def test_gini_and_ks_match_independent_definitions():
    from scipy.stats import ks_2samp
    from sklearn.metrics import roc_auc_score

    y, proba = _scores()
    assert metrics.gini(y, proba, LABEL_MAP) == pytest.approx(2 * roc_auc_score(y, proba[:, 1]) - 1)
    ks = ks_2samp(proba[y == 1, 1], proba[y == 0, 1]).statistic
    assert metrics.ks_statistic(y, proba, LABEL_MAP) == pytest.approx(ks)


def test_expected_cost_against_trivial_policies():
    y, proba = _scores(seed=3)
    decision = {"cost_fn": 5.0, "cost_fp": 1.0, "threshold": 0.4, "calibration": {"method": "none"}}
    out = metrics.expected_cost(y, proba, LABEL_MAP, decision=decision)
    reject = proba[:, 1] >= 0.4
    manual = (5 * np.sum((y == 1) & ~reject) + np.sum((y == 0) & reject)) / len(y)
    assert out["expected_cost"] == pytest.approx(manual)
    assert out["accept_all"] == pytest.approx(5 * y.mean())
    assert out["reject_all"] == pytest.approx(1 - y.mean())
    assert out["saving_vs_best_trivial"] == pytest.approx(min(out["accept_all"], out["reject_all"]) - manual)
    # without stored decision parameters the recipe's Bayes threshold is used, and said so
    fallback = metrics.expected_cost(y, proba, LABEL_MAP, recipe=CreditRiskRecipe(cost_fn=4, cost_fp=1))
    assert fallback["threshold"] == pytest.approx(0.2) and "bayes" in fallback["threshold_source"]


def test_charts_are_written(tmp_path):
    y, proba = _scores()
    a = metrics.score_distribution_png(y, proba[:, 1], tmp_path / "scores.png", threshold=0.3)
    b = metrics.calibration_png(y, {"raw": proba[:, 1], "calibrated": np.clip(proba[:, 1] * 0.9, 0, 1)},
                                tmp_path / "calibration.png")
    for path in (a, b):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calibration.png", "scores.png"]


PREPROCESS = {"numeric": ["a", "b", "c"], "categorical": ["u", "v"],
              "vocabularies": {"u": ["x", "y"], "v": ["p", "q", "r", "s"]}}


def _model(bins=None, **overrides):
    from bigmodel_finance.model import build_model

    recipe = CreditRiskRecipe(n_blocks=2, d_block=16, attention_n_heads=4).with_overrides(overrides)
    preprocess = PREPROCESS | ({"bins": bins} if bins else {})
    return build_model(label_map=LABEL_MAP, recipe=recipe, base=None, preprocess=preprocess).eval()


def test_model_shapes_and_unknown_bucket():
    import torch

    torch.manual_seed(0)
    model = _model()
    assert model.categorical.embedding.num_embeddings == (2 + 1) + (4 + 1)  # +1: the unknown bucket
    x_num = torch.randn(5, 3)
    x_cat = torch.tensor([[0, 0], [1, 4], [2, 1], [1, 2], [2, 3]])
    assert model(x_num, x_cat).shape == (5, 2)
    with pytest.raises(ValueError, match="takes no base model"):
        from bigmodel_finance.model import build_model

        build_model(label_map=LABEL_MAP, recipe=CreditRiskRecipe(), base="bert-base-uncased", preprocess=PREPROCESS)
    with pytest.raises(ValueError, match="lacks 'vocabularies'"):
        from bigmodel_finance.model import feature_layout

        feature_layout({"numeric": [], "categorical": ["u"]})


def test_ensemble_members_are_independent_and_averaged_in_eval():
    import torch

    from bigmodel_finance.model import FTTransformerEnsemble

    torch.manual_seed(0)
    model = _model(ensemble_size=3)
    assert isinstance(model, FTTransformerEnsemble) and len(model.members) == 3
    first, second = (m.numeric.weight for m in model.members[:2])
    assert not torch.equal(first, second)  # independently initialised
    x_num, x_cat = torch.randn(5, 3), torch.tensor([[0, 0], [1, 4], [2, 1], [1, 2], [2, 3]])
    with torch.no_grad():
        each = torch.stack([m(x_num, x_cat) for m in model.members])
        assert torch.allclose(model(x_num, x_cat), each.mean(0))  # eval: one (B, classes) output
        model.train()
        for m in model.members:
            for module in m.modules():
                if isinstance(module, torch.nn.Dropout):
                    module.p = 0.0
        assert model(x_num, x_cat).shape == (3, 5, 2)  # training: every member's logits
    with pytest.raises(ValueError, match="ensemble_size"):
        FTTransformerEnsemble(1, n_numeric=3, cardinalities=[3], n_classes=2)
    assert type(_model(ensemble_size=1)).__name__ == "FTTransformer"


def test_piecewise_linear_numeric_tokens_start_as_the_linear_embedding():
    """Bin edges in the spec give rtdl's piecewise-linear embeddings (version B): at
    initialisation the piecewise term is zero, so a numeric token is ``x * w + b``; training
    then learns a different slope in each bin."""
    import torch
    from rtdl_num_embeddings import PiecewiseLinearEmbeddings

    bins = [[-1.0, 0.0, 1.0], [-2.0, -0.5, 0.5, 2.0], [0.0, 1.0]]
    torch.manual_seed(0)
    model = _model(bins=bins)
    assert isinstance(model.numeric, PiecewiseLinearEmbeddings)
    x = torch.randn(5, 3)
    linear = model.numeric.linear0
    torch.testing.assert_close(model.numeric(x), x.unsqueeze(-1) * linear.weight + linear.bias)
    with torch.no_grad():
        model.numeric.linear.weight.normal_()
    a, b = model.numeric(torch.tensor([[0.2, 0.0, 0.5]])), model.numeric(torch.tensor([[0.8, 0.0, 0.5]]))
    c = model.numeric(torch.tensor([[-0.2, 0.0, 0.5]]))
    assert not torch.allclose((b - a)[0, 0] / 0.6, (a - c)[0, 0] / 0.4)  # bins 0..1 and -1..0: other slopes
    with pytest.raises(ValueError, match="bin edges for each of the 3 numeric columns, got 1"):
        _model(bins=bins[:1])


@pytest.mark.parametrize("variant", ["single", "ensemble", "piecewise"])
@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
def test_onnx_matches_pytorch(tmp_path, dynamo, variant):
    """Both exporters keep the batch axis dynamic and match PyTorch within 1e-4 (an ensemble is one
    graph that averages its members; piecewise-linear embeddings export as clamps)."""
    import onnxruntime as ort
    import torch

    torch.manual_seed(0)
    if variant == "piecewise":
        model = _model(bins=[[-1.0, 0.0, 1.0], [-2.0, -0.5, 0.5, 2.0], [0.0, 1.0]])
        with torch.no_grad():
            model.numeric.linear.weight.normal_()  # a trained-looking piecewise term, not the zero init
    else:
        model = _model(ensemble_size=3 if variant == "ensemble" else 1)
    example = (torch.randn(2, 3), torch.tensor([[1, 2], [2, 4]]))
    path = tmp_path / "ft.onnx"
    if dynamo:
        batch = torch.export.Dim("batch")
        shapes = {"dynamic_shapes": {"x_num": {0: batch}, "x_cat": {0: batch}}}
    else:
        shapes = {"dynamic_axes": {"x_num": {0: "batch"}, "x_cat": {0: "batch"}, "logits": {0: "batch"}}}
    torch.onnx.export(model, example, str(path), input_names=["x_num", "x_cat"], output_names=["logits"],
                      dynamo=dynamo, **shapes)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    for batch in (1, 7):
        x_num = rng.normal(size=(batch, 3)).astype(np.float32)
        x_cat = np.stack([rng.integers(0, 3, batch), rng.integers(0, 5, batch)], axis=1).astype(np.int64)
        got = session.run(None, {"x_num": x_num, "x_cat": x_cat})[0]
        with torch.no_grad():
            want = model(torch.from_numpy(x_num), torch.from_numpy(x_cat)).numpy()
        assert np.abs(got - want).max() < 1e-4
