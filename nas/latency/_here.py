"""Whole networks timed on this machine, for tables measured on this machine kind: the check that a
predicted speed-up is a real one."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from nas.config import ArchConfig
from nas.latency._table import LatencyModel, LatencyTable


def measures_here(table: LatencyModel) -> bool:
    """True when ``table`` was measured on this machine's CPU, so timing here checks its predictions."""
    from nas.latency.measure import machine

    return bool(table.measured) and table.metadata.get("cpu") == machine()["cpu"]


def measure_here(configs: Sequence[ArchConfig], table: LatencyModel) -> list[float] | None:
    """Each config exported (random weights) and timed with onnxruntime here, as the table was timed
    (same threads, same statistic); None when the table is not this machine's."""
    if not measures_here(table):
        return None
    from nas.latency.measure import notice_setup, time_onnx
    from nas.model import export_onnx

    if isinstance(table, LatencyTable):
        notice_setup(table)
    threads = int(table.metadata.get("threads", 1))
    with tempfile.TemporaryDirectory() as tmp:
        return [
            time_onnx(export_onnx(config, Path(tmp) / f"{i}.onnx"), threads=threads).ms
            for i, config in enumerate(configs)
        ]
