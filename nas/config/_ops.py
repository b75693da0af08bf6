"""Ops: the units of latency. A block is priced whole because onnxruntime fuses Conv+BN+act inside it."""

from __future__ import annotations

from nas.blocks import Op
from nas.config._arch import ArchConfig

__all__ = ["Op", "ops"]


def ops(config: ArchConfig) -> list[Op]:
    """The latency units of a network, in order: stem, every block, the head's units."""
    return config.ops()
