"""Reproduce MobileNetV3-Large/-Small with the pipeline, and try to beat them under the same rules.

    python bench/reproduce.py [--targets arm64,x86_64] [--evaluators flops,train] [--seeds 0,1,2,3,4] [--epochs 8]
    python bench/reproduce.py --data fashion-mnist --evaluators supernet --supernet SUPERNET.pt \
        --seeds 0,1,2 --out runs/reproduce-fashion

For each table and reference, the budget is the reference's predicted latency on that table. The real
``python -m nas.pipeline`` CLI runs once per search evaluator; the references are trained here once, with
the pipeline's own training function and recipe (same data, resolution, epochs and seeds), and the
pipeline is told not to train them again. On a supernet the pipeline fine-tunes its result from
inherited weights (one seed here, reported beside); this bench
then trains the found network from scratch like the references, so the comparison is of architectures,
not of starting weights. Prints the Markdown table for bench/RESULTS.md and writes OUT/results.json.
Rerunning resumes.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from nas import ArchConfig, NasError
from nas._paths import REFERENCE_DIR, runs_dir
from nas.config import agreement
from nas.latency import LatencyTable, measure_here
from nas.model import read_supernet
from nas.pipeline import Recipe, train_seed

REFERENCES = {"mobilenetv3_large": "Large", "mobilenetv3_small": "Small"}


def _mean_std(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.fmean(values):.2f} ± {100 * spread:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", default="arm64,x86_64")
    parser.add_argument("--evaluators", default="flops,train")
    parser.add_argument("--references", default=",".join(REFERENCES), help="which references to run")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--epochs", type=float, default=8, help="final training, found networks and references")
    parser.add_argument("--train-trials", type=int, default=81, help="search trials with the train evaluator")
    parser.add_argument("--train-steps", type=int, default=90, help="train evaluator steps (successive halving)")
    parser.add_argument("--short-steps", type=int, default=10, help="NetAdapt fine-tuning per proposal")
    parser.add_argument("--slack", type=float, default=0.05, help="search budget above the reference's latency")
    parser.add_argument("--data", default="digits", help="training data of every network (and NetAdapt's)")
    parser.add_argument("--supernet", type=Path, help="supernet file of --evaluators supernet, trained on --data")
    parser.add_argument("--supernet-trials", type=int, default=500, help="search trials on the supernet")
    parser.add_argument("--out", type=Path, default=runs_dir() / "reproduce")
    args = parser.parse_args()
    if "supernet" in args.evaluators.split(",") and args.supernet is None:
        parser.error("--evaluators supernet needs --supernet FILE (python -m nas.supernet train writes one)")
    seeds = [int(s) for s in args.seeds.split(",")]
    recipe = Recipe(data=args.data, epochs=args.epochs)
    if args.supernet is not None:  # the pipeline refuses other data only after the references trained
        try:
            own = read_supernet(args.supernet)["recipe"]
        except NasError as exc:
            parser.error(str(exc))
        if (own["data"], own["resolution"]) != (recipe.data, recipe.resolution):
            parser.error(
                f"--supernet {args.supernet} was trained on {own['data']} at {own['resolution']} px;"
                f" give --data {own['data']} (this bench trains at {recipe.resolution} px)"
            )
    root = args.out
    started = time.perf_counter()

    references = {}
    for name in args.references.split(","):
        config = ArchConfig.load(REFERENCE_DIR / f"{name}.yaml")
        accuracies = [train_seed(config, recipe, s, root / "references" / name) for s in seeds]
        references[name] = (config, accuracies)

    results = []
    for target in args.targets.split(","):
        table = LatencyTable.load(target)
        for name, (reference, ref_acc) in references.items():
            budget = table.predict(reference)
            ref_measured = measure_here([reference], table)
            for evaluator in args.evaluators.split(","):
                out = root / f"{target}-{name}-{evaluator}"
                command = [
                    sys.executable,
                    "-m",
                    "nas.pipeline",
                    "--target",
                    target,
                    "--budget",
                    f"{budget}ms",
                    "--evaluator",
                    evaluator,
                    "--seeds",
                    args.seeds,
                    "--epochs",
                    str(args.epochs),
                    "--short-steps",
                    str(args.short_steps),
                    "--slack",
                    str(args.slack),
                    "--data",
                    args.data,
                    "--out",
                    str(out),
                    "--no-train-references",  # trained above, once for every run
                ]
                if evaluator == "train":
                    out = out.with_name(f"{out.name}{args.train_trials}")
                    command += ["--trials", str(args.train_trials), "--steps", str(args.train_steps), "--out", str(out)]
                if evaluator == "supernet":  # one inherited-start seed; the comparison trains from scratch below
                    command += ["--supernet", str(args.supernet), "--trials", str(args.supernet_trials)]
                    command += ["--seeds", str(seeds[0])]
                print(f"== {target} {name} {evaluator}: budget {budget:.3f} ms", file=sys.stderr, flush=True)
                subprocess.run(command, check=True)
                record = json.loads((out / "run.json").read_text())
                final = record["final"]
                found = replace(ArchConfig.load(out / "config.yaml"), name="final")
                if evaluator == "supernet":
                    scratch = [train_seed(found, recipe, s, out / "from-scratch") for s in seeds]
                    final = {**final, "accuracies": scratch, "inherited_start_accuracies": final["accuracies"]}
                sized = replace(reference, num_classes=found.num_classes)  # MACs and params with the same head
                results.append(
                    {
                        "target": target,
                        "reference": name,
                        "evaluator": evaluator if evaluator != "train" else f"train, {args.train_trials} trials",
                        "budget_ms": budget,
                        "reference_measured_ms": ref_measured[0] if ref_measured else None,
                        "reference_macs": sized.macs(),
                        "reference_params": sized.params(),
                        "reference_accuracies": ref_acc,
                        "final": final,
                        "netadapt_iterations": record["netadapt_iterations"],
                        "agreement": vars(agreement(found, reference)),
                    }
                )
    store = root / "results.json"  # runs of other subsets stay; a rerun of the same row replaces it
    rows = {(r["target"], r["reference"], r["evaluator"]): r for r in _load(store) + results}
    store.write_text(json.dumps(list(rows.values()), indent=1))
    _print(list(rows.values()), recipe, seeds, time.perf_counter() - started)


def _load(path: Path) -> list[dict]:
    return json.loads(path.read_text()) if path.exists() else []


def _print(results: list[dict], recipe: Recipe, seeds: list[int], seconds: float) -> None:
    print(
        f"Trained identically: {recipe.epochs:g} epochs on {recipe.data} at {recipe.resolution} px, seeds"
        f" {seeds}; held-out top-1 mean ± std (%). {seconds / 60:.0f} min this run."
        " Verdict: the difference of the means ± its standard error. Latency is priced with the searched"
        " head, as the budget is; MACs and params with the data's classes, found and reference alike.\n"
    )
    print(
        "| table | reference (budget) | search evaluator | latency ms: found / reference (measured here) |"
        " MMACs | params M | top-1 found | top-1 reference | verdict | structure vs reference |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        f, ref_acc = r["final"], r["reference_accuracies"]
        delta = 100 * (statistics.fmean(f["accuracies"]) - statistics.fmean(ref_acc))
        error = 100 * math.sqrt(sum(statistics.variance(a) / len(a) for a in (f["accuracies"], ref_acc)))
        fits = f["predicted_ms"] <= r["budget_ms"] + 1e-9
        verdict = ("**beats**" if delta >= 0 else f"{delta:+.2f} pt short") if fits else "over budget"
        goal = "yes" if fits and delta >= 0.5 and delta > 2 * error else "no"  # issue 17's: beyond 2 std errors
        evaluator = r["evaluator"]
        if "inherited_start_accuracies" in f:  # the supernet route's own result, beside the from-scratch one
            inherited = 100 * statistics.fmean(f["inherited_start_accuracies"])
            evaluator += f" (found network from scratch; from inherited weights, seed {seeds[0]}: {inherited:.2f})"
        measured = f" ({f['measured_ms']:.3f} / {r['reference_measured_ms']:.3f})" if r["reference_measured_ms"] else ""
        a = r["agreement"]
        print(
            f"| {r['target']} | {REFERENCES[r['reference']]} ({r['budget_ms']:.3f} ms) | {evaluator} |"
            f" {f['predicted_ms']:.3f} / {r['budget_ms']:.3f}{measured} |"
            f" {f['macs'] / 1e6:.1f} / {r['reference_macs'] / 1e6:.1f} |"
            f" {f['params'] / 1e6:.2f} / {r['reference_params'] / 1e6:.2f} | {_mean_std(f['accuracies'])} |"
            f" {_mean_std(ref_acc)} | {verdict} ({delta:+.2f} ± {error:.2f}; +0.5 beyond 2 SE: {goal}) |"
            f" k {a['kernel']:.0%}, SE {a['se']:.0%}, act {a['act']:.0%}, depth {a['depth']:.0%} |"
        )


if __name__ == "__main__":
    main()
