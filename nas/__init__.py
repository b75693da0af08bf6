"""nas: hardware-aware neural architecture search over MobileNetV3-style networks.

Torch-free names import eagerly; ``build_model`` and ``export_onnx`` load torch on first use, so the
device-side latency tools can import ``nas`` where only numpy and onnxruntime are installed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nas._errors import ArgumentError, NasError, SpecError
from nas.config import ArchConfig
from nas.latency import LatencyTable
from nas.space import SearchSpace

if TYPE_CHECKING:
    from nas.model import build_model, export_onnx

__all__ = [
    "ArchConfig",
    "ArgumentError",
    "LatencyTable",
    "NasError",
    "SearchSpace",
    "SpecError",
    "build_model",
    "export_onnx",
]
__version__ = "0.1.0"

_LAZY = {"build_model": "nas.model", "export_onnx": "nas.model"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'nas' has no attribute {name!r}")
