"""Torch modules of the block vocabulary, with named parts laid out like torchvision's, so a family's
published state dict loads by name. The part types in nas.blocks decide which of these a config becomes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from nas.blocks import Norm, se_channels
from nas.model._depthwise import DepthwiseConv2d

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
        depthwise = groups > 1 and groups == in_channels == out_channels
        conv = (
            DepthwiseConv2d(in_channels, kernel, stride)
            if depthwise
            else nn.Conv2d(in_channels, out_channels, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False)
        )
        layers: list[nn.Module] = [conv, batch_norm(out_channels, norm)]
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


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """Interleave the channels of ``groups`` groups (Zhang et al. 2018), as torchvision's ShuffleNetV2."""
    batch, channels, height, width = x.shape
    x = x.view(batch, groups, channels // groups, height, width).transpose(1, 2).contiguous()
    return x.view(batch, channels, height, width)


class LinearBottleneck(nn.Module):
    """MobileNetV2: expand 1x1 + ReLU6 (skipped when expanded == in) -> depthwise + ReLU6 -> linear project,
    + skip; torchvision's ``conv`` layout (a bare Conv2d and BN at the end)."""

    def __init__(self, in_channels: int, expanded: int, out: int, kernel: int, stride: int, norm: Norm) -> None:
        super().__init__()
        self.use_res_connect = stride == 1 and in_channels == out
        parts: list[nn.Module] = []
        if expanded != in_channels:
            parts.append(ConvBNAct(in_channels, expanded, 1, act="relu6", norm=norm))
        parts += [
            ConvBNAct(expanded, expanded, kernel, stride=stride, groups=expanded, act="relu6", norm=norm),
            nn.Conv2d(expanded, out, 1, bias=False),
            batch_norm(out, norm),
        ]
        self.conv = nn.Sequential(*parts)

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv(x)
        return out + x if self.use_res_connect else out


class DepthwiseSeparable(nn.Module):
    """MobileNetV1: depthwise kxk + BN + act, then pointwise 1x1 + BN + act."""

    def __init__(self, in_channels: int, out: int, kernel: int, stride: int, act: str, norm: Norm) -> None:
        super().__init__()
        self.conv_dw = ConvBNAct(
            in_channels, in_channels, kernel, stride=stride, groups=in_channels, act=act, norm=norm
        )
        self.conv_pw = ConvBNAct(in_channels, out, 1, act=act, norm=norm)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv_pw(self.conv_dw(x))


class Fire(nn.Module):
    """SqueezeNet's Fire module: squeeze 1x1, then expand 1x1 and 3x3 side by side, concatenated (convs with
    bias, no BN), named as torchvision's."""

    def __init__(self, in_channels: int, squeeze: int, expand1x1: int, expand3x3: int) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(in_channels, squeeze, 1)
        self.squeeze_activation = nn.ReLU(inplace=True)
        self.expand1x1 = nn.Conv2d(squeeze, expand1x1, 1)
        self.expand1x1_activation = nn.ReLU(inplace=True)
        self.expand3x3 = nn.Conv2d(squeeze, expand3x3, 3, padding=1)
        self.expand3x3_activation = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        x = self.squeeze_activation(self.squeeze(x))
        return torch.cat(
            [self.expand1x1_activation(self.expand1x1(x)), self.expand3x3_activation(self.expand3x3(x))], 1
        )


class ShuffleUnit(nn.Module):
    """ShuffleNet (V1): 1x1 group conv + ReLU -> channel shuffle -> 3x3 depthwise -> 1x1 group conv; added to
    the input, or at stride 2 concatenated with a 3x3 average pool of it; ReLU at the end."""

    def __init__(
        self, in_channels: int, out: int, mid: int, groups: int, stride: int, group_first: bool, norm: Norm
    ) -> None:
        super().__init__()
        self.groups, self.stride = groups, stride
        branch = out - in_channels if stride == 2 else out
        self.gconv1 = ConvBNAct(in_channels, mid, 1, groups=groups if group_first else 1, act="relu", norm=norm)
        self.dwconv = ConvBNAct(mid, mid, 3, stride=stride, groups=mid, norm=norm)
        self.gconv2 = ConvBNAct(mid, branch, 1, groups=groups, norm=norm)
        self.shortcut = nn.AvgPool2d(3, stride=2, padding=1) if stride == 2 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        out = self.gconv1(x)
        if self.groups > 1:
            out = channel_shuffle(out, self.groups)
        out = self.gconv2(self.dwconv(out))
        if self.stride == 2:
            return torch.relu(torch.cat([self.shortcut(x), out], 1))
        return torch.relu(out + x)


def _shuffle_branch(in_channels: int, out: int, kernel: int, stride: int, norm: Norm, *, lead: bool) -> nn.Sequential:
    """torchvision's flat branch: [1x1, BN, ReLU] if ``lead`` (branch2), depthwise + BN, 1x1, BN, ReLU."""
    mid = out if lead else in_channels
    parts: list[nn.Module] = []
    if lead:
        parts += [nn.Conv2d(in_channels, out, 1, bias=False), batch_norm(out, norm), nn.ReLU(inplace=True)]
    parts += [
        DepthwiseConv2d(mid, kernel, stride),
        batch_norm(mid, norm),
        nn.Conv2d(mid, out, 1, bias=False),
        batch_norm(out, norm),
        nn.ReLU(inplace=True),
    ]
    return nn.Sequential(*parts)


class ShuffleV2Unit(nn.Module):
    """ShuffleNetV2: stride 1 splits the channels in half and transforms one half; stride 2 transforms the
    whole input in two branches; concat, then a 2-group channel shuffle. torchvision's layout."""

    def __init__(self, in_channels: int, out: int, kernel: int, stride: int, norm: Norm) -> None:
        super().__init__()
        self.stride = stride
        half = out // 2
        self.branch1 = _shuffle_branch(in_channels, half, kernel, stride, norm, lead=False) if stride == 2 else None
        self.branch2 = _shuffle_branch(in_channels if stride == 2 else half, half, kernel, stride, norm, lead=True)

    def forward(self, x: Tensor) -> Tensor:
        if self.branch1 is None:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)
