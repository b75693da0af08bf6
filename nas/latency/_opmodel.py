"""Prices for ops a measured table lacks and cannot interpolate (NetAdapt's narrower widths, mostly).

Per op kind, latency = cost features . weights (non-negative, fitted on the table's own measured ops by
relative error; the features are the estimator's, nas/latency/_estimate.py). An op is then priced as
its nearest measured neighbour of the same shape (same kind, size, kernel, stride, ...: only channel
counts differ) times the model's ratio between the two, so the measured level is kept and the model
only carries the change; without such a neighbour, by the model alone. ``errors`` holds, per kind, the
mean error of pricing every measured op from its nearest other neighbour this way (what a modelled
price can be expected to miss by).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from nas.config import Op
from nas.latency._estimate import op_features


def relative_nnls(design: np.ndarray, target: np.ndarray, *, free_last: bool = False) -> np.ndarray:
    """Least squares on relative error with non-negative weights (the last one free with ``free_last``):
    drop the most negative column and refit until none is negative. numpy only, so a device can fit."""
    a, b = design / target[:, None], np.ones(len(target))
    active = list(range(design.shape[1]))
    while True:
        weights = np.zeros(design.shape[1])
        weights[active] = np.linalg.lstsq(a[:, active], b, rcond=None)[0]
        negative = [i for i in (active[:-1] if free_last else active) if weights[i] < 0]
        if not negative:
            return weights
        active.remove(min(negative, key=lambda i: weights[i]))


def _distance(a: dict[str, int], b: dict[str, int]) -> float:
    return sum(abs(np.log(b[axis] / a[axis])) for axis in a)


@dataclass(frozen=True)
class _Measured:
    op: Op
    ms: float
    modelled: float  # the model's price of the same op


def _raw(weights: dict[str, np.ndarray], op: Op) -> float | None:
    """The model's own price of ``op`` (None without weights for its kind, or a price of 0)."""
    kind_weights = weights.get(op.kind)
    if kind_weights is None:
        return None
    value = float(op_features(op) @ kind_weights)
    return value if value > 0 else None


@dataclass(frozen=True)
class OpModel:
    weights: dict[str, np.ndarray]
    groups: dict[tuple[Any, ...], list[_Measured]]
    errors: dict[str, float]

    def price(self, op: Op, *, skip: Op | None = None) -> float | None:
        """The op's modelled latency (ms), or None when no op of its kind was measured."""
        raw = _raw(self.weights, op)
        if raw is None:
            return None
        peers = [m for m in self.groups.get(op.shape(), []) if m.op != skip and m.modelled > 0]
        if not peers:
            return raw
        axes = op.axes()
        nearest = min(peers, key=lambda m: _distance(axes, m.op.axes()))
        return nearest.ms * raw / nearest.modelled


def fit_op_model(entries: dict[str, tuple[float, float, float, int]]) -> OpModel:
    """Fit on every measured op of a table; ``errors`` by leave-one-out over measured neighbours."""
    by_kind: dict[str, list[tuple[Op, float]]] = {}
    for key, row in entries.items():
        op = Op.parse(key)
        by_kind.setdefault(op.kind, []).append((op, row[0]))
    weights = {
        kind: relative_nnls(np.array([op_features(op) for op, _ in rows]), np.array([ms for _, ms in rows]))
        for kind, rows in by_kind.items()
    }
    groups: dict[tuple[Any, ...], list[_Measured]] = {}
    for rows in by_kind.values():
        for op, ms in rows:
            groups.setdefault(op.shape(), []).append(_Measured(op, ms, _raw(weights, op) or 0.0))
    unrated = OpModel(weights, groups, {})
    errors = {}
    for kind, rows in by_kind.items():
        misses = [abs(price - ms) / ms * 100 for op, ms in rows if (price := unrated.price(op, skip=op)) is not None]
        if len(misses) >= 5:
            errors[kind] = round(float(np.mean(misses)), 2)
    return OpModel(weights, groups, errors)
