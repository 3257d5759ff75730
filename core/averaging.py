"""Recipe ``ema_decay``: train on the raw weights, evaluate, checkpoint and keep their moving average.

``WeightAverage`` is a transformers ``TrainerCallback`` around torch's ``AveragedModel`` (EMA, buffers
included, updated after every optimizer step). Before each evaluation or checkpoint it swaps the average
into the model, so the Trainer scores it, saves it and, with ``load_best_model_at_end``, keeps the best
average; right after, the raw weights come back and training goes on from them. Each checkpoint also holds
the raw weights and the average's step count in ``weight_average.safetensors``, so ``--resume`` continues
both. Imported only when training (it imports torch).
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from transformers import TrainerCallback

from .runs import RunError, _atomic_file

__all__ = ["RAW_FILE", "WeightAverage"]

RAW_FILE = "weight_average.safetensors"


class WeightAverage(TrainerCallback):
    """Exponential moving average of the weights with ``decay`` per optimizer step (first step: a copy)."""

    def __init__(self, decay: float) -> None:
        self.decay = decay  # the recipe validated it: 0 < decay < 1
        self.average: AveragedModel | None = None
        self.raw: dict[str, torch.Tensor] | None = None  # the raw weights while the average is swapped in

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.average = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(self.decay), use_buffers=True)
        if state.global_step > 0:  # resumed: the model holds the checkpoint's average
            path = _raw_path(args, state)
            if not path.is_file():
                raise RunError(f"--resume: {path} is missing; this checkpoint was saved without recipe ema_decay")
            saved = load_file(str(path))
            self.average.n_averaged.fill_(int(saved.pop("n_averaged")))
            model.load_state_dict(saved)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        self.average.update_parameters(model)
        self._swap_in(control, model)

    def on_epoch_end(self, args, state, control, model=None, **kwargs):
        self._swap_in(control, model)

    def on_evaluate(self, args, state, control, model=None, **kwargs):
        if not control.should_save:  # a checkpoint follows otherwise; it must hold the average too
            self._swap_out(model)

    def on_save(self, args, state, control, model=None, **kwargs):
        if self.raw is not None:
            tensors = {k: v.cpu().contiguous() for k, v in self.raw.items()}
            tensors["n_averaged"] = self.average.n_averaged.detach().cpu().reshape(1)
            _atomic_file(_raw_path(args, state), lambda tmp: save_file(tensors, tmp))
        self._swap_out(model)

    def _swap_in(self, control, model) -> None:
        if self.raw is None and (control.should_evaluate or control.should_save):
            self.raw = {k: v.detach().clone() for k, v in model.state_dict().items()}
            model.load_state_dict(self.average.module.state_dict())

    def _swap_out(self, model) -> None:
        if self.raw is not None:
            model.load_state_dict(self.raw)
            self.raw = None


def _raw_path(args, state) -> Path:
    """The raw-weights file inside the checkpoint of the current step."""
    return Path(args.output_dir) / f"checkpoint-{state.global_step}" / RAW_FILE
