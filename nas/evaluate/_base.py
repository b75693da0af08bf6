"""The evaluator interface: ``score(config) -> Score``, higher is better, deterministic for a seed."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field, replace
from typing import Any

from nas.config import ArchConfig


@dataclass(frozen=True)
class Score:
    """One evaluation: ``value`` (higher is better), what it is, at which fidelity, and its cost."""

    value: float
    kind: str  # "baseline" | "proxy" | "accuracy"
    fidelity: str  # e.g. "analytic", "zero-cost at 32px", "trained 300 steps at 32px on digits"
    seconds: float
    details: dict[str, Any] = field(default_factory=dict)


class Evaluator(abc.ABC):
    """Scores architectures; subclasses are registered by name (see ``get_evaluator``)."""

    name: str = ""
    kind: str = ""
    unit: str = "score"  # what a score value is, printed beside it (e.g. "log10 MACs": not an accuracy)
    data_default: str | None = "digits"  # the data a command gives it when --data is not given

    @abc.abstractmethod
    def score(self, config: ArchConfig) -> Score: ...

    def describe(self) -> dict[str, Any]:
        """The options that make its scores reproducible (recorded next to results)."""
        return {"name": self.name}


def adapt(config: ArchConfig, *, resolution: int, num_classes: int) -> ArchConfig:
    """The same network at the evaluator's input size and the dataset's classes."""
    return replace(config, resolution=resolution, num_classes=num_classes)
