"""Which block families does a search over search_spaces/lightweight.yaml pick, per device and budget?

Runs ``run_search`` (NSGA-II, in-process) at two budgets on each target and reports, for the best
config within budget and for the whole Pareto front, the share of blocks of each type, beside the
MACs per millisecond it reaches. The evaluator is a size proxy (``flops``: MACs), so "best" means the
most computation the budget buys on that device, not accuracy: where a family is fast per MAC, the
front fills with it.

    python bench/families.py [--trials 1000] [--seed 0] [--target x86_64-lightweight:2,6 arm64:20,60]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from pathlib import Path

from nas import _cli
from nas._table import format_table
from nas.config import ArchConfig
from nas.latency import load_latency
from nas.search import run_search

TYPES = ("mbv3", "mbv2", "dsconv", "fire", "shufflenet", "shufflenetv2")


def shares(configs: list[ArchConfig]) -> str:
    counts = Counter(layer.TYPE for config in configs for layer in config.layers)
    total = sum(counts.values()) or 1
    return ", ".join(f"{t} {counts[t] / total:.0%}" for t in TYPES if counts[t])


def stages(config: ArchConfig) -> str:
    """Block types in order, runs collapsed: ``dsconv x3 > mbv2 x4``."""
    runs: list[list[object]] = []
    for layer in config.layers:
        if runs and runs[-1][0] == layer.TYPE:
            runs[-1][1] += 1  # type: ignore[operator]
        else:
            runs.append([layer.TYPE, 1])
    return " > ".join(f"{t} x{n}" for t, n in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--target", nargs="+", default=["x86_64-lightweight:2,6", "arm64:20,60"])
    args = parser.parse_args()
    _cli.quiet_optuna()
    rows = []
    for spec in args.target:
        target, budgets = spec.split(":")
        latency = load_latency(target)
        for budget in (float(b) for b in budgets.split(",")):
            start = time.perf_counter()
            with tempfile.TemporaryDirectory() as out:
                result = run_search(
                    space="lightweight",
                    latency=latency,
                    evaluator="flops",
                    budget_ms=budget,
                    trials=args.trials,
                    seed=args.seed,
                    out=Path(out),
                )
            best = result.best
            assert best is not None
            front = [p.config for p in result.front]
            rows.append(
                [
                    f"{target} ({'measured' if latency.measured else 'ESTIMATED'})",
                    f"{budget:g}",
                    f"{best.latency_ms:.2f}",
                    f"{best.config.macs() / 1e6:.0f}",
                    stages(best.config),
                    f"{len(front)}: {shares(front)}",
                    f"{time.perf_counter() - start:.0f}",
                ]
            )
            print(rows[-1], flush=True)
    headers = ["target", "budget ms", "best ms", "best MMACs (proxy)", "best: blocks", "front: configs, blocks", "s"]
    print(format_table(headers, rows, markdown=True))


if __name__ == "__main__":
    main()
