"""Prunable units of a network (NetAdapt as in MobileNetV3, Howard et al. 2019, section 4.2):
(a) one layer's expanded channels; (b) one residual-coupled width: every layer whose output is added
to the same skip path shrinks together with the layer that starts the path, so no residual breaks."""

from __future__ import annotations

from dataclasses import dataclass, replace

from nas.config import ArchConfig


@dataclass(frozen=True)
class Unit:
    kind: str  # "expanded" | "width"
    layers: tuple[int, ...]  # the layer whose expansion shrinks, or the layers whose outputs shrink together
    channels: int

    @property
    def name(self) -> str:
        if self.kind == "expanded":
            return f"layer{self.layers[0]}.expanded"
        return f"layers{self.layers[0]}-{self.layers[-1]}.width"


def _has_expand(config: ArchConfig, index: int) -> bool:
    return config.layers[index].expanded != config.in_channels(index)


def prunable_units(config: ArchConfig) -> list[Unit]:
    """Every unit that can shrink without touching a layer whose expansion is tied to its input width."""
    units = [Unit("expanded", (i,), layer.expanded) for i, layer in enumerate(config.layers) if _has_expand(config, i)]
    i = 0
    while i < len(config.layers):
        group = [i]
        while (
            group[-1] + 1 < len(config.layers)
            and config.layers[group[-1] + 1].stride == 1
            and config.layers[group[-1] + 1].out == config.layers[i].out
        ):
            group.append(group[-1] + 1)
        consumers = [*group[1:], *([group[-1] + 1] if group[-1] + 1 < len(config.layers) else [])]
        starts_path = not (config.layers[i].stride == 1 and config.in_channels(i) == config.layers[i].out)
        # a group must start its skip path (else shrinking it would drop the residual that feeds it), and
        # widths feeding a layer without an expand conv (depthwise width = input width) stay fixed
        if starts_path and all(_has_expand(config, j) for j in consumers):
            units.append(Unit("width", tuple(group), config.layers[i].out))
        i = group[-1] + 1
    return units


def shrink(config: ArchConfig, unit: Unit, channels: int) -> ArchConfig:
    """The config with ``unit`` at ``channels``."""
    layers = list(config.layers)
    for index in unit.layers:
        field = "expanded" if unit.kind == "expanded" else "out"
        layers[index] = replace(layers[index], **{field: channels})
    return replace(config, layers=tuple(layers))


def keeps_structure(config: ArchConfig, unit: Unit, channels: int) -> bool:
    """Whether ``unit`` at ``channels`` keeps every block's shape: an expanded width equal to the block's
    input width would drop its expand conv (MobileNetV3's convention), which weights cannot follow."""
    if unit.kind == "expanded":
        return channels != config.in_channels(unit.layers[0])
    readers = [*unit.layers[1:], unit.layers[-1] + 1]
    return all(config.layers[j].expanded != channels for j in readers if j < len(config.layers))


def smallest(config: ArchConfig, unit: Unit, step: int) -> int:
    """The smallest width (a multiple of ``step``) ``unit`` can take without changing any block's shape."""
    return next(c for c in range(step, unit.channels + 1, step) if keeps_structure(config, unit, c))
