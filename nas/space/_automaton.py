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

from nas.config import ArchConfig, HeadConfig, LayerConfig, StemConfig, conv_out
from nas.space._spec import LAYER_CHOICES, SpaceSpec, expanded_channels

Token = Hashable


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
    """Inside ``stage`` after ``count`` layers; ``fixed`` holds the shared choices (None where free)."""

    stage: int
    count: int
    channels: int
    size: int
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


class SpaceAutomaton:
    def __init__(self, spec: SpaceSpec) -> None:
        self.spec = spec
        self._count = cache(self._count_uncached)

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

    def moves(self, state: State) -> Iterator[tuple[Token, State]]:
        """Every (token, next state) pair leaving ``state``."""
        spec = self.spec
        if isinstance(state, Start):
            for r in spec.resolution:
                yield ("resolution", r), AtStem(r)
        elif isinstance(state, AtStem):
            s = spec.stem
            for ch, k, st, act in itertools.product(s.channels, s.kernel, s.stride, s.act):
                yield StemConfig(ch, k, st, act), StageStart(0, ch, conv_out(state.size, k, st))
        elif isinstance(state, StageStart) and state.stage < len(spec.stages):
            stage = spec.stages[state.stage]
            if max(stage.depth) == 0:
                return
            free = (None,) * len(LAYER_CHOICES)
            for stride, width in itertools.product(stage.stride, stage.width):
                yield from self._layers(state.stage, 0, state.channels, width, stride, state.size, free)
        elif isinstance(state, InStage):
            if state.count < max(spec.stages[state.stage].depth):
                yield from self._layers(
                    state.stage, state.count, state.channels, state.channels, 1, state.size, state.fixed
                )
        elif isinstance(state, AtHead):
            h = spec.head
            for last, hidden, act, drop in itertools.product(h.last_channels, h.hidden_channels, h.act, h.dropout):
                yield HeadConfig(last, hidden, act, drop), Done()

    def _layers(
        self, index: int, count: int, channels: int, width: int, stride: int, size: int, fixed: tuple[object, ...]
    ) -> Iterator[tuple[Token, State]]:
        stage = self.spec.stages[index]
        options = [
            (value,) if value is not None else stage.layer_options(name)
            for name, value in zip(LAYER_CHOICES, fixed, strict=True)
        ]
        for kernel, ratio, se, act in itertools.product(*options):
            out_size = conv_out(size, kernel, stride)
            layer = LayerConfig(kernel, expanded_channels(channels, ratio), width, stride, se, act)
            keep = tuple(
                value if name in stage.shared else None
                for name, value in zip(LAYER_CHOICES, (kernel, ratio, se, act), strict=True)
            )
            yield layer, InStage(index, count + 1, width, out_size, keep)

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
