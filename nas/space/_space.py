"""SearchSpace: load a space file, sample configs from it, test membership, count it."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import random
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from nas._errors import OutsideSpaceError
from nas._fields import Field
from nas._paths import find_shipped
from nas._yaml import read_mapping
from nas.blocks import Part, walk
from nas.config import ArchConfig, Op
from nas.space._automaton import (
    AtHead,
    AtStem,
    Done,
    InStage,
    SpaceAutomaton,
    StageStart,
    Start,
    State,
    Token,
    config_tokens,
)
from nas.space._spec import SpaceSpec, TypeSpec, parse_space

if TYPE_CHECKING:
    import optuna

Chooser = Callable[[str, Sequence[Any]], Any]


def _choose_part(types: TypeSpec, prefix: str, choose: Chooser) -> Part:
    values = {name: choose(f"{prefix}.{name}", types.layer_options(name)) for name in types.names}
    return types.cls.from_choices(values, cin=3, width=0, stride=1)


class SearchSpace:
    """A factorized hierarchical space of networks: per stage a depth, a width and a block type with its
    choices (see ``search_spaces/*.yaml``)."""

    RESOLUTION = "resolution"  # the name of the input resolution's choice (samplers treat it apart)

    def __init__(self, *, spec: SpaceSpec, source: str = "") -> None:
        self.spec = spec
        self.source = source
        self._automaton = SpaceAutomaton(spec, source)
        self._asked: dict[tuple[str, int], tuple[tuple[str, str, tuple[Any, ...]], ...]] = {}

    def __getstate__(self) -> dict[str, Any]:
        """Pickled as its spec (search workers get the space this way); the automaton is rebuilt."""
        return {"spec": self.spec, "source": self.source}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)  # type: ignore[misc]

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SearchSpace:
        """A space file, or a shipped space by name (``mobilenetv3``) or project path (``search_spaces/...``)."""
        path = find_shipped(path)
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

        return self.build(choose)

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

        return self.build(choose)

    def build(self, choose: Chooser) -> ArchConfig:
        """The config that ``choose(name, options)`` picks, choice by choice (how sampling, random draws and
        model-based samplers share one decoder)."""
        spec = self.spec
        stem = _choose_part(spec.stem.choices, "stem", choose)
        layers: list[Part] = []
        channels = self._automaton.width_after(stem, 3)
        for i, stage in enumerate(spec.stages):
            depth = choose(f"s{i}.depth", stage.depth)
            if depth == 0:
                continue
            stride = choose(f"s{i}.stride", stage.stride)
            width = choose(f"s{i}.width", stage.width)
            by_type = {t.type: t for t in stage.types}
            mixed = len(by_type) > 1
            types = by_type[choose(f"s{i}.type", list(by_type))] if mixed else stage.types[0]
            prefix = f"s{i}.{types.type}." if mixed else f"s{i}."
            shared = {name: choose(f"{prefix}{name}", types.layer_options(name)) for name in types.shared}
            for j in range(depth):
                values = {
                    name: shared[name] if name in shared else choose(asked, options)
                    for name, asked, options in self._layer_choices(prefix, i, j, types)
                }
                layer, channels = self._automaton.layer_with_width(
                    i, types, values, channels, width, stride if j == 0 else 1
                )
                layers.append(layer)
        return ArchConfig(
            resolution=choose(self.RESOLUTION, spec.resolution),
            num_classes=spec.num_classes,
            stem=stem,
            layers=tuple(layers),
            head=_choose_part(spec.head.choices, "head", choose),
        )

    def _layer_choices(
        self, prefix: str, i: int, j: int, types: TypeSpec
    ) -> tuple[tuple[str, str, tuple[Any, ...]], ...]:
        """(name, the choice's name in layer ``j``, options) of each of a layer's choices: remembered, as every
        config asks them again."""
        key = (prefix, j)
        found = self._asked.get(key)
        if found is None:
            inner = prefix.replace(f"s{i}.", f"s{i}.l{j}.", 1)
            found = self._asked[key] = tuple(
                (name, f"{inner}{name}", types.layer_options(name)) for name in types.names
            )
        return found

    def choices(self) -> dict[str, tuple[Any, ...]]:
        """Every choice with more than one option that a config of the space can ask (the names ``sample``
        suggests), with its options: found by building with each choice at its k-th option and every depth
        at its largest, so every layer of every block type is asked."""
        found: dict[str, tuple[Any, ...]] = {}
        k = 0
        while k < max((len(options) for options in found.values()), default=1):

            def choose(name: str, options: Sequence[Any], k: int = k) -> Any:
                if len(options) > 1:
                    found.setdefault(name, tuple(options))
                return max(options) if name.endswith(".depth") else options[min(k, len(options) - 1)]

            self.build(choose)
            k += 1
        return found

    # ---- questions -----------------------------------------------------------------------------
    def contains(self, config: ArchConfig) -> bool:
        return config.num_classes == self.spec.num_classes and self._automaton.accepts(config_tokens(config))

    def source_text(self) -> str:
        """The space file's text, kept by what is fitted or trained on the space (a predictor, a supernet)
        so it can rebuild the space and check membership without a path; for a space with no file (built
        in code, a part of another: ``downsampling_parts``), its canonical content, which hashes the same."""
        try:
            return Path(self.source).read_text()
        except OSError:
            return yaml.safe_dump(self.spec.to_dict(), sort_keys=False)

    def downsampling_parts(self) -> list[SearchSpace]:
        """The space split by every choice that moves a downsampling: a stage's stride where it has several,
        and whether a stage that may stride 2 and may be left out is there (a stage left out asks no
        stride). Few-shot NAS (Zhao et al. 2021) trains a supernet per part, so that no late block shares its
        weights between inputs of 4x4, 2x2 and 1x1 (bench/RESULTS.md, supernet sections). Each config of the
        space is in exactly one part; a space with no such choice is its own only part."""
        axes: list[list[tuple[int, dict[str, tuple[int, ...]]]]] = []
        for k, stage in enumerate(self.spec.stages):
            if max(stage.stride) == 1:
                continue
            present = tuple(depth for depth in stage.depth if depth)
            strides = [{"stride": (stride,)} for stride in stage.stride] if len(stage.stride) > 1 else [{}]
            if 0 in stage.depth and present:
                axes.append([(k, {"depth": (0,)}), *((k, {**fixed, "depth": present}) for fixed in strides)])
            elif len(strides) > 1:
                axes.append([(k, fixed) for fixed in strides])
        parts = []
        for combo in itertools.product(*axes):
            stages = list(self.spec.stages)
            for k, fixed in combo:
                stages[k] = replace(stages[k], **fixed)
            label = ",".join(
                f"s{k}.{field}={'/'.join(map(str, value))}" for k, fixed in combo for field, value in fixed.items()
            )
            spec = replace(self.spec, name=f"{self.name}[{label}]" if label else self.spec.name, stages=tuple(stages))
            parts.append(SearchSpace(spec=spec, source=f"{self.source} [{label}]" if label else self.source))
        return parts

    def layer_positions(self, config: ArchConfig) -> list[tuple[int, int]]:
        """(stage, place in the stage) of each of ``config``'s layers: where a supernet of the space keeps
        each layer's weights. Raises OutsideSpaceError for a config the space does not hold."""
        automaton = self._automaton
        paths: dict[State, tuple[tuple[int, int], ...]] = dict.fromkeys(automaton.closure([Start()]), ())
        for token in config_tokens(config):
            after: dict[State, tuple[tuple[int, int], ...]] = {}
            for state, path in paths.items():
                for move, nxt in automaton.moves(state):
                    if move == token:
                        here = (*path, (nxt.stage, nxt.count - 1)) if isinstance(nxt, InStage) else path
                        for reached in automaton.closure([nxt]):
                            after.setdefault(reached, here)
            paths = after
        if Done() not in paths:
            raise OutsideSpaceError(f"{config.name or 'the config'} is not a config of space {self.name}")
        return list(paths[Done()])

    def size(self) -> int:
        """Exact number of distinct configs in the space."""
        return self._automaton.count()

    def ops(self) -> list[Op]:
        """Every distinct latency op that some config of the space contains, sorted."""
        ops = {op for state, token, _ in self._automaton.transitions() for op in self._token_ops(state, token)}
        return sorted(ops, key=Op.sort_key)  # each key once: Op's comparison builds both keys every time

    def extremes(self, cost: Callable[[Op], float]) -> tuple[tuple[float, ArchConfig], tuple[float, ArchConfig]]:
        """The (lowest, highest) total ``cost`` over the ops of a config, with configs reaching them.

        Exact by dynamic programming over the space's states: costs of ops add up along a config.
        """
        edges: dict[State, list[tuple[float, Token, State]]] = {}
        op_cost: dict[Op, float] = {}
        for state, token, after in self._automaton.transitions():
            total = 0.0
            for op in self._token_ops(state, token):
                if op not in op_cost:
                    op_cost[op] = cost(op)
                total += op_cost[op]
            edges.setdefault(state, []).append((total, token, after))

        def solve(pick: Callable[..., tuple[float, list[Token]]]) -> tuple[float, ArchConfig]:
            memo: dict[State, tuple[float, list[Token]]] = {Done(): (0.0, [])}

            def best(state: State) -> tuple[float, list[Token]]:
                if state not in memo:
                    options = []
                    for total, token, after in edges[state]:
                        rest, tokens = best(after)
                        options.append((total + rest, [token, *tokens]))
                    memo[state] = pick(options, key=lambda option: option[0])
                return memo[state]

            value, tokens = best(Start())
            return value, self._config_from_tokens(tokens)

        return solve(min), solve(max)

    def _token_ops(self, state: State, token: Token) -> tuple[Op, ...]:
        if isinstance(state, AtStem):
            return walk(token, 3, state.size, self.spec.num_classes)
        if isinstance(state, (StageStart, InStage, AtHead)):
            return walk(token, state.channels, state.size, self.spec.num_classes)
        return ()

    def _config_from_tokens(self, tokens: list[Token]) -> ArchConfig:
        (_, resolution), stem, *layers, head = tokens
        return ArchConfig(resolution, self.spec.num_classes, stem, tuple(layers), head)
