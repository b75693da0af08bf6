"""Training evaluator: the config's network trained from scratch for a fixed number of steps, scored by
top-1 accuracy on the validation split (carved from the training images; the test split is only reported).

SGD with Nesterov momentum, a cosine schedule over ``steps``, label smoothing, no weight decay on BN,
biases and depthwise weights; CUDA with AMP when available, else CPU (channels_last). Every random
choice of step ``s`` (batch order, augmentation, dropout) is derived from (seed, s), so a run stopped
at a checkpoint and continued gives exactly the run made in one go: successive halving raises the
fidelity of the survivors in rungs without retraining them from zero.
"""

from __future__ import annotations

import io
import math
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nas._errors import ArgumentError, NasError
from nas._files import write_bytes_atomic
from nas.config import ArchConfig
from nas.data import Dataset, load_dataset
from nas.evaluate._base import Evaluator, Score, adapt
from nas.model import build_model, load_weights


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay, no_decay = [], []
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            depthwise = isinstance(module, nn.Conv2d) and module.groups > 1
            if isinstance(module, nn.BatchNorm2d) or name == "bias" or depthwise:
                no_decay.append(param)
            else:
                decay.append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


class TrainEvaluator(Evaluator):
    name = "train"
    kind = "accuracy"
    unit = "validation top-1"

    def __init__(
        self,
        *,
        data: str | Dataset = "digits",
        resolution: int = 32,
        steps: int = 300,
        batch_size: int = 64,
        lr: float = 0.1,
        momentum: float = 0.9,
        weight_decay: float = 4e-5,
        label_smoothing: float = 0.1,
        seed: int = 0,
        device: str | None = None,
        progress: bool = False,
    ) -> None:
        for parameter, value in (("steps", steps), ("batch_size", batch_size), ("resolution", resolution)):
            if value < 1:
                raise ArgumentError(parameter, str(value), "use 1 or more")
        self.data = load_dataset(data) if isinstance(data, str) else data
        self.resolution, self.steps, self.batch_size = resolution, steps, batch_size
        self.lr, self.momentum, self.weight_decay, self.label_smoothing = lr, momentum, weight_decay, label_smoothing
        self.seed = seed
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.progress = progress

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "data": self.data.name,
            "resolution": self.resolution,
            "steps": self.steps,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "momentum": self.momentum,
            "weight_decay": self.weight_decay,
            "label_smoothing": self.label_smoothing,
            "seed": self.seed,
        }

    def build(self, config: ArchConfig) -> nn.Module:
        torch.manual_seed(self.seed)
        model = build_model(adapt(config, resolution=self.resolution, num_classes=self.data.num_classes))
        return model.to(self.device, memory_format=torch.channels_last)

    def steps_for(self, epochs: float) -> int:
        """Training steps that make ``epochs`` passes over the training split (at least one)."""
        return max(1, round(epochs * len(self.data.indices("train")) / self.batch_size))

    def step_batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch of step ``step``: a function of (seed, step) alone."""
        train = self.data.indices("train")
        per_epoch = max(1, len(train) // self.batch_size)
        epoch, offset = divmod(step, per_epoch)
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(self.seed * 100_003 + epoch))
        index = train[order[offset * self.batch_size : (offset + 1) * self.batch_size]]
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        return self.data.batch(index, self.resolution, augment=True, generator=generator)

    def train(
        self, config: ArchConfig, *, until: int | None = None, checkpoint: Path | None = None, init: Path | None = None
    ) -> nn.Module:
        """Train to step ``until`` (default: all steps), resuming from ``checkpoint`` when it exists, else
        starting from the weights file ``init`` when given (e.g. inherited from a supernet)."""
        until = self.steps if until is None else min(until, self.steps)
        model = self.build(config)
        optimizer = torch.optim.SGD(
            _param_groups(model, self.weight_decay), lr=self.lr, momentum=self.momentum, nesterov=True
        )
        step = 0
        if checkpoint is not None and checkpoint.exists():
            try:
                state = torch.load(checkpoint, map_location=self.device, weights_only=True)
                model.load_state_dict(state["model"])
                optimizer.load_state_dict(state["optimizer"])
                step = int(state["step"])
            except Exception as exc:  # torch raises many types for a corrupt or foreign file
                raise NasError(
                    f"{checkpoint}: not a training checkpoint of this config ({type(exc).__name__});"
                    " delete it to train this trial from the start"
                ) from None
        elif init is not None:  # a resumed run has these weights, trained on, in its checkpoint
            load_weights(model, init)
        self._run(model, optimizer, step, until, self.steps, self.lr, config.name or "config")
        if checkpoint is not None:
            buffer = io.BytesIO()
            torch.save({"step": until, "model": model.state_dict(), "optimizer": optimizer.state_dict()}, buffer)
            write_bytes_atomic(checkpoint, buffer.getvalue())
        return model

    def _run(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        start: int,
        until: int,
        horizon: int,
        lr: float,
        label: str,
    ) -> None:
        """Steps ``start`` to ``until`` of a cosine schedule over ``horizon`` steps peaking at ``lr``."""
        use_amp = self.device.type == "cuda"
        scaler = torch.amp.GradScaler(enabled=use_amp)
        model.train()
        steps = range(start, until)
        if self.progress:
            from tqdm import tqdm

            steps = tqdm(steps, desc=f"training {label}", unit="step", leave=False)
        for s in steps:
            for group in optimizer.param_groups:
                group["lr"] = 0.5 * lr * (1 + math.cos(math.pi * s / horizon))
            x, y = self.step_batch(s)
            x = x.to(self.device, memory_format=torch.channels_last)
            y = y.to(self.device)
            torch.manual_seed(self.seed * 7_919 + s)  # dropout of this step
            with torch.autocast(self.device.type, enabled=use_amp):
                loss = F.cross_entropy(model(x), y, label_smoothing=self.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()

    def finetune(self, model: nn.Module, steps: int, *, lr: float | None = None, label: str = "fine-tune") -> nn.Module:
        """Continue training an existing (e.g. pruned) network for ``steps`` steps, a fresh cosine schedule."""
        model.to(self.device, memory_format=torch.channels_last)
        optimizer = torch.optim.SGD(
            _param_groups(model, self.weight_decay), lr=lr or self.lr / 10, momentum=self.momentum, nesterov=True
        )
        self._run(model, optimizer, 0, steps, max(steps, 1), lr or self.lr / 10, label)
        return model

    def recalibrate(self, model: nn.Module, batches: int = 8) -> None:
        """Re-estimate BN statistics on training images: after a short run, running averages with
        MobileNetV3's momentum (0.01) are still near their initial values."""
        bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None  # cumulative average over the batches below
        model.train()
        with torch.no_grad():
            for i in range(batches):
                x, _ = self.step_batch(i)
                model(x.to(self.device, memory_format=torch.channels_last))
        for bn in bns:
            bn.momentum = 0.01

    def accuracy(
        self, model: nn.Module, split: str = "validation", *, batches: int = 8, images: int | None = None
    ) -> float:
        """Top-1 on ``split`` (never trained on; its first ``images`` when given), after BN recalibration on
        ``batches`` training batches. Anything that selects scores on validation; ``test`` is for numbers
        that are only reported."""
        self.recalibrate(model, batches)
        model.eval()
        correct = total = 0
        with torch.no_grad():
            for x, y in self.data.batches(split, 256, self.resolution, limit=images):
                logits = model(x.to(self.device, memory_format=torch.channels_last))
                correct += int((logits.argmax(1).cpu() == y).sum())
                total += len(y)
        return correct / total

    def score(self, config: ArchConfig, *, steps: int | None = None, checkpoint: Path | None = None) -> Score:
        start = time.perf_counter()
        model = self.train(config, until=steps, checkpoint=checkpoint)
        done = self.steps if steps is None else min(steps, self.steps)
        fidelity = (
            f"trained {done}/{self.steps} steps at {self.resolution}px, scored on {self.data.describe('validation')}"
        )
        return Score(
            self.accuracy(model),
            self.kind,
            fidelity,
            time.perf_counter() - start,
            {**self.describe(), "trained_steps": done},
        )
