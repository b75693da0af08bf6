"""python -m nas.search --target arm64 --budget 60ms: the most accurate networks within a latency budget.

Latency is priced from the target's table first; configs over budget are recorded but never evaluated.
Rerunning the same command resumes the study; --workers N (or several commands on one --storage)
share it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from nas import _cli
from nas.search._run import DEFAULT_SPACE, DEFAULT_TRIALS
from nas.search._study import OBJECTIVES, SAMPLERS

FLAGS = {
    "budget_ms": "--budget",
    "also_budgets_ms": "--also-budgets",
    "latency": "--target",
    "study_name": "--study",
    "warm_start": "--warm-start",
}


def _parser() -> argparse.ArgumentParser:
    p = _cli.budget_parser("nas.search", __doc__, budget_help="latency budget")
    p.add_argument(
        "--also-budgets",
        default="",
        help="smaller budgets you also ship at, comma-separated (30ms,41ms): the summary names the best config"
        " within each, and --sampler surrogate works toward each",
    )
    p.add_argument("--space", default=DEFAULT_SPACE, help="search space YAML or shipped name (default: %(default)s)")
    p.add_argument(
        "--evaluator",
        default="flops",
        help=f"one of {_cli.EVALUATOR_NAMES} (default: %(default)s, chosen in bench/RESULTS.md)",
    )
    p.add_argument("--data", help="dataset for data-based evaluators (default: digits)")
    _cli.add_evaluator_flags(p)
    p.add_argument(
        "--trials",
        type=int,
        help=f"complete trials in the study: resumed ones count, --warm-start's do not (default {DEFAULT_TRIALS})",
    )
    p.add_argument("--timeout", type=float, help="stop this run after so many seconds (default: no limit)")
    p.add_argument("--sampler", default="nsga2", help=f"one of {', '.join(SAMPLERS)} (default: %(default)s)")
    p.add_argument(
        "--objective",
        default="pareto",
        help=f"one of {', '.join(OBJECTIVES)}: pareto (accuracy and latency) or mnas (MnasNet reward)",
    )
    p.add_argument("--w", type=float, default=-0.07, help="MnasNet reward exponent (default: %(default)s)")
    p.add_argument("--storage", help="Optuna storage URL (default: sqlite in the run folder); journal:FILE too")
    p.add_argument("--study", help="study name (default: the run folder's name)")
    p.add_argument("--out", type=Path, help="run folder (default: runs/TARGET-BUDGET in the current directory)")
    p.add_argument("--seed", type=int, default=0, help="sampler and evaluator seed (default: %(default)s)")
    p.add_argument("--workers", type=int, default=1, help="processes on this machine sharing the study")
    p.add_argument("--eta", type=int, default=3, help="successive halving (train evaluator, pareto): keep 1/eta")
    p.add_argument("--rungs", type=int, default=3, help="successive halving: fidelity rungs (default: %(default)s)")
    _cli.add_warm_start_flag(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(_cli.bind_dash_value(sys.argv[1:] if argv is None else argv, "--budget"))
    _cli.quiet_optuna()
    from nas._errors import ArgumentError
    from nas.evaluate import get_evaluator
    from nas.latency import latency_basis
    from nas.search import Point, run_search

    if args.steps < 1:
        raise ArgumentError("steps", str(args.steps), "use 1 or more")
    evaluator = get_evaluator(args.evaluator, **_cli.evaluator_options(args))
    result = run_search(
        latency=args.target,
        budget_ms=args.budget,
        also_budgets_ms=[level for level in args.also_budgets.split(",") if level.strip()],
        space=args.space,
        evaluator=evaluator,
        trials=DEFAULT_TRIALS if args.trials is None and args.timeout is None else args.trials,
        timeout=args.timeout,
        sampler=args.sampler,
        objective=args.objective,
        w=args.w,
        storage=args.storage,
        study_name=args.study,
        out=args.out,
        seed=args.seed,
        workers=args.workers,
        eta=args.eta,
        rungs=args.rungs,
        warm_start=args.warm_start,
        show_progress_bar=True,
    )
    predicted = "predicted" if result.latency.measured else "predicted (ESTIMATED table)"
    copied = f"; {result.copied} copied from --warm-start" if result.copied else ""
    print(
        f"search {result.study.study_name}: {result.trials} trials ({result.feasible} within"
        f" {result.budget_ms:g} ms{copied}) priced by {latency_basis(result.latency)},"
        f" {result.wall_seconds:.0f} s this run"
    )
    if result.best is None:
        print("best: none within budget yet; raise --trials or --budget")
        print("config: -")
        print("front: empty")
    else:
        best, front = result.best, result.front
        unit = result.evaluator.unit

        def described(point: Point) -> str:
            return f"{point.name}, score {point.score:.4g} {unit}, latency {point.latency_ms:.3f} ms {predicted}"

        print(f"best: {described(best)}")
        for ms in result.also_budgets_ms:
            point = result.best_within(ms)
            print(f"within {ms:g} ms: {'none' if point is None else described(point)}")
        print(f"config: {result.out / 'best.yaml'}   onnx (random weights): {result.out / 'best.onnx'}")
        print(
            f"front: {len(front)} configs from {front[0].latency_ms:.3f} ms (score {front[0].score:.4g}) to"
            f" {front[-1].latency_ms:.3f} ms (score {front[-1].score:.4g})"
        )
    print(f"results: {result.out / 'summary.md'}, pareto.png, pareto.csv")
    return 0


def entry() -> None:
    """Console script."""
    raise SystemExit(_cli.run(main, flags=FLAGS))


if __name__ == "__main__":
    entry()
