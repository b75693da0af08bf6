"""ArchConfig: one network, fully explicit, as plain frozen dataclasses (no torch)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nas._fields import Field
from nas._files import write_text_atomic
from nas._paths import find_shipped
from nas._yaml import FlowMap, dump, read_mapping
from nas.blocks import DEFAULT_TYPE, Norm, Op, Part, parse_part, walk
from nas.blocks._base import resolution

LAYOUTS = ("features", "stages")
OFA_NET = "net.config"  # the architecture file of an OFA network's folder (next to run.config)


@dataclass(frozen=True)
class Unit:
    """One latency unit of a network with the sizes it sees: the walk that costs, ops and tables share."""

    kind: str  # the role of the part it belongs to: "stem" | "block" | "head"
    index: int  # block index for kind == "block", else the unit's place within its part
    op: Op
    macs: int
    params: int

    @property
    def in_size(self) -> int:
        return self.op.size

    @property
    def out_size(self) -> int:
        return self.op.out_size

    @property
    def in_channels(self) -> int:
        return self.op.cin

    @property
    def out_channels(self) -> int:
        return self.op.out


@dataclass(frozen=True)
class ArchConfig:
    """One network: a stem, blocks of any registered types, a head; YAML round-trips exactly and costs
    are analytic. ``norm`` and ``layout`` (torchvision's module names: ``features`` as in MobileNet and
    SqueezeNet, ``stages`` as in ShuffleNetV2) let a family's published weights load unchanged."""

    resolution: int
    num_classes: int
    stem: Part
    layers: tuple[Part, ...]
    head: Part
    name: str = field(default="", compare=False)
    norm: Norm = field(default_factory=Norm)
    layout: str = "features"

    # ---- YAML -------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ArchConfig:
        """A config file; shipped references also by project path (``search_spaces/reference/...``); and one of
        Once-for-All's published networks as OFA ships it (its folder, or the ``net.config`` in it), so every
        command that takes a config compares with the anchor without a conversion step."""
        path = find_shipped(path)
        ofa = Path(path) if Path(path).name == OFA_NET else Path(path) / OFA_NET
        if ofa.is_file():
            from nas.config._ofa import load_ofa_net  # it builds ArchConfigs: imported here, not at the top

            return load_ofa_net(ofa.parent)
        return cls.from_dict(read_mapping(path), source=str(path))

    def save(self, path: str | os.PathLike[str], *, comment: str = "") -> None:
        """Written atomically; ``comment`` lines head the file (what the config is, where it came from)."""
        header = "".join(f"# {line}\n".replace("# \n", "#\n") for line in comment.splitlines())
        write_text_atomic(path, header + dump(self.to_dict()))

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "<config>") -> ArchConfig:
        keys = Field(source, "", data).mapping(
            ["resolution", "num_classes", "stem", "layers", "head"], ["name", "norm", "layout"]
        )
        return parse_config(keys)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name} if self.name else {}
        data.update(
            resolution=self.resolution,
            num_classes=self.num_classes,
            stem=FlowMap(self.stem.to_dict(DEFAULT_TYPE["stem"])),
            layers=[FlowMap(layer.to_dict(DEFAULT_TYPE["block"])) for layer in self.layers],
            head=FlowMap(self.head.to_dict(DEFAULT_TYPE["head"])),
        )
        if self.norm != Norm():
            data["norm"] = FlowMap(vars(self.norm))
        if self.layout != "features":
            data["layout"] = self.layout
        return data

    # ---- sizes and costs ---------------------------------------------------------------------
    def parts(self) -> list[tuple[str, int, Part]]:
        """(role, block index, part) of the stem, every block and the head, in order."""
        blocks = [("block", i, layer) for i, layer in enumerate(self.layers)]
        return [("stem", 0, self.stem), *blocks, ("head", 0, self.head)]

    def _walk(self) -> Iterator[tuple[str, int, Op]]:
        """(role, index, op) of every latency unit in order: the index is the block's, or the op's place
        in the stem or head."""
        size, channels = self.resolution, 3
        for role, index, part in self.parts():
            for place, op in enumerate(walk(part, channels, size, self.num_classes)):
                yield role, index if role == "block" else place, op
                size, channels = op.out_size, op.out

    def units(self) -> list[Unit]:
        """Every latency unit in order (stem, blocks, the head's units) with its sizes, MACs and parameters."""
        return [Unit(role, index, op, *op.cost()) for role, index, op in self._walk()]

    def ops(self) -> list[Op]:
        """The latency units of the network, in order (without their costs: pricing a config is hot)."""
        return [op for _, _, op in self._walk()]

    def macs(self) -> int:
        """Multiply-accumulates of convolutions and linear layers (BN, activations, SE scaling excluded)."""
        return sum(unit.macs for unit in self.units())

    def params(self) -> int:
        """Trainable parameters, exactly as the built torch module counts them."""
        return sum(unit.params for unit in self.units())

    def block_inputs(self) -> list[int]:
        """Input channels of every block, in order."""
        return [unit.in_channels for unit in self.units() if unit.kind == "block"]

    def in_channels(self, index: int) -> int:
        """Input channels of block ``index``."""
        return self.block_inputs()[index]


# ---- parsing ------------------------------------------------------------------------------------
def parse_config(keys: dict[str, Field]) -> ArchConfig:
    norm = Norm()
    if "norm" in keys:
        n = keys["norm"].mapping(["eps", "momentum"])
        norm = Norm(n["eps"].number(minimum=0, positive=True), n["momentum"].number(minimum=0, below=1))
    config = ArchConfig(
        name=keys["name"].text() if "name" in keys else "",
        resolution=resolution(keys["resolution"]),
        num_classes=keys["num_classes"].integer(minimum=2),
        stem=parse_part("stem", keys["stem"]),
        layers=tuple(parse_part("block", item) for item in keys["layers"].items()),
        head=parse_part("head", keys["head"]),
        norm=norm,
        layout=keys["layout"].text(allowed=LAYOUTS) if "layout" in keys else "features",
    )
    fields = keys["layers"].items()
    for unit in config.units():
        if unit.kind == "block":
            config.layers[unit.index].check(fields[unit.index], unit.in_channels)
        if unit.out_size < 1:
            where = f"layers[{unit.index}]" if unit.kind == "block" else unit.kind
            raise keys["resolution"].error(
                f"{config.resolution} is too small: the feature map vanishes at {where}; use a larger resolution"
            )
    return config
