"""The estimated ``arm64`` table: a Pixel-1-class phone CPU (one big core, float32, batch 1).

No ARM device is reachable from where nas is built, so this table is an estimate from published ARM
measurements only: Pixel-1 ops, Note10 ops, Pixel-1 whole networks (nas/latency/_estimate.py has the
method). A measured table replaces it with ``python -m nas.latency build --target arm64 --bundle DIR``
and ``measure`` on the phone.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from nas._paths import reference_configs
from nas.config import ArchConfig, Op, ops
from nas.latency._build import space_info
from nas.latency._estimate import FEATURES, Transfer, borrowing_model, fit_transfer
from nas.latency._ofa import import_ofa, read_proxyless_file
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


PIXEL1_FILE = "mobile_trim.yaml"


def _fit_stats(transfer: Transfer, source: str) -> dict[str, object]:
    return {
        "source": source,
        "samples": transfer.samples,
        "loo_mape_pct": round(transfer.loo_mape, 2),
        "loo_within10_pct": round(transfer.loo_within10, 1),
        "loo_worst_pct": round(transfer.loo_worst, 1),
    }


def estimate_arm64(ofa_dir: Path, pixel1: Path, space: SearchSpace, *, target: str = "arm64") -> EstimatedTable:
    """Fit op models on Pixel-1 and Note10 ops, calibrate on Pixel-1 anchors, price every op of ``space``
    and the references. ``pixel1`` is ProxylessNAS's ``mobile_trim.yaml`` or the folder holding it."""
    pixel1_ms = read_proxyless_file(pixel1 / PIXEL1_FILE if pixel1.is_dir() else pixel1)
    note10 = import_ofa(ofa_dir, target="note10", device="Samsung Galaxy Note10", space={})
    note10_ops = [Op.parse(key) for key in sorted(note10.entries)]
    note10_fit = fit_transfer(note10_ops, [note10.entries[op.key][0] for op in note10_ops])
    pixel1_fit = fit_transfer(list(pixel1_ms), list(pixel1_ms.values()))
    model = borrowing_model(list(pixel1_ms), pixel1_fit, note10_fit, donor_group="note10")
    borrowed = sorted(n for n, g in zip(FEATURES, model.groups, strict=True) if g == "note10")  # no SE, h-swish
    fitted, held_out = anchors()
    published = [(ops(a.config), a.published_ms) for a in fitted]
    model = model.calibrated(published)
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

    cross = model.cross_validated(published)
    metadata = {
        "target": target,
        "measured": False,
        "device": DEVICE,
        "threads": 1,
        "batch": 1,
        "dtype": "float32",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "method": (
            "ESTIMATE. (1) Op models: per-op latencies measured on a Pixel 1 (ProxylessNAS's table: TFLite 2018,"
            " ReLU6, no SE) and on a Samsung Note10 (OFA's tables) each fitted by non-negative least squares"
            " (relative error) on analytic op features: MACs of 1x1/full/depthwise k3/k5/k7 convs and of the"
            " classifier, activation elements, SE and h-swish elements, a per-op constant. (2) The Pixel-1 fit"
            f" prices every feature its ops exercise; the rest ({', '.join(borrowed)}) take the Note10"
            " fit's weights. (3) One device factor per group (compute: MACs and classifier weights; rest:"
            " activation traffic and per-op cost, both from Pixel 1; note10: the borrowed features),"
            " non-negative, fitted to published Pixel-1 whole-network latencies of the MobileNetV3 paper's"
            " runtime (anchors below, each also predicted by factors fitted without it); the 0.75 models are"
            " held out. (4) Every op of the space and of the reference configs priced by the result. Ops of"
            " the other families (group convs, shuffles, Fire modules, SqueezeNet and ShuffleNet stems and"
            " heads) lie outside the measured ops: their prices are EXTRAPOLATED, and every output that uses"
            " them says so."
        ),
        "sources": [
            "ProxylessNAS mobile latency table (Google Pixel 1): han-cai/files commit"
            f" a7c9bcd525e17404968bc55aa43772bf7e51909e, proxylessnas/{PIXEL1_FILE} (no data licence; fitted"
            " weights only, the table itself is read from a path)",
            "Once-for-All Note10 latency lookup tables: mit-han-lab/once-for-all commit"
            " 698a5c10b434172056a565b340c46ce11df18629, tutorial/checkpoints/latency_table@note10 (Apache-2.0 at"
            " that commit), 17 resolutions x 96 ops",
            f"{PAPER}: Tables 3 and 5 (Pixel-1 latencies)",
        ],
        "transfer": {
            "pixel1": _fit_stats(pixel1_fit, "Pixel-1 ops (ProxylessNAS)"),
            "note10": _fit_stats(note10_fit, "Note10 ops (OFA)"),
        },
        "calibration": {
            "fitted": [
                {**check(a), "cross_validated_error_pct": round(e, 2)} for a, e in zip(fitted, cross, strict=True)
            ],
            "held_out": [check(a) for a in held_out],
        },
        "model": model.to_dict(),
        "space": space_info(space),
        "generated_by": f"python -m nas.latency estimate --target {target} --ofa OFA_LUT_DIR --pixel1 PIXEL1_LUT",
    }
    return EstimatedTable(metadata=metadata, entries=entries, overhead=Overhead())
