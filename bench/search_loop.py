"""How much does the search loop cost beyond sampling? The quick-start search against Optuna's own loop.

Times, in one run (this VM's speed drifts, so only ratios within a run are compared):

1. Optuna's own loop in memory over the same parameters, per sampler (NSGA-II, TPE as nas makes it,
   random): an objective that suggests every choice of the default space (the genes) and returns two
   numbers, nothing else;
2. ``nas.search`` on the quick start's settings (default space, arm64 table, 60 ms, flops evaluator,
   SQLite in the output folder), in-process through ``run_search``, per sampler: its trial loop
   (``wall_seconds``) and the whole call with writing the results, each against Optuna alone with the
   same sampler (and NSGA-II's, the goal's yardstick);
3. the quick-start command itself in a subprocess (imports, loop and results: what a user waits for);
4. a long run (``--long`` trials, NSGA-II), of ``nas.search`` and of Optuna's own loop alone: the first
   and last 1,000 trials' time, from the trials' timestamps.

    python bench/search_loop.py [--trials 1000] [--long 10000] [--samplers nsga2,tpe,random]

``surrogate`` works too, but its own model costs about 0.25 s per trial (see README), so the loop is not
what it measures.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna

from nas import SearchSpace
from nas._paths import DEFAULT_SPACE
from nas.search import run_search


def optuna_alone(trials: int, genes: dict[str, list], sampler: str = "nsga2") -> tuple[float, optuna.Study]:
    """Seconds for Optuna's own ``sampler`` to run ``trials`` trials in memory over ``genes``, and its study."""

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        picks = [trial.suggest_categorical(name, options) for name, options in genes.items()]
        return float(len(str(picks))), float(sum(isinstance(p, bool) and p for p in picks))

    made = {
        "nsga2": lambda: optuna.samplers.NSGAIISampler(seed=0),
        "tpe": lambda: optuna.samplers.TPESampler(seed=0, multivariate=True),  # as nas makes it
        "random": lambda: optuna.samplers.RandomSampler(seed=0),
    }
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=made[sampler]())
    start = time.perf_counter()
    study.optimize(objective, n_trials=trials)
    return time.perf_counter() - start, study


def nas_search(trials: int, sampler: str, work: Path) -> tuple[float, float]:
    """(trial loop seconds, whole call seconds) of the quick start's search in-process."""
    start = time.perf_counter()
    outcome = run_search(latency="arm64", budget_ms="60ms", trials=trials, sampler=sampler, out=work / sampler)
    return outcome.wall_seconds, time.perf_counter() - start


def command(trials: int, work: Path) -> float:
    start = time.perf_counter()
    flags = ["--target", "arm64", "--budget", "60ms", "--trials", str(trials), "--out", str(work / "command")]
    subprocess.run(
        [sys.executable, "-m", "nas.search", *flags],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


def _spans(trials: list[optuna.trial.FrozenTrial]) -> tuple[float, float]:
    """Seconds taken by the first and by the last 1,000 trials, from their timestamps."""
    done = sorted(trials, key=lambda t: t.number)

    def span(part: list[optuna.trial.FrozenTrial]) -> float:
        return (part[-1].datetime_complete - part[0].datetime_start).total_seconds()

    return span(done[:1000]), span(done[-1000:])


def long_run(trials: int, work: Path) -> tuple[float, float]:
    """First and last 1,000 trials of one ``trials``-trial quick-start search."""
    outcome = run_search(latency="arm64", budget_ms="60ms", trials=trials, out=work / "long")
    return _spans(outcome.study.get_trials(deepcopy=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--long", type=int, default=10000, help="trials of the long run (0: skip it)")
    parser.add_argument("--samplers", default="nsga2,tpe,random")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="search-loop-"))
    genes = SearchSpace.load(DEFAULT_SPACE).choices()
    print(f"{len(genes)} parameters, {args.trials} trials, results in {work}")
    alone, _ = optuna_alone(args.trials, genes)
    print(f"Optuna NSGA-II alone, in memory: {alone:.2f} s")
    for sampler in args.samplers.split(","):
        own = alone if sampler == "nsga2" else optuna_alone(args.trials, genes, sampler)[0]
        loop, whole = nas_search(args.trials, sampler, work)
        print(
            f"nas.search --sampler {sampler}: loop {loop:.2f} s ({loop / own:.1f}x Optuna's {sampler} alone,"
            f" {own:.2f} s; {loop / alone:.1f}x NSGA-II alone), with results {whole:.2f} s"
        )
    whole_command = command(args.trials, work)
    print(f"quick-start command in a subprocess: {whole_command:.2f} s ({whole_command / alone:.1f}x)")
    print(f"Optuna NSGA-II alone again: {optuna_alone(args.trials, genes)[0]:.2f} s")
    if args.long:
        for label, (first, last) in (
            ("nas.search", long_run(args.long, work)),
            ("Optuna NSGA-II alone", _spans(optuna_alone(args.long, genes)[1].get_trials(deepcopy=False))),
        ):
            ratio = last / first
            print(f"{label}, {args.long} trials: first 1,000 {first:.2f} s, last 1,000 {last:.2f} s (x{ratio:.2f})")


if __name__ == "__main__":
    main()
