"""How well do cheap evaluators rank architectures? Kendall tau / Spearman rho against trained accuracy.

    python bench/proxy_correlation.py [--configs 30] [--steps 150] [--data digits] [--out runs/proxy_correlation]

Trains ``--configs`` random configs of the default space with the ``train`` evaluator under two seeds
(their disagreement is the noise ceiling), scores the same configs with every other evaluator, and
prints a Markdown table. Results are appended per config to OUT/results.jsonl: rerunning resumes.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau, spearmanr

from nas import SearchSpace
from nas._paths import DEFAULT_SPACE
from nas.data import load_dataset
from nas.evaluate import EVALUATORS, get_evaluator, options_for

SEEDS = (0, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", type=int, default=30)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--data", default="digits")
    parser.add_argument("--out", type=Path, default=Path("runs/proxy_correlation"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = args.out / "results.jsonl"
    done = {json.loads(line)["config"] for line in results.read_text().splitlines()} if results.exists() else set()
    space = SearchSpace.load(DEFAULT_SPACE)
    data = load_dataset(args.data)
    rng = random.Random("proxy-correlation")
    configs = [space.random_config(rng) for _ in range(args.configs)]
    cheap = [name for name in EVALUATORS if name != "train"]
    start = time.perf_counter()
    for i, config in enumerate(configs):
        if i in done:
            continue
        row: dict[str, object] = {"config": i, "macs": config.macs(), "params": config.params()}
        for seed in SEEDS:
            score = get_evaluator("train", data=data, steps=args.steps, seed=seed).score(config)
            row[f"train_seed{seed}"], row[f"train_seconds{seed}"] = score.value, score.seconds
        for name in cheap:
            score = get_evaluator(name, **options_for(name, data=data)).score(config)
            row[name], row[f"{name}_seconds"] = score.value, score.seconds
        with results.open("a") as handle:
            handle.write(json.dumps(row) + "\n")
        elapsed = time.perf_counter() - start
        print(
            f"config {i + 1}/{len(configs)}: accuracy {row['train_seed0']:.3f}/{row['train_seed1']:.3f}"
            f" ({elapsed / 60:.1f} min)",
            flush=True,
        )
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    report(rows, cheap, args)


def report(rows: list[dict], cheap: list[str], args: argparse.Namespace) -> None:
    accuracy = np.array([[r[f"train_seed{s}"] for s in SEEDS] for r in rows])
    mean = accuracy.mean(axis=1)
    print(
        f"\n{len(rows)} random configs of {DEFAULT_SPACE.name}, trained {args.steps} steps at 32px on"
        f" {args.data}: held-out top-1 {mean.min():.3f}-{mean.max():.3f} (mean {mean.mean():.3f})"
    )
    noise = np.abs(accuracy[:, 0] - accuracy[:, 1])
    tau_seeds = kendalltau(accuracy[:, 0], accuracy[:, 1]).statistic
    print(
        f"seed-to-seed: mean |difference| {noise.mean() * 100:.2f} points, Kendall tau between seeds"
        f" {tau_seeds:.3f} (the ceiling for any evaluator)\n"
    )
    print("| evaluator | Kendall tau | Spearman rho | seconds per config |")
    print("|---|---|---|---|")
    for name in cheap:
        values = np.array([r[name] for r in rows])
        seconds = np.mean([r[f"{name}_seconds"] for r in rows])
        tau, rho = kendalltau(values, mean).statistic, spearmanr(values, mean).statistic
        print(f"| {name} | {tau:.3f} | {rho:.3f} | {seconds:.3f} |")
    train_seconds = np.mean([r[f"train_seconds{s}"] for r in rows for s in SEEDS])
    print(f"| train ({args.steps} steps), one seed vs the mean of two | - | - | {train_seconds:.1f} |")


if __name__ == "__main__":
    main()
