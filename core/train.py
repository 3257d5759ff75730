"""``bigmodel train``: fine-tune a sector task's model with transformers' Trainer into a run directory.

Flow: registry lookup -> data (``data.load_splits``) -> recipe (preset, file, ``--set``) ->
preprocessor fitted on train -> model -> ``Trainer`` (checkpoints in ``<out>.partial/checkpoints``)
-> probabilities on validation/test -> sector decision fitted on validation -> metrics, charts,
model card -> rename ``<out>.partial`` to ``<out>``. See docs/run-format.md.

Bagging (recipe ``bagging = k > 1``): the training and validation examples form one pool, split
into k stratified folds (:func:`bagging_folds`); member m trains on the other folds with early
stopping on fold m, and the run's model averages the members' logits (:func:`mean_ensemble`). The
run's validation predictions are out-of-fold (each pooled example scored by the member that did not
train on it), so the decision and calibration are fitted on data no scorer saw.

Deep ensemble (recipe ``ensemble = k > 1``): k members train on the same split from seeds ``seed + 1000 m``,
each with its own checkpoint choice on validation; the model averages their logits as a bagged run's does.
A heterogeneous ensemble (recipe ``members``, one recipe per member) trains the same way, each member with
its own recipe, model and preprocessing, and serves from the run's input
(:func:`bigmodel.core.tasks.base.member_input`).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shutil
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import __version__, get_registry
from .runs import (
    FORMAT_VERSION,
    RunError,
    callable_ref,
    finalize,
    partial_path,
    read_json,
    save_heldout,
    save_predictions,
    write_json,
)
from .specs import DatasetSpec, LabelMap, ModelSpec, Recipe, SectorSpec, SectorTask, atomic_write_text, resolve_callable

__all__ = ["train", "TrainPlan", "plan", "default_out", "bagging_folds", "ENV_PACKAGES"]

ENV_PACKAGES = (
    "bigmodel", "torch", "transformers", "accelerate", "tokenizers", "safetensors", "timm", "numpy",
    "scikit-learn", "onnx", "onnxruntime", "onnxruntime-gpu", "pillow", "matplotlib",
)
_LOWER_IS_BETTER = {"loss", "ece"}


@dataclass
class TrainPlan:
    """Everything resolved before any data is read."""

    sector: SectorSpec
    task: SectorTask
    model: ModelSpec
    recipe: Recipe
    dataset: DatasetSpec | None
    data_path: Path | None
    loader: str | None
    base: str | None


def plan(sector: str | SectorSpec, *, task: str | None = None, data: str | os.PathLike | None = None,
         loader: str | None = None, base_model: str | None = None, recipe_file: str | os.PathLike | None = None,
         sets: Sequence[str] = (), preset: str | None = None) -> TrainPlan:
    """Resolve sector, task, model, dataset and recipe (raises ValueError/RegistryError naming the culprit)."""
    registry = get_registry()
    sector_spec = sector if isinstance(sector, SectorSpec) else registry.sector(sector)
    task_spec = sector_spec.task(task)
    model_spec = registry.model(task_spec.model)
    if model_spec.task != task_spec.kind:
        raise ValueError(f"model {model_spec.name!r} is for {model_spec.task} tasks, task {task_spec.name!r} is {task_spec.kind}")
    recipe = task_spec.resolve_recipe(preset)
    if recipe_file is not None:
        recipe = recipe.with_file(recipe_file)
    if sets:
        recipe = recipe.with_sets(list(sets))
    if recipe.mixup_alpha and task_spec.kind == "text":
        raise ValueError(f"recipe field 'mixup_alpha' blends input values, and task {task_spec.name!r} reads token "
                         "ids (text); leave it at 0")
    dataset = None
    data_path = Path(data).expanduser() if data is not None else None
    if data_path is None:
        if not task_spec.datasets:
            raise ValueError(f"task {task_spec.name!r} of sector {sector_spec.name!r} declares no dataset; pass --data PATH")
        dataset = registry.dataset(f"{sector_spec.name}/{task_spec.datasets[0]}")
    elif not data_path.exists():
        raise FileNotFoundError(f"--data {data_path}: no such file or directory")
    base = base_model if base_model is not None else model_spec.default_base
    return TrainPlan(sector_spec, task_spec, model_spec, recipe, dataset, data_path, loader, base)


def default_out(sector: str, task: str) -> Path:
    return Path("runs") / f"{sector}-{task}"


# -- torch pieces (built lazily) ------------------------------------------------------------------


def _torch_parts():
    import torch
    from transformers import Trainer

    class Examples(torch.utils.data.Dataset):
        """Indices into one split; the collator turns them into a preprocessed batch."""

        def __init__(self, split: str, n: int) -> None:
            self.split, self.n = split, n

        def __len__(self) -> int:
            return self.n

        def __getitem__(self, i: int) -> dict[str, Any]:
            return {"index": int(i), "split": self.split}

    class Collator:
        def __init__(self, preprocessor: Any, splits: dict[str, Any]) -> None:
            self.preprocessor, self.splits = preprocessor, splits

        def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
            split = items[0]["split"]
            part = self.splits[split].take([it["index"] for it in items])
            arrays = self.preprocessor(part.inputs, train=(split == "train"))
            batch = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}
            batch["labels"] = torch.from_numpy(np.asarray(part.labels, dtype=np.int64))
            return batch

    class ClassifierTrainer(Trainer):
        """Cross-entropy on the wrapper's logits, with class weights, label smoothing and mixup; the
        multistep learning-rate schedule.

        A model that returns ``(members, batch, classes)`` logits in training mode is a deep
        ensemble: each member gets its own loss (the mean of them is minimised, so the members
        train independently) and the logits reported are the members' mean, what the model
        returns in eval mode."""

        def __init__(self, *args: Any, class_weights: Any = None, label_smoothing: float = 0.0,
                     mixup_alpha: float = 0.0, multistep: bool = False, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._class_weights = None if class_weights is None else torch.tensor(class_weights, dtype=torch.float32)
            self._label_smoothing = float(label_smoothing)
            self._mixup_alpha = float(mixup_alpha)
            self._multistep = multistep

        def create_scheduler(self, num_training_steps, optimizer=None):
            """Recipe ``lr_scheduler = "multistep"``: after any linear warmup, the learning rate times 0.1
            at 50% and again at 75% of the steps (the classic ResNet schedule; MedMNIST v2's 100 epochs
            drop it after 50 and 75). transformers has no such scheduler type."""
            if not self._multistep or self.lr_scheduler is not None:
                return super().create_scheduler(num_training_steps, optimizer)
            warmup = self.args.get_warmup_steps(num_training_steps)
            drops = (num_training_steps // 2, (3 * num_training_steps) // 4)

            def factor(step: int) -> float:
                return min(1.0, step / warmup if warmup else 1.0) * 0.1 ** sum(step >= d for d in drops)

            self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer or self.optimizer, factor)
            self._created_lr_scheduler = True  # as transformers' own create_scheduler records it
            return self.lr_scheduler

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            inputs = dict(inputs)
            labels = inputs.pop("labels")
            lam, shuffled = 1.0, None
            if self._mixup_alpha and model.training:  # mixup: blend the batch with a shuffled copy of itself
                alpha = torch.tensor(self._mixup_alpha)
                lam = float(torch.distributions.Beta(alpha, alpha).sample())
                shuffled = torch.randperm(len(labels), device=labels.device)
                inputs = {k: lam * v + (1 - lam) * v[shuffled] if torch.is_floating_point(v) else v
                          for k, v in inputs.items()}
            logits = model(**inputs)
            weight = None if self._class_weights is None else self._class_weights.to(logits.device)
            members = logits if logits.dim() == 3 else logits.unsqueeze(0)

            def ce(m: Any, target: Any) -> Any:
                return torch.nn.functional.cross_entropy(m.float(), target, weight=weight, label_smoothing=self._label_smoothing)

            loss = torch.stack([ce(m, labels) if shuffled is None else lam * ce(m, labels) + (1 - lam) * ce(m, labels[shuffled])
                                for m in members]).mean()
            return (loss, (loss, members.mean(0))) if return_outputs else loss

    return Examples, Collator, ClassifierTrainer


def bagging_folds(labels: np.ndarray, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (train, validation) index pairs of a bagged run's k members over its pooled examples:
    stratified k-fold, shuffled with ``seed``. Baselines that should see the same rows use this."""
    from sklearn.model_selection import StratifiedKFold

    labels = np.asarray(labels)
    _, counts = np.unique(labels, return_counts=True)
    if counts.min() < k:
        raise ValueError(f"recipe field 'bagging' = {k}: every class needs at least {k} training examples "
                         f"(the smallest has {int(counts.min())})")
    return list(StratifiedKFold(k, shuffle=True, random_state=seed).split(np.zeros(len(labels)), labels))


def _class_weights(recipe: Recipe, labels: np.ndarray, label_map: LabelMap) -> list[float] | None:
    value = getattr(recipe, "class_weights", None)
    if value is None or value == "none":
        return None
    if value == "balanced":
        counts = np.bincount(labels, minlength=len(label_map)).astype(np.float64)
        present = counts > 0
        weights = np.ones(len(label_map))
        weights[present] = len(labels) / (present.sum() * counts[present])
        return weights.tolist()
    if isinstance(value, (list, tuple)):
        if len(value) != len(label_map):
            raise ValueError(f"recipe field 'class_weights': {len(value)} weights for {len(label_map)} classes")
        return [float(v) for v in value]
    raise ValueError(f"recipe field 'class_weights': expected 'balanced' or a list of {len(label_map)} numbers, got {value!r}")


def _best_metric(recipe: Recipe, task: SectorTask, num_labels: int) -> tuple[str, bool]:
    name = recipe.metric_for_best_model
    if name in _LOWER_IS_BETTER:
        return name, False
    if name in ("accuracy", "macro_f1"):
        return name, True
    if name == "auroc" and num_labels != 2:
        raise ValueError(f"recipe field 'metric_for_best_model': 'auroc' is binary-only, this task has {num_labels} classes")
    try:
        spec = get_registry().metric(name)
    except LookupError:
        raise ValueError(f"recipe field 'metric_for_best_model': unknown metric {name!r} "
                         "(use loss, accuracy, macro_f1, ece, auroc or a registered metric)") from None
    return name, spec.higher_is_better


def _extra_callbacks() -> list[Any]:
    """Additional Trainer callbacks (tests patch this to interrupt a run)."""
    return []


def _leave_process_group() -> None:
    """Under torchrun: wait until every rank has finished training, then tear the process group down.
    Rank 0 goes on alone to score, export and write the run; a rank that exits while gloo is still up
    can abort ("terminate called without an active exception") and fail the whole launch."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def _environment(device: str) -> dict[str, Any]:
    import torch

    versions = {}
    for name in ENV_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    info = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": device,
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "world_size": int(os.environ.get("WORLD_SIZE", "1")),
        "packages": versions,
    }
    return info


def _curve(log_history: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    train_rows, eval_rows = [], []
    for row in log_history:
        if "loss" in row:
            train_rows.append({"step": row.get("step"), "epoch": row.get("epoch"), "loss": row["loss"],
                               "learning_rate": row.get("learning_rate")})
        elif "eval_loss" in row:
            eval_rows.append({"step": row.get("step"), "epoch": row.get("epoch"),
                              **{k.removeprefix("eval_"): v for k, v in row.items()
                                 if k.startswith("eval_") and not k.endswith(("_runtime", "_per_second"))}})
    return {"train": train_rows, "eval": eval_rows}


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else ("—" if value is None else str(value))


def _model_card(info: dict[str, Any], task: SectorTask, sector: SectorSpec, metrics: dict[str, Any],
                decision: dict | None, counts: dict[str, int], label_map: LabelMap, *, rebuilt_from: Any) -> str:
    names = sorted({k for split in metrics.values() for k, v in split.items() if not isinstance(v, (dict, list))})
    splits = list(metrics)
    lines = [
        f"# {sector.title} — {task.name}",
        "",
        f"{task.description or sector.description or 'A fine-tuned classifier.'}",
        "",
        "## Model",
        f"- kind: {info['kind']}; model family `{info['model']}` from base `{info['base']}`"
        + ("" if info["pretrained"] else f"; random initialisation of `{rebuilt_from}` (recipe "
           "`pretrained = false`: no weights of the base are read)"),
        f"- licence of the base model: {info['licences']['model']}",
        f"- {len(label_map)} classes: {', '.join(label_map.names[:20])}{' …' if len(label_map) > 20 else ''}",
        f"- trained {info['created']} with bigmodel {info['bigmodel_version']}, seed {info['seed']}, recipe digest `{info['recipe_digest']}`",
        *([f"- bagged: {info['bagging']} members, each trained on {info['bagging'] - 1} of {info['bagging']} folds of the "
           "training and validation examples; their logits are averaged; validation metrics are out-of-fold"]
          if info.get("bagging", 1) > 1 else []),
        *([f"- deep ensemble: {info['ensemble']} members trained on the same examples from seeds {info['seed']}, "
           f"{info['seed'] + 1000}, …, each checkpoint chosen on validation; their logits are averaged"]
          if info.get("ensemble", 1) > 1 else []),
        *([f"- heterogeneous ensemble: {len(info['members'])} members trained on the same examples from seeds "
           f"{info['seed']}, {info['seed'] + 1000}, …, each with the run's recipe updated by its entry ("
           + "; ".join(json.dumps(e, sort_keys=True) if e else "as is" for e in info["members"])
           + "), each checkpoint chosen on validation; their logits are averaged"]
          if info.get("members") else []),
        *(["- logit adjustment: the logits are shifted by -log(class weight), so the scores reflect the training "
           "label frequencies rather than the class-weighted loss"] if info.get("logit_adjustment") else []),
        *([f"- weight averaging: the kept weights are an exponential moving average of the trained weights (decay "
           f"{info['ema_decay']} per optimizer step); evaluation and checkpoint choice used the average"]
          if info.get("ema_decay") else []),
        "",
        "## Data",
        f"- source: {info.get('dataset') or info.get('data_path')} (loader `{info.get('loader')}`)",
        f"- licence of the data: {info['licences']['data']}",
        "- examples: " + ", ".join(f"{k} {v}" for k, v in counts.items()),
        "",
        "## Metrics",
        "",
        "| metric | " + " | ".join(splits) + " |",
        "| --- | " + " | ".join("---" for _ in splits) + " |",
    ]
    for name in names:
        lines.append(f"| {name} | " + " | ".join(_fmt(metrics[s].get(name)) for s in splits) + " |")
    if decision:
        lines += ["", "## Operating point", f"Chosen on the validation split by `{decision['ref']}`:", "",
                  "```json", __import__("json").dumps(decision["params"], indent=2), "```"]
    lines += [
        "",
        "## Intended use",
        f"{sector.description or sector.title}: the `{task.name}` task, on inputs like the training data.",
        "",
        "## Limits",
        "- Measured only on the splits above; performance on other populations, languages, devices or time periods is unknown.",
        "- Probabilities are as calibrated as the ECE above says; check the reliability diagram before using scores as risks.",
        "- Trained on a subset of the data" if info.get("subsets") else "- Trained on the full training split.",
        "- A person stays responsible for decisions made with this model.",
        "",
    ]
    return "\n".join(lines)


# -- the command ----------------------------------------------------------------------------------


def train(
    sector: str | SectorSpec,
    *,
    task: str | None = None,
    data: str | os.PathLike | None = None,
    loader: str | None = None,
    base_model: str | None = None,
    recipe_file: str | os.PathLike | None = None,
    sets: Sequence[str] = (),
    preset: str | None = None,
    out: str | os.PathLike | None = None,
    seed: int = 42,
    resume: bool = False,
    quiet: bool = False,
    extend_labels: bool = False,
    overwrite: bool = False,
    loader_options: dict[str, Any] | None = None,
    labels: str | os.PathLike | LabelMap | None = None,
) -> Path:
    """Fine-tune and write a complete run directory; returns its path.

    ``labels`` replaces the task's label map with the user's own label set: a LabelMap, a JSON label
    map file, or a text file with one label name per line (ids in file order).

    ``loader_options`` go to the loader (over a declared dataset's own options), e.g. the
    ``target``/``numeric``/``categorical`` columns of a local tabular CSV.
    """
    from .data import load_splits, subset
    from .tasks.base import load_preprocessor, make_preprocessor, member_input, resolve_base

    p = plan(sector, task=task, data=data, loader=loader, base_model=base_model, recipe_file=recipe_file,
             sets=sets, preset=preset)
    recipe, task_spec = p.recipe, p.task
    out_dir = Path(out).expanduser() if out is not None else default_out(p.sector.name, task_spec.name)
    partial = partial_path(out_dir)
    # under torchrun every process runs this function; only rank 0 checks and writes the run
    # directory (the others load the same data, fit the same preprocessing and train their shard)
    main = int(os.environ.get("RANK", "0")) == 0
    quiet = quiet or not main
    bagging = int(getattr(recipe, "bagging", 1) or 1)
    ensemble = int(getattr(recipe, "ensemble", 1) or 1)
    members = recipe.member_recipes()
    for field, k in (("bagging", bagging), ("ensemble", ensemble), ("members", len(members))):
        if k > 1 and resume:
            raise RunError(f"--resume: a run with recipe {field} = {k} cannot resume; start again with --overwrite")
        if k > 1 and int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise RunError(f"recipe field '{field}' > 1 trains its members one after another; run it without torchrun")
    if main and out_dir.exists() and not overwrite:
        raise RunError(f"{out_dir} already exists; pass --overwrite to replace it or --out to choose another directory")
    if main and partial.exists() and not resume:
        if not overwrite:
            raise RunError(f"{partial} holds an interrupted run: pass --resume to continue it or --overwrite to start again")
        shutil.rmtree(partial)
    if resume and not partial.exists():
        raise RunError(f"--resume: no interrupted run at {partial}")
    say = _Say(quiet)

    # data
    source: Any = p.dataset if p.dataset is not None else p.data_path
    if p.data_path is not None and p.loader is None:
        from .data import guess_loader

        p.loader = guess_loader(p.data_path, task=task_spec.kind)
    say(f"loading data from {p.dataset.key if p.dataset else p.data_path}")
    splits, label_map = load_splits(
        source, label_map=read_labels(labels) if labels is not None else task_spec.label_map, loader=p.loader,
        options=loader_options, task=task_spec.kind, extend_labels=extend_labels,
        seed=seed, validation_fraction=recipe.validation_fraction, progress=not quiet,
    )
    if "train" not in splits:
        raise ValueError(f"{source}: no training split")
    splits["train"] = subset(splits["train"], recipe.train_subset, seed)
    for name in ("validation", "test"):
        if name in splits:
            splits[name] = subset(splits[name], recipe.eval_subset, seed)
    if len(label_map) < 2:
        raise ValueError("a classifier needs at least two classes")
    pool, folds = None, []
    if bagging > 1:
        from .data import join_splits

        pool = join_splits([splits["train"], splits["validation"]])
        folds = bagging_folds(pool.labels, bagging, seed)
    recipe_record = {"class": callable_ref(type(recipe)), "values": recipe.model_dump(mode="json"), "digest": recipe.digest()}
    resolved_base = resolve_base(p.base) if p.base is not None else None
    preprocessor, member_pres, member_specs = None, [], []
    if members:  # each member's own preprocessing, checked against the shared one before anything is written
        preprocessor = make_preprocessor(task_spec.kind, base=resolved_base, recipe=recipe, label_map=label_map)
        preprocessor.fit(splits["train"])  # (members take no bagging pool and no --resume)
        for m, member_recipe in enumerate(members):
            member_pre = make_preprocessor(task_spec.kind, base=resolved_base, recipe=member_recipe, label_map=label_map)
            member_pre.fit(splits["train"])
            member_pres.append(member_pre)
            member_specs.append(member_pre.spec())
            member_input(None, preprocessor.spec(), member_specs[-1], member=m)

    if main:
        partial.mkdir(parents=True, exist_ok=True)
    if resume:
        saved = read_json(partial / "recipe.json")
        if saved.get("digest") != recipe_record["digest"]:
            raise RunError(f"--resume: {partial / 'recipe.json'} has recipe digest {saved.get('digest')}, "
                           f"this command resolves to {recipe_record['digest']}; use the same recipe, preset and --set values")
        saved_map = LabelMap.load(partial / "label_map.json")
        if saved_map != label_map:
            raise RunError(f"--resume: the label map differs from {partial / 'label_map.json'}")
        saved_info = read_json(partial / "run.json")
        if saved_info.get("seed") != seed:
            raise RunError(f"--resume: the interrupted run used --seed {saved_info.get('seed')}, not {seed}")
    if main:
        label_map.save(partial / "label_map.json")
        write_json(partial / "recipe.json", recipe_record)

    info: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "sector": p.sector.name,
        "task": task_spec.name,
        "kind": task_spec.kind,
        "model": p.model.name,
        "builder": callable_ref(p.model.builder),
        "base": p.base,
        "dataset": p.dataset.key if p.dataset else None,
        "data_path": str(p.data_path.resolve()) if p.data_path else None,
        "loader": p.loader or (p.dataset.loader if p.dataset else None),
        "loader_options": {**(p.dataset.loader_options if p.dataset else {}), **(loader_options or {})},
        "seed": seed,
        "preset": preset,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "bigmodel_version": __version__,
        "licences": {"model": p.model.licence,
                     "data": p.dataset.licence if p.dataset else f"unknown (local data {p.data_path})"},
        "recipe_digest": recipe_record["digest"],
        "metrics": list(task_spec.metrics),
        "decision": callable_ref(task_spec.decision) if task_spec.decision is not None else None,
        "report": callable_ref(task_spec.report) if task_spec.report is not None else None,
        # a bagged run's validation predictions are out-of-fold over the pooled train + validation examples
        "counts": ({k: len(v) for k, v in splits.items()} if pool is None else
                   {k: len(pool) if k in ("train", "validation") else len(v) for k, v in splits.items()}),
        "bagging": bagging,
        "ensemble": ensemble,
        "members": list(recipe.members),
        "pretrained": any(bool(getattr(r, "pretrained", True)) for r in members or [recipe]),
        "logit_adjustment": bool(getattr(recipe, "logit_adjustment", False)),
        "ema_decay": recipe.ema_decay,
        "subsets": bool(recipe.train_subset or recipe.eval_subset),
        "status": "training",
    }
    if main:
        write_json(partial / "run.json", info)

    # preprocessing and model
    import torch
    import transformers
    from transformers import EarlyStoppingCallback, TrainingArguments, set_seed
    from transformers.trainer_utils import get_last_checkpoint

    set_seed(seed)
    pre_dir = partial / "preprocess"
    if resume and (pre_dir / "preprocess.json").is_file():
        preprocessor = load_preprocessor(pre_dir)
    else:
        if preprocessor is None:
            preprocessor = make_preprocessor(task_spec.kind, base=resolved_base, recipe=recipe, label_map=label_map)
            preprocessor.fit(splits["train"] if pool is None else pool)
        if main:
            preprocessor.save(pre_dir)
    for m, pre in [(0, preprocessor), *enumerate(member_pres)]:
        if hasattr(pre, "rng"):  # member m's augmentation from seed + 1000 m, as its weights
            pre.rng = np.random.default_rng(seed + 1000 * m)
    spec = preprocessor.spec()
    builder = resolve_callable(p.model.builder)
    cuda = torch.cuda.is_available()
    if any(r.mixed_precision == "fp16" for r in [recipe, *members]) and not cuda:
        raise ValueError("recipe field 'mixed_precision': 'fp16' needs a CUDA GPU; use 'no' or 'bf16' on CPU")
    metric_name, greater = _best_metric(recipe, task_spec, len(label_map))
    strategy = recipe.eval_strategy
    Examples, Collator, ClassifierTrainer = _torch_parts()

    def compute(eval_pred: Any) -> dict[str, float]:
        from .metrics import compute_metrics, softmax

        logits = eval_pred.predictions[0] if isinstance(eval_pred.predictions, tuple) else eval_pred.predictions
        names = [metric_name] if metric_name not in _LOWER_IS_BETTER | {"accuracy", "macro_f1", "auroc"} else []
        values = compute_metrics(eval_pred.label_ids, softmax(logits), label_map, kind=task_spec.kind, names=names,
                                 context={"decision": None, "recipe": recipe, "split": "validation",
                                          "task": task_spec.name, "kind": task_spec.kind})
        return {k: (float("nan") if v is None else float(v)) for k, v in values.items()
                if isinstance(v, (int, float)) or v is None}

    def fit(part: dict[str, Any], member_seed: int, checkpoints: Path, checkpoint: str | None = None,
            member: int | None = None) -> Any:
        """Build the model and train it on ``part["train"]`` (early stopping on ``part["validation"]``);
        ``member`` m of a heterogeneous ensemble with ``members[m]``'s recipe on the shared input."""
        recipe_ = recipe if member is None else members[member]
        verbosity = transformers.logging.get_verbosity()
        bars = transformers.utils.logging.is_progress_bar_enabled()
        if quiet:
            transformers.logging.set_verbosity_error()
            transformers.utils.logging.disable_progress_bar()  # "Loading weights" bars
        try:
            set_seed(member_seed)
            model = builder(label_map=label_map, recipe=recipe_, base=resolved_base,
                            preprocess=spec if member is None else member_specs[member],
                            pretrained=bool(getattr(recipe_, "pretrained", True)))
        finally:
            transformers.logging.set_verbosity(verbosity)
            if bars:
                transformers.utils.logging.enable_progress_bar()
        args = TrainingArguments(
            output_dir=str(checkpoints),
            per_device_train_batch_size=recipe_.batch_size,
            per_device_eval_batch_size=recipe_.eval_batch_size,
            num_train_epochs=float(recipe_.epochs),
            max_steps=recipe_.max_steps,
            learning_rate=recipe_.learning_rate,
            weight_decay=recipe_.weight_decay,
            warmup_steps=float(recipe_.warmup_ratio) if recipe_.warmup_ratio else 0,
            # "multistep" is built by ClassifierTrainer.create_scheduler; transformers only validates the name
            lr_scheduler_type="constant" if recipe_.lr_scheduler == "multistep" else recipe_.lr_scheduler,
            gradient_accumulation_steps=recipe_.gradient_accumulation_steps,
            fp16=recipe_.mixed_precision == "fp16",
            bf16=recipe_.mixed_precision == "bf16",
            eval_strategy=strategy,
            eval_steps=recipe_.eval_steps if strategy == "steps" else None,
            save_strategy=strategy,
            save_steps=recipe_.eval_steps if strategy == "steps" else None,
            save_total_limit=2,
            logging_strategy="steps",
            logging_steps=max(1, min(50, recipe_.eval_steps)),
            logging_first_step=True,
            load_best_model_at_end=True,
            metric_for_best_model=metric_name,
            greater_is_better=greater,
            seed=member_seed,
            data_seed=member_seed,
            disable_tqdm=quiet,
            log_level="error" if quiet else "warning",
            report_to="none",
            use_cpu=not cuda,
            remove_unused_columns=False,
            label_names=["labels"],
            dataloader_num_workers=0,
        )
        callbacks = []
        if recipe_.ema_decay:  # first: its checkpoint file is written before any other callback sees on_save
            from .averaging import WeightAverage

            callbacks.append(WeightAverage(recipe_.ema_decay))
        callbacks += _extra_callbacks()
        if recipe_.early_stopping_patience > 0:
            callbacks.append(EarlyStoppingCallback(early_stopping_patience=recipe_.early_stopping_patience))
        trainer = ClassifierTrainer(
            model=model,
            args=args,
            # a member of a heterogeneous ensemble trains and chooses its checkpoint on its own preprocessing
            data_collator=Collator(preprocessor if member is None else member_pres[member], part),
            train_dataset=Examples("train", len(part["train"])),
            eval_dataset=Examples("validation", len(part["validation"])),
            compute_metrics=compute,
            callbacks=callbacks,
            class_weights=_class_weights(recipe_, part["train"].labels, label_map),
            label_smoothing=recipe_.label_smoothing,
            mixup_alpha=recipe_.mixup_alpha,
            multistep=recipe_.lr_scheduler == "multistep",
        )
        if quiet:
            from transformers.trainer_callback import PrinterCallback

            trainer.remove_callback(PrinterCallback)  # it prints log dicts even with disable_tqdm
        trainer.train(resume_from_checkpoint=checkpoint)
        return trainer

    from .evaluate import predict_proba, split_metrics, write_charts
    from .tasks.base import logit_offset, mean_ensemble

    def served(trainer: Any, part: dict[str, Any], recipe_: Any = recipe) -> Any:
        """The trained model as the run keeps it: with ``logit_adjustment``, its logits minus the log of
        the class weights it trained with."""
        if not getattr(recipe_, "logit_adjustment", False):
            return trainer.model
        return logit_offset(trainer.model, -np.log(_class_weights(recipe_, part["train"].labels, label_map)))

    probas: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if members:
        trainers = []
        for m, entry in enumerate(recipe.members):
            say(f"training {p.model.name} ({task_spec.kind}), member {m + 1}/{len(members)} (seed {seed + 1000 * m}, "
                f"recipe {json.dumps(entry, sort_keys=True) if entry else 'as the run'}) on {len(splits['train'])} "
                f"examples, device {'cuda' if cuda else 'cpu'}")
            trainers.append(fit(splits, seed + 1000 * m, partial / "checkpoints" / f"member-{m}", member=m))
        model = mean_ensemble([member_input(served(t, splits, r), spec, member_specs[m], member=m)
                               for m, (t, r) in enumerate(zip(trainers, members))])
    elif ensemble > 1:
        trainers = []
        for m in range(ensemble):
            say(f"training {p.model.name} ({task_spec.kind}), ensemble member {m + 1}/{ensemble} (seed {seed + 1000 * m}) "
                f"on {len(splits['train'])} examples, device {'cuda' if cuda else 'cpu'}")
            trainers.append(fit(splits, seed + 1000 * m, partial / "checkpoints" / f"member-{m}"))
        model = mean_ensemble([served(t, splits) for t in trainers])
    elif pool is None:
        checkpoint = None
        if resume:
            checkpoint = get_last_checkpoint(str(partial / "checkpoints")) if (partial / "checkpoints").is_dir() else None
            if checkpoint is None:
                raise RunError(f"--resume: {partial / 'checkpoints'} holds no checkpoint; start again with --overwrite")
            say(f"resuming from {checkpoint}")
        say(f"training {p.model.name} ({task_spec.kind}) on {len(splits['train'])} examples, "
            f"{len(label_map)} classes, device {'cuda' if cuda else 'cpu'}")
        trainer = fit(splits, seed, partial / "checkpoints", checkpoint)
        zero = trainer.is_world_process_zero()
        _leave_process_group()
        if not zero:
            return out_dir
        model = served(trainer, splits)
        trainers = [trainer]
    else:
        out_of_fold = np.zeros((len(pool), len(label_map)))
        trainers, bagged = [], []
        for m, (train_idx, val_idx) in enumerate(folds):
            say(f"training {p.model.name} ({task_spec.kind}), bagging member {m + 1}/{bagging}: {len(train_idx)} "
                f"examples, early stopping on {len(val_idx)}, device {'cuda' if cuda else 'cpu'}")
            part = {"train": pool.take(train_idx), "validation": pool.take(val_idx)}
            trainer = fit(part, seed + m, partial / "checkpoints" / f"member-{m}")
            bagged.append(served(trainer, part))
            out_of_fold[val_idx] = predict_proba(bagged[-1], preprocessor, part["validation"].inputs,
                                                 batch_size=recipe.eval_batch_size, device=str(trainer.args.device))
            trainers.append(trainer)
        model = mean_ensemble(bagged)
        splits["validation"] = pool  # scored out of fold
        probas["validation"] = (pool.labels, out_of_fold)
        save_predictions(partial, "validation", pool.labels, out_of_fold)
    device = str(trainers[0].args.device)

    # predictions, decision, metrics
    for name in ("validation", "test"):
        if name in splits and name not in probas:
            proba = predict_proba(model, preprocessor, splits[name].inputs, batch_size=recipe.eval_batch_size, device=device)
            probas[name] = (splits[name].labels, proba)
            save_predictions(partial, name, splits[name].labels, proba)
    decision = None
    if task_spec.decision is not None:
        obj = resolve_callable(task_spec.decision)
        params = obj.fit(probas["validation"][0], probas["validation"][1], label_map, recipe)
        decision = {"ref": callable_ref(task_spec.decision), "params": params}
        write_json(partial / "decision.json", decision)
    metrics = {
        name: split_metrics(labels, proba, label_map=label_map, kind=task_spec.kind, metric_names=list(task_spec.metrics),
                            decision=decision, recipe=recipe, split=name, task=task_spec.name)
        for name, (labels, proba) in probas.items()
    }
    write_json(partial / "metrics.json", metrics)
    for name, (labels, proba) in probas.items():
        write_charts(partial, name, labels, proba, label_map.names)

    # weights and how to rebuild them
    from safetensors.torch import save_model

    model.to("cpu")

    def rebuild_from(module: Any, directory: Path) -> tuple[Any, bool]:
        """``(base to rebuild module from with pretrained=False, whether that base is a path in the run)``."""
        if not hasattr(module, "save_config"):
            return resolved_base, False
        rebuilt = module.save_config(directory)
        return rebuilt, (partial / str(rebuilt)).exists()

    rebuild_base, in_run = rebuild_from(model, partial / "model_config")
    member_info = []
    for m, member_model in enumerate(model.members if members else []):
        # each member rebuilds from its own base (its architecture) and preprocessing spec
        member_base, member_in_run = rebuild_from(member_model, partial / "model_config" / f"member-{m}")
        member_info.append({"rebuild_base": member_base, "rebuild_base_in_run": member_in_run,
                            "preprocess": member_specs[m],
                            "logit_adjustment": bool(getattr(members[m], "logit_adjustment", False))})
    save_model(model, str(partial / "model.safetensors"))
    write_json(partial / "model.json", {
        "model": p.model.name,
        "builder": callable_ref(p.model.builder),
        "base": p.base,
        "resolved_base": resolved_base,
        "rebuild_base": rebuild_base,
        "rebuild_base_in_run": in_run,
        "pretrained": False,
        "input_names": list(spec["input_names"]),
        "output_names": ["logits"],
        "num_labels": len(label_map),
        "parameters": int(sum(t.numel() for t in model.parameters())),
        "export_atol": dict(p.model.export_atol),
        "bagging": bagging,
        "ensemble": ensemble,
        "members": member_info,
        "logit_adjustment": bool(getattr(recipe, "logit_adjustment", False)),
    })

    curve = _curve(trainers[0].state.log_history)  # an ensemble or bagged run: the first member's curve
    curve["best_metric"] = trainers[0].state.best_metric
    curve["best_checkpoint"] = trainers[0].state.best_model_checkpoint and Path(trainers[0].state.best_model_checkpoint).name
    curve["metric"] = metric_name
    if len(trainers) > 1:
        curve["members"] = [{"best_metric": t.state.best_metric, "global_step": int(t.state.global_step)} for t in trainers]
    write_json(partial / "training_curve.json", curve)
    from .charts import training_curve_png

    training_curve_png(partial / "training_curve.png", curve, metric=metric_name)
    write_json(partial / "environment.json", _environment(device))
    held_split = "test" if "test" in splits else "validation"
    save_heldout(partial / "heldout", task_spec.kind, splits[held_split], split_name=held_split, seed=seed)

    info.update(status="complete", finished=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                global_step=sum(int(t.state.global_step) for t in trainers), labels=len(label_map))
    atomic_write_text(partial / "README.md",
                      _model_card(info, task_spec, p.sector, metrics, decision, info["counts"], label_map,
                                  rebuilt_from=rebuild_base))
    write_json(partial / "run.json", info)
    if (partial / "checkpoints").exists():
        shutil.rmtree(partial / "checkpoints")  # optimizer states are not part of a finished run
    final = finalize(partial, out_dir, overwrite=overwrite)
    say(f"run written to {final}")
    if task_spec.report is not None:
        run_report(final, callable_ref(task_spec.report))
    for name, values in metrics.items():
        say(f"  {name}: " + ", ".join(f"{k} {_fmt(v)}" for k, v in values.items() if isinstance(v, float)))
    return final


def read_labels(labels: str | os.PathLike | LabelMap) -> LabelMap:
    """A user-given label set: a LabelMap, a JSON label map file, or one label name per line."""
    if isinstance(labels, LabelMap):
        return labels
    path = Path(labels)
    if not path.is_file():
        raise FileNotFoundError(f"--labels {path}: no such file")
    if path.suffix == ".json":
        return LabelMap.load(path)
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    from pydantic import ValidationError

    try:
        return LabelMap.from_names(names)
    except ValidationError as exc:
        raise ValueError(f"--labels {path}: {exc.errors()[0]['msg'].removeprefix('Value error, ')}") from None


def run_report(run_dir: Path, ref: str) -> None:
    """Call the sector's report on a finished run; a failure names the run and how to retry."""
    try:
        resolve_callable(ref)(run_dir)
    except Exception as exc:
        raise RunError(f"{run_dir}: the run is complete but the sector report {ref} failed "
                           f"({type(exc).__name__}: {exc}); retry with `bigmodel evaluate {run_dir}`") from exc


class _Say:
    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def __call__(self, message: str) -> None:
        if not self.quiet:
            from rich.console import Console

            Console(stderr=True).print(message, highlight=False, markup=False)
