"""Is a supernet search's pick its front's best, or the luck of the default 2,000 scored images?

Rescores the last ``--top`` points of a search's Pareto front (the slowest, best-scored ones) and a
reference network on all validation images (``--images``), once per BN-calibration seed (``--seeds``),
and prints them next to the score the search saw. If the pick stays on top, the score's noise did not
choose it; whatever separates it from the reference is the supernet's view of the architectures.

    python bench/front_rescore.py --run runs/reproduce-fashion/arm64-mobilenetv3_large-supernet/search \
        --supernet runs/fid-2400-all/supernet-1200-m4-fewshot/supernet.pt --reference mobilenetv3_large
"""

from __future__ import annotations

import argparse
import csv
import statistics
from pathlib import Path

from nas import ArchConfig, NasError
from nas._paths import reference_configs
from nas.evaluate import SupernetEvaluator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="a search's output folder (holds pareto.csv)")
    parser.add_argument("--supernet", type=Path, required=True, help="the supernet the search scored on")
    parser.add_argument("--reference", default="mobilenetv3_large", choices=sorted(reference_configs()))
    parser.add_argument("--top", type=int, default=6, help="front points rescored, from the best-scored down")
    parser.add_argument("--images", type=int, default=12_000, help="validation images (all of them by default)")
    parser.add_argument("--seeds", default="0,1", help="BN-calibration seeds")
    args = parser.parse_args()
    front = args.run / "pareto.csv"
    if not front.is_file():
        parser.error(f"--run {args.run} holds no pareto.csv; give the --out folder of a search")
    rows = list(csv.DictReader(front.open()))[-args.top :]
    configs = {row["config"]: ArchConfig.load(args.run / row["file"]) for row in rows}
    configs[args.reference] = ArchConfig.load(reference_configs()[args.reference])
    seeds = [int(s) for s in args.seeds.split(",")]
    scores: dict[str, list[float]] = {name: [] for name in configs}
    try:
        for seed in seeds:
            evaluator = SupernetEvaluator(supernet=args.supernet, seed=seed, images=args.images)
            for name, config in configs.items():
                scores[name].append(evaluator.score(config).value)
    except NasError as exc:  # a missing or corrupt supernet, a reference outside its space
        parser.error(str(exc))
    print(f"Inherited validation top-1 from {args.supernet} on {args.images} images, calibration seeds {seeds}.\n")
    print("| config | predicted ms (search's table) | score the search saw | rescored, per seed | mean |")
    print("|---|---|---|---|---|")
    seen = {row["config"]: (row["latency_ms"], row["score"]) for row in rows}
    for name, values in scores.items():
        latency, score = seen.get(name, ("-", "(the reference)"))
        per_seed = " / ".join(f"{v:.4f}" for v in values)
        print(f"| {name} | {latency} | {score} | {per_seed} | {statistics.fmean(values):.4f} |")


if __name__ == "__main__":
    main()
