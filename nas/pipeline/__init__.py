"""Search to deployable model in one resumable command (``python -m nas.pipeline``)."""

from nas.pipeline._report import Entry
from nas.pipeline._train import Recipe, train_seed, trained_network

__all__ = ["Entry", "Recipe", "train_seed", "trained_network"]
