"""MobileNetV2 (Sandler et al. 2018): the linear bottleneck, ``mbv2``. Expand 1x1 + ReLU6 (none when the
expanded width equals the input's), depthwise + ReLU6, linear 1x1 projection, skip at stride 1 and equal
width. torchvision's module layout, so ``mobilenet_v2`` weights load by name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from nas.blocks._base import Choice, Norm, Part, Prunable, Row, Slice, channels, conv_out, kernel, register, stride
from nas.blocks.mbv3 import bottleneck_cost, bottleneck_features, bottleneck_widths, expansion

if TYPE_CHECKING:
    from torch import nn


@register
@dataclass(frozen=True, order=True)
class LinearBottleneckConfig(Part):
    TYPE: ClassVar[str] = "mbv2"
    ROLE: ClassVar[str] = "block"
    OP: ClassVar[str] = "mbv2"
    KEY: ClassVar[tuple[tuple[str, str], ...]] = (("e", "expanded"), ("o", "out"), ("k", "kernel"), ("s", "stride"))
    AXES: ClassVar[tuple[str, ...]] = ("cin", "expanded", "out")
    SCHEMA: ClassVar[dict[str, Any]] = {"expanded": channels, "out": channels, "stride": stride, "kernel": kernel}
    CHOICES: ClassVar[tuple[Choice, ...]] = (Choice("kernel", kernel, (3,)), Choice("expansion", expansion))

    expanded: int
    out: int
    stride: int
    kernel: int = 3

    @classmethod
    def from_choices(cls, values: dict[str, Any], *, cin: int, width: int, stride: int) -> Part:
        ratio = values["expansion"]
        return cls(cin if ratio == 1 else round(cin * ratio), width, stride, values["kernel"])  # torchvision rounds

    def out_channels(self, cin: int) -> int:
        return self.out

    def out_size(self, size: int) -> int:
        return conv_out(size, self.kernel, self.stride)

    def cost(self, cin: int, size: int) -> tuple[int, int]:
        return bottleneck_cost(cin, self.expanded, self.out, self.kernel, size, self.out_size(size), se=False)

    def features(self, cin: int, size: int) -> dict[str, float]:
        o = self.out_size(size)
        return bottleneck_features(cin, self.expanded, self.out, self.kernel, size, o, se=False, act="relu6")

    def row(self) -> Row:
        k = self.kernel
        return Row(f"bottleneck {k}x{k}", k, self.expanded, self.out, False, "R6", self.stride)

    def _project(self, cin: int) -> int:
        """Index of the bare projection conv in ``conv`` (its BN follows)."""
        return 2 if self.expanded != cin else 1

    def internal(self, cin: int) -> dict[str, Prunable]:
        j = self._project(cin)
        widths = bottleneck_widths("conv.0" if j == 2 else None, f"conv.{j - 1}", f"conv.{j}", None)
        return {"expanded": widths} if widths else {}

    def output(self, cin: int) -> Prunable | None:
        j = self._project(cin)
        bn = (Slice(-1, f"conv.{j + 1}.{name}", 0) for name in ("weight", "bias", "running_mean", "running_var"))
        return Prunable((Slice(-1, f"conv.{j}.weight", 0, True), *bn))

    def reads(self, cin: int) -> Prunable | None:
        return Prunable((Slice(-1, "conv.0.0.weight", 1),)) if self.expanded != cin else None

    def keeps_width(self, cin: int) -> bool:
        return self.stride == 1 and cin == self.out

    def structure(self, cin: int) -> tuple[object, ...]:
        return (self.expanded == cin,)

    def modules(self, cin: int, norm: Norm) -> list[tuple[str, nn.Module]]:
        from nas.model._layers import LinearBottleneck

        return [("block", LinearBottleneck(cin, self.expanded, self.out, self.kernel, self.stride, norm))]
