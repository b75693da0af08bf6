"""python -m nas.search --target arm64 --budget 60ms: the most accurate networks within a latency budget.

Latency is priced from the target's table first; configs over budget are recorded but never evaluated.
Rerunning the same command resumes the study; --workers N (or several commands on one --storage)
share it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

from nas import _cli
from nas._errors import NasError
from nas._paths import DEFAULT_SPACE, PROJECT_ROOT
from nas.search._budget import parse_budget
from nas.search._study import OBJECTIVES, SAMPLERS, default_storage

DEFAULT_EVALUATOR = "flops"


def _parser() -> argparse.ArgumentParser:
    p = _cli.budget_parser("nas.search", __doc__, budget_help="latency budget")
    p.add_argument("--space", default=str(DEFAULT_SPACE), help="search space YAML (default: %(default)s)")
    p.add_argument(
        "--evaluator",
        default=DEFAULT_EVALUATOR,
        help="params, flops, synflow, naswot, grad_norm, zen, train (default: %(default)s, chosen in bench/RESULTS.md)",
    )
    p.add_argument("--data", default="digits", help="dataset for data-based evaluators (default: %(default)s)")
    p.add_argument("--steps", type=int, default=300, help="training steps of the train evaluator")
    p.add_argument("--trials", type=int, help="complete trials in the study, resumed ones included (default 1000)")
    p.add_argument("--timeout", type=float, help="stop this run after so many seconds")
    p.add_argument("--sampler", default="nsga2", help=f"one of {', '.join(SAMPLERS)} (default: %(default)s)")
    p.add_argument("--objective", default="pareto", help="pareto (accuracy and latency) or mnas (MnasNet reward)")
    p.add_argument("--w", type=float, default=-0.07, help="MnasNet reward exponent (default: %(default)s)")
    p.add_argument("--storage", help="Optuna storage URL (default: sqlite in the run folder); journal:FILE too")
    p.add_argument("--study", help="study name (default: the run folder's name)")
    p.add_argument("--out", type=Path, help="run folder (default: runs/TARGET-BUDGET)")
    p.add_argument("--seed", type=int, default=0, help="sampler and evaluator seed (default: %(default)s)")
    p.add_argument("--workers", type=int, default=1, help="processes on this machine sharing the study")
    p.add_argument("--eta", type=int, default=3, help="successive halving (train evaluator, pareto): keep 1/eta")
    p.add_argument("--rungs", type=int, default=3, help="successive halving: fidelity rungs (default: %(default)s)")
    p.add_argument("--worker-index", type=int, default=0, help=argparse.SUPPRESS)
    return p


def _validate(args: argparse.Namespace) -> float:
    budget = parse_budget(args.budget)
    if args.sampler not in SAMPLERS:
        raise NasError(f"--sampler {args.sampler!r}: unknown; use one of {', '.join(SAMPLERS)}")
    if args.objective not in OBJECTIVES:
        raise NasError(f"--objective {args.objective!r}: unknown; use one of {', '.join(OBJECTIVES)}")
    if args.eta < 2:
        raise NasError(f"--eta {args.eta}: use 2 or more")
    for flag in ("trials", "workers", "steps", "rungs"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise NasError(f"--{flag} {value}: use 1 or more")
    if args.timeout is not None and args.timeout <= 0:
        raise NasError(f"--timeout {args.timeout}: use a positive number of seconds")
    if args.out is None:
        args.out = PROJECT_ROOT / "runs" / f"{Path(args.target).stem}-{budget:g}ms"
    if args.out.exists() and not args.out.is_dir():
        raise NasError(f"--out {args.out}: is a file; give a folder for the run's results")
    if args.trials is None and args.timeout is None:
        args.trials = 1000
    return budget


def _spawn_worker(raw: list[str], out: Path, storage_url: str, name: str, index: int) -> subprocess.Popen:
    """Another process on the same study; its stderr goes to OUT/workerN.log."""
    command = [
        sys.executable,
        "-m",
        "nas.search",
        *raw,
        "--out",
        str(out),
        "--storage",
        storage_url,
        "--study",
        name,
        "--worker-index",
        str(index),
        "--workers",
        "1",
    ]
    with (out / f"worker{index}.log").open("w") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)


def main(argv: Sequence[str] | None = None) -> int:
    raw = _cli.bind_dash_value(sys.argv[1:] if argv is None else argv, "--budget")
    args = _parser().parse_args(raw)
    budget = _validate(args)

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

    from nas.evaluate import get_evaluator, options_for
    from nas.latency import LatencyTable, space_bounds
    from nas.search._results import write_results
    from nas.search._study import Setup, make_objective, make_storage, open_study
    from nas.space import SearchSpace

    space = SearchSpace.load(args.space)
    table = LatencyTable.load(args.target)
    table.check_space(space)
    worker = args.worker_index > 0
    if (notice := table.notice()) and not worker:
        print(notice, file=sys.stderr)
    bounds = space_bounds(space, table)
    if budget < bounds.fastest_ms:
        raise NasError(
            f"--budget {budget:g} ms is unreachable: the fastest config of {space.name} takes"
            f" {bounds.fastest_ms:.3f} ms on {table.target}; raise the budget"
        )
    evaluator = get_evaluator(
        args.evaluator, **options_for(args.evaluator, data=args.data, seed=args.seed, steps=args.steps)
    )
    args.out.mkdir(parents=True, exist_ok=True)
    storage_url = args.storage or default_storage(args.out)
    storage = make_storage(storage_url)
    name = args.study or args.out.name
    setup = Setup(space.hash, table.target, budget, args.objective, args.evaluator)
    study = open_study(
        storage=storage,
        name=name,
        setup=setup,
        sampler_name=args.sampler,
        seed=args.seed + args.worker_index,  # workers must not sample the same sequence
    )
    priced = {  # what both ways of running trials price and score with
        "space": space,
        "table": table,
        "evaluator": evaluator,
        "budget_ms": budget,
        "checkpoints": args.out / "checkpoints",
    }
    states = (optuna.trial.TrialState.COMPLETE,)
    callbacks = []
    if args.trials is not None:
        callbacks.append(optuna.study.MaxTrialsCallback(args.trials, states=states))
    done_before = len(study.get_trials(deepcopy=False, states=states))
    children = [] if worker else [_spawn_worker(raw, args.out, storage_url, name, i) for i in range(1, args.workers)]
    start = time.perf_counter()
    remaining = None if args.trials is None else max(0, args.trials - done_before)
    if not worker and done_before:
        print(f"resuming study {name!r}: {done_before} trials already complete", file=sys.stderr)
    if remaining != 0:
        bar = None if worker else _progress(remaining, study)
        if bar is not None:
            callbacks.append(bar.update)
        try:
            if args.evaluator == "train" and args.objective == "pareto":
                from nas.search._halving import run_halving

                run_halving(
                    study=study,
                    **priced,
                    trials=args.trials,
                    timeout=args.timeout,
                    eta=args.eta,
                    rungs=args.rungs,
                    callback=None if bar is None else bar.update,
                )
            else:
                study.optimize(
                    make_objective(**priced, objective=args.objective, w=args.w),
                    n_trials=None if args.trials is None else remaining,
                    timeout=args.timeout,
                    callbacks=callbacks,
                    catch=(),
                )
        finally:
            if bar is not None:
                bar.close()
    for child in children:
        child.wait()
    if worker:
        return 0
    wall = time.perf_counter() - start
    best, front = write_results(
        out=args.out,
        study=study,
        space=space,
        table=table,
        evaluator=evaluator,
        budget_ms=budget,
        args={**vars(args), "out": str(args.out), "storage": storage_url},
        wall_seconds=wall,
    )
    complete = study.get_trials(deepcopy=False, states=states)
    from nas.search._study import feasible_trials

    print(
        f"search {name}: {len(complete)} trials ({len(feasible_trials(study))} within {budget:g} ms) on"
        f" {table.target}, {wall:.0f} s this run"
    )
    if best is None:
        print("best: none within budget yet; raise --trials or --budget")
        print("config: -")
        print("front: empty")
    else:
        print(
            f"best: {best.name}, score {best.score:.4g} ({evaluator.name}), latency {best.latency_ms:.3f} ms"
            f"{'' if table.measured else ' (ESTIMATED table)'}"
        )
        print(f"config: {args.out / 'best.yaml'}   onnx: {args.out / 'best.onnx'}")
        print(
            f"front: {len(front)} configs from {front[0].latency_ms:.3f} ms (score {front[0].score:.4g}) to"
            f" {front[-1].latency_ms:.3f} ms (score {front[-1].score:.4g})"
        )
    print(f"results: {args.out / 'summary.md'}, pareto.png, pareto.csv")
    return 0


class _progress:
    """A tqdm bar: trials done, feasible count, best score so far, ETA."""

    def __init__(self, total: int | None, study) -> None:
        from tqdm import tqdm

        self.bar = tqdm(
            total=total,
            desc="search",
            unit="trial",
            file=sys.stderr,
            dynamic_ncols=True,
            mininterval=0.5 if sys.stderr.isatty() else 10,
        )
        self.feasible = 0
        self.best = float("-inf")

    def update(self, study, trial) -> None:
        from nas.search._study import result

        if result(trial).get("feasible"):
            self.feasible += 1
            self.best = max(self.best, result(trial).get("score", float("-inf")))
        self.bar.set_postfix(feasible=self.feasible, best=f"{self.best:.4g}", refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def entry() -> None:
    """Console script."""
    raise SystemExit(_cli.run(main))


if __name__ == "__main__":
    entry()
