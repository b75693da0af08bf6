"""ShuffleNet V1 (Zhang et al. 2018): the unit with 1x1 group convs and a channel shuffle (``shufflenet``),
and the conv + max-pool stem ShuffleNet V1 and V2 share (``conv_pool``).

Unit: 1x1 group conv (``groups``; ungrouped where ``group_first`` is false: the paper's first unit, whose
input is only 24 channels) + BN + ReLU -> shuffle -> 3x3 depthwise (stride) + BN -> 1x1 group conv + BN;
added to the input, or at stride 2 concatenated with a 3x3/2 average pool of it (the branch then makes
``out - in`` channels); ReLU. The bottleneck is a quarter of the output width (``mid``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from nas._fields import Field
from nas.blocks._base import Choice, Norm, Part, Row, activation, channels, conv_out, flag, kernel, register, stride
from nas.blocks.mbv3 import StemConfig, conv_features, nl

if TYPE_CHECKING:
    from torch import nn


def _groups(f: Field) -> int:
    return f.integer(minimum=1)


@register
@dataclass(frozen=True, order=True)
class ShuffleUnitConfig(Part):
    TYPE: ClassVar[str] = "shufflenet"
    ROLE: ClassVar[str] = "block"
    OP: ClassVar[str] = "shuffle"
    KEY: ClassVar[tuple[tuple[str, str], ...]] = (
        ("o", "out"),
        ("m", "mid"),
        ("g", "groups"),
        ("s", "stride"),
        ("f", "group_first"),
    )
    AXES: ClassVar[tuple[str, ...]] = ("cin", "out", "mid")
    EXTRAPOLATED: ClassVar[bool] = True
    SCHEMA: ClassVar[dict[str, Any]] = {
        "out": channels,
        "mid": channels,
        "groups": _groups,
        "stride": stride,
        "group_first": flag,
    }
    CHOICES: ClassVar[tuple[Choice, ...]] = (Choice("groups", _groups, (3,)), Choice("group_first", flag, (True,)))

    out: int
    mid: int
    groups: int
    stride: int
    group_first: bool = True

    @classmethod
    def from_choices(cls, values: dict[str, Any], *, cin: int, width: int, stride: int) -> Part:
        return cls(width, width // 4, values["groups"], stride, values["group_first"]).checked(cin)

    def problem(self, cin: int) -> str | None:
        g, first = self.groups, self.groups if self.group_first else 1
        branch = self.out - cin if self.stride == 2 else self.out
        if self.stride == 1 and cin != self.out:
            return f"a stride-1 unit adds its input, so out ({self.out}) must equal the input width ({cin})"
        if branch < 1:
            return f"at stride 2 out ({self.out}) must exceed the input width ({cin}): the branch makes out - in"
        for name, width, groups in (("input", cin, first), ("mid", self.mid, g), ("branch (out - in)", branch, g)):
            if width % groups:
                return f"the {name} width {width} is not divisible by groups {groups}; use a multiple of {groups}"
        return None

    @staticmethod
    def check_width(width: int) -> str | None:
        return None if width >= 4 else "a ShuffleNet unit needs at least 4 channels (bottleneck = width / 4)"

    FIXED: ClassVar[str] = (
        "shufflenet: every width stays fixed (its 1x1 group convs need widths divisible by the groups, and the"
        " shuffle interleaves the groups' channels, so no single filter can go)"
    )

    def keeps_width(self, cin: int) -> bool:
        return self.stride == 1

    def out_channels(self, cin: int) -> int:
        return self.out

    def out_size(self, size: int) -> int:
        return conv_out(size, 3, self.stride)

    def _branch(self, cin: int) -> int:
        return self.out - cin if self.stride == 2 else self.out

    def cost(self, cin: int, size: int) -> tuple[int, int]:
        m, g, b, o2 = self.mid, self.groups, self._branch(cin), self.out_size(size) ** 2
        g1 = g if self.group_first else 1
        macs = size * size * cin * m // g1 + o2 * m * 9 + o2 * m * b // g
        return macs, cin * m // g1 + 2 * m + 9 * m + 2 * m + m * b // g + 2 * b

    def features(self, cin: int, size: int) -> dict[str, float]:
        m, g, b, o2 = self.mid, self.groups, self._branch(cin), self.out_size(size) ** 2
        g1 = g if self.group_first else 1
        return {
            "conv1x1_macs": size * size * cin * m / g1 + o2 * m * b / g,
            "dw3_macs": o2 * m * 9,
            "activation_elems": cin * size * size + m * size * size + m * o2 + 2 * self.out * o2,
        }

    def row(self) -> Row:
        return Row(f"shuffle unit g{self.groups}", 3, self.mid, self.out, False, "RE", self.stride)

    def modules(self, cin: int, norm: Norm) -> list[tuple[str, nn.Module]]:
        from nas.model._layers import ShuffleUnit

        unit = ShuffleUnit(cin, self.out, self.mid, self.groups, self.stride, self.group_first, norm)
        return [("block", unit)]


@register
@dataclass(frozen=True, order=True)
class PoolStemConfig(StemConfig):
    """Conv + BN + act, then a 3x3/2 max pool (padding 1): ShuffleNet's ``conv1`` and ``maxpool``."""

    TYPE: ClassVar[str] = "conv_pool"
    OP: ClassVar[str] = "cpstem"
    EXTRAPOLATED: ClassVar[bool] = True
    CHOICES: ClassVar[tuple[Choice, ...]] = (
        Choice("channels", channels),
        Choice("kernel", kernel, (3,)),
        Choice("stride", stride, (2,)),
        Choice("act", activation, ("relu",)),
    )

    act: str = "relu"

    def out_size(self, size: int) -> int:
        return conv_out(super().out_size(size), 3, 2)

    def features(self, cin: int, size: int) -> dict[str, float]:
        conv = super().out_size(size)
        f = conv_features(cin, self.channels, size, conv, self.kernel, self.act)
        f["activation_elems"] += self.channels * self.out_size(size) ** 2
        return f

    def cost(self, cin: int, size: int) -> tuple[int, int]:
        o = super().out_size(size)
        return o * o * cin * self.channels * self.kernel**2, cin * self.channels * self.kernel**2 + 2 * self.channels

    def row(self) -> Row:
        k = self.kernel
        return Row(f"conv2d {k}x{k}, maxpool", k, "", self.channels, False, nl(self.act), self.stride)

    def modules(self, cin: int, norm: Norm) -> list[tuple[str, nn.Module]]:
        from nas.blocks.pool import max_pool

        return [*super().modules(cin, norm), ("stem_pool", max_pool(3, 2, ceil=False))]
