"""Latency ops as standalone torch modules, timed inside a context that matches a network's.

Timed alone, an op pays what it never pays inside a network: onnxruntime reorders its input into and
its output out of the blocked NCHWc layout, and its SE gate and residual add stay unfused. So each op
is timed between two 1x1 convs (``context_module``), and half of a two-conv chain at each side's
activation shape (``shape_module``) is subtracted (see nas/latency/measure.py and bench/RESULTS.md).
"""

from __future__ import annotations

from torch import nn

from nas.config import Norm, Op
from nas.model._layers import ConvBNAct


def op_module(op: Op, norm: Norm | None = None) -> nn.Module:
    """The same modules build_model uses, so a timed op is exactly the op inside a network."""
    return nn.Sequential(*(module for _, module in op.part.modules(op.cin, norm or Norm())))


def context_module(op: Op) -> nn.Sequential:
    """1x1 conv -> op -> 1x1 conv (no conv after a classifier), at the op's own widths."""
    before, after = op.context_shapes()
    parts = [ConvBNAct(before[0], before[0], 1, act="relu"), op_module(op)]
    if after is not None:
        parts.append(ConvBNAct(after[0], after[0], 1, act="relu"))
    return nn.Sequential(*parts)


def shape_module(channels: int) -> nn.Sequential:
    """Two 1x1 convs: timing it at a shape gives the context cost to subtract (half per side)."""
    return nn.Sequential(ConvBNAct(channels, channels, 1, act="relu"), ConvBNAct(channels, channels, 1, act="relu"))


def op_input_shape(op: Op) -> tuple[int, int, int, int]:
    return (1, op.cin, op.size, op.size)
