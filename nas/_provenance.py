"""What a result needs next to it to be reproduced: package versions and the latency table's metadata."""

from __future__ import annotations

import importlib.metadata
import platform
from typing import Any

from nas.latency import LatencyModel

TABLE_KEYS = ("target", "measured", "device", "cpu", "runtime", "threads", "date", "method", "space")


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in ("nas", "torch", "optuna", "onnxruntime", "onnx", "numpy"):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def table_record(table: LatencyModel) -> dict[str, Any]:
    return {"source": table.source, **{key: table.metadata.get(key) for key in TABLE_KEYS}}
