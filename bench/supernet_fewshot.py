"""Few-shot supernets (Zhao et al., ICML 2021) split by downsampling profile: do they rank better than one?

The fidelity benchmark (bench/supernet_fidelity.py) found one supernet of the default space ranking the
32 networks at Kendall tau 0.45-0.58, and worst *within* the group of networks that share stage 0's
stride, where stand-alone training ranks by where the maps shrink: at 32 px a network that leaves the
optional stride-2 stage out keeps 2x2 maps to the end instead of 1x1, and trains best. One supernet
shares each late block's weights between inputs of 4x4, 2x2 and 1x1, where a 5x5 kernel sees all,
some, or only its centre tap. Few-shot NAS trains one sub-supernet per value of the choices whose
sharing hurts most; here, every choice that moves a downsampling: a stage's stride, and whether an
optional stride-2 stage is there. The default space has four such profiles.

Each part is a space of its own (the default space with those choices fixed), trained with
``train_supernet`` for ``--steps`` steps, so the parts together cost ``parts x steps`` supernet steps, to
set against one supernet of that many steps. Every config is scored by the part whose space holds it,
as ``--evaluator supernet`` scores, and kept in the fidelity benchmark's record next to its stand-alone
scores. ``--part K`` trains only part K (run two side by side, each with ``--threads 1``).

    python bench/supernet_fewshot.py --work runs/fid-2400-all [--steps 1200] [--part K --threads 1]
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
import torch
import yaml
from scipy import stats
from supernet_fidelity import fidelity_configs, inherited_key, kept_scores, record_path, score_kept, stride_groups

from nas import SearchSpace
from nas._paths import DEFAULT_SPACE
from nas.data import load_dataset
from nas.evaluate import SupernetEvaluator
from nas.supernet import SupernetRecipe, train_supernet


def profile_splits(raw: dict) -> list[dict[tuple[int, str], object]]:
    """Every combination of the choices that move a downsampling, as {(stage, field): fixed value}: each
    stride with several options, and for a stage that can stride 2 and may be left out, out or in."""
    axes: list[list[tuple[int, str, object]]] = []
    for k, stage in enumerate(raw["stages"]):
        strides = stage["stride"] if isinstance(stage["stride"], list) else [stage["stride"]]
        if len(strides) > 1:
            axes.append([(k, "stride", s) for s in strides])
        depths = stage["depth"] if isinstance(stage["depth"], list) else [stage["depth"]]
        if 2 in strides and 0 in depths and len(depths) > 1:
            axes.append([(k, "depth", 0), (k, "depth", [d for d in depths if d])])
    return [{(k, field): value for k, field, value in combo} for combo in itertools.product(*axes)]


def part_spaces(work: Path) -> list[Path]:
    """The default space split by downsampling profile, one YAML per part in ``work``."""
    raw = yaml.safe_load(Path(DEFAULT_SPACE).read_text())
    paths = []
    for k, fixed in enumerate(profile_splits(raw)):
        part = yaml.safe_load(Path(DEFAULT_SPACE).read_text())
        for (stage, field), value in fixed.items():
            part["stages"][stage][field] = value
        part["name"] = f"{raw['name']}-part{k}"
        path = work / f"part{k}.yaml"
        work.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(part, sort_keys=False))
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("runs/fid-2400-all"))
    parser.add_argument("--record", type=Path, help="the fidelity benchmark's record (default: by --work)")
    parser.add_argument("--steps", type=int, default=1200, help="supernet steps per part")
    parser.add_argument("--subnets", type=int, default=30)
    parser.add_argument("--calibration-batches", type=int, default=32)
    parser.add_argument("--images", type=int, help="score on the first N validation images (default: all)")
    parser.add_argument("--part", type=int, help="train this part only, then stop")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    record = record_path(args.work, args.record)
    kept = kept_scores(record)
    settings = kept["settings"]  # the stand-alone side must be trained first (bench/supernet_fidelity.py)
    dataset = load_dataset(settings["data"])
    name = f"fewshot-{args.steps}-m{SupernetRecipe.method}"
    folder = args.work / name
    parts = [SearchSpace.load(path) for path in part_spaces(folder)]
    paths = []
    for k, part in enumerate(parts):
        if args.part is not None and k != args.part:
            continue
        paths.append(
            train_supernet(
                space=part, out=folder / f"part{k}", data=dataset, resolution=settings["resolution"],
                steps=args.steps, batch_size=settings["batch_size"], progress=True,
            )
        )  # fmt: skip
    if args.part is not None:
        return

    configs = fidelity_configs(SearchSpace.load(DEFAULT_SPACE), args.subnets)
    validation = len(dataset.indices("validation"))
    images = validation if args.images is None else min(args.images, validation)
    batches = args.calibration_batches
    keys = {n: inherited_key(name, n, images, batches=batches) for n in configs}
    for k, (part, path) in enumerate(zip(parts, paths, strict=True)):
        held = {n: c for n, c in configs.items() if part.contains(c)}
        print(f"part {k}: {len(held)} configs ({', '.join(held)})")
        score_kept(
            lambda path=path: SupernetEvaluator(
                supernet=path, data=dataset, images=images, calibration_batches=batches
            ),
            held, [keys[n] for n in held], kept, record,
        )  # fmt: skip
    names = list(configs)
    alone = np.array([[kept[f"alone/{n}/{s}/{validation}"]["value"] for s in (0, 1)] for n in names]).mean(axis=1)
    inherited = np.array([kept[keys[n]]["value"] for n in names])
    ceiling = stats.kendalltau(*[[kept[f"alone/{n}/{s}/{validation}"]["value"] for n in names] for s in (0, 1)])
    tau = stats.kendalltau(inherited, alone).statistic
    print(f"few-shot supernet, {len(parts)} parts x {args.steps} steps, {images} images, {batches} calibration batches")
    print(f"Kendall tau, inherited vs stand-alone mean: {tau:.3f}; ceiling {ceiling.statistic:.3f};"
          f" ratio {tau / ceiling.statistic:.2f}")  # fmt: skip
    for stride, group in stride_groups(configs).items():
        print(f"  first layer at stride {stride}: tau {stats.kendalltau(inherited[group], alone[group]).statistic:.3f}")
    seconds = [float(torch.load(path, weights_only=True).get("seconds", float("nan"))) for path in paths]
    score_seconds = np.mean([kept[keys[n]]["seconds"] for n in names])
    print(f"cost: parts {', '.join(f'{s:.0f}' for s in seconds)} s; inherited score {score_seconds:.1f} s per config")


if __name__ == "__main__":
    main()
