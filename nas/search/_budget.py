"""Latency budgets as users write them: ``60ms``, ``60 ms``, ``0.06s``, ``60`` (milliseconds)."""

from __future__ import annotations

import math
import re

from nas._errors import NasError

_BUDGET = re.compile(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(ms|s)?\s*", re.IGNORECASE)


def parse_budget(text: str) -> float:
    """The budget in milliseconds; a bare number means milliseconds."""
    m = _BUDGET.fullmatch(text)
    if m is None:
        raise NasError(f"--budget {text!r}: not a latency; write it like 60ms, 60 ms, 0.06s or 60 (milliseconds)")
    value = float(m.group(1)) * (1000.0 if (m.group(2) or "ms").lower() == "s" else 1.0)
    if value <= 0 or not math.isfinite(value):
        raise NasError(f"--budget {text!r}: must be a positive latency, e.g. 60ms")
    return value
