"""Torch modules of the block vocabulary, with named parts laid out like torchvision's, so a family's
published state dict loads by name. The part types in nas.blocks decide which of these a config becomes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from nas.blocks import Norm, se_channels

if TYPE_CHECKING:
    from nas.blocks import LayerConfig


def activation(name: str) -> nn.Module:
    if name == "hswish":
        return nn.Hardswish(inplace=True)
    if name == "relu6":
        return nn.ReLU6(inplace=True)
    if name == "relu":
        return nn.ReLU(inplace=True)
    raise ValueError(f"unknown activation {name!r}")


def batch_norm(channels: int, norm: Norm) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=norm.eps, momentum=norm.momentum)


class ConvBNAct(nn.Sequential):
    """Conv (no bias) + BN + optional activation; children 0/1/2 like torchvision's Conv2dNormActivation."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int,
        *,
        stride: int = 1,
        groups: int = 1,
        act: str | None = None,
        norm: Norm | None = None,
    ) -> None:
        norm = norm or Norm()
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, out_channels, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
            batch_norm(out_channels, norm),
        ]
        if act is not None:
            layers.append(activation(act))
        super().__init__(*layers)


class GlobalPool(nn.Module):
    """Global average pool to a vector (batch, channels)."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)


class SqueezeExcite(nn.Module):
    """SE with ReLU inside and a hard-sigmoid gate (Howard et al. 2019, section 5.3)."""

    def __init__(self, channels: int, squeeze: int) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.activation = nn.ReLU()
        self.scale_activation = nn.Hardsigmoid()

    def forward(self, x: Tensor) -> Tensor:
        scale = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
        return scale * x


class InvertedResidual(nn.Module):
    """MobileNetV3: expand 1x1 (skipped when expanded == in) -> depthwise -> SE -> project 1x1, + skip."""

    def __init__(self, in_channels: int, layer: LayerConfig, norm: Norm) -> None:
        super().__init__()
        self.use_res_connect = layer.stride == 1 and in_channels == layer.out
        exp = layer.expanded
        parts: list[nn.Module] = []
        if exp != in_channels:
            parts.append(ConvBNAct(in_channels, exp, 1, act=layer.act, norm=norm))
        parts.append(ConvBNAct(exp, exp, layer.kernel, stride=layer.stride, groups=exp, act=layer.act, norm=norm))
        if layer.se:
            parts.append(SqueezeExcite(exp, se_channels(exp)))
        parts.append(ConvBNAct(exp, layer.out, 1, norm=norm))
        self.block = nn.Sequential(*parts)

    def forward(self, x: Tensor) -> Tensor:
        out = self.block(x)
        return out + x if self.use_res_connect else out


def classifier(in_channels: int, hidden: int, classes: int, act: str, dropout: float) -> nn.Sequential:
    """Hidden linear (no BN) -> activation -> dropout -> classes, as torchvision's MobileNetV3 ``classifier``."""
    return nn.Sequential(
        nn.Linear(in_channels, hidden),
        activation(act),
        nn.Dropout(p=dropout, inplace=True),
        nn.Linear(hidden, classes),
    )
