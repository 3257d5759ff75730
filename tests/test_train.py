"""Tiny real fine-tunes: run directory contents, determinism, interruption and resume, evaluate,
recipe overrides, label checks; one run per task kind."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from bigmodel.core import LabelMap, Recipe, SectorSpec, SectorTask
from bigmodel.core.runs import REQUIRED_FILES, Run, RunError, partial_path

INTENTS = ["card_arrival", "card_linking", "exchange_rate", "lost_or_stolen_card"]
TINY = ["max_steps=4", "batch_size=8", "eval_strategy=steps", "eval_steps=2", "validation_fraction=0.25",
        "learning_rate=0.001", "eval_batch_size=16"]


@pytest.fixture(autouse=True)
def _few_threads():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)


LENDING = Path(__file__).parent / "fixtures" / "lending.py"


def _lending():
    """tests/fixtures/lending.py: German Credit as a tabular sector (also a torchrun script)."""
    import importlib.util
    import sys

    if "bm_test_lending" not in sys.modules:
        spec = importlib.util.spec_from_file_location("bm_test_lending", LENDING)
        module = importlib.util.module_from_spec(spec)
        sys.modules["bm_test_lending"] = module
        spec.loader.exec_module(module)
    return sys.modules["bm_test_lending"]


class TextRecipe(Recipe):
    max_length: int = 32


class ImageRecipe(Recipe):
    image_size: int = 32
    pretrained: bool = False
    augment_hflip: float = 0.5


class HalfThreshold:
    """A sector decision: refer when the positive score is near 0.5 (chosen on validation)."""

    @staticmethod
    def fit(labels, proba, label_map, recipe):
        return {"band": [0.4, 0.6], "validation_n": int(len(labels))}

    @staticmethod
    def apply(proba, params, label_map):
        low, high = params["band"]
        return [{"refer": bool(low <= p[1] <= high)} for p in proba]


def text_sector(**task_fields) -> SectorSpec:
    task = SectorTask(name="intent", kind="text", label_map=LabelMap.from_names(INTENTS), model="hf_text_classifier",
                      recipe=TextRecipe, **task_fields)
    return SectorSpec(name="toy", title="Toy bank", description="intent detection for tests", tasks=[task])


@pytest.fixture(scope="module")
def banking(shared_data, tmp_path_factory) -> Path:
    """8 train and 4 test messages for each of 4 BANKING77 intents."""
    with open(shared_data / "banking77" / "train.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    folder = tmp_path_factory.mktemp("banking")
    for split, (lo, hi) in {"train": (0, 8), "test": (8, 12)}.items():
        with open(folder / f"{split}.csv", "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["text", "label"])
            for intent in INTENTS:
                for row in [r for r in rows if r["category"] == intent][lo:hi]:
                    writer.writerow([row["text"], intent])
    return folder


@pytest.fixture(scope="module")
def text_run(banking, tmp_path_factory) -> Path:
    from bigmodel.core import reset
    from bigmodel.core.train import train

    reset()
    out = tmp_path_factory.mktemp("runs") / "text"
    return train(text_sector(), data=banking, sets=TINY, out=out, seed=7, quiet=True)


def test_text_run_directory_is_complete(text_run, banking):
    documented = [*REQUIRED_FILES, "training_curve.json", "training_curve.png", "predictions/validation.npz",
                  "predictions/test.npz", "preprocess/tokenizer.json", "confusion_matrix_test.png", "reliability_test.png",
                  "model_config/config.json"]
    for name in documented:
        assert (text_run / name).is_file(), name
    assert not partial_path(text_run).exists() and not (text_run / "checkpoints").exists()
    run = Run.load(text_run)
    assert run.info["status"] == "complete" and run.info["kind"] == "text" and run.info["seed"] == 7
    assert run.info["licences"]["model"] == "Apache-2.0" and run.info["loader"] == "text_table"
    assert run.label_map.names == INTENTS and run.decision is None
    assert run.recipe["max_length"] == 32 and run.recipe["max_steps"] == 4
    recipe = json.loads((text_run / "recipe.json").read_text())
    assert recipe["digest"] == run.recipe_digest == TextRecipe().with_sets(TINY).digest()
    metrics = run.metrics()
    assert set(metrics) == {"validation", "test"} and metrics["test"]["n"] == 16
    assert 0 <= metrics["test"]["accuracy"] <= 1 and "auroc" not in metrics["test"]
    curve = json.loads((text_run / "training_curve.json").read_text())
    assert [r["step"] for r in curve["eval"]] == [2, 4] and curve["metric"] == "macro_f1"
    env = json.loads((text_run / "environment.json").read_text())
    assert env["device"] == "cpu" and env["packages"]["torch"] and env["cpu_count"] >= 1
    card = (text_run / "README.md").read_text()
    assert "## Limits" in card and "Apache-2.0" in card and "macro_f1" in card
    assert run.info["pretrained"] is True and "random initialisation" not in card


def test_reloaded_model_reproduces_stored_predictions(text_run, banking):
    from bigmodel.core.evaluate import predict_proba

    run = Run.load(text_run)
    inputs, labels = run.heldout()
    assert len(inputs) == 16 and all(isinstance(t, str) for t in inputs)
    stored_labels, stored = run.predictions("test")
    test_texts = [r["text"] for r in csv.DictReader(open(banking / "test.csv", newline="", encoding="utf-8"))]
    order = [test_texts.index(t) for t in inputs]
    np.testing.assert_array_equal(labels, stored_labels[order])
    proba = predict_proba(run.build_model(), run.preprocessor(), inputs)
    np.testing.assert_allclose(proba, stored[order], atol=1e-5)
    with pytest.raises(RunError, match="no predictions for split 'train'"):
        run.predictions("train")


def test_same_seed_same_metrics(text_run, banking, tmp_path):
    from bigmodel.core.train import train

    again = train(text_sector(), data=banking, sets=TINY, out=tmp_path / "again", seed=7, quiet=True)
    first_metrics, second_metrics = Run.load(text_run).metrics(), Run.load(again).metrics()
    assert first_metrics.keys() == second_metrics.keys()
    for split, values in first_metrics.items():
        # counts and label-based metrics are identical; probability-based ones agree to float32 rounding
        # (CPU kernels may sum in a different order from one run to the next)
        assert values == pytest.approx(second_metrics[split], rel=1e-6, abs=1e-7)
        assert {k: values[k] for k in ("n", "accuracy", "macro_f1")} == \
            {k: second_metrics[split][k] for k in ("n", "accuracy", "macro_f1")}
    _, first = Run.load(text_run).predictions("test")
    _, second = Run.load(again).predictions("test")
    np.testing.assert_allclose(first, second, rtol=0, atol=1e-6)
    assert (first.argmax(1) == second.argmax(1)).all()


def test_evaluate_cli_writes_metrics_and_pngs(text_run, banking):
    from click.testing import CliRunner

    from bigmodel.cli._main import cli

    for png in ("confusion_matrix_validation.png", "reliability_validation.png"):
        (text_run / png).unlink()
    result = CliRunner().invoke(cli, ["evaluate", str(text_run), "--split", "validation", "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output)
    assert metrics == Run.load(text_run).metrics()["validation"]
    for png in ("confusion_matrix_validation.png", "reliability_validation.png"):
        assert (text_run / png).read_bytes()[:4] == b"\x89PNG"
    # new data: the test file alone, read with the run's loader and label map
    result = CliRunner().invoke(cli, ["evaluate", str(text_run), "--data", str(banking / "test.csv")])
    assert result.exit_code == 0, result.output
    assert "accuracy" in result.output
    assert Run.load(text_run).metrics()["test.csv/train"]["n"] == 16
    assert (text_run / "confusion_matrix_test.csv_train.png").is_file()
    bad = CliRunner().invoke(cli, ["evaluate", str(text_run.parent / "missing")])
    assert bad.exit_code != 0 and "no such run directory" in bad.output


def test_existing_run_is_not_overwritten(text_run, banking):
    from bigmodel.core.train import train

    with pytest.raises(RunError, match="already exists; pass --overwrite"):
        train(text_sector(), data=banking, sets=TINY, out=text_run, quiet=True)


class Interrupted(Exception):
    pass


def _stop_after_first_save():
    """A Trainer callback that interrupts a run right after its first checkpoint."""
    from transformers import TrainerCallback

    class StopAfterFirstSave(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            raise Interrupted(f"stopped at step {state.global_step}")

    return StopAfterFirstSave()


def test_interrupted_run_leaves_partial_and_resumes(banking, tmp_path, monkeypatch):
    from bigmodel.core import train as train_module

    out = tmp_path / "run"
    monkeypatch.setattr(train_module, "_extra_callbacks", lambda: [_stop_after_first_save()])
    with pytest.raises(Interrupted, match="step 2"):
        train_module.train(text_sector(), data=banking, sets=TINY, out=out, seed=3, quiet=True)
    partial = partial_path(out)
    assert not out.exists() and (partial / "checkpoints" / "checkpoint-2").is_dir()
    with pytest.raises(RunError, match="--resume"):
        Run.load(out)
    with pytest.raises(RunError, match="interrupted run: pass --resume"):
        train_module.train(text_sector(), data=banking, sets=TINY, out=out, seed=3, quiet=True)
    monkeypatch.setattr(train_module, "_extra_callbacks", lambda: [])
    with pytest.raises(RunError, match="recipe digest"):
        train_module.train(text_sector(), data=banking, sets=[*TINY, "learning_rate=0.01"], out=out, seed=3,
                           resume=True, quiet=True)
    done = train_module.train(text_sector(), data=banking, sets=TINY, out=out, seed=3, resume=True, quiet=True)
    assert done == out and not partial.exists()
    run = Run.load(out)
    assert run.info["global_step"] == 4
    steps = [r["step"] for r in json.loads((out / "training_curve.json").read_text())["eval"]]
    assert steps == [2, 4]


def test_recipe_overrides_and_type_errors(tmp_path, banking):
    from bigmodel.core.train import plan

    sector = text_sector(presets={"quick": {"epochs": 1, "batch_size": 4}})
    recipe_file = tmp_path / "recipe.toml"
    recipe_file.write_text("[recipe]\nlearning_rate = 0.0003\nmax_length = 64\n")
    p = plan(sector, data=banking, preset="quick", recipe_file=recipe_file, sets=["batch_size=2"])
    assert (p.recipe.epochs, p.recipe.batch_size, p.recipe.learning_rate, p.recipe.max_length) == (1, 2, 3e-4, 64)
    with pytest.raises(ValueError, match="--set: recipe field 'batch_size'"):
        plan(sector, data=banking, sets=["batch_size=many"])
    with pytest.raises(ValueError, match="unknown recipe field 'max_lenght'"):
        plan(sector, data=banking, sets=["max_lenght=64"])
    recipe_file.write_text("max_length = 'long'\n")
    with pytest.raises(ValueError, match=r"recipe.toml: recipe field 'max_length'"):
        plan(sector, data=banking, recipe_file=recipe_file)
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        plan(sector, data=banking, preset="huge")
    with pytest.raises(ValueError, match="declares no dataset; pass --data"):
        plan(sector)
    with pytest.raises(ValueError, match="'mixup_alpha' blends input values, and task 'intent' reads token ids"):
        plan(sector, data=banking, sets=["mixup_alpha=0.2"])


def test_unknown_labels_refused_unless_extended(banking, tmp_path):
    from bigmodel.core.train import train

    data = tmp_path / "data.csv"
    data.write_text((banking / "train.csv").read_text() + "where is my refund,refund_not_showing_up\n"
                    "refund still missing,refund_not_showing_up\nno refund yet,refund_not_showing_up\n"
                    "refund please,refund_not_showing_up\n")
    with pytest.raises(ValueError, match=r"data.csv:\d+: unknown label 'refund_not_showing_up'.*--extend-labels"):
        train(text_sector(), data=data, sets=TINY, out=tmp_path / "run", quiet=True)
    assert not partial_path(tmp_path / "run").exists()
    out = train(text_sector(), data=data, sets=[*TINY, "max_steps=1"], out=tmp_path / "run", quiet=True,
                extend_labels=True)
    assert Run.load(out).label_map.names == [*INTENTS, "refund_not_showing_up"]


def test_user_label_set_replaces_the_sectors(banking, tmp_path):
    """--labels: the user's own label set (one name per line, or a JSON label map) instead of the sector's."""
    from click.testing import CliRunner

    from bigmodel.cli import cli
    from bigmodel.core.train import read_labels

    labels = tmp_path / "labels.txt"
    labels.write_text("lost_or_stolen_card\ncard_arrival\n")
    rows = [line for line in (banking / "train.csv").read_text().splitlines()[1:]
            if line.endswith((",card_arrival", ",lost_or_stolen_card"))]
    data = tmp_path / "mine.csv"
    data.write_text("text,label\n" + "\n".join(rows) + "\n")
    assert read_labels(labels).names == ["lost_or_stolen_card", "card_arrival"]
    (tmp_path / "dupes.txt").write_text("a\na\n")
    with pytest.raises(ValueError, match=r"--labels .*dupes.txt: label names must be unique; duplicated: \[.a.\]$"):
        read_labels(tmp_path / "dupes.txt")
    from bigmodel.core.train import train

    with pytest.raises(ValueError, match=r"unknown label 'card_arrival'"):
        train(text_sector(), data=data, sets=[*TINY, "max_steps=1"], out=tmp_path / "bad", quiet=True,
              labels=LabelMap.from_names(["lost_or_stolen_card", "other"]))
    out = train(text_sector(), data=data, sets=[*TINY, "max_steps=1"], out=tmp_path / "run", quiet=True, labels=labels)
    assert Run.load(out).label_map.names == ["lost_or_stolen_card", "card_arrival"]
    result = CliRunner().invoke(cli, ["train", "nosuchsector", "--labels", str(tmp_path / "missing.txt")])
    assert result.exit_code == 2 and "missing.txt" in result.output


def test_image_run_with_decision(shared_data, tmp_path):
    from bigmodel.core.train import train

    task = SectorTask(name="screen", kind="image", label_map=LabelMap.from_names(["malignant", "benign"], positive="malignant"),
                      model="timm_image_classifier", recipe=ImageRecipe, metrics=["auroc"],
                      decision=HalfThreshold)
    sector = SectorSpec(name="imaging", title="Imaging", tasks=[task])
    out = train(sector, data=shared_data / "medmnist" / "breastmnist.npz", base_model="tf_efficientnet_lite0",
                sets=["max_steps=2", "batch_size=16", "train_subset=48", "eval_subset=24", "metric_for_best_model=auroc"],
                out=tmp_path / "img", quiet=True)
    run = Run.load(out)
    assert run.info["loader"] == "npz_images" and run.preprocessor().spec()["image_size"] == [32, 32]
    assert run.info["pretrained"] is False  # ImageRecipe: random initialisation, said on the model card
    assert "random initialisation of `tf_efficientnet_lite0`" in (out / "README.md").read_text()
    assert run.decision["params"]["band"] == [0.4, 0.6] and run.decision["ref"].endswith(":HalfThreshold")
    assert "auroc" in run.metrics()["test"] and run.metrics()["test"]["n"] == 24
    inputs, labels = run.heldout()
    assert len(inputs) == 24 and inputs[0].shape == (28, 28) and inputs[0].dtype == np.uint8
    import torch

    model = run.build_model()
    with torch.no_grad():
        logits = model(**{k: torch.from_numpy(v) for k, v in run.preprocessor()(inputs[:3]).items()})
    assert logits.shape == (3, 2)


def test_tabular_run(shared_data, tmp_path):
    out = _lending().train_lending(shared_data / "german_credit" / "german.data", tmp_path / "tab",
                                   ["max_steps=5", "batch_size=64", "learning_rate=0.01", "numeric_transform=quantile"])
    columns, numeric = _lending().COLUMNS, _lending().NUMERIC
    run = Run.load(out)
    spec = run.preprocessor().spec()
    assert spec["numeric"] == numeric and spec["numeric_transform"] == "quantile" and len(spec["vocabularies"]) == 13
    assert run.info["counts"] == {"train": 720, "validation": 80, "test": 200}
    assert run.metrics()["test"]["auroc"] is not None
    inputs, labels = run.heldout()
    assert set(inputs) == set(columns[:-1]) and len(labels) == 200
    from bigmodel.core.evaluate import predict_proba

    _, stored = run.predictions("test")
    assert predict_proba(run.build_model(), run.preprocessor(), inputs).shape == (200, 2)
    assert stored.shape == (200, 2)


def test_multistep_schedule_warms_up_then_drops_tenfold_at_half_and_three_quarters(shared_data, tmp_path):
    """recipe lr_scheduler=multistep (not a transformers scheduler type): the learning rate the run
    logged for each of 8 optimizer steps follows 2 warmup steps, then x0.1 from step 5 and x0.01 from
    step 7 (the drops at 50% and 75% of training)."""
    out = _lending().train_lending(shared_data / "german_credit" / "german.data", tmp_path / "ms",
                                   ["max_steps=8", "batch_size=64", "learning_rate=0.01", "eval_steps=1",
                                    "warmup_ratio=0.25", "lr_scheduler=multistep"])
    logged = {row["step"]: row["learning_rate"] for row in json.loads((out / "training_curve.json").read_text())["train"]}
    assert logged == pytest.approx({1: 0.0, 2: 0.005, 3: 0.01, 4: 0.01, 5: 1e-3, 6: 1e-3, 7: 1e-4, 8: 1e-4})
    assert json.loads((out / "recipe.json").read_text())["values"]["lr_scheduler"] == "multistep"


def test_bagged_run_scores_validation_out_of_fold_and_exports_one_graph(shared_data, tmp_path):
    """recipe bagging=3: three members on the engine's folds of train + validation; the stored
    validation probabilities of each pooled row come from the member that did not train on it, the
    model averages the members' logits, and it rebuilds, exports through the gate and refuses an
    in-sample re-evaluation of the validation split."""
    import torch

    from bigmodel.core.data import join_splits, load_splits
    from bigmodel.core.evaluate import evaluate, predict_proba
    from bigmodel.core.export import export_onnx
    from bigmodel.core.train import bagging_folds

    lending = _lending()
    data = shared_data / "german_credit" / "german.data"
    out = lending.train_lending(data, tmp_path / "bag", ["max_steps=4", "batch_size=64", "learning_rate=0.01",
                                                         "bagging=3"], seed=3)
    run = Run.load(out)
    assert run.info["bagging"] == 3 and run.model_info()["bagging"] == 3
    assert run.info["counts"] == {"train": 800, "validation": 800, "test": 200}
    assert len(json.loads((out / "training_curve.json").read_text())["members"]) == 3
    assert "bagged: 3 members" in (out / "README.md").read_text()
    model = run.build_model()
    assert type(model).__name__ == "MeanEnsemble" and len(model.members) == 3
    splits, _ = load_splits(data, label_map=run.label_map, loader="tabular_csv", options=lending.OPTIONS,
                            task="tabular", seed=3, validation_fraction=0.1, progress=False)
    pool = join_splits([splits["train"], splits["validation"]])
    labels, out_of_fold = run.predictions("validation")
    np.testing.assert_array_equal(labels, pool.labels)
    pre = run.preprocessor()
    for member, (_, val_idx) in zip(model.members, bagging_folds(pool.labels, 3, seed=3)):
        np.testing.assert_allclose(out_of_fold[val_idx], predict_proba(member, pre, pool.take(val_idx).inputs), atol=1e-6)
    x = pre(splits["test"].inputs)
    with torch.no_grad():
        mean_logits = torch.stack([m(**{k: torch.from_numpy(v) for k, v in x.items()}) for m in model.members]).mean(0)
    np.testing.assert_allclose(run.predictions("test")[1], torch.softmax(mean_logits, -1).numpy(), atol=1e-6)
    onnx_path = export_onnx(run, echo=lambda s: None)
    assert onnx_path.is_file()
    with pytest.raises(ValueError, match="bagged run's members trained on its validation examples"):
        evaluate(run, split="validation", quiet=True)
    with pytest.raises(RunError, match="recipe bagging = 3 cannot resume"):
        lending.train_lending(data, tmp_path / "bag2", ["bagging=3"], resume=True)
    with pytest.raises(ValueError, match="bagging' = 900: every class needs at least 900"):
        bagging_folds(pool.labels, 900, seed=0)


def test_deep_ensemble_trains_members_from_distinct_seeds_and_serves_their_mean(shared_data, tmp_path):
    """recipe ensemble=3: three members on the same split from seeds s, s + 1000, s + 2000; validation and
    test predictions are the mean of the members' logits, the run rebuilds and exports as one graph, and
    the recipe refuses an ensemble of bagged runs."""
    import torch

    from bigmodel.core.data import load_splits
    from bigmodel.core.export import export_onnx
    from bigmodel.core.specs import Recipe

    lending = _lending()
    data = shared_data / "german_credit" / "german.data"
    out = lending.train_lending(data, tmp_path / "ens", ["max_steps=4", "batch_size=64", "learning_rate=0.01",
                                                         "ensemble=3"], seed=3)
    run = Run.load(out)
    assert run.info["ensemble"] == 3 and run.model_info()["ensemble"] == 3 and run.info["bagging"] == 1
    assert run.info["counts"] == {"train": 720, "validation": 80, "test": 200}
    assert len(json.loads((out / "training_curve.json").read_text())["members"]) == 3
    assert "deep ensemble: 3 members trained on the same examples from seeds 3, 1003" in (out / "README.md").read_text()
    model = run.build_model()
    assert type(model).__name__ == "MeanEnsemble" and len(model.members) == 3
    first = [next(m.parameters()).detach() for m in model.members]
    assert not torch.equal(first[0], first[1]) and not torch.equal(first[1], first[2])
    splits, _ = load_splits(data, label_map=run.label_map, loader="tabular_csv", options=lending.OPTIONS,
                            task="tabular", seed=3, validation_fraction=0.1, progress=False)
    pre = run.preprocessor()
    for split in ("validation", "test"):
        labels, stored = run.predictions(split)
        np.testing.assert_array_equal(labels, splits[split].labels)
        x = pre(splits[split].inputs)
        with torch.no_grad():
            logits = torch.stack([m(**{k: torch.from_numpy(v) for k, v in x.items()}) for m in model.members]).mean(0)
        np.testing.assert_allclose(stored, torch.softmax(logits, -1).numpy(), atol=1e-6)
    assert export_onnx(run, echo=lambda s: None).is_file()
    with pytest.raises(RunError, match="recipe ensemble = 3 cannot resume"):
        lending.train_lending(data, tmp_path / "ens2", ["ensemble=3"], resume=True)
    with pytest.raises(ValueError, match="'ensemble' = 2 and 'bagging' = 3: choose one kind of ensemble"):
        Recipe(ensemble=2, bagging=3)


def test_heterogeneous_members_train_their_own_recipes_and_serve_their_mean(shared_data, tmp_path):
    """recipe members: member m trains with the run's recipe updated by entry m (here a wider network and
    another learning rate) from seed s + 1000 m; the run serves the mean of their logits, rebuilds each
    member from its own recipe, exports one graph; a member that would change the shared preprocessing
    is refused before anything trains."""
    import torch

    from bigmodel.core.export import export_onnx

    lending = _lending()
    data = shared_data / "german_credit" / "german.data"
    out = lending.train_lending(data, tmp_path / "mem", ["max_steps=4", "batch_size=64", "learning_rate=0.01",
                                                         "members=[{}, {hidden_size: 48, learning_rate: 0.05}]"], seed=3)
    run = Run.load(out)
    assert run.info["members"] == [{}, {"hidden_size": 48, "learning_rate": 0.05}]
    assert [m["rebuild_base"] for m in run.model_info()["members"]] == [None, None]
    assert len(json.loads((out / "training_curve.json").read_text())["members"]) == 2
    assert "heterogeneous ensemble: 2 members trained on the same examples from seeds 3, 1003" in (out / "README.md").read_text()
    model = run.build_model()
    assert type(model).__name__ == "MeanEnsemble"
    assert [m.mlp[0].out_features for m in model.members] == [16, 48]  # each member's own hidden_size
    pre, (inputs, _) = run.preprocessor(), run.heldout()
    x = {k: torch.from_numpy(v) for k, v in pre(inputs).items()}
    with torch.no_grad():
        mean_logits = torch.stack([m(**x) for m in model.members]).mean(0)
    np.testing.assert_allclose(run.predictions("test")[1], torch.softmax(mean_logits, -1).numpy(), atol=1e-6)
    assert export_onnx(run, echo=lambda s: None).is_file()
    with pytest.raises(ValueError, match="'members' entry 1: changes the preprocessing the members share .*numeric"):
        lending.train_lending(data, tmp_path / "mem2", ["max_steps=1", "members=[{}, {numeric_transform: quantile}]"])
    assert not (tmp_path / "mem2").exists() and not partial_path(tmp_path / "mem2").exists()
    with pytest.raises(RunError, match="recipe members = 2 cannot resume"):
        lending.train_lending(data, tmp_path / "mem3", ["members=[{}, {}]"], resume=True)


def test_bagged_text_run_exports_one_graph_that_serves_the_mean(banking, tmp_path):
    """recipe bagging=2 on a transformer text task: two MiniLM members in one ONNX graph (dynamic batch
    and sequence axes) whose probabilities are the run's stored test predictions."""
    from bigmodel.core.export import export_onnx, report_path_for
    from bigmodel.core.predict import Predictor
    from bigmodel.core.train import train

    out = train(text_sector(), data=banking, sets=TINY + ["bagging=2"], out=tmp_path / "bag", seed=7, quiet=True)
    run = Run.load(out)
    assert run.info["counts"]["validation"] == 32 and len(run.build_model().members) == 2
    onnx_path = export_onnx(run, echo=lambda s: None)
    report = json.loads(report_path_for(onnx_path).read_text())
    assert report["passed"] and report["label_disagreements"] == 0 and report["max_abs_logit_diff"] < 1e-4
    texts, _ = run.heldout()
    served = Predictor.load(onnx_path, provider="cpu").predict_proba(list(texts))
    np.testing.assert_allclose(served, run.predictions("test")[1], atol=1e-4)


def test_logit_adjustment_undoes_the_class_weights_in_the_served_scores(shared_data, tmp_path):
    """recipe logit_adjustment: the trained logits shifted by -log(class weight), in the stored
    predictions, the rebuilt model and the exported graph; for a bagged run, in every member (the
    out-of-fold scores included); refused without class weights."""
    import onnxruntime as ort
    import torch

    from bigmodel.core.data import join_splits, load_splits
    from bigmodel.core.evaluate import predict_proba
    from bigmodel.core.export import export_onnx
    from bigmodel.core.train import bagging_folds

    lending = _lending()
    data = shared_data / "german_credit" / "german.data"
    base = ["max_steps=4", "batch_size=64", "learning_rate=0.01", "class_weights=[1.0, 4.0]"]
    plain = Run.load(lending.train_lending(data, tmp_path / "plain", base, seed=3))
    adjusted = Run.load(lending.train_lending(data, tmp_path / "adjusted", base + ["logit_adjustment=true"], seed=3))
    _, p_plain = plain.predictions("test")
    labels, p_adj = adjusted.predictions("test")
    tilted = np.log(p_plain) + np.log([1.0, 0.25])
    expected = np.exp(tilted) / np.exp(tilted).sum(1, keepdims=True)
    np.testing.assert_allclose(p_adj, expected, atol=1e-5)
    assert p_adj[:, 1].mean() < p_plain[:, 1].mean() - 0.05  # weight 4 on "bad" pushed its scores up; undone
    assert adjusted.model_info()["logit_adjustment"] and adjusted.info["logit_adjustment"]
    assert "logit adjustment" in (adjusted.path / "README.md").read_text()
    model = adjusted.build_model()
    assert type(model).__name__ == "LogitOffset"
    np.testing.assert_allclose(model.logit_offset.numpy(), [0.0, -np.log(4.0)], atol=1e-6)
    inputs, _ = adjusted.heldout()
    np.testing.assert_allclose(predict_proba(model, adjusted.preprocessor(), inputs), p_adj, atol=1e-5)
    onnx_path = export_onnx(adjusted, echo=lambda s: None)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    feeds = adjusted.preprocessor()(inputs)
    logits = session.run(None, {i.name: feeds[i.name] for i in session.get_inputs()})[0]
    np.testing.assert_allclose(torch.softmax(torch.from_numpy(logits), -1).numpy(), p_adj, atol=1e-5)

    bagged = Run.load(lending.train_lending(data, tmp_path / "bag", base[:3] + ["class_weights=balanced", "bagging=2",
                                                                             "logit_adjustment=true"], seed=3))
    members = bagged.build_model().members
    assert [type(m).__name__ for m in members] == ["LogitOffset"] * 2
    for member in members:  # balanced weights n / (2 · count) from each member's own training folds
        good, bad = np.exp(-member.logit_offset.numpy())
        assert 1 / good + 1 / bad == pytest.approx(2.0, abs=1e-5) and bad > 1.5 > good
    splits, _ = load_splits(data, label_map=bagged.label_map, loader="tabular_csv", options=lending.OPTIONS,
                            task="tabular", seed=3, validation_fraction=0.1, progress=False)
    pool = join_splits([splits["train"], splits["validation"]])
    _, out_of_fold = bagged.predictions("validation")
    for member, (_, val_idx) in zip(members, bagging_folds(pool.labels, 2, seed=3)):
        np.testing.assert_allclose(out_of_fold[val_idx], predict_proba(member, bagged.preprocessor(),
                                                                       pool.take(val_idx).inputs), atol=1e-6)
    with pytest.raises(ValueError, match="'logit_adjustment' undoes class weights, but class_weights is 'none'"):
        lending.train_lending(data, tmp_path / "refused", base[:3] + ["logit_adjustment=true"])
    assert not (tmp_path / "refused").exists()
    with pytest.raises(ValueError, match=r"log of class_weights \[1.0, 0.0\]: every weight must be positive"):
        lending.train_lending(data, tmp_path / "refused", base[:3] + ["class_weights=[1.0, 0.0]", "logit_adjustment=true"])


def test_ema_decay_scores_saves_and_keeps_the_average_and_trains_on_from_the_raw_weights(shared_data, tmp_path,
                                                                                          monkeypatch):
    """recipe ema_decay: every evaluation and checkpoint sees the moving average of the weights (decay per
    optimizer step, first step a copy), the next step starts from the raw weights, the run keeps the best
    evaluated average, and an interrupted run resumes both to the same result."""
    from transformers import TrainerCallback

    from bigmodel.core import train as train_module
    from bigmodel.core.averaging import RAW_FILE
    from safetensors.torch import load_file

    def snap(model):
        return {k: v.detach().clone().float() for k, v in model.state_dict().items()}

    class Observer(TrainerCallback):
        def __init__(self):
            self.raw, self.evaluated, self.begins = [], {}, {}

        def on_step_begin(self, args, state, control, model=None, **kwargs):
            self.begins[state.global_step] = snap(model)

        def on_optimizer_step(self, args, state, control, model=None, **kwargs):
            self.raw.append(snap(model))

        def on_evaluate(self, args, state, control, model=None, **kwargs):
            self.evaluated[state.global_step] = snap(model)

    def close(a, b, atol=1e-6):
        return all(np.allclose(a[k].numpy(), b[k].numpy(), atol=atol) for k in a)

    lending = _lending()
    data = shared_data / "german_credit" / "german.data"
    sets = ["max_steps=4", "batch_size=64", "learning_rate=0.01", "eval_strategy=steps", "eval_steps=2",
            "ema_decay=0.5"]
    observer = Observer()
    monkeypatch.setattr(train_module, "_extra_callbacks", lambda: [observer])
    run = Run.load(lending.train_lending(data, tmp_path / "ema", sets, seed=3))
    assert len(observer.raw) == 4 and sorted(observer.evaluated) == [2, 4]
    average = [observer.raw[0]]
    for raw in observer.raw[1:]:
        average.append({k: 0.5 * average[-1][k] + 0.5 * raw[k] for k in raw})
    assert close(observer.evaluated[2], average[1]) and close(observer.evaluated[4], average[3])
    assert not close(average[1], observer.raw[1], atol=1e-4)  # the average is not the raw weights
    assert close(observer.begins[2], observer.raw[1])  # step 3 trains on from the raw weights
    best = json.loads((run.path / "training_curve.json").read_text())["best_checkpoint"]
    kept = snap(run.build_model())
    assert close(kept, observer.evaluated[int(best.split("-")[1])])
    assert run.info["ema_decay"] == 0.5 and "moving average" in (run.path / "README.md").read_text()

    out = tmp_path / "resumed"
    monkeypatch.setattr(train_module, "_extra_callbacks", lambda: [_stop_after_first_save()])
    with pytest.raises(Interrupted, match="step 2"):
        lending.train_lending(data, out, sets, seed=3)
    checkpoint = partial_path(out) / "checkpoints" / "checkpoint-2"
    raw = load_file(str(checkpoint / RAW_FILE))
    assert int(raw.pop("n_averaged")) == 2 and close({k: v.float() for k, v in raw.items()}, observer.raw[1])
    (checkpoint / RAW_FILE).rename(checkpoint / "moved")
    with pytest.raises(RunError, match=f"--resume: .*{RAW_FILE} is missing"):
        lending.train_lending(data, out, sets, seed=3, resume=True)
    (checkpoint / "moved").rename(checkpoint / RAW_FILE)
    second = Observer()
    monkeypatch.setattr(train_module, "_extra_callbacks", lambda: [second])
    resumed = Run.load(lending.train_lending(data, out, sets, seed=3, resume=True))
    assert sorted(second.evaluated) == [4] and close(second.evaluated[4], observer.evaluated[4], atol=1e-5)
    assert close(snap(resumed.build_model()), kept, atol=1e-5)
    np.testing.assert_allclose(resumed.predictions("test")[1], run.predictions("test")[1], atol=1e-5)


def test_ensemble_logits_get_one_loss_per_member():
    """A model returning (members, batch, classes) in training is a deep ensemble: the loss is the
    mean of the members' own cross-entropies (each member's gradient depends on itself only), the
    logits passed on are the members' mean."""
    from types import SimpleNamespace

    import torch

    from bigmodel.core.train import _torch_parts

    _, _, trainer_cls = _torch_parts()
    weights = [torch.nn.Parameter(torch.randn(4, 3, generator=torch.Generator().manual_seed(i))) for i in range(2)]
    features, labels = torch.randn(6, 4), torch.tensor([0, 1, 2, 0, 1, 2])

    def model(x):
        return torch.stack([x @ w for w in weights])

    stub = SimpleNamespace(_class_weights=None, _label_smoothing=0.0, _mixup_alpha=0.0)
    loss, (_, logits) = trainer_cls.compute_loss(stub, model, {"x": features, "labels": labels}, return_outputs=True)
    ce = [torch.nn.functional.cross_entropy(features @ w, labels) for w in weights]
    assert torch.allclose(loss, (ce[0] + ce[1]) / 2)
    assert torch.allclose(logits, (features @ weights[0] + features @ weights[1]) / 2)
    loss.backward()
    alone = torch.autograd.grad(ce[0] / 2, weights[0])[0]
    assert torch.allclose(weights[0].grad, alone)
    # a plain model (batch, classes) is unchanged
    loss, (_, logits) = trainer_cls.compute_loss(stub, lambda x: x @ weights[1], {"x": features, "labels": labels},
                                                 return_outputs=True)
    assert torch.allclose(loss, ce[1]) and logits.shape == (6, 3)


def test_mixup_blends_training_batches_only():
    """With mixup_alpha, a training batch's float inputs become lam * x + (1 - lam) * x[perm] and the
    loss is lam * CE(labels) + (1 - lam) * CE(labels[perm]); integer inputs pass through; in eval mode
    (validation, prediction) nothing is mixed."""
    from types import SimpleNamespace

    import torch

    from bigmodel.core.train import _torch_parts

    _, _, trainer_cls = _torch_parts()

    class Recorder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(4, 3)

        def forward(self, x, ids):
            self.seen = (x, ids)
            return self.linear(x)

    model = Recorder()
    x, ids, labels = torch.randn(8, 4), torch.arange(8), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    weight = torch.tensor([1.0, 2.0, 0.5])
    stub = SimpleNamespace(_class_weights=weight, _label_smoothing=0.1, _mixup_alpha=0.4)
    torch.manual_seed(5)
    loss = trainer_cls.compute_loss(stub, model, {"x": x, "ids": ids, "labels": labels})
    torch.manual_seed(5)
    lam = float(torch.distributions.Beta(torch.tensor(0.4), torch.tensor(0.4)).sample())
    perm = torch.randperm(8)
    assert 0 < lam < 1 and not torch.equal(perm, torch.arange(8))
    assert torch.allclose(model.seen[0], lam * x + (1 - lam) * x[perm]) and torch.equal(model.seen[1], ids)
    logits = model.linear(lam * x + (1 - lam) * x[perm])

    def ce(target):
        return torch.nn.functional.cross_entropy(logits, target, weight=weight, label_smoothing=0.1)

    assert torch.allclose(loss, lam * ce(labels) + (1 - lam) * ce(labels[perm]))
    model.eval()
    loss = trainer_cls.compute_loss(stub, model, {"x": x, "ids": ids, "labels": labels})
    assert torch.equal(model.seen[0], x)
    assert torch.allclose(loss, torch.nn.functional.cross_entropy(model.linear(x), labels, weight=weight,
                                                                  label_smoothing=0.1))


def test_ddp_under_torchrun_shards_the_data_and_writes_one_run(shared_data, tmp_path):
    """Two CPU processes (gloo) under torchrun: each trains on half the batches, rank 0 alone writes
    the run directory, and the run is complete and loadable."""
    import os
    import subprocess
    import sys

    out = tmp_path / "ddp-run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(LENDING), str(shared_data / "german_credit" / "german.data"), str(out),
         "epochs=1", "batch_size=60", "learning_rate=0.01"],
        capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    run = Run.load(out)
    assert run.info["status"] == "complete" and run.info["counts"]["train"] == 720
    # 720 rows / (2 processes x 60 per device) = 6 optimizer steps in one epoch (12 in one process)
    assert run.info["global_step"] == 6
    assert json.loads((out / "environment.json").read_text())["world_size"] == 2
    assert not partial_path(out).exists() and not (out / "checkpoints").exists()
    assert run.metrics()["test"]["auroc"] is not None
