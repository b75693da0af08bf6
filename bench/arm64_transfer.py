"""The estimated arm64 table, before and after Pixel-1 ops joined it: op models and calibration.

    python bench/arm64_transfer.py --ofa ../shared/data/ofa_note10_lut --pixel1 ../shared/data/proxylessnas_pixel1_lut

Before: the op model fitted on OFA's Note10 ops alone, device factors for (compute, h-swish, rest) fitted
to three Pixel-1 anchors. After (what ``nas.latency estimate`` builds): the op model fitted on
ProxylessNAS's 72 Pixel-1 ops, SE and h-swish (absent from them) weighted from Note10, factors for
(compute, rest, note10) fitted to the same anchors. Prints, for each: error on the Pixel-1 ops
(leave-one-out where the model was fitted on them; after one best scale where it was not), each anchor
fitted and predicted by factors fitted without it, the held-out 0.75 models, and how far the two tables'
prices and rankings of random configs of the default space differ. Also the Note10 transfer with the
op's x86 latency as a feature (needs latency_tables/x86_64-ofa.yaml).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from nas._paths import DEFAULT_SPACE
from nas.config import Op, ops
from nas.latency import LatencyTable
from nas.latency._arm64 import PIXEL1_FILE, anchors
from nas.latency._estimate import FEATURES, DeviceModel, borrowing_model, fit_transfer, is_compute
from nas.latency._ofa import import_ofa, read_proxyless_file
from nas.space import SearchSpace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ofa", type=Path, required=True)
    parser.add_argument("--pixel1", type=Path, required=True)
    parser.add_argument("--configs", type=int, default=500, help="random configs of the default space to compare")
    args = parser.parse_args()
    note10 = import_ofa(args.ofa, target="note10", device="Samsung Galaxy Note10", space={})
    measured = [Op.parse(key) for key in sorted(note10.entries)]
    target = [note10.entries[op.key][0] for op in measured]
    x86 = LatencyTable.load("x86_64-ofa")
    for label, extra in (("features", None), ("features + x86 latency", [x86.entries[op.key][0] for op in measured])):
        t = fit_transfer(measured, target, extra)
        print(
            f"Note10 op model, {label}: LOO MAPE {t.loo_mape:.2f} %, within ±10 % {t.loo_within10:.1f} %,"
            f" worst {t.loo_worst:.1f} % ({t.samples} ops)"
        )
    note10_fit = fit_transfer(measured, target)
    pixel1_ms = read_proxyless_file(args.pixel1 / PIXEL1_FILE)
    pixel1_ops, pixel1_y = list(pixel1_ms), np.array(list(pixel1_ms.values()))
    pixel1_fit = fit_transfer(pixel1_ops, pixel1_y)
    before = DeviceModel(
        note10_fit.weights,
        tuple("compute" if is_compute(n) else "hswish" if n == "hswish_melems" else "rest" for n in FEATURES),
    )
    after = borrowing_model(pixel1_ops, pixel1_fit, note10_fit, donor_group="note10")
    fitted, held_out = anchors()
    published = [(ops(a.config), a.published_ms) for a in fitted]
    space = SearchSpace.load(DEFAULT_SPACE)
    configs = [space.random_config(seed) for seed in range(args.configs)]
    totals = {}
    print(
        f"Pixel-1 op model: LOO MAPE {pixel1_fit.loo_mape:.2f} %, within ±10 % {pixel1_fit.loo_within10:.1f} %,"
        f" worst {pixel1_fit.loo_worst:.1f} % ({pixel1_fit.samples} ops); weights: "
        + ", ".join(f"{n} {w:.4g}" for n, w in zip(FEATURES, pixel1_fit.weights, strict=True) if w)
    )
    for label, model in (("before (Note10 ops)", before), ("after (Pixel-1 ops)", after)):
        model = model.calibrated(published)
        ratio = np.array([model.op_ms(op) for op in pixel1_ops]) / pixel1_y
        scaled = np.abs(ratio / np.exp(np.log(ratio).mean()) - 1) * 100
        print(
            f"\n{label}: factors "
            + ", ".join(f"{g} {f:.3f}" for g, f in zip(model.group_names, model.factors, strict=True))
        )
        print(
            f"  Pixel-1 ops, after one scale ({1 / np.exp(np.log(ratio).mean()):.3f}): MAPE {scaled.mean():.1f} %,"
            f" within ±10 % {(scaled <= 10).mean() * 100:.0f} %, worst {scaled.max():.0f} %"
        )
        for anchor, cross in zip(fitted, model.cross_validated(published), strict=True):
            estimate = sum(model.op_ms(op) for op in ops(anchor.config))
            print(
                f"  fitted {anchor.name}: {estimate:.2f} ms vs {anchor.published_ms} ms"
                f" ({(estimate / anchor.published_ms - 1) * 100:+.1f} %; without it {cross:+.1f} %)"
            )
        for anchor in held_out:
            estimate = sum(model.op_ms(op) for op in ops(anchor.config))
            print(
                f"  held out {anchor.name}: {estimate:.2f} ms vs {anchor.published_ms} ms"
                f" ({(estimate / anchor.published_ms - 1) * 100:+.1f} %)"
            )
        totals[label] = np.array([sum(model.op_ms(op) for op in ops(c)) for c in configs])
    old, new = totals.values()
    print(
        f"\n{args.configs} random configs of {space.name}: Spearman(before, after) {spearmanr(old, new)[0]:.4f},"
        f" after/before median {np.median(new / old):.3f} (p10 {np.percentile(new / old, 10):.3f},"
        f" p90 {np.percentile(new / old, 90):.3f})"
    )


if __name__ == "__main__":
    main()
