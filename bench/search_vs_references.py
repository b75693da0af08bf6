"""Does the search find, on arm64, a config at most as slow as MobileNetV3-Large/-Small that scores at
least as well under the same evaluator? Runs the real CLI at both references' predicted latency.

    python bench/search_vs_references.py [--target arm64] [--evaluator flops] [--trials 1000] [--seed 0]
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import time

from nas import ArchConfig
from nas._paths import REFERENCE_DIR, runs_dir
from nas.evaluate import get_evaluator
from nas.latency import LatencyTable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default="arm64")
    parser.add_argument("--evaluator", default="flops")
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    table = LatencyTable.load(args.target)
    evaluator = get_evaluator(args.evaluator)
    print(
        "| reference | budget = its predicted latency | its score | best front config at <= budget | score |"
        " verdict | trials | wall |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name in ("mobilenetv3_large", "mobilenetv3_small"):
        reference = ArchConfig.load(REFERENCE_DIR / f"{name}.yaml")
        budget = table.predict(reference)
        ref_score = evaluator.score(reference).value
        out = runs_dir() / f"bench-{args.target}-{name}-seed{args.seed}"
        start = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "nas.search",
                "--target",
                args.target,
                "--budget",
                f"{budget}ms",
                "--evaluator",
                args.evaluator,
                "--trials",
                str(args.trials),
                "--seed",
                str(args.seed),
                "--out",
                str(out),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        wall = time.perf_counter() - start
        with (out / "pareto.csv").open() as handle:
            front = [row for row in csv.DictReader(handle) if float(row["latency_ms"]) <= budget]
        best = max(front, key=lambda row: float(row["score"]))
        verdict = "beats or ties" if float(best["score"]) >= ref_score else "falls short"
        print(
            f"| {name} | {budget:.3f} ms | {ref_score:.4f} | {best['config']} at {float(best['latency_ms']):.3f}"
            f" ms | {float(best['score']):.4f} | {verdict} | {args.trials} | {wall:.0f} s |"
        )


if __name__ == "__main__":
    main()
