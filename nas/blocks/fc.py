"""The conv-pool-FC head (``fc``): an optional last 1x1 conv + BN + act, global pool, optional dropout, one
linear layer. MobileNetV2 (last conv 1280, ReLU6, dropout 0.2), ShuffleNetV2 (``conv5``, ReLU, no dropout),
MobileNetV1 and ShuffleNet V1 (no last conv)."""

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
    activation,
    fraction,
    register,
)
from nas.blocks.mbv3 import LastConv

if TYPE_CHECKING:
    from torch import nn


def _width_or_none(f: Any) -> int:
    return f.integer(minimum=0)


@register
@dataclass(frozen=True, order=True)
class LinearClassifier(ClassifierPart):
    """Global pool -> dropout -> linear to the classes (a bare ``Linear`` without dropout, as ShuffleNetV2)."""

    OP: ClassVar[str] = "fc"
    KEY: ClassVar[tuple[tuple[str, str], ...]] = (("o", "classes"),)
    AXES: ClassVar[tuple[str, ...]] = ("cin", "classes")

    classes: int
    dropout: float = field(default=0.0, compare=False)

    def cost(self, cin: int, size: int) -> tuple[int, int]:
        return cin * self.classes, cin * self.classes + self.classes

    def features(self, cin: int, size: int) -> dict[str, float]:
        return {"fc_weights": cin * self.classes, "activation_elems": cin * size * size}

    def row(self) -> Row:
        return Row(f"pool, fc {self.classes}", out=self.classes)

    def reads(self, cin: int) -> Prunable | None:
        return Prunable((Slice(-1, "1.weight" if self.dropout > 0 else "weight", 1),))

    def modules(self, cin: int, norm: Norm) -> list[tuple[str, nn.Module]]:
        from torch import nn

        from nas.model._layers import GlobalPool

        linear = nn.Linear(cin, self.classes)
        head = nn.Sequential(nn.Dropout(p=self.dropout), linear) if self.dropout > 0 else linear
        return [("pool", GlobalPool()), ("classifier", head)]


@register
@dataclass(frozen=True, order=True)
class FcHeadConfig(Part):
    TYPE: ClassVar[str] = "fc"
    ROLE: ClassVar[str] = "head"
    SCHEMA: ClassVar[dict[str, Any]] = {"last_channels": _width_or_none, "act": activation, "dropout": fraction}
    CHOICES: ClassVar[tuple[Choice, ...]] = (
        Choice("last_channels", _width_or_none, (0,)),
        Choice("act", activation, ("relu",)),
        Choice("dropout", fraction, (0.0,)),
    )

    last_channels: int = 0  # 0: no last conv
    act: str = "relu"
    dropout: float = 0.0

    def op_parts(self, num_classes: int) -> tuple[OpPart, ...]:
        classifier = LinearClassifier(num_classes, self.dropout)
        return (LastConv(self.last_channels, self.act), classifier) if self.last_channels else (classifier,)
