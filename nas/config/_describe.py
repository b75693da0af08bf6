"""A config as a per-layer table, in the layout of the MobileNetV3 paper's Tables 1 and 2."""

from __future__ import annotations

from nas._table import format_table
from nas.config._arch import ArchConfig, Unit

_ACT = {"relu": "RE", "hswish": "HS"}
HEADERS = ("input", "operator", "kernel", "exp", "out", "SE", "NL", "stride", "MACs", "params")


def _row(config: ArchConfig, unit: Unit) -> list[object]:
    shape = f"{unit.in_size}x{unit.in_size}x{unit.in_channels}"
    if unit.kind == "stem":
        s = config.stem
        return [
            shape,
            f"conv2d {s.kernel}x{s.kernel}",
            s.kernel,
            "",
            s.channels,
            False,
            _ACT[s.act],
            s.stride,
            unit.macs,
            unit.params,
        ]
    if unit.kind == "block":
        layer = config.layers[unit.index]
        return [
            shape,
            f"bneck {layer.kernel}x{layer.kernel}",
            layer.kernel,
            layer.expanded,
            layer.out,
            layer.se,
            _ACT[layer.act],
            layer.stride,
            unit.macs,
            unit.params,
        ]
    head = config.head
    if unit.kind == "last":
        return [shape, "conv2d 1x1", 1, "", head.last_channels, False, _ACT[head.act], 1, unit.macs, unit.params]
    return [
        shape,
        f"pool, fc {head.hidden_channels}, fc {config.num_classes}",
        "",
        "",
        config.num_classes,
        False,
        _ACT[head.act],
        "",
        unit.macs,
        unit.params,
    ]


def describe_config(config: ArchConfig, *, markdown: bool = False) -> str:
    """Per-layer table with totals (MACs count convolutions and linear layers)."""
    units = config.units()
    rows = [_row(config, unit) for unit in units]
    rows.append(["total", f"{len(config.layers)} blocks", "", "", "", "", "", "", config.macs(), config.params()])
    title = f"{config.name or 'config'}: {config.resolution}x{config.resolution}, {config.num_classes} classes"
    return f"{title}\n{format_table(HEADERS, rows, markdown=markdown)}"
