"""MobileNetV1 (Howard et al. 2017): the depthwise-separable convolution, ``dsconv``. Depthwise kxk + BN +
act, then pointwise 1x1 + BN + act (named ``conv_dw``, ``conv_pw`` as in timm)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from nas.blocks._base import (
    Choice,
    Norm,
    Part,
    Prunable,
    Row,
    Slice,
    activation,
    channels,
    conv_bn,
    conv_out,
    kernel,
    register,
    stride,
)
from nas.blocks.mbv3 import nl

if TYPE_CHECKING:
    from torch import nn


@register
@dataclass(frozen=True, order=True)
class DepthwiseSeparableConfig(Part):
    TYPE: ClassVar[str] = "dsconv"
    ROLE: ClassVar[str] = "block"
    OP: ClassVar[str] = "dsconv"
    KEY: ClassVar[tuple[tuple[str, str], ...]] = (("o", "out"), ("k", "kernel"), ("s", "stride"))
    AXES: ClassVar[tuple[str, ...]] = ("cin", "out")
    SCHEMA: ClassVar[dict[str, Any]] = {"out": channels, "stride": stride, "kernel": kernel, "act": activation}
    CHOICES: ClassVar[tuple[Choice, ...]] = (Choice("kernel", kernel, (3,)), Choice("act", activation, ("relu",)))

    out: int
    stride: int
    kernel: int = 3
    act: str = "relu"

    @classmethod
    def from_choices(cls, values: dict[str, Any], *, cin: int, width: int, stride: int) -> Part:
        return cls(width, stride, values["kernel"], values["act"])

    def out_channels(self, cin: int) -> int:
        return self.out

    def out_size(self, size: int) -> int:
        return conv_out(size, self.kernel, self.stride)

    def cost(self, cin: int, size: int) -> tuple[int, int]:
        o, k = self.out_size(size), self.kernel
        return o * o * cin * (k * k + self.out), cin * k * k + 2 * cin + cin * self.out + 2 * self.out

    def features(self, cin: int, size: int) -> dict[str, float]:
        o = self.out_size(size) ** 2
        hswish = self.act == "hswish"
        return {
            f"dw{self.kernel}_macs": o * cin * self.kernel**2,
            "conv1x1_macs": o * cin * self.out,
            "activation_elems": cin * size * size + cin * o + self.out * o,
            "hswish_elems": (cin + self.out) * o * hswish,
        }

    def row(self) -> Row:
        k = self.kernel
        return Row(f"conv dw {k}x{k}, conv 1x1", k, "", self.out, False, nl(self.act), self.stride)

    def output(self, cin: int) -> Prunable | None:
        return Prunable(tuple(conv_bn("conv_pw")))

    def reads(self, cin: int) -> Prunable | None:
        """A narrower input narrows the depthwise conv with it."""
        return Prunable((*conv_bn("conv_dw", norm=False), Slice(-1, "conv_pw.0.weight", 1)))

    def modules(self, cin: int, norm: Norm) -> list[tuple[str, nn.Module]]:
        from nas.model._layers import DepthwiseSeparable

        return [("block", DepthwiseSeparable(cin, self.out, self.kernel, self.stride, self.act, norm))]
