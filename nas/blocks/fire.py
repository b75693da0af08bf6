"""SqueezeNet (Iandola et al. 2016): the Fire module (``fire``), SqueezeNet's stem (``squeezenet``: a conv
with bias, ReLU, 3x3/2 max pool) and its head (``squeezenet``: dropout, 1x1 conv to the classes, ReLU,
global pool). No BN anywhere, as in the paper and torchvision, whose state-dict layout these keep.

A Fire block at stride 2 is the 3x3/2 max pool (ceil mode) SqueezeNet places before it, then the Fire.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from nas.blocks._base import (
    Choice,
    ClassifierPart,
    Norm,
    OpPart,
    Part,
    Prunable,
    Row,
    Slice,
    channels,
    conv_out,
    fraction,
    kernel,
    register,
    stride,
)
from nas.blocks.pool import max_pool

if TYPE_CHECKING:
    from torch import nn


def _pooled(size: int) -> int:
    return conv_out(size, 3, 2, 0, ceil=True)


def _ratio(f: Any) -> float:
    return f.number(minimum=0.0, positive=True, below=1.0)


@register
@dataclass(frozen=True, order=True)
class FireConfig(Part):
    TYPE: ClassVar[str] = "fire"
    ROLE: ClassVar[str] = "block"
    OP: ClassVar[str] = "fire"
    KEY: ClassVar[tuple[tuple[str, str], ...]] = (
        ("q", "squeeze"),
        ("e", "expand1x1"),
        ("x", "expand3x3"),
        ("s", "stride"),
    )
    AXES: ClassVar[tuple[str, ...]] = ("cin", "squeeze", "expand1x1", "expand3x3")
    EXTRAPOLATED: ClassVar[bool] = True
    SCHEMA: ClassVar[dict[str, Any]] = {
        "squeeze": channels,
        "expand1x1": channels,
        "expand3x3": channels,
        "stride": stride,
    }
    # squeeze ratio SR (squeeze / expand width) and the 3x3 share of the expand width (the paper's pct3x3)
    CHOICES: ClassVar[tuple[Choice, ...]] = (Choice("squeeze_ratio", _ratio), Choice("pct3x3", _ratio, (0.5,)))

    squeeze: int
    expand1x1: int
    expand3x3: int
    stride: int = 1

    @classmethod
    def from_choices(cls, values: dict[str, Any], *, cin: int, width: int, stride: int) -> Part:
        e3 = round(width * values["pct3x3"])
        if not 0 < e3 < width:
            raise ValueError(f"pct3x3 {values['pct3x3']} leaves no 1x1 or no 3x3 expand filters")
        return cls(max(1, round(width * values["squeeze_ratio"])), width - e3, e3, stride)

    @staticmethod
    def check_width(width: int) -> str | None:
        return "a Fire module needs at least 2 output channels (1x1 and 3x3 expands)" if width < 2 else None

    def out_channels(self, cin: int) -> int:
        return self.expand1x1 + self.expand3x3

    def out_size(self, size: int) -> int:
        return _pooled(size) if self.stride == 2 else size

    def cost(self, cin: int, size: int) -> tuple[int, int]:
        o2, sq, e1, e3 = self.out_size(size) ** 2, self.squeeze, self.expand1x1, self.expand3x3
        macs = o2 * sq * (cin + e1 + 9 * e3)
        return macs, cin * sq + sq + sq * e1 + e1 + 9 * sq * e3 + e3

    def features(self, cin: int, size: int) -> dict[str, float]:
        o2, sq, out = self.out_size(size) ** 2, self.squeeze, self.out_channels(cin)
        return {
            "conv1x1_macs": o2 * sq * (cin + self.expand1x1),
            "full_conv_macs": o2 * sq * 9 * self.expand3x3,
            "activation_elems": cin * size * size + (sq + out) * o2,
        }

    def row(self) -> Row:
        operator = f"{'maxpool, ' if self.stride == 2 else ''}fire s{self.squeeze}"
        return Row(operator, "1|3", self.squeeze, self.out_channels(0), False, "RE", self.stride)

    FIXED: ClassVar[str] = (
        "fire: expand1x1 and expand3x3 stay fixed (the output concatenates them, so a cut would have to be split"
        " between the two); NetAdapt prunes the squeeze width and narrows the input the squeeze reads"
    )

    def internal(self, cin: int) -> dict[str, Prunable]:
        squeeze = (Slice(-1, "squeeze.weight", 0, True), Slice(-1, "squeeze.bias", 0))
        return {"squeeze": Prunable((*squeeze, Slice(-1, "expand1x1.weight", 1), Slice(-1, "expand3x3.weight", 1)))}

    def reads(self, cin: int) -> Prunable | None:
        return Prunable((Slice(-1, "squeeze.weight", 1),))

    def modules(self, cin: int, norm: Norm) -> list[tuple[str, nn.Module]]:
        from nas.model._layers import Fire

        fire = ("block", Fire(cin, self.squeeze, self.expand1x1, self.expand3x3))
        return [("block", max_pool(3, 2, ceil=True)), fire] if self.stride == 2 else [fire]


@register
@dataclass(frozen=True, order=True)
class SqueezeStemConfig(Part):
    """Conv (bias, no padding, no BN) -> ReLU -> 3x3/2 max pool (ceil mode)."""

    TYPE: ClassVar[str] = "squeezenet"
    ROLE: ClassVar[str] = "stem"
    OP: ClassVar[str] = "sqstem"
    KEY: ClassVar[tuple[tuple[str, str], ...]] = (("o", "channels"), ("k", "kernel"), ("s", "stride"))
    AXES: ClassVar[tuple[str, ...]] = ("channels",)
    EXTRAPOLATED: ClassVar[bool] = True
    SCHEMA: ClassVar[dict[str, Any]] = {
        "channels": channels,
        "kernel": kernel,
        "stride": stride,
    }
    CHOICES: ClassVar[tuple[Choice, ...]] = (
        Choice("channels", channels),
        Choice("kernel", kernel, (3,)),
        Choice("stride", stride, (2,)),
    )

    channels: int
    kernel: int = 3
    stride: int = 2

    def out_channels(self, cin: int) -> int:
        return self.channels

    def _conv_size(self, size: int) -> int:
        return conv_out(size, self.kernel, self.stride, 0)

    def out_size(self, size: int) -> int:
        return _pooled(self._conv_size(size))

    def cost(self, cin: int, size: int) -> tuple[int, int]:
        c, k = self._conv_size(size), self.kernel
        return c * c * cin * self.channels * k * k, cin * self.channels * k * k + self.channels

    def features(self, cin: int, size: int) -> dict[str, float]:
        c = self._conv_size(size)
        return {
            "full_conv_macs": c * c * cin * self.channels * self.kernel**2,
            "activation_elems": cin * size * size + self.channels * (c * c + self.out_size(size) ** 2),
        }

    def row(self) -> Row:
        k = self.kernel
        return Row(f"conv2d {k}x{k}, maxpool", k, "", self.channels, False, "RE", self.stride)

    def modules(self, cin: int, norm: Norm) -> list[tuple[str, nn.Module]]:
        from torch import nn

        conv = nn.Conv2d(cin, self.channels, self.kernel, self.stride)
        return [("stem", conv), ("stem", nn.ReLU(inplace=True)), ("stem", max_pool(3, 2, ceil=True))]


@register
@dataclass(frozen=True, order=True)
class ConvClassifier(ClassifierPart):
    """Dropout -> 1x1 conv (bias) to the classes -> ReLU -> global pool: SqueezeNet's classifier."""

    OP: ClassVar[str] = "sqhead"
    KEY: ClassVar[tuple[tuple[str, str], ...]] = (("o", "classes"),)
    AXES: ClassVar[tuple[str, ...]] = ("cin", "classes")
    EXTRAPOLATED: ClassVar[bool] = True

    classes: int
    dropout: float = field(default=0.5, compare=False)

    def cost(self, cin: int, size: int) -> tuple[int, int]:
        return size * size * cin * self.classes, cin * self.classes + self.classes

    def features(self, cin: int, size: int) -> dict[str, float]:
        return {
            "conv1x1_macs": size * size * cin * self.classes,
            "activation_elems": (cin + self.classes) * size * size,
        }

    def row(self) -> Row:
        return Row(f"conv2d 1x1, pool ({self.classes})", 1, "", self.classes, False, "RE", 1)

    def reads(self, cin: int) -> Prunable | None:
        return Prunable((Slice(0, "1.weight", 1),))

    def modules(self, cin: int, norm: Norm) -> list[tuple[str, nn.Module]]:
        from torch import nn

        head = nn.Sequential(
            nn.Dropout(p=self.dropout), nn.Conv2d(cin, self.classes, 1), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1)
        )
        return [("classifier", head), ("flatten", nn.Flatten(1))]


@register
@dataclass(frozen=True, order=True)
class SqueezeHeadConfig(Part):
    TYPE: ClassVar[str] = "squeezenet"
    ROLE: ClassVar[str] = "head"
    SCHEMA: ClassVar[dict[str, Any]] = {"dropout": fraction}
    CHOICES: ClassVar[tuple[Choice, ...]] = (Choice("dropout", fraction, (0.5,)),)

    dropout: float = 0.5

    def op_parts(self, num_classes: int) -> tuple[OpPart, ...]:
        return (ConvClassifier(num_classes, self.dropout),)
