"""A space as an automaton over the token string [resolution, stem, layer, ..., head].

A config is in the space iff its string is accepted, so one structure answers ``contains`` and
counts distinct configs exactly: counting walks subsets of states (subset construction), so two
choice paths that produce the same network (rounded channel counts, stage boundaries that could
fall in two places) are counted once.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Iterable, Iterator
from dataclasses import dataclass
from functools import cache

from nas._errors import NasError
from nas.blocks import Part, walk
from nas.config import ArchConfig
from nas.space._spec import SpaceSpec, TypeSpec

Token = Hashable
REMEMBERED = 1 << 16  # layers built (see SpaceAutomaton.layer_with_width)


@dataclass(frozen=True)
class Start:
    pass


@dataclass(frozen=True)
class AtStem:
    size: int


@dataclass(frozen=True)
class StageStart:
    """Before stage ``stage``, with the running channel count and feature-map size."""

    stage: int
    channels: int
    size: int


@dataclass(frozen=True)
class InStage:
    """Inside ``stage`` after ``count`` layers of ``type``; ``fixed`` holds the shared choices (None where free)."""

    stage: int
    count: int
    channels: int
    size: int
    type: str
    fixed: tuple[object, ...]


@dataclass(frozen=True)
class AtHead:
    """After the last stage, before the head; keeps what the last conv sees."""

    channels: int
    size: int


@dataclass(frozen=True)
class Done:
    pass


State = Start | AtStem | StageStart | InStage | AtHead | Done


def config_tokens(config: ArchConfig) -> list[Token]:
    return [("resolution", config.resolution), config.stem, *config.layers, config.head]


def _combinations(types: TypeSpec, fixed: tuple[object, ...]) -> Iterator[dict[str, object]]:
    """Every assignment of the type's choices, with ``fixed`` values (None where free) kept."""
    options = [
        (value,) if value is not None else types.layer_options(name)
        for name, value in zip(types.names, fixed, strict=True)
    ]
    for combo in itertools.product(*options):
        yield dict(zip(types.names, combo, strict=True))


class SpaceAutomaton:
    def __init__(self, spec: SpaceSpec, source: str = "") -> None:
        self.spec, self.source = spec, source
        self._count = cache(self._count_uncached)
        self._built: dict[tuple[object, ...], tuple[Part, int]] = {}  # see layer_with_width
        self._moves: dict[State, tuple[tuple[Token, State], ...]] = {}  # ops(), size() and accepts() all walk them

    # ---- states and moves ----------------------------------------------------------------------
    def closure(self, states: Iterable[State]) -> frozenset[State]:
        """Add the states reachable without a token: ending a stage, skipping a stage of depth 0."""
        todo, seen = list(states), set()
        while todo:
            state = todo.pop()
            if state in seen:
                continue
            seen.add(state)
            if isinstance(state, StageStart):
                if state.stage == len(self.spec.stages):
                    todo.append(AtHead(state.channels, state.size))
                elif 0 in self.spec.stages[state.stage].depth:
                    todo.append(StageStart(state.stage + 1, state.channels, state.size))
            elif isinstance(state, InStage) and state.count in self.spec.stages[state.stage].depth:
                todo.append(StageStart(state.stage + 1, state.channels, state.size))
        return frozenset(seen)

    def moves(self, state: State) -> tuple[tuple[Token, State], ...]:
        """Every (token, next state) pair leaving ``state``."""
        found = self._moves.get(state)
        if found is None:
            found = self._moves[state] = tuple(self._leaving(state))
        return found

    def _leaving(self, state: State) -> Iterator[tuple[Token, State]]:
        spec = self.spec
        if isinstance(state, Start):
            for r in spec.resolution:
                yield ("resolution", r), AtStem(r)
        elif isinstance(state, AtStem):
            for values in _combinations(spec.stem.choices, (None,) * len(spec.stem.choices.names)):
                stem = spec.stem.choices.cls.from_choices(values, cin=3, width=0, stride=1)
                channels, size = self.after(stem, 3, state.size)
                yield stem, StageStart(0, channels, size)
        elif isinstance(state, StageStart) and state.stage < len(spec.stages):
            stage = spec.stages[state.stage]
            if max(stage.depth) == 0:
                return
            for stride, width, types in itertools.product(stage.stride, stage.width, stage.types):
                free = (None,) * len(types.names)
                yield from self._layers(state.stage, 0, state.channels, width, stride, state.size, types, free)
        elif isinstance(state, InStage):
            stage = spec.stages[state.stage]
            if state.count < max(stage.depth):
                types = next(t for t in stage.types if t.type == state.type)
                yield from self._layers(
                    state.stage, state.count, state.channels, state.channels, 1, state.size, types, state.fixed
                )
        elif isinstance(state, AtHead):
            for values in _combinations(spec.head.choices, (None,) * len(spec.head.choices.names)):
                yield spec.head.choices.cls.from_choices(values, cin=state.channels, width=0, stride=1), Done()

    def layer(
        self, index: int, types: TypeSpec, values: dict[str, object], channels: int, width: int, stride: int
    ) -> Part:
        """The block ``values`` make in stage ``index``; a combination the type refuses is the space's error."""
        try:
            return types.cls.from_choices(values, cin=channels, width=width, stride=stride)
        except ValueError as exc:
            raise NasError(
                f"{self.source or self.spec.name}: stages[{index}]: a {types.type} block of width {width} cannot follow"
                f" {channels} channels ({exc}); change that stage's widths or the previous stage's"
            ) from None

    def layer_with_width(
        self, index: int, types: TypeSpec, values: dict[str, object], channels: int, width: int, stride: int
    ) -> tuple[Part, int]:
        """``layer`` and the channels after it, remembered (up to ``REMEMBERED`` layers): a search decodes
        hundreds of thousands of configs made of the same few thousand layers."""
        key = (index, types.type, *values.values(), channels, width, stride)
        found = self._built.get(key)
        if found is None:
            if len(self._built) >= REMEMBERED:
                self._built.clear()
            layer = self.layer(index, types, values, channels, width, stride)
            found = self._built[key] = (layer, self.width_after(layer, channels))
        return found

    def after(self, part: Part, channels: int, size: int) -> tuple[int, int]:
        """(channels, size) after ``part``."""
        last = walk(part, channels, size, self.spec.num_classes)[-1]
        return last.out, last.out_size

    def width_after(self, part: Part, channels: int) -> int:
        """Channels after ``part``, without the feature-map size (the sampler picks the resolution last)."""
        for op_part in part.op_parts(self.spec.num_classes):
            channels = op_part.out_channels(channels)
        return channels

    def _layers(
        self,
        index: int,
        count: int,
        channels: int,
        width: int,
        stride: int,
        size: int,
        types: TypeSpec,
        fixed: tuple[object, ...],
    ) -> Iterator[tuple[Token, State]]:
        for values in _combinations(types, fixed):
            layer = self.layer(index, types, values, channels, width, stride)
            keep = tuple(values[name] if name in types.shared else None for name in types.names)
            yield layer, InStage(index, count + 1, *self.after(layer, channels, size), types.type, keep)

    def transitions(self) -> list[tuple[State, Token, State]]:
        """Every move that lies on some accepted string: what any config of the space can contain."""
        moves: list[tuple[State, Token, State]] = []
        seen: set[State] = set()
        todo = list(self.closure([Start()]))
        while todo:
            state = todo.pop()
            if state in seen:
                continue
            seen.add(state)
            for token, nxt in self.moves(state):
                for after in self.closure([nxt]):
                    moves.append((state, token, after))
                    todo.append(after)
        alive = {Done()}
        changed = True
        while changed:  # keep states from which Done is reachable (states form a DAG: few passes)
            changed = False
            for state, _, after in moves:
                if after in alive and state not in alive:
                    alive.add(state)
                    changed = True
        return [(state, token, after) for state, token, after in moves if after in alive and state in alive]

    def step(self, states: frozenset[State], token: Token) -> frozenset[State]:
        return self.closure(nxt for state in states for tok, nxt in self.moves(state) if tok == token)

    # ---- questions -----------------------------------------------------------------------------
    def accepts(self, tokens: Iterable[Token]) -> bool:
        states = self.closure([Start()])
        for token in tokens:
            states = self.step(states, token)
            if not states:
                return False
        return Done() in states

    def count(self) -> int:
        """Number of distinct accepted strings (distinct configs)."""
        return self._count(self.closure([Start()]))

    def _count_uncached(self, states: frozenset[State]) -> int:
        by_token: dict[Token, set[State]] = {}
        for state in states:
            for token, nxt in self.moves(state):
                by_token.setdefault(token, set()).add(nxt)
        total = int(Done() in states)
        for nxt_states in by_token.values():
            total += self._count(self.closure(nxt_states))
        return total
