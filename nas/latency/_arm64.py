"""The estimated ``arm64`` table: a Pixel-1-class phone CPU (one big core, float32, batch 1).

No ARM device is reachable from where nas is built, so this table is an estimate from published ARM
measurements only (see nas/latency/_estimate.py for the method); a measured table replaces it with
``python -m nas.latency build --target arm64 --bundle DIR`` and ``measure`` on the phone.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from nas._paths import reference_configs
from nas.config import ArchConfig, Op, ops
from nas.latency._build import space_info
from nas.latency._estimate import DeviceModel, fit_factors, fit_transfer, group_parts
from nas.latency._ofa import import_ofa
from nas.latency._table import EstimatedTable, Overhead
from nas.space import SearchSpace

PAPER = "Howard et al. 2019, Searching for MobileNetV3, arXiv:1905.02244v5"
DEVICE = "Pixel-1-class phone CPU: one big core, float32, batch 1 (ESTIMATED from published measurements)"


@dataclass(frozen=True)
class Anchor:
    name: str
    config: ArchConfig
    published_ms: float
    source: str


def _relu_only(config: ArchConfig) -> ArchConfig:
    return replace(
        config,
        name=f"{config.name}_relu",
        stem=replace(config.stem, act="relu"),
        layers=tuple(replace(layer, act="relu") for layer in config.layers),
        head=replace(config.head, act="relu"),
    )


def anchors() -> tuple[list[Anchor], list[Anchor]]:
    """(fitted, held out): published Pixel-1 latencies of networks we can build exactly."""
    refs = {name: ArchConfig.load(path) for name, path in reference_configs().items()}
    large = refs["mobilenetv3_large"]
    fitted = [
        Anchor("mobilenetv3_large", large, 51.0, f"{PAPER}, Table 3 (Pixel-1, TFLite, one large core)"),
        Anchor("mobilenetv3_small", refs["mobilenetv3_small"], 15.8, f"{PAPER}, Table 3"),
        Anchor(
            "mobilenetv3_large_relu",
            _relu_only(large),
            51.0 - (51.4 - 50.5),
            f"{PAPER}, Table 5 (Pixel-1: V3-Large 51.4 ms, ReLU everywhere 50.5 ms), difference applied to 51 ms",
        ),
    ]
    held_out = [
        Anchor("mobilenetv3_large_075", refs["mobilenetv3_large_075"], 39.0, f"{PAPER}, Table 3"),
        Anchor("mobilenetv3_small_075", refs["mobilenetv3_small_075"], 12.8, f"{PAPER}, Table 3"),
    ]
    return fitted, held_out


def estimate_arm64(ofa_dir: Path, space: SearchSpace, *, target: str = "arm64") -> EstimatedTable:
    """Fit the Note10 transfer, calibrate it on Pixel-1 anchors, price every op of ``space`` and the references."""
    note10 = import_ofa(ofa_dir, target="note10", device="Samsung Galaxy Note10", space={})
    measured_ops = [Op.parse(key) for key in sorted(note10.entries)]
    transfer = fit_transfer(measured_ops, [note10.entries[op.key][0] for op in measured_ops])
    fitted, held_out = anchors()
    factors = fit_factors(
        np.array([group_parts(transfer, ops(a.config)) for a in fitted]), [a.published_ms for a in fitted]
    )
    model = DeviceModel(transfer, tuple(float(f) for f in factors))  # type: ignore[arg-type]
    wanted = set(space.ops()) | {op for path in reference_configs().values() for op in ops(ArchConfig.load(path))}
    entries = {op.key: (round(model.op_ms(op), 6),) * 3 + (0,) for op in sorted(wanted)}

    def check(anchor: Anchor) -> dict[str, object]:
        estimate = sum(model.op_ms(op) for op in ops(anchor.config))
        return {
            "network": anchor.name,
            "published_ms": anchor.published_ms,
            "estimated_ms": round(estimate, 2),
            "error_pct": round((estimate / anchor.published_ms - 1) * 100, 2),
            "source": anchor.source,
        }

    metadata = {
        "target": target,
        "measured": False,
        "device": DEVICE,
        "threads": 1,
        "batch": 1,
        "dtype": "float32",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "method": (
            "ESTIMATE. (1) Transfer model: OFA's per-op latencies measured on a Samsung Note10 (arm64) fitted by"
            " non-negative least squares (relative error) on analytic op features: MACs of 1x1/full/depthwise"
            " k3/k5/k7 convs and of the classifier, SE, h-swish and activation elements, a per-op constant."
            " (2) Device factors for the model's compute, h-swish and other parts, non-negative, fitted to"
            " published Pixel-1 latencies (anchors below); (3) every op of the space and of the reference"
            " configs priced by the result. A factor of 0 means the anchors could not identify that part's"
            " cost on Pixel-1. Ops of the other families (group convs, shuffles, Fire modules, SqueezeNet and"
            " ShuffleNet stems and heads) lie outside the transfer data: their prices are EXTRAPOLATED, and"
            " every output that uses them says so."
        ),
        "sources": [
            "Once-for-All Note10 latency lookup tables: mit-han-lab/once-for-all commit"
            " 698a5c10b434172056a565b340c46ce11df18629, tutorial/checkpoints/latency_table@note10 (Apache-2.0 at"
            " that commit), 17 resolutions x 96 ops",
            f"{PAPER}: Tables 3 and 5 (Pixel-1 latencies)",
        ],
        "transfer": {
            "samples": transfer.samples,
            "loo_mape_pct": round(transfer.loo_mape, 2),
            "loo_within10_pct": round(transfer.loo_within10, 1),
            "loo_worst_pct": round(transfer.loo_worst, 1),
        },
        "calibration": {"fitted": [check(a) for a in fitted], "held_out": [check(a) for a in held_out]},
        "model": model.to_dict(),
        "space": space_info(space),
        "generated_by": f"python -m nas.latency estimate --target {target} --ofa OFA_LUT_DIR",
    }
    return EstimatedTable(metadata=metadata, entries=entries, overhead=Overhead())
