"""ShuffleNetV2 (Ma et al. 2018): the unit ``shufflenetv2``. Stride 1: split the channels in half, one half
through 1x1 + BN + ReLU, kxk depthwise + BN, 1x1 + BN + ReLU, concat with the other half; stride 2: both
branches see the whole input (branch1: depthwise + BN, 1x1 + BN + ReLU); then a 2-group channel shuffle.
torchvision's layout (``branch1``, ``branch2`` as flat sequences), so its weights load by name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from nas.blocks._base import Choice, Norm, Part, Prunable, Row, Slice, channels, conv_out, kernel, register, stride

if TYPE_CHECKING:
    from torch import nn


@register
@dataclass(frozen=True, order=True)
class ShuffleV2UnitConfig(Part):
    TYPE: ClassVar[str] = "shufflenetv2"
    ROLE: ClassVar[str] = "block"
    OP: ClassVar[str] = "shuffle2"
    KEY: ClassVar[tuple[tuple[str, str], ...]] = (("o", "out"), ("k", "kernel"), ("s", "stride"))
    AXES: ClassVar[tuple[str, ...]] = ("cin", "out")
    EXTRAPOLATED: ClassVar[bool] = True
    SCHEMA: ClassVar[dict[str, Any]] = {"out": channels, "stride": stride, "kernel": kernel}
    CHOICES: ClassVar[tuple[Choice, ...]] = (Choice("kernel", kernel, (3,)),)

    out: int
    stride: int
    kernel: int = 3

    @classmethod
    def from_choices(cls, values: dict[str, Any], *, cin: int, width: int, stride: int) -> Part:
        return cls(width, stride, values["kernel"]).checked(cin)

    @staticmethod
    def check_width(width: int) -> str | None:
        return None if width % 2 == 0 else "a ShuffleNetV2 width must be even (two halves); use an even width"

    def problem(self, cin: int) -> str | None:
        if problem := self.check_width(self.out):
            return f"out {self.out}: {problem}"
        if self.stride == 1 and cin != self.out:
            return f"a stride-1 unit keeps half its input, so out ({self.out}) must equal the input width ({cin})"
        return None

    FIXED: ClassVar[str] = (
        "shufflenetv2: its widths stay fixed (a unit splits its channels in half and shuffles the concatenation,"
        " which ties each width to both halves); a stride-2 unit narrows the input it reads"
    )

    def keeps_width(self, cin: int) -> bool:
        return self.stride == 1

    def reads(self, cin: int) -> Prunable | None:
        if self.stride == 1:
            return None
        dw = [Slice(-1, "branch1.0.weight", 0), *(Slice(-1, f"branch1.1.{n}", 0) for n in ("weight", "bias"))]
        dw += [Slice(-1, f"branch1.1.{n}", 0) for n in ("running_mean", "running_var")]
        return Prunable((*dw, Slice(-1, "branch1.2.weight", 1), Slice(-1, "branch2.0.weight", 1)))

    def out_channels(self, cin: int) -> int:
        return self.out

    def out_size(self, size: int) -> int:
        return conv_out(size, self.kernel, self.stride)

    def cost(self, cin: int, size: int) -> tuple[int, int]:
        b, k2, o2, s2 = self.out // 2, self.kernel**2, self.out_size(size) ** 2, size * size
        if self.stride == 1:
            return s2 * b * (2 * b + k2), 2 * b * b + b * k2 + 6 * b
        branch1 = o2 * cin * (k2 + b), cin * k2 + 2 * cin + cin * b + 2 * b
        branch2 = s2 * cin * b + o2 * b * (k2 + b), cin * b + b * k2 + b * b + 6 * b
        return branch1[0] + branch2[0], branch1[1] + branch2[1]

    def features(self, cin: int, size: int) -> dict[str, float]:
        b, o2, s2 = self.out // 2, self.out_size(size) ** 2, size * size
        dw = f"dw{self.kernel}_macs"
        if self.stride == 1:
            return {"conv1x1_macs": 2 * s2 * b * b, dw: s2 * b * self.kernel**2, "activation_elems": 4 * b * s2}
        return {
            "conv1x1_macs": o2 * cin * b + s2 * cin * b + o2 * b * b,
            dw: o2 * (cin + b) * self.kernel**2,
            "activation_elems": cin * s2 + b * s2 + 2 * self.out * o2,
        }

    def row(self) -> Row:
        k = self.kernel
        return Row(f"shufflev2 unit {k}x{k}", k, self.out // 2, self.out, False, "RE", self.stride)

    def modules(self, cin: int, norm: Norm) -> list[tuple[str, nn.Module]]:
        from nas.model._layers import ShuffleV2Unit

        return [("block", ShuffleV2Unit(cin, self.out, self.kernel, self.stride, norm))]
