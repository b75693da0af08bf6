"""Prunable units of a network (NetAdapt as in MobileNetV3, Howard et al. 2019, section 4.2), asked of
each block type: (a) a width inside one block (an inverted residual's expanded width, a Fire module's
squeeze width); (b) a coupled output width: every block whose output is tied to its input (a residual
add, a pass-through) shrinks together with the block that starts the run, and the block after the run
reads the narrower width, so no residual breaks. Types whose widths cannot shrink say why (``FIXED``)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from nas.blocks import Part, Prunable
from nas.config import ArchConfig


@dataclass(frozen=True)
class Unit:
    kind: str  # "width", or the field of an internal width ("expanded", "squeeze")
    layers: tuple[int, ...]  # the layer whose internal width shrinks, or the layers whose outputs shrink together
    channels: int

    @property
    def name(self) -> str:
        if self.kind == "width":
            return f"layers{self.layers[0]}-{self.layers[-1]}.width"
        return f"layer{self.layers[0]}.{self.kind}"


def consumer_reads(config: ArchConfig, after: int, cin: int) -> Prunable | None:
    """How the part after block ``after`` reads its input (the head's first unit after the last block)."""
    if after + 1 < len(config.layers):
        return config.layers[after + 1].reads(cin)
    return config.head.op_parts(config.num_classes)[0].reads(cin)


def width_group(config: ArchConfig, start: int, cins: list[int]) -> list[int]:
    """Block ``start`` and the blocks after it whose output width is tied to their input's."""
    group = [start]
    while group[-1] + 1 < len(config.layers) and config.layers[group[-1] + 1].keeps_width(cins[group[-1] + 1]):
        group.append(group[-1] + 1)
    return group


def _width_prunable(config: ArchConfig, group: list[int], cins: list[int]) -> bool:
    starter: Part = config.layers[group[0]]
    if starter.keeps_width(cins[group[0]]) or not starter.WIDTH or starter.output(cins[group[0]]) is None:
        return False  # a run must start its skip path, or shrinking it would drop the residual that feeds it
    followers = [config.layers[j] for j in group[1:]]
    if any(f.reads(cins[j]) is None or f.output(cins[j]) is None for f, j in zip(followers, group[1:], strict=True)):
        return False
    return consumer_reads(config, group[-1], starter.out_channels(cins[group[0]])) is not None


def prunable_units(config: ArchConfig) -> list[Unit]:
    """Every unit that can shrink without breaking a residual or a block's structure."""
    cins = config.block_inputs()
    units = [
        Unit(field, (i,), getattr(layer, field))
        for i, layer in enumerate(config.layers)
        for field in layer.internal(cins[i])
    ]
    i = 0
    while i < len(config.layers):
        group = width_group(config, i, cins)
        if _width_prunable(config, group, cins):
            units.append(Unit("width", tuple(group), config.layers[i].out_channels(cins[i])))
        i = group[-1] + 1
    return units


def fixed_widths(config: ArchConfig) -> list[str]:
    """One line per block type of ``config`` whose widths NetAdapt leaves alone, saying why."""
    return sorted({layer.FIXED for layer in config.layers if layer.FIXED})


def shrink(config: ArchConfig, unit: Unit, channels: int) -> ArchConfig:
    """The config with ``unit`` at ``channels``."""
    layers = list(config.layers)
    for index in unit.layers:
        field = layers[index].WIDTH if unit.kind == "width" else unit.kind
        if field:
            layers[index] = replace(layers[index], **{field: channels})
    return replace(config, layers=tuple(layers))


def keeps_structure(config: ArchConfig, unit: Unit, channels: int) -> bool:
    """Whether ``unit`` at ``channels`` keeps every block's shape: an expanded width equal to the block's
    input width would drop its expand conv (MobileNetV3's convention), which weights cannot follow."""
    shrunk = shrink(config, unit, channels)
    before, after = config.block_inputs(), shrunk.block_inputs()
    return all(
        a.structure(ca) == b.structure(cb)
        for a, ca, b, cb in zip(config.layers, before, shrunk.layers, after, strict=True)
    )


def smallest(config: ArchConfig, unit: Unit, step: int) -> int:
    """The smallest width (a multiple of ``step``) ``unit`` can take without changing any block's shape."""
    return next(c for c in range(step, unit.channels + 1, step) if keeps_structure(config, unit, c))
