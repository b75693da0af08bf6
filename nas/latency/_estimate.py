"""An estimated table for a device we cannot reach: per-op transfer from published ARM measurements.

1. Transfer model: OFA's per-op latencies measured on a Samsung Note10 (arm64), explained by analytic
   cost features of each op (MACs by kind, activation traffic, SE, h-swish, classifier weights) and,
   optionally, the same op's latency measured here; non-negative least squares on relative error.
2. Apply it to every op of our x86 table (the default space) and of the reference configs.
3. Device factors: the transfer's compute part (MACs), h-swish part and the rest each get a non-negative
   factor, fitted to published Pixel-1 latencies (MobileNetV3-Large, -Small, and Large with ReLU only).

Everything it produces is labelled ``measured: false``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

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
    """Non-negative weights minimising the sum of squared relative errors."""
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


# ---- calibration on published whole-model latencies ---------------------------------------------------
GROUPS = ("compute", "hswish", "rest")
_GROUP_OF = {
    name: "compute"
    if name.endswith("mmacs") or name == "fc_mweights"
    else "hswish"
    if name == "hswish_melems"
    else "rest"
    for name in FEATURES
}


def group_parts(transfer: Transfer, op_list: Sequence[Op]) -> np.ndarray:
    """Summed transfer prediction of ``op_list``, split into (compute, hswish, rest)."""
    contributions = np.array([op_features(op) for op in op_list]).sum(axis=0) * np.array(transfer.weights)
    return np.array(
        [sum(c for name, c in zip(FEATURES, contributions, strict=True) if _GROUP_OF[name] == g) for g in GROUPS]
    )


def fit_factors(parts: np.ndarray, targets_ms: Sequence[float]) -> np.ndarray:
    """Non-negative factors per group minimising squared relative error over the anchors."""
    from scipy.optimize import nnls

    targets = np.asarray(targets_ms, dtype=float)
    factors, _ = nnls(parts / targets[:, None], np.ones(len(targets)))
    return factors


@dataclass(frozen=True)
class DeviceModel:
    """A transfer model plus device factors: prices any op without measuring it."""

    transfer: Transfer
    factors: tuple[float, float, float]

    def op_ms(self, op: Op) -> float:
        return float(group_parts(self.transfer, [op]) @ np.array(self.factors))

    def to_dict(self) -> dict[str, object]:
        return {
            "features": list(FEATURES),
            "weights": [round(w, 8) for w in self.transfer.weights],
            "groups": {name: _GROUP_OF[name] for name in FEATURES},
            "factors": dict(zip(GROUPS, (round(f, 6) for f in self.factors), strict=True)),
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> DeviceModel:
        transfer = Transfer(tuple(float(w) for w in data["weights"]), None, 0.0, 0.0, 0.0, 0)  # type: ignore[union-attr]
        factors = data["factors"]
        return cls(transfer, tuple(float(factors[g]) for g in GROUPS))  # type: ignore[index,return-value]
