"""The exact fastest and slowest latency a space can reach under a table."""

from __future__ import annotations

from dataclasses import dataclass

from nas.config import ArchConfig
from nas.latency._table import LatencyTable
from nas.space import SearchSpace


@dataclass(frozen=True)
class Bounds:
    fastest_ms: float
    fastest: ArchConfig
    slowest_ms: float
    slowest: ArchConfig


def space_bounds(space: SearchSpace, table: LatencyTable) -> Bounds:
    """Dynamic programming over the space (per-op latencies add up; the overhead is monotone in the sum)."""
    table.check_space(space)
    (low, fastest), (high, slowest) = space.extremes(lambda op: table.op_ms(op).ms)
    return Bounds(table.overhead.apply(low), fastest, table.overhead.apply(high), slowest)
