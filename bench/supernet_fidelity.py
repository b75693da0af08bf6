"""Do supernet-inherited scores rank networks as training them alone does? Issue 17's ranking benchmark.

On one dataset (Fashion-MNIST by default) and the default space:
1. ``--subnets`` random configs of the space (seeded) plus MobileNetV3-Large and -Small, each trained
   alone from scratch with ``TrainEvaluator``'s recipe for ``--standalone-steps`` steps per seed
   (``--seeds`` seeds), scored on the validation split (all of it, or its first ``--images``) after BN
   recalibration;
2. one supernet trained with ``train_supernet`` for ``--supernet-steps`` steps (same batch size,
   resolution and data), or with ``--few-shot`` one per downsampling profile of the space, that many steps
   each, and every config scored by ``--evaluator supernet`` on the same images after BN recalibration on
   ``--calibration-batches`` training batches;
3. Kendall tau between the inherited scores and the mean stand-alone score, next to the seed-to-seed
   tau of stand-alone training (the ceiling a cheap score can hope for), MACs' tau (the free yardstick),
   and the costs.

Every score and time is kept as it comes in ``bench/records/<work folder's name>.jsonl`` (``--record``),
a tracked file: the hours of training it stands for survive a fresh checkout, which the checkpoints in
``--work`` (ignored by git) do not. Rerunning the same command after an interruption continues (the
supernet from its checkpoint). A stand-alone network's checkpoint, while the work folder has it, lets a
rerun with another ``--images`` rescore it without training. A record refuses other stand-alone settings
(it would mix two benchmarks); a supernet per length, training method and ``--supernet-seed`` shares it.

``--only-seed S`` trains and scores seed S's stand-alone networks and stops: run one process per seed
side by side, each with ``--threads 1``, which on 2 cores trains about 1.6 times as many networks per hour
as one process on both. Likewise ``--few-shot --part K`` trains part K of the few-shot supernet and stops.

    python bench/supernet_fidelity.py [--subnets 30] [--seeds 2] [--standalone-steps 600]
        [--supernet-steps 1500] [--few-shot [--part K]] [--supernet-seed 0] [--calibration-batches 32] [--images N]
        [--work DIR] [--record FILE] [--only-seed S] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from scipy import stats

from nas import ArchConfig, SearchSpace
from nas._paths import DEFAULT_SPACE, reference_configs
from nas.data import load_dataset
from nas.evaluate import SupernetEvaluator, TrainEvaluator
from nas.supernet import SupernetRecipe, train_supernet

TRAINING_SETTINGS = ("data", "standalone_steps", "batch_size", "resolution")  # the stand-alone side's


def fidelity_configs(space: SearchSpace, subnets: int) -> dict[str, ArchConfig]:
    """The benchmark's configs by name: ``subnets`` seeded random ones, then MobileNetV3-Large and -Small."""
    configs = {f"random_{k:02d}": space.random_config(10_000 + k) for k in range(subnets)}
    for name in ("mobilenetv3_large", "mobilenetv3_small"):
        reference = ArchConfig.load(reference_configs()[name])
        assert space.contains(reference), f"{name} is not a point of the default space"
        configs[name] = reference
    return configs


RECORDS = Path(__file__).parent / "records"


def supernet_name(steps: int, few_shot: bool, seed: int = 0) -> str:
    """A supernet's folder in the work folder and its scores' key: by steps, training method, kind and
    training seed (seed 0 unnamed, as before the seed was a choice)."""
    return (
        f"supernet-{steps}-m{SupernetRecipe.method}"
        + ("-fewshot" if few_shot else "")
        + (f"-seed{seed}" if seed else "")
    )


def record_path(work: Path, record: Path | None) -> Path:
    """The benchmark's record: as given, or the tracked ``bench/records/<work folder's name>.jsonl``."""
    return record if record is not None else RECORDS / f"{work.name}.jsonl"


def kept_scores(path: Path) -> dict[str, dict]:
    if not path.exists():
        return {}
    return {row["key"]: row for row in map(json.loads, path.read_text().splitlines()) if row}


def inherited_key(supernet: str, name: str, images: int, seed: int = 0, batches: int = 32, finetune: int = 0) -> str:
    """Where an inherited score is kept: by supernet, config, images scored, calibration seed and
    batches, and fine-tuning steps."""
    return f"{supernet}/{name}/{images}/{seed}:{batches}:{finetune}"


def keep_score(path: Path, row: dict) -> None:
    with path.open("a") as handle:
        handle.write(json.dumps(row) + "\n")


def stride_groups(configs: dict[str, ArchConfig]) -> dict[int, list[int]]:
    """Positions of the configs (in order) by their first layer's stride: the supernet keeps the order
    between these groups better than within them."""
    strides = [config.layers[0].stride for config in configs.values()]
    return {stride: [k for k, s in enumerate(strides) if s == stride] for stride in sorted(set(strides))}


def score_kept(
    evaluator: Callable[[], SupernetEvaluator],
    configs: dict[str, ArchConfig],
    keys: list[str],
    kept: dict[str, dict],
    record: Path,
) -> None:
    """Score each config whose key ``kept`` lacks, keeping each score as it comes (a rerun resumes). The
    evaluator is made only when something is left to score: making one reads the whole supernet file."""
    todo = [(config, key) for config, key in zip(configs.values(), keys, strict=True) if key not in kept]
    if not todo:
        return
    scorer = evaluator()
    for config, key in todo:
        score = scorer.score(config)
        kept[key] = {"key": key, "value": score.value, "seconds": score.seconds}
        keep_score(record, kept[key])


def _check_settings(args: argparse.Namespace, record: Path, kept: dict[str, dict]) -> None:
    """The record's stand-alone training settings, kept as its first row and refused if they differ later."""
    settings = {name: getattr(args, name) for name in TRAINING_SETTINGS}
    if "settings" not in kept:
        kept["settings"] = {"key": "settings", **settings}
        keep_score(record, kept["settings"])
    elif (recorded := {k: v for k, v in kept["settings"].items() if k != "key"}) != settings:
        changed = ", ".join(f"{k} {recorded.get(k)} -> {v}" for k, v in settings.items() if recorded.get(k) != v)
        print(f"{record}: trained with other settings ({changed}); use another --record", file=sys.stderr)
        raise SystemExit(2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--subnets", type=int, default=30)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--standalone-steps", type=int, default=600)
    parser.add_argument("--supernet-steps", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--few-shot", action="store_true", help="one supernet per downsampling profile")
    parser.add_argument("--supernet-seed", type=int, default=0, help="the supernet's training seed")
    parser.add_argument("--part", type=int, help="with --few-shot: train this part of it, then stop")
    parser.add_argument("--calibration-batches", type=int, default=32, help="BN recalibration batches per score")
    parser.add_argument("--images", type=int, help="score on the first N validation images (default: all)")
    parser.add_argument("--work", type=Path, default=Path("runs/supernet-fidelity"))
    parser.add_argument("--record", type=Path, help="the scores' file (default: bench/records/<work's name>.jsonl)")
    parser.add_argument("--only-seed", type=int, help="train and score this seed's stand-alone networks, then stop")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    record = record_path(args.work, args.record)
    record.parent.mkdir(parents=True, exist_ok=True)
    kept = kept_scores(record)
    _check_settings(args, record, kept)
    space = SearchSpace.load(DEFAULT_SPACE)
    configs = fidelity_configs(space, args.subnets)
    dataset = load_dataset(args.data)  # once, for every training and the supernet's
    validation = len(dataset.indices("validation"))
    images = validation if args.images is None else min(args.images, validation)

    for seed in range(args.seeds) if args.only_seed is None else [args.only_seed]:
        trainer = TrainEvaluator(
            data=dataset, resolution=args.resolution, steps=args.standalone_steps, batch_size=args.batch_size,
            seed=seed,
        )  # fmt: skip
        for name, config in configs.items():
            key = f"alone/{name}/{seed}"  # its training time; its score on these images under scored
            scored = f"{key}/{images}"
            if scored in kept:
                continue
            start = time.perf_counter()
            model = trainer.train(config, checkpoint=args.work / "alone" / f"{name}_{seed}.pt")  # loads if trained
            if key not in kept:
                kept[key] = {"key": key, "seconds": time.perf_counter() - start}
                keep_score(record, kept[key])
            kept[scored] = {"key": scored, "value": trainer.accuracy(model, images=images)}
            keep_score(record, kept[scored])
            print(f"{key}: {kept[scored]['value']:.4f} ({kept[key]['seconds']:.0f} s)", flush=True)
    if args.only_seed is not None:
        return

    supernet = supernet_name(args.supernet_steps, args.few_shot, args.supernet_seed)
    start = time.perf_counter()
    path = train_supernet(
        space=space, out=args.work / supernet, data=dataset, resolution=args.resolution,
        steps=args.supernet_steps, batch_size=args.batch_size, few_shot=args.few_shot, part=args.part,
        seed=args.supernet_seed, progress=True,
    )  # fmt: skip
    print(f"supernet: {path} ({time.perf_counter() - start:.0f} s this run)", flush=True)
    if args.part is not None:
        return
    batches = args.calibration_batches
    keys = [inherited_key(supernet, name, images, batches=batches) for name in configs]
    score_kept(
        lambda: SupernetEvaluator(supernet=path, data=dataset, images=images, calibration_batches=batches),
        configs, keys, kept, record,
    )  # fmt: skip

    names = list(configs)
    alone = np.array([[kept[f"alone/{n}/{s}/{images}"]["value"] for s in range(args.seeds)] for n in names])
    inherited = np.array([kept[key]["value"] for key in keys])
    tau = stats.kendalltau(inherited, alone.mean(axis=1)).statistic
    ceilings = [
        stats.kendalltau(alone[:, a], alone[:, b]).statistic
        for a in range(args.seeds)
        for b in range(a + 1, args.seeds)
    ]
    ceiling = float(np.mean(ceilings)) if ceilings else float("nan")
    stored = torch.load(path, weights_only=True)
    supernet_seconds = float(stored.get("seconds", float("nan")))  # a few-shot supernet's: its parts' together
    parts = f"{len(stored['parts'])} few-shot parts x " if "parts" in stored else ""
    alone_seconds = np.array([kept[f"alone/{n}/{s}"]["seconds"] for n in names for s in range(args.seeds)])
    score_seconds = float(np.mean([kept[key]["seconds"] for key in keys]))
    print(f"{len(names)} configs ({args.subnets} random + MobileNetV3-Large/-Small), {args.data}, {args.resolution}px,"
          f" every score on {images} validation images")  # fmt: skip
    print(
        f"stand-alone: {args.standalone_steps} steps x {args.seeds} seeds;"
        f" supernet: {parts}{args.supernet_steps} steps, BN recalibrated on {batches} batches per score"
    )
    print(f"Kendall tau, inherited vs stand-alone mean: {tau:.3f}")
    print(f"Kendall tau, stand-alone seed vs seed (ceiling): {ceiling:.3f}; ratio {tau / ceiling:.2f}")
    macs = np.array([configs[n].macs() for n in names])  # the free yardstick a cheap score must beat
    print(
        f"Kendall tau, MACs vs stand-alone mean: {stats.kendalltau(macs, alone.mean(axis=1)).statistic:.3f};"
        f" MACs vs inherited: {stats.kendalltau(macs, inherited).statistic:.3f}"
    )
    for stride, group in stride_groups(configs).items():  # where the order is kept or lost
        mean = alone[group].mean(axis=1)
        seeds = stats.kendalltau(alone[group, 0], alone[group, 1]).statistic if args.seeds > 1 else float("nan")
        print(
            f"  first layer at stride {stride} ({len(group)} configs): Kendall tau inherited"
            f" {stats.kendalltau(inherited[group], mean).statistic:.3f},"
            f" MACs {stats.kendalltau(macs[group], mean).statistic:.3f}, seed 0 vs 1 {seeds:.3f}"
        )
    for n in ("mobilenetv3_large", "mobilenetv3_small"):
        print(f"{n}: stand-alone {alone[names.index(n)].mean():.4f}, inherited {inherited[names.index(n)]:.4f}")
    print(
        f"cost: supernet {supernet_seconds:.0f} s ({parts}{args.supernet_steps} steps); stand-alone"
        f" {len(alone_seconds)} trainings x median {np.median(alone_seconds):.0f} s ="
        f" {len(alone_seconds) * np.median(alone_seconds):.0f} s (the median: a training that shared the machine"
        f" or was paused took longer; as timed, {alone_seconds.sum():.0f} s); inherited score {score_seconds:.1f} s"
        " per config"
    )


if __name__ == "__main__":
    main()
