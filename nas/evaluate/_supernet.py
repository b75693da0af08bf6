"""Scores inherited from a trained supernet (``python -m nas.supernet train``): a config takes its weights
from the supernet, optionally trains a few steps on its own (``finetune_steps``), has its BN statistics
recalibrated on training batches (the supernet's running averages mix every subnet's), and is scored on
the validation split. Seconds per config instead of the minutes of training it from scratch; how well
these scores rank networks is measured in bench/RESULTS.md (supernet sections)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from nas._errors import ArgumentError
from nas.config import ArchConfig
from nas.data import BUILTIN, Dataset
from nas.evaluate._base import Evaluator, Score
from nas.evaluate._train import TrainEvaluator
from nas.model import load_supernet


class SupernetEvaluator(Evaluator):
    name = "supernet"
    kind = "accuracy"
    unit = "validation top-1 (inherited from the supernet)"
    data_default = None  # the supernet's own data

    def __init__(
        self,
        *,
        supernet: str | os.PathLike[str],
        data: str | Dataset | None = None,
        seed: int = 0,
        calibration_batches: int = 32,  # 8 ranked worse: bench/supernet_calibration.py
        finetune_steps: int = 0,
        images: int = 2000,
        device: str | None = None,
    ) -> None:
        if calibration_batches < 1:  # checked before the supernet file is read
            raise ArgumentError("calibration_batches", str(calibration_batches), "use 1 or more")
        if finetune_steps < 0:
            raise ArgumentError("finetune_steps", str(finetune_steps), "use 0 (none) or more")
        self.path = Path(supernet)
        self.supernet, self.record = load_supernet(self.path)
        recipe = self.record["recipe"]
        self.data_name = recipe["data"]
        self.seed, self.calibration_batches, self.images = seed, calibration_batches, images
        self.finetune_steps = finetune_steps
        if data in BUILTIN and data != self.data_name:  # refused before loading it (it may not be installed)
            raise self._other_data(str(data))
        self.trainer = TrainEvaluator(
            data=data if data is not None else self.data_name,
            resolution=self.supernet.resolution,
            batch_size=int(recipe["batch_size"]),
            seed=seed,
            device=device,
        )
        if self.trainer.data.name != self.data_name:  # its classifier and BN statistics are that data's
            raise self._other_data(self.trainer.data.name)
        self.supernet.to(self.trainer.device)
        scored = min(images, len(self.trainer.data.indices("validation")))
        parts = f"{len(self.record['parts'])} few-shot parts x " if "parts" in self.record else ""
        self.fidelity = (
            f"inherited from supernet {self.path.name} ({parts}{self.record.get('step')} steps on {self.data_name} at"
            f" {self.supernet.resolution}px),"
            + (f" fine-tuned {finetune_steps} steps," if finetune_steps else "")
            + f" BN recalibrated on {calibration_batches} training batches,"
            f" scored on the first {scored} images of the {self.trainer.data.describe('validation')}"
        )

    def _other_data(self, name: str) -> ArgumentError:
        return ArgumentError(
            "data",
            name,
            f"supernet {self.path} was trained on {self.data_name}; score on that (leave the data out)"
            f" or train a supernet on {name}",
        )

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "supernet": str(self.path.resolve()),
            "supernet_steps": self.record.get("step"),
            "supernet_recipe": self.record["recipe"],
            "data": self.trainer.data.name,
            "calibration_batches": self.calibration_batches,
            "finetune_steps": self.finetune_steps,
            "images": self.images,
            "seed": self.seed,
        }

    def score(self, config: ArchConfig) -> Score:
        start = time.perf_counter()
        network = self.supernet.extract(config).to(self.trainer.device)
        if self.finetune_steps:  # the shared weights are a compromise between subnets; a few steps adapt them
            self.trainer.finetune(network, self.finetune_steps, label=config.name or "config")
        value = self.trainer.accuracy(network, batches=self.calibration_batches, images=self.images)
        return Score(value, self.kind, self.fidelity, time.perf_counter() - start, self.describe())
