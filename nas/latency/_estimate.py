"""An estimated table for a device we cannot reach: an op cost model from published ARM measurements.

1. Op models: an ARM device's published per-op latencies explained by analytic cost features of each op
   (MACs by kind, activation traffic, SE, h-swish, classifier weights, a per-op constant), non-negative
   least squares on relative error, scored by leave-one-out error.
2. A feature that none of a device's measured ops exercise (Pixel 1's table has no SE and no h-swish)
   takes its weight from a device whose ops do.
3. Device factors, one per group of features, fitted to published whole-network latencies (anchors):
   they carry the model from the runtime that timed the ops to the one that timed the anchors.

Everything it produces is labelled ``measured: false``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from nas._fields import Field
from nas.config import Op

FEATURES = (
    "conv1x1_mmacs",
    "full_conv_mmacs",
    "dw3_mmacs",
    "dw5_mmacs",
    "dw7_mmacs",
    "se_melems",
    "hswish_melems",
    "activation_melems",
    "fc_mweights",
    "ops",
)


def op_features(op: Op) -> np.ndarray:
    """Cost features of one op, computed from its key alone (millions of MACs / elements / weights)."""
    named = op.features()
    values = np.array([named.get(name.replace("_m", "_", 1), 0.0) for name in FEATURES], dtype=float)
    values[:-1] /= 1e6
    values[-1] = 1.0
    return values


@dataclass(frozen=True)
class Transfer:
    """latency = features . weights (+ x86_weight * x86_ms); every weight >= 0."""

    weights: tuple[float, ...]
    x86_weight: float | None
    loo_mape: float
    loo_within10: float
    loo_worst: float
    samples: int

    def predict(self, op: Op, x86_ms: float | None = None) -> float:
        value = float(op_features(op) @ np.array(self.weights))
        if self.x86_weight is not None:
            value += self.x86_weight * float(x86_ms if x86_ms is not None else np.nan)
        return value


def _design(ops: Sequence[Op], x86: Sequence[float] | None) -> np.ndarray:
    rows = np.array([op_features(op) for op in ops])
    return rows if x86 is None else np.column_stack([rows, np.asarray(x86, dtype=float)])


def _fit(design: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Non-negative weights minimising the sum of squared relative errors (op weights, device factors)."""
    from scipy.optimize import nnls

    weights, _ = nnls(design / target[:, None], np.ones(len(target)))
    return weights


def fit_transfer(ops: Sequence[Op], target_ms: Sequence[float], x86_ms: Sequence[float] | None = None) -> Transfer:
    """Fit on all ops; report the leave-one-out relative error (each op predicted by a fit without it)."""
    design, target = _design(ops, x86_ms), np.asarray(target_ms, dtype=float)
    errors = np.empty(len(target))
    for k in range(len(target)):
        keep = np.arange(len(target)) != k
        errors[k] = abs(design[k] @ _fit(design[keep], target[keep]) - target[k]) / target[k] * 100
    weights = _fit(design, target)
    n = len(FEATURES)
    return Transfer(
        weights=tuple(float(w) for w in weights[:n]),
        x86_weight=float(weights[n]) if x86_ms is not None else None,
        loo_mape=float(errors.mean()),
        loo_within10=float((errors <= 10).mean() * 100),
        loo_worst=float(errors.max()),
        samples=len(target),
    )


def absent_features(ops: Sequence[Op]) -> frozenset[str]:
    """Features that are zero in every op of ``ops``: a fit on them cannot price these features."""
    design = np.array([op_features(op) for op in ops])
    return frozenset(name for name, column in zip(FEATURES, design.T, strict=True) if not column.any())


def is_compute(feature: str) -> bool:
    """MACs and classifier weights: the arithmetic part of an op's cost."""
    return feature.endswith("mmacs") or feature == "fc_mweights"


def borrowing_model(ops: Sequence[Op], own: Transfer, donor: Transfer, *, donor_group: str) -> DeviceModel:
    """An uncalibrated model with ``own``'s weights (fitted on ``ops``) for the features ``ops`` exercise
    and ``donor``'s for the rest; groups: compute, rest (own), ``donor_group`` (borrowed)."""
    borrowed = absent_features(ops)
    weights = zip(FEATURES, own.weights, donor.weights, strict=True)
    return DeviceModel(
        tuple(d if name in borrowed else o for name, o, d in weights),
        tuple(donor_group if name in borrowed else "compute" if is_compute(name) else "rest" for name in FEATURES),
    )


@dataclass(frozen=True)
class DeviceModel:
    """Per-feature weights, each feature's group, and a factor per group: prices any op without
    measuring it as ``sum over groups of factor * (features of the group . their weights)``."""

    weights: tuple[float, ...]  # one per FEATURES
    groups: tuple[str, ...]  # one per FEATURES
    factors: tuple[float, ...] = ()  # one per ``group_names``; empty until calibrated

    @property
    def group_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.groups))

    def parts(self, op_list: Sequence[Op]) -> np.ndarray:
        """Summed weighted features of ``op_list`` per group (before the factors)."""
        contributions = np.array([op_features(op) for op in op_list]).sum(axis=0) * np.array(self.weights)
        return np.array([contributions[np.array(self.groups) == g].sum() for g in self.group_names])

    def op_ms(self, op: Op) -> float:
        return float(self.parts([op]) @ np.array(self.factors))

    def calibrated(self, anchors: Sequence[tuple[Sequence[Op], float]]) -> DeviceModel:
        """Non-negative factors minimising the squared relative error over ``anchors`` (ops, published ms)."""
        parts = np.array([self.parts(op_list) for op_list, _ in anchors])
        factors = _fit(parts, np.array([ms for _, ms in anchors]))
        return DeviceModel(self.weights, self.groups, tuple(float(f) for f in factors))

    def cross_validated(self, anchors: Sequence[tuple[Sequence[Op], float]]) -> list[float]:
        """Each anchor's error (%) under factors fitted to the other anchors only."""
        errors = []
        for k, (op_list, ms) in enumerate(anchors):
            others = [anchor for j, anchor in enumerate(anchors) if j != k]
            errors.append((sum(self.calibrated(others).op_ms(op) for op in op_list) / ms - 1) * 100)
        return errors

    def to_dict(self) -> dict[str, object]:
        return {
            "features": list(FEATURES),
            "weights": [round(w, 8) for w in self.weights],
            "groups": dict(zip(FEATURES, self.groups, strict=True)),
            "factors": dict(zip(self.group_names, (round(f, 6) for f in self.factors), strict=True)),
        }

    @classmethod
    def from_field(cls, field: Field) -> DeviceModel:
        """The model of a table's ``metadata.model``, checked (a table is user input)."""
        keys = field.mapping(["weights", "groups", "factors"], ["features"])
        if "features" in keys and keys["features"].value != list(FEATURES):
            raise keys["features"].error(f"expected {list(FEATURES)} (this nas's features); rebuild the table")
        weights = [item.number(minimum=0) for item in keys["weights"].items()]
        if len(weights) != len(FEATURES):
            raise keys["weights"].error(f"expected {len(FEATURES)} weights, one per feature; rebuild the table")
        named = keys["groups"].mapping(list(FEATURES))
        groups = tuple(named[name].text() for name in FEATURES)
        names = list(dict.fromkeys(groups))
        factors = keys["factors"].mapping(names)
        return cls(tuple(weights), groups, tuple(factors[g].number(minimum=0) for g in names))
