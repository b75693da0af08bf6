"""Latency ops as standalone torch modules, timed inside a context that matches a network's.

Timed alone, an op pays what it never pays inside a network: onnxruntime reorders its input into and
its output out of the blocked NCHWc layout, and its SE gate and residual add stay unfused. So each op
is timed between two 1x1 convs (``context_module``), and half of a two-conv chain at each side's
activation shape (``shape_module``) is subtracted (see nas/latency/measure.py and bench/RESULTS.md).
The context convs lead from and to ``CONTEXT_CHANNELS`` channels, not the op's own widths: a 960 -> 960
conv at 7x7 costs more than the head op after it, and a table entry is a difference of timings, so a
context several times the op's cost multiplies the op's timing noise as many times (on the 2 vCPU VM,
the head and last-conv entries of two builds disagreed at 23-53 % median with such contexts).
"""

from __future__ import annotations

from torch import nn

from nas.config import Norm, Op
from nas.model._layers import ConvBNAct

CONTEXT_CHANNELS = 16  # width the context convs lead from and to (see the module docstring)


def op_module(op: Op, norm: Norm | None = None) -> nn.Module:
    """The same modules build_model uses, so a timed op is exactly the op inside a network."""
    return nn.Sequential(*(module for _, module in op.part.modules(op.cin, norm or Norm())))


def context_module(op: Op) -> nn.Sequential:
    """1x1 conv -> op -> 1x1 conv (no conv after a classifier), from and to a narrow width."""
    before, after = op.context_shapes()
    parts = [ConvBNAct(_outer(before[0]), before[0], 1, act="relu"), op_module(op)]
    if after is not None:
        parts.append(ConvBNAct(after[0], _outer(after[0]), 1, act="relu"))
    return nn.Sequential(*parts)


def shape_module(channels: int) -> nn.Sequential:
    """Two 1x1 convs, into ``channels`` and out of them: timing it at a shape gives the context cost to
    subtract (half per side)."""
    outer = _outer(channels)
    return nn.Sequential(ConvBNAct(outer, channels, 1, act="relu"), ConvBNAct(channels, outer, 1, act="relu"))


def context_input_shape(channels: int, size: int) -> tuple[int, int, int, int]:
    """The input of a context or shape module whose activation has ``channels`` at ``size``."""
    return (1, _outer(channels), size, size)


def op_input_shape(op: Op) -> tuple[int, int, int, int]:
    """The input of the op itself (``op_module``)."""
    return (1, op.cin, op.size, op.size)


def _outer(channels: int) -> int:
    """The context convs' far side: ``CONTEXT_CHANNELS``, or fewer for a narrower activation (an RGB input)."""
    return min(CONTEXT_CHANNELS, channels)
