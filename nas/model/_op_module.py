"""One latency op as a standalone torch module, for exporting and timing it alone."""

from __future__ import annotations

from torch import nn

from nas.config import HeadConfig, LayerConfig, Op
from nas.model._blocks import ConvBNAct, InvertedResidual, classifier


def op_module(op: Op) -> nn.Module:
    """The same modules build_model uses, so a timed op is exactly the op inside a network."""
    if op.kind == "stem":
        return ConvBNAct(3, op.out, op.kernel, stride=op.stride, act=op.act)
    if op.kind == "ir":
        return InvertedResidual(op.cin, LayerConfig(op.kernel, op.expanded, op.out, op.stride, op.se, op.act))
    if op.kind == "last":
        return ConvBNAct(op.cin, op.out, 1, act=op.act)
    head = HeadConfig(last_channels=op.cin, hidden_channels=op.expanded, act=op.act)
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1), classifier(head, op.out))


def op_input_shape(op: Op) -> tuple[int, int, int, int]:
    return (1, op.cin, op.size, op.size)
