"""Latency lookup tables: per-op latencies measured with onnxruntime on the target device.

Torch-free at import: the device side (``nas.latency.measure``) runs with numpy + onnxruntime + yaml.
"""

from nas.config import Op, ops
from nas.latency._bounds import Bounds, space_bounds
from nas.latency._here import measure_here, measures_here
from nas.latency._table import (
    EstimatedTable,
    Explanation,
    LatencyModel,
    LatencyTable,
    MeasuredTable,
    OpLatency,
    Overhead,
    UnpricedOpError,
    available_targets,
    fit_overhead,
    latency_basis,
    load_latency,
)

__all__ = [
    "Bounds",
    "EstimatedTable",
    "Explanation",
    "LatencyModel",
    "LatencyTable",
    "MeasuredTable",
    "Op",
    "OpLatency",
    "Overhead",
    "UnpricedOpError",
    "available_targets",
    "fit_overhead",
    "latency_basis",
    "load_latency",
    "measure_here",
    "measures_here",
    "ops",
    "space_bounds",
]
