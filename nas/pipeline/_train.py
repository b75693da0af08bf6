"""The pipeline's last training: a config trained with one fixed recipe per seed, from scratch or (on a
supernet) from inherited weights, so the found network and the references it is compared with are trained
identically. Checkpointed in chunks; a rerun resumes the chunk it was in and reuses finished seeds."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

import torch

from nas._files import write_text_atomic
from nas.config import ArchConfig
from nas.data import Dataset, load_dataset
from nas.evaluate import TrainEvaluator
from nas.model import Network, build_model

logger = logging.getLogger(__name__)

CHUNK = 100  # steps between checkpoints


@dataclass(frozen=True)
class Recipe:
    """Everything that decides a training run except the seed."""

    data: str = "digits"
    resolution: int = 32
    epochs: float = 10
    supernet: str | None = None  # every network starts from weights inherited from this supernet file

    @property
    def start(self) -> str:
        """Where training starts, as the report says it."""
        return "from scratch" if self.supernet is None else f"from weights inherited from supernet {self.supernet}"

    @cached_property
    def dataset(self) -> Dataset:
        """Loaded once per recipe: every seed and every reference trains on it."""
        return load_dataset(self.data)

    def trainer(self, seed: int) -> TrainEvaluator:
        steps = TrainEvaluator(data=self.dataset, resolution=self.resolution).steps_for(self.epochs)
        return TrainEvaluator(data=self.dataset, resolution=self.resolution, steps=steps, seed=seed)


def train_seed(config: ArchConfig, recipe: Recipe, seed: int, folder: Path, *, init: Path | None = None) -> float:
    """Test top-1 of ``config`` trained with ``recipe`` and ``seed`` (only reported: nothing selects on it),
    starting from the weights file ``init`` when given; results and checkpoints in ``folder``."""
    result, checkpoint = folder / f"seed{seed}.json", folder / f"seed{seed}.pt"
    trainer = recipe.trainer(seed)
    what = {
        "config": json.loads(json.dumps(config.to_dict())),
        "recipe": trainer.describe(),
        "start": recipe.start,
        "split": "test",
    }
    if result.exists():
        record = json.loads(result.read_text())
        if {key: record.get(key) for key in what} == what:
            return float(record["accuracy"])
        result.unlink()  # another network or recipe: its results and checkpoint do not carry over
        checkpoint.unlink(missing_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    for until in range(CHUNK, trainer.steps + CHUNK, CHUNK):
        model = trainer.train(config, until=until, checkpoint=checkpoint, init=init)
        done = min(until, trainer.steps)
        rate = (time.perf_counter() - began) / done
        logger.info(
            "  training %s seed %d: step %d/%d, ETA %.0f s",
            *(config.name or "config", seed, done, trainer.steps, rate * (trainer.steps - done)),
        )
    accuracy = trainer.accuracy(model, "test")
    record = {"accuracy": accuracy, "seed": seed, **what, "seconds": time.perf_counter() - began}
    write_text_atomic(result, json.dumps(record, indent=1))
    return accuracy


def trained_network(config: ArchConfig, recipe: Recipe, seed: int, folder: Path) -> Network:
    """The network of a finished ``train_seed`` at the config's own resolution, with the data's classes."""
    state = torch.load(folder / f"seed{seed}.pt", map_location="cpu", weights_only=True)["model"]
    model = build_model(replace(config, num_classes=recipe.dataset.num_classes))
    model.load_state_dict(state)
    return model
