"""How much of a supernet's ranking is BN-calibration noise? Rescores the fidelity bench's configs.

Each inherited score recalibrates BN on a few training batches, drawn by the evaluator's seed. This
rescores the 32 configs of ``bench/supernet_fidelity.py`` (its ``--work`` folder must hold their
stand-alone and inherited scores on all validation images) with calibration seed 1 at 8 batches and seed
0 at 32 batches, and prints each one's Kendall tau against the stand-alone mean and against the recorded
seed-0, 8-batch scores.

    python bench/supernet_calibration.py --work runs/fid-2400-all --supernet-steps 2400
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from scipy import stats
from supernet_fidelity import fidelity_configs, kept_scores  # this folder's: run as python bench/...

from nas import SearchSpace
from nas._paths import DEFAULT_SPACE
from nas.data import load_dataset
from nas.evaluate import SupernetEvaluator
from nas.supernet import SupernetRecipe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("runs/supernet-fidelity"))
    parser.add_argument("--supernet-steps", type=int, default=1500)
    parser.add_argument("--subnets", type=int, default=30)
    args = parser.parse_args()
    configs = fidelity_configs(SearchSpace.load(DEFAULT_SPACE), args.subnets)
    kept = kept_scores(args.work / "scores.jsonl")
    settings = json.loads((args.work / "settings.json").read_text())
    data = load_dataset(settings["data"])
    images = len(data.indices("validation"))
    supernet = f"supernet-{args.supernet_steps}-m{SupernetRecipe.method}"
    names = list(configs)
    alone = np.array([np.mean([kept[f"alone/{n}/{s}/{images}"]["value"] for s in (0, 1)]) for n in names])
    recorded = np.array([kept[f"{supernet}/{n}/{images}"]["value"] for n in names])
    tau = stats.kendalltau(recorded, alone).statistic
    print(f"{supernet}, recorded (seed 0, 8 batches): tau vs stand-alone {tau:.3f}")
    for seed, batches in ((1, 8), (0, 32)):
        evaluator = SupernetEvaluator(
            supernet=args.work / supernet / "supernet.pt", data=data, images=images, seed=seed,
            calibration_batches=batches,
        )  # fmt: skip
        start = time.perf_counter()
        scores = np.array([evaluator.score(configs[n]).value for n in names])
        print(
            f"seed {seed}, {batches} batches: tau vs stand-alone {stats.kendalltau(scores, alone).statistic:.3f},"
            f" vs recorded {stats.kendalltau(scores, recorded).statistic:.3f}"
            f" ({(time.perf_counter() - start) / len(names):.1f} s per score)",
            flush=True,
        )


if __name__ == "__main__":
    main()
