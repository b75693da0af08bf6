"""The block vocabulary, laid out like torchvision's MobileNetV3 so its state dict loads by position."""

from __future__ import annotations

from torch import Tensor, nn

from nas.config import HeadConfig, LayerConfig, se_channels

# torchvision's MobileNetV3 uses these BN settings; keeping them makes its weights load unchanged.
BN_EPS = 0.001
BN_MOMENTUM = 0.01


def activation(name: str) -> nn.Module:
    return nn.Hardswish(inplace=True) if name == "hswish" else nn.ReLU(inplace=True)


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
    ) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, out_channels, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(out_channels, eps=BN_EPS, momentum=BN_MOMENTUM),
        ]
        if act is not None:
            layers.append(activation(act))
        super().__init__(*layers)


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
    """Expand 1x1 (skipped when expanded == in) -> depthwise -> SE -> project 1x1, + skip when shapes allow."""

    def __init__(self, in_channels: int, layer: LayerConfig) -> None:
        super().__init__()
        self.use_res_connect = layer.stride == 1 and in_channels == layer.out
        exp = layer.expanded
        parts: list[nn.Module] = []
        if exp != in_channels:
            parts.append(ConvBNAct(in_channels, exp, 1, act=layer.act))
        parts.append(ConvBNAct(exp, exp, layer.kernel, stride=layer.stride, groups=exp, act=layer.act))
        if layer.se:
            parts.append(SqueezeExcite(exp, se_channels(exp)))
        parts.append(ConvBNAct(exp, layer.out, 1))
        self.block = nn.Sequential(*parts)

    def forward(self, x: Tensor) -> Tensor:
        out = self.block(x)
        return out + x if self.use_res_connect else out


def classifier(head: HeadConfig, num_classes: int) -> nn.Sequential:
    """Hidden linear (no BN) -> activation -> dropout -> classes, as torchvision's ``classifier``."""
    return nn.Sequential(
        nn.Linear(head.last_channels, head.hidden_channels),
        activation(head.act),
        nn.Dropout(p=head.dropout, inplace=True),
        nn.Linear(head.hidden_channels, num_classes),
    )
