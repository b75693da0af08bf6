"""ArchConfig: one network, fully explicit, as plain frozen dataclasses (no torch)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from nas._fields import Field
from nas._paths import find_shipped
from nas._yaml import FlowMap, read_mapping, write_yaml

ACTIVATIONS = ("relu", "hswish")
KERNELS = (3, 5, 7)
STRIDES = (1, 2)


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round channels to a multiple of ``divisor`` without losing more than 10 % (MobileNet convention)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def se_channels(expanded: int) -> int:
    """Squeeze width of the SE module, as torchvision's MobileNetV3: make_divisible(expanded // 4, 8)."""
    return make_divisible(expanded // 4, 8)


def conv_out(size: int, kernel: int, stride: int) -> int:
    """Output size of a 'same'-padded convolution (padding = (kernel - 1) // 2)."""
    return (size + 2 * ((kernel - 1) // 2) - kernel) // stride + 1


@dataclass(frozen=True)
class StemConfig:
    """The first full convolution (3 input channels)."""

    channels: int
    kernel: int = 3
    stride: int = 2
    act: str = "hswish"


@dataclass(frozen=True)
class LayerConfig:
    """One inverted-residual block: expand 1x1 -> depthwise kxk -> optional SE -> project 1x1."""

    kernel: int
    expanded: int
    out: int
    stride: int
    se: bool
    act: str


@dataclass(frozen=True)
class HeadConfig:
    """Last 1x1 conv (with BN) -> global pool -> hidden linear (no BN) -> dropout -> classifier."""

    last_channels: int
    hidden_channels: int
    act: str = "hswish"
    dropout: float = 0.2


@dataclass(frozen=True)
class Unit:
    """One piece of a network with the sizes it sees: the walk that costs, latency ops and tables share."""

    kind: str  # "stem" | "block" | "last" | "head"
    index: int  # block index for kind == "block", else 0
    in_size: int
    out_size: int
    in_channels: int
    out_channels: int
    macs: int
    params: int


@dataclass(frozen=True)
class ArchConfig:
    """One network of the MobileNetV3 family; YAML round-trips exactly and costs are analytic."""

    resolution: int
    num_classes: int
    stem: StemConfig
    layers: tuple[LayerConfig, ...]
    head: HeadConfig
    name: str = field(default="", compare=False)

    # ---- YAML -------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ArchConfig:
        """A config file; shipped references also by project path (``search_spaces/reference/...``)."""
        path = find_shipped(path)
        return cls.from_dict(read_mapping(path), source=str(path))

    def save(self, path: str | os.PathLike[str]) -> None:
        write_yaml(path, self.to_dict())

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "<config>") -> ArchConfig:
        keys = Field(source, "", data).mapping(["resolution", "num_classes", "stem", "layers", "head"], ["name"])
        return parse_config(keys)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name} if self.name else {}
        data.update(
            resolution=self.resolution,
            num_classes=self.num_classes,
            stem=FlowMap(vars(self.stem)),
            layers=[FlowMap(vars(layer)) for layer in self.layers],
            head=FlowMap(vars(self.head)),
        )
        return data

    # ---- sizes and costs ---------------------------------------------------------------------
    def units(self) -> list[Unit]:
        """Stem, every block, last conv and head, with input/output sizes, MACs and parameters."""
        stem, head = self.stem, self.head
        size = conv_out(self.resolution, stem.kernel, stem.stride)
        units = [
            Unit(
                "stem",
                0,
                self.resolution,
                size,
                3,
                stem.channels,
                size * size * 3 * stem.channels * stem.kernel**2,
                3 * stem.channels * stem.kernel**2 + 2 * stem.channels,
            ),
        ]
        channels = stem.channels
        for i, layer in enumerate(self.layers):
            out_size = conv_out(size, layer.kernel, layer.stride)
            macs, params = block_cost(channels, layer, size, out_size)
            units.append(Unit("block", i, size, out_size, channels, layer.out, macs, params))
            size, channels = out_size, layer.out
        units.append(
            Unit(
                "last",
                0,
                size,
                size,
                channels,
                head.last_channels,
                size * size * channels * head.last_channels,
                channels * head.last_channels + 2 * head.last_channels,
            )
        )
        hidden, classes = head.hidden_channels, self.num_classes
        units.append(
            Unit(
                "head",
                0,
                size,
                1,
                head.last_channels,
                classes,
                head.last_channels * hidden + hidden * classes,
                head.last_channels * hidden + hidden + hidden * classes + classes,
            )
        )
        return units

    def macs(self) -> int:
        """Multiply-accumulates of convolutions and linear layers (BN, activations, SE scaling excluded)."""
        return sum(unit.macs for unit in self.units())

    def params(self) -> int:
        """Trainable parameters, exactly as the built torch module counts them."""
        return sum(unit.params for unit in self.units())

    def in_channels(self, index: int) -> int:
        """Input channels of block ``index``."""
        return self.layers[index - 1].out if index > 0 else self.stem.channels


def block_cost(in_channels: int, layer: LayerConfig, in_size: int, out_size: int) -> tuple[int, int]:
    """(MACs, params) of one inverted-residual block."""
    exp, out, k = layer.expanded, layer.out, layer.kernel
    macs = out_size * out_size * exp * (k * k + out)
    params = exp * k * k + 2 * exp + exp * out + 2 * out
    if exp != in_channels:
        macs += in_size * in_size * in_channels * exp
        params += in_channels * exp + 2 * exp
    if layer.se:
        squeeze = se_channels(exp)
        macs += 2 * exp * squeeze
        params += 2 * exp * squeeze + squeeze + exp
    return macs, params


# ---- parsing ------------------------------------------------------------------------------------
def _channels(f: Field) -> int:
    return f.integer(minimum=1)


def parse_config(keys: dict[str, Field]) -> ArchConfig:
    stem = keys["stem"].mapping(["channels"], ["kernel", "stride", "act"])
    layers = [item.mapping(["kernel", "expanded", "out", "stride", "se", "act"]) for item in keys["layers"].items()]
    head = keys["head"].mapping(["last_channels", "hidden_channels"], ["act", "dropout"])
    return ArchConfig(
        name=keys["name"].text() if "name" in keys else "",
        resolution=keys["resolution"].integer(minimum=8),
        num_classes=keys["num_classes"].integer(minimum=2),
        stem=StemConfig(
            channels=_channels(stem["channels"]),
            kernel=stem["kernel"].integer(allowed=KERNELS) if "kernel" in stem else 3,
            stride=stem["stride"].integer(allowed=STRIDES) if "stride" in stem else 2,
            act=stem["act"].text(allowed=ACTIVATIONS) if "act" in stem else "hswish",
        ),
        layers=tuple(
            LayerConfig(
                kernel=layer["kernel"].integer(allowed=KERNELS),
                expanded=_channels(layer["expanded"]),
                out=_channels(layer["out"]),
                stride=layer["stride"].integer(allowed=STRIDES),
                se=layer["se"].boolean(),
                act=layer["act"].text(allowed=ACTIVATIONS),
            )
            for layer in layers
        ),
        head=HeadConfig(
            last_channels=_channels(head["last_channels"]),
            hidden_channels=_channels(head["hidden_channels"]),
            act=head["act"].text(allowed=ACTIVATIONS) if "act" in head else "hswish",
            dropout=head["dropout"].number(minimum=0.0, below=1.0) if "dropout" in head else 0.2,
        ),
    )
