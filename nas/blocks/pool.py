"""Max pooling as a block (``maxpool``), for families that downsample between stages by pooling."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from nas.blocks._base import Choice, Norm, Part, Prunable, Row, conv_out, flag, kernel, register, stride

if TYPE_CHECKING:
    from torch import nn


@register
@dataclass(frozen=True, order=True)
class MaxPoolConfig(Part):
    """kxk max pool; ``ceil`` rounds the output side up without padding (SqueezeNet), else 'same' padding."""

    TYPE: ClassVar[str] = "maxpool"
    ROLE: ClassVar[str] = "block"
    OP: ClassVar[str] = "maxpool"
    KEY: ClassVar[tuple[tuple[str, str], ...]] = (("k", "kernel"), ("s", "stride"), ("c", "ceil"))
    AXES: ClassVar[tuple[str, ...]] = ("cin",)
    SCHEMA: ClassVar[dict[str, Any]] = {"kernel": kernel, "stride": stride, "ceil": flag}
    CHOICES: ClassVar[tuple[Choice, ...]] = (Choice("kernel", kernel, (3,)), Choice("ceil", flag, (False,)))

    kernel: int = 3
    stride: int = 2
    ceil: bool = False

    @classmethod
    def from_choices(cls, values: dict[str, Any], *, cin: int, width: int, stride: int) -> Part:
        if width != cin:
            raise ValueError("a max pool keeps the width; give this stage the previous stage's width")
        return cls(values["kernel"], stride, values["ceil"])

    def out_channels(self, cin: int) -> int:
        return cin

    def out_size(self, size: int) -> int:
        return conv_out(size, self.kernel, self.stride, 0 if self.ceil else None, ceil=self.ceil)

    def cost(self, cin: int, size: int) -> tuple[int, int]:
        return 0, 0

    def features(self, cin: int, size: int) -> dict[str, float]:
        return {"activation_elems": cin * (size * size + self.out_size(size) ** 2)}

    def row(self) -> Row:
        k = self.kernel
        return Row(f"maxpool {k}x{k}", k, "", "", False, "", self.stride)

    WIDTH: ClassVar[str] = ""

    def output(self, cin: int) -> Prunable | None:
        return Prunable(())  # passes its input's channels through

    def reads(self, cin: int) -> Prunable | None:
        return Prunable(())

    def keeps_width(self, cin: int) -> bool:
        return True

    def modules(self, cin: int, norm: Norm) -> list[tuple[str, nn.Module]]:
        return [("block", max_pool(self.kernel, self.stride, ceil=self.ceil))]


def max_pool(kernel: int, stride: int, *, ceil: bool) -> nn.Module:
    from torch import nn

    return nn.MaxPool2d(kernel, stride, 0 if ceil else (kernel - 1) // 2, ceil_mode=ceil)
