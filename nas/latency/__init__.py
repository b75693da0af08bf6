"""Latency lookup tables: per-op latencies measured with onnxruntime on the target device.

Torch-free at import: the device side (``nas.latency.measure``) runs with numpy + onnxruntime + yaml.
"""

from nas.config import Op, ops
from nas.latency._bounds import Bounds, space_bounds
from nas.latency._here import measure_here, measures_here
from nas.latency._table import Explanation, LatencyTable, OpLatency, Overhead, available_targets, fit_overhead

__all__ = [
    "Bounds",
    "Explanation",
    "LatencyTable",
    "Op",
    "OpLatency",
    "Overhead",
    "available_targets",
    "fit_overhead",
    "measure_here",
    "measures_here",
    "ops",
    "space_bounds",
]
