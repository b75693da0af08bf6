"""A config as a per-layer table, in the layout of the MobileNetV3 paper's Tables 1 and 2."""

from __future__ import annotations

from nas._table import format_table
from nas.config._arch import ArchConfig, Unit

HEADERS = ("input", "operator", "kernel", "exp", "out", "SE", "NL", "stride", "MACs", "params")


def _row(unit: Unit) -> list[object]:
    r = unit.op.part.row()
    shape = f"{unit.in_size}x{unit.in_size}x{unit.in_channels}"
    return [shape, r.operator, r.kernel, r.expanded, r.out, r.se, r.act, r.stride, unit.macs, unit.params]


def describe_config(config: ArchConfig, *, markdown: bool = False) -> str:
    """Per-layer table with totals (MACs count convolutions and linear layers)."""
    rows = [_row(unit) for unit in config.units()]
    rows.append(["total", f"{len(config.layers)} blocks", "", "", "", "", "", "", config.macs(), config.params()])
    title = f"{config.name or 'config'}: {config.resolution}x{config.resolution}, {config.num_classes} classes"
    return f"{title}\n{format_table(HEADERS, rows, markdown=markdown)}"
