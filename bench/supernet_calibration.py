"""How much of a supernet's ranking is scoring noise, and what a few fine-tuning steps per subnet buy.

Each inherited score recalibrates BN on a few training batches, drawn by the evaluator's seed. This
rescores the 32 configs of ``bench/supernet_fidelity.py`` (its ``--work`` folder must hold their
stand-alone and inherited scores on all validation images) under each ``--setting`` SEED:BATCHES:FINETUNE
(calibration seed, calibration batches, fine-tuning steps before calibration) with the supernet in
``--work`` (``--few-shot``: the few-shot one of that many steps per part) and prints each one's Kendall
tau against the stand-alone mean, overall and within each first-layer-stride group, and against
the scores the fidelity bench recorded (seed 0, 32 batches; 8 for supernets scored before that default).
``--images N`` scores on the first N validation images only (the stand-alone side stays on all). Scores
are kept in the fidelity bench's record (``bench/records/<work folder's name>.jsonl``): a rerun resumes.

    python bench/supernet_calibration.py --work runs/fid-2400-all --supernet-steps 2400 [--few-shot]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy import stats
from supernet_fidelity import (  # this folder's: run as python bench/...
    fidelity_configs,
    inherited_key,
    kept_scores,
    record_path,
    score_kept,
    stride_groups,
    supernet_name,
)

from nas import SearchSpace
from nas._paths import DEFAULT_SPACE
from nas.data import load_dataset
from nas.evaluate import SupernetEvaluator


def _setting(text: str) -> tuple[int, int, int]:
    try:
        seed, batches, finetune = (int(part) for part in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: write SEED:BATCHES:FINETUNE, e.g. 0:32:0") from None
    return seed, batches, finetune


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("runs/supernet-fidelity"))
    parser.add_argument("--record", type=Path, help="the scores' file (default: bench/records/<work's name>.jsonl)")
    parser.add_argument("--supernet-steps", type=int, default=1500)
    parser.add_argument("--few-shot", action="store_true", help="the few-shot supernet of that many steps")
    parser.add_argument("--subnets", type=int, default=30)
    parser.add_argument("--images", type=int, help="score on the first N validation images (default: all)")
    parser.add_argument(
        "--setting", action="append", type=_setting, metavar="SEED:BATCHES:FINETUNE",
        help="calibration seed, calibration batches, fine-tuning steps (repeatable; default 1:8:0 and 0:32:0)",
    )  # fmt: skip
    args = parser.parse_args()
    configs = fidelity_configs(SearchSpace.load(DEFAULT_SPACE), args.subnets)
    record = record_path(args.work, args.record)
    kept = kept_scores(record)
    data = load_dataset(kept["settings"]["data"])
    validation = len(data.indices("validation"))  # what the stand-alone and recorded scores were taken on
    images = validation if args.images is None else min(args.images, validation)
    supernet = supernet_name(args.supernet_steps, args.few_shot)
    names = list(configs)
    alone = np.array([np.mean([kept[f"alone/{n}/{s}/{validation}"]["value"] for s in (0, 1)]) for n in names])
    # what the fidelity bench recorded: 32 calibration batches, or 8 for a supernet scored before that default
    base = 32 if all(inherited_key(supernet, n, validation) in kept for n in names) else 8
    recorded = np.array([kept[inherited_key(supernet, n, validation, batches=base)]["value"] for n in names])
    groups = stride_groups(configs)

    def taus(scores: np.ndarray) -> str:
        within = ", ".join(
            f"stride {stride} {stats.kendalltau(scores[group], alone[group]).statistic:.3f}"
            for stride, group in groups.items()
        )
        return f"tau vs stand-alone {stats.kendalltau(scores, alone).statistic:.3f} ({within})"

    print(f"{supernet}, recorded (seed 0, {base} batches, no fine-tuning): {taus(recorded)}")
    for seed, batches, finetune in args.setting or [(1, 8, 0), (0, 32, 0)]:
        keys = [inherited_key(supernet, name, images, seed, batches, finetune) for name in names]
        score_kept(
            lambda seed=seed, batches=batches, finetune=finetune: SupernetEvaluator(
                supernet=args.work / supernet / "supernet.pt", data=data, images=images, seed=seed,
                calibration_batches=batches, finetune_steps=finetune,
            ),
            configs, keys, kept, record,
        )  # fmt: skip
        scores = np.array([kept[key]["value"] for key in keys])
        seconds = np.mean([kept[key]["seconds"] for key in keys])
        print(
            f"seed {seed}, {batches} batches, {finetune} fine-tuning steps, {images} images: {taus(scores)},"
            f" vs recorded {stats.kendalltau(scores, recorded).statistic:.3f} ({seconds:.1f} s per score)",
            flush=True,
        )


if __name__ == "__main__":
    main()
