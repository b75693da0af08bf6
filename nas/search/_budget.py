"""Latency budgets as users write them: ``60ms``, ``60 ms``, ``0.06s``, ``60`` (milliseconds)."""

from __future__ import annotations

import math
import re

from nas._errors import ArgumentError

_BUDGET = re.compile(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(ms|s)?\s*", re.IGNORECASE)


def parse_budget(budget: str | float, *, parameter: str = "budget_ms") -> float:
    """The budget in milliseconds: a number (ms) or text with a unit; a bare number means milliseconds."""
    if isinstance(budget, str):
        m = _BUDGET.fullmatch(budget)
        if m is None:
            raise ArgumentError(
                parameter, repr(budget), "not a latency; write it like 60ms, 60 ms, 0.06s or 60 (milliseconds)"
            )
        value = float(m.group(1)) * (1000.0 if (m.group(2) or "ms").lower() == "s" else 1.0)
    else:
        value = float(budget)
    if value <= 0 or not math.isfinite(value):
        raise ArgumentError(parameter, repr(budget), "must be a positive latency, e.g. 60ms")
    return value
