"""SearchSpace: load a space file, sample configs from it, test membership, count it."""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nas._fields import Field
from nas._yaml import read_mapping
from nas.config import ArchConfig, HeadConfig, LayerConfig, StemConfig
from nas.space._automaton import SpaceAutomaton, config_tokens
from nas.space._spec import LAYER_CHOICES, SpaceSpec, expanded_channels, parse_space

if TYPE_CHECKING:
    import optuna

Chooser = Callable[[str, Sequence[Any]], Any]


class SearchSpace:
    """A factorized hierarchical space of MobileNetV3-style networks (see ``search_spaces/*.yaml``)."""

    def __init__(self, *, spec: SpaceSpec, source: str = "") -> None:
        self.spec = spec
        self.source = source
        self._automaton = SpaceAutomaton(spec)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SearchSpace:
        return cls(spec=parse_space(Field(str(path), "", read_mapping(path))), source=str(path))

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "<space>") -> SearchSpace:
        return cls(spec=parse_space(Field(source, "", data)), source=source)

    @property
    def name(self) -> str:
        return self.spec.name or Path(self.source).stem

    @property
    def hash(self) -> str:
        """Hash of the space's content (comments and formatting do not change it)."""
        canonical = json.dumps(self.spec.to_dict(), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    # ---- sampling ------------------------------------------------------------------------------
    def sample(self, trial: optuna.Trial) -> ArchConfig:
        """One config through ``trial.suggest_categorical`` (single-option choices are not suggested)."""

        def choose(name: str, options: Sequence[Any]) -> Any:
            return options[0] if len(options) == 1 else trial.suggest_categorical(name, list(options))

        return self._build(choose)

    def random_config(self, rng: random.Random | np.random.Generator | int | None = None) -> ArchConfig:
        """One config drawn uniformly choice by choice; ``rng`` may be a seed."""
        if rng is None or isinstance(rng, int):
            rng = random.Random(rng)
        if isinstance(rng, np.random.Generator):
            generator = rng

            def choose(name: str, options: Sequence[Any]) -> Any:
                return options[int(generator.integers(len(options)))]
        else:
            pyrng = rng

            def choose(name: str, options: Sequence[Any]) -> Any:
                return options[pyrng.randrange(len(options))]

        return self._build(choose)

    def _build(self, choose: Chooser) -> ArchConfig:
        spec = self.spec
        stem = StemConfig(
            channels=choose("stem.channels", spec.stem.channels),
            kernel=choose("stem.kernel", spec.stem.kernel),
            stride=choose("stem.stride", spec.stem.stride),
            act=choose("stem.act", spec.stem.act),
        )
        layers: list[LayerConfig] = []
        channels = stem.channels
        for i, stage in enumerate(spec.stages):
            depth = choose(f"s{i}.depth", stage.depth)
            if depth == 0:
                continue
            stride = choose(f"s{i}.stride", stage.stride)
            width = choose(f"s{i}.width", stage.width)
            shared = {name: choose(f"s{i}.{name}", stage.layer_options(name)) for name in stage.shared}
            for j in range(depth):
                value = {
                    name: shared[name] if name in shared else choose(f"s{i}.l{j}.{name}", stage.layer_options(name))
                    for name in LAYER_CHOICES
                }
                layers.append(
                    LayerConfig(
                        kernel=value["kernel"],
                        expanded=expanded_channels(channels, value["expansion"]),
                        out=width,
                        stride=stride if j == 0 else 1,
                        se=value["se"],
                        act=value["act"],
                    )
                )
                channels = width
        return ArchConfig(
            resolution=choose("resolution", spec.resolution),
            num_classes=spec.num_classes,
            stem=stem,
            layers=tuple(layers),
            head=HeadConfig(
                last_channels=choose("head.last_channels", spec.head.last_channels),
                hidden_channels=choose("head.hidden_channels", spec.head.hidden_channels),
                act=choose("head.act", spec.head.act),
                dropout=choose("head.dropout", spec.head.dropout),
            ),
        )

    # ---- questions -----------------------------------------------------------------------------
    def contains(self, config: ArchConfig) -> bool:
        return config.num_classes == self.spec.num_classes and self._automaton.accepts(config_tokens(config))

    def size(self) -> int:
        """Exact number of distinct configs in the space."""
        return self._automaton.count()
