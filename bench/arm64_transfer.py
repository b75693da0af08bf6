"""Choices behind the estimated arm64 table, measured: transfer features and calibration.

    python bench/arm64_transfer.py --ofa ../shared/data/ofa_note10_lut

Prints the transfer model's leave-one-out error on OFA's Note10 ops with analytic features only and
with the op's x86 latency added (needs latency_tables/x86_64-ofa.yaml), then Pixel-1 errors of three
calibrations: one scale, and non-negative factors for (compute, h-swish, rest).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from nas.config import Op, ops
from nas.latency import LatencyTable
from nas.latency._arm64 import anchors
from nas.latency._estimate import fit_factors, fit_transfer, group_parts
from nas.latency._ofa import import_ofa


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ofa", type=Path, required=True)
    args = parser.parse_args()
    note10 = import_ofa(args.ofa, target="note10", device="Samsung Galaxy Note10", space={})
    measured = [Op.parse(key) for key in sorted(note10.entries)]
    target = [note10.entries[op.key][0] for op in measured]
    x86 = LatencyTable.load("x86_64-ofa")
    for label, extra in (("features", None), ("features + x86 latency", [x86.entries[op.key][0] for op in measured])):
        t = fit_transfer(measured, target, extra)
        print(
            f"transfer, {label}: LOO MAPE {t.loo_mape:.2f} %, within ±10 % {t.loo_within10:.1f} %,"
            f" worst {t.loo_worst:.1f} % ({t.samples} ops)"
        )
    transfer = fit_transfer(measured, target)
    fitted, held_out = anchors()
    parts = {a.name: group_parts(transfer, ops(a.config)) for a in fitted + held_out}
    published = {a.name: a.published_ms for a in fitted + held_out}
    two = [a.name for a in fitted[:2]]
    scale = float(np.exp(np.mean([np.log(published[n] / parts[n].sum()) for n in two])))
    factors = fit_factors(np.array([parts[a.name] for a in fitted]), [a.published_ms for a in fitted])
    calibrations = {
        "one scale (Large, Small)": lambda p: scale * p.sum(),
        "group factors (Large, Small, Large-ReLU)": lambda p: float(p @ factors),
    }
    for label, price in calibrations.items():
        errors = ", ".join(f"{n} {(price(parts[n]) / published[n] - 1) * 100:+.1f} %" for n in published)
        print(f"calibration, {label}: {errors}")


if __name__ == "__main__":
    main()
