"""run_search: the whole search as one call (the CLI parses flags and calls it)."""

from __future__ import annotations

import logging
import math
import os
import pickle
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import optuna

from nas._errors import ArgumentError, NasError, check_seed
from nas._paths import result_folder
from nas.config import ArchConfig
from nas.evaluate import Evaluator, TrainEvaluator, get_evaluator, options_for
from nas.latency import LatencyModel, load_latency, space_bounds
from nas.search._budget import parse_budget
from nas.search._mirror import MirroredLoop
from nas.search._results import Point, best_within, default_references, write_results
from nas.search._study import (
    OBJECTIVES,
    SAMPLERS,
    WARM,
    Setup,
    default_storage,
    fail_abandoned,
    feasible_trials,
    make_objective,
    make_sampler,
    make_storage,
    open_study,
    register,
    result,
    taken_before,
)
from nas.search._surrogate import most_levels
from nas.search._warm import copy_scored, warm_trials
from nas.space import SearchSpace

logger = logging.getLogger(__name__)
DEFAULT_SPACE = "search_spaces/mobilenetv3.yaml"
DEFAULT_TRIALS = 1000
_COMPLETE = (optuna.trial.TrialState.COMPLETE,)


@dataclass(frozen=True)
class SearchResult:
    """A finished (or resumed and finished) search: the study and what it found."""

    study: optuna.Study
    space: SearchSpace
    best: Point | None  # highest score within budget (from the top successive-halving rung)
    front: list[Point]  # Pareto front within budget, by latency
    references: list[Point]  # MobileNetV3-Large/-Small, same table and evaluator (where the table prices them)
    budget_ms: float
    latency: LatencyModel
    evaluator: Evaluator
    out: Path
    trials: int  # complete trials in the study
    feasible: int  # of which within budget and scored
    wall_seconds: float  # this call
    also_budgets_ms: tuple[float, ...] = ()  # the smaller budgets asked for, rising
    copied: int = 0  # of ``trials``: copied with their scores from earlier searches (``warm_start``)
    warm_start: tuple[str, ...] = ()  # the folders they were copied from (also when resumed without them)

    def best_within(self, budget_ms: float) -> Point | None:
        """The front's best config within ``budget_ms`` (one of ``also_budgets_ms``, say)."""
        return best_within(self.front, budget_ms)


@dataclass(frozen=True)
class _Work:
    """What each process of a search needs to run trials (pickled to worker processes)."""

    space: SearchSpace
    latency: LatencyModel
    evaluator: Evaluator
    budget_ms: float
    levels: tuple[float, ...]  # further budgets of interest (see run_search's also_budgets_ms)
    objective: str
    w: float
    storage: str | optuna.storages.BaseStorage
    study_name: str
    setup: Setup
    sampler: str | optuna.samplers.BaseSampler
    seed: int
    trials: int | None
    timeout: float | None
    eta: int
    rungs: int
    checkpoints: Path
    live_from: int = 0  # trials numbered below were created by earlier runs

    @property
    def halving(self) -> bool:
        """Successive halving (a training evaluator in the Pareto search) instead of Optuna's loop."""
        return _halves(self.evaluator, self.objective)

    @property
    def pruned(self) -> bool:
        """Training in rungs that Optuna's pruner may stop (MnasNet's objective): these trials run on the
        storage, claimed and heartbeated, so another process sees each rung; cheaper evaluations run in
        memory and are written when done (see ``MirroredLoop``)."""
        return isinstance(self.evaluator, TrainEvaluator) and self.objective == "mnas"

    def open(self, seed: int) -> optuna.Study:
        storage = make_storage(self.storage) if isinstance(self.storage, str) else self.storage
        if isinstance(self.sampler, str):
            # one seed for every process: named samplers seed each trial by its number (see TrialSeeded),
            # and a process that shares the study reseeds (see MirroredLoop)
            sampler = make_sampler(
                self.sampler,
                self.seed,
                space=self.space,
                latency=self.latency,
                budget_ms=self.budget_ms,
                levels=self.levels,
            )
        else:
            sampler = self.sampler
            if seed != self.seed:  # a worker's copy of the user's sampler must not repeat the first's draws
                sampler.reseed_rng()
        study = open_study(storage=storage, name=self.study_name, setup=self.setup, sampler=sampler)
        register(study)
        return study

    def remaining(self, study: optuna.Study) -> int | None:
        """Complete trials still to run (None: no count, a timeout ends the run)."""
        return None if self.trials is None else self.trials - len(study.get_trials(deepcopy=False, states=_COMPLETE))

    def run(self, study: optuna.Study, callback: Callable[[optuna.Study, optuna.trial.FrozenTrial], None] | None):
        remaining = self.remaining(study)
        if remaining is not None and remaining <= 0:
            return
        if self.halving:
            from nas.search._halving import run_halving

            run_halving(
                study=study,
                space=self.space,
                latency=self.latency,
                evaluator=self.evaluator,
                budget_ms=self.budget_ms,
                trials=self.trials,
                timeout=self.timeout,
                eta=self.eta,
                rungs=self.rungs,
                checkpoints=self.checkpoints,
                callback=callback,
            )
            return
        objective = make_objective(
            space=self.space,
            latency=self.latency,
            evaluator=self.evaluator,
            budget_ms=self.budget_ms,
            objective=self.objective,
            w=self.w,
            checkpoints=self.checkpoints,
        )
        callbacks = [] if callback is None else [callback]
        started = time.monotonic()
        # on the storage: trials that train in rungs (see ``pruned``), and trials a user enqueued there
        waiting = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,)))
        on_storage = remaining if self.pruned else (waiting if remaining is None else min(waiting, remaining))
        if on_storage != 0:
            limit = [optuna.study.MaxTrialsCallback(self.trials, states=_COMPLETE)] if self.trials is not None else []
            study.optimize(
                objective if self.trials is None else _within(self.trials, self.live_from, objective),
                n_trials=on_storage,
                timeout=self.timeout,
                callbacks=[*limit, *callbacks],
                catch=(),
            )
        remaining = self.remaining(study)
        if self.pruned or (remaining is not None and remaining <= 0):
            return
        timeout = None if self.timeout is None else self.timeout - (time.monotonic() - started)
        if timeout is not None and timeout <= 0:
            return
        loop = MirroredLoop(study, total=self.trials, live_from=self.live_from)
        loop.run(objective, n_trials=remaining, timeout=timeout, callbacks=callbacks)


def run_search(
    *,
    latency: LatencyModel | str | os.PathLike[str],
    budget_ms: float | str,
    also_budgets_ms: Sequence[float | str] = (),
    space: SearchSpace | str | os.PathLike[str] = DEFAULT_SPACE,
    evaluator: Evaluator | str = "flops",
    trials: int | None = DEFAULT_TRIALS,
    timeout: float | None = None,
    sampler: str | optuna.samplers.BaseSampler = "nsga2",
    objective: str = "pareto",
    w: float = -0.07,
    storage: str | optuna.storages.BaseStorage | None = None,
    study_name: str | None = None,
    out: str | os.PathLike[str] | None = None,
    seed: int = 0,
    workers: int = 1,
    eta: int = 3,
    rungs: int = 3,
    final_budget_ms: float | None = None,
    references: Sequence[ArchConfig] | None = None,
    warm_start: Sequence[str | os.PathLike[str]] = (),
    show_progress_bar: bool = False,
) -> SearchResult:
    """Search ``space`` for the best ``evaluator`` scores within ``budget_ms`` on ``latency``.

    Every trial is priced first; a config over budget is recorded infeasible and never evaluated. With a
    training evaluator and the Pareto objective, successive halving spends training on the promising
    configs. ``also_budgets_ms``: smaller budgets you also ship at (several devices, say); the summary names
    the best config within each, and the ``surrogate`` sampler works toward each. Calling again with the
    same arguments resumes the study (``trials`` counts complete trials
    across calls); ``workers`` > 1 runs more processes on the study (SQLite, PostgreSQL or journal
    storage). Results are written to ``out`` (default ``./runs/TARGET-BUDGET``): summary.md, pareto.png,
    pareto.csv, best.yaml/.onnx, run.json.

    ``latency``, ``space`` and ``evaluator`` take objects or names; ``sampler`` a name (see ``SAMPLERS``)
    or an Optuna sampler; ``storage`` a URL (``sqlite:///...``, ``postgresql://...``, ``journal:FILE``) or
    an Optuna storage (one process only). ``final_budget_ms``, when a later stage (NetAdapt in the
    pipeline) trims the pick to a budget below the search's, is drawn on the plot too. ``references``
    are the networks the summary and plot compare with (default: MobileNetV3-Large/-Small, and OFA's
    published networks in OFA's space; see ``default_references``). ``warm_start``: output folders of
    earlier searches in the same space with the same evaluator settings (any table or budget), whose scored
    configs a new study begins with, priced on ``latency`` and not evaluated again (``trials`` counts only
    new ones; see ``nas.search._warm``).
    """
    budget = parse_budget(budget_ms)
    _check_choices(sampler=sampler, objective=objective, eta=eta, trials=trials, workers=workers, rungs=rungs)
    if timeout is not None and not (timeout > 0 and math.isfinite(timeout)):
        raise ArgumentError("timeout", f"{timeout}", "use a positive number of seconds")
    if trials is None and timeout is None:
        raise ArgumentError("trials", "None", "give a number of trials, a timeout, or both")
    if not isinstance(storage, (str, type(None))) and workers > 1:
        raise ArgumentError("storage", type(storage).__name__, "several workers need a storage URL they can all open")
    check_seed(seed)
    if not math.isfinite(w):
        raise ArgumentError("w", f"{w}", "use a finite exponent, e.g. -0.07 (MnasNet's)")
    if study_name is not None and not study_name.strip():
        raise ArgumentError("study_name", repr(study_name), "give a name, or leave it out for the folder's")
    space = space if isinstance(space, SearchSpace) else SearchSpace.load(space)
    latency = load_latency(latency)
    if notice := latency.notice(() if latency.measured else space.ops()):
        logger.warning(notice)
    fastest = space_bounds(space, latency).fastest_ms
    levels = sorted({parse_budget(level, parameter="also_budgets_ms") for level in also_budgets_ms} - {budget})
    for name, value in [("budget_ms", budget), *(("also_budgets_ms", level) for level in levels)]:
        if value < fastest:
            raise ArgumentError(
                name,
                f"{value:g} ms",
                f"unreachable: the fastest config of {space.name} takes {fastest:.3f} ms on {latency.target};"
                " raise the budget",
            )
    if levels and levels[-1] > budget:
        raise ArgumentError(
            "also_budgets_ms", f"{levels[-1]:g} ms", f"over the search budget {budget:g} ms; make it the budget"
        )
    if sampler == "surrogate" and len(levels) > (most := most_levels()):
        raise ArgumentError(
            "also_budgets_ms", f"{len(levels)} budgets", f"the surrogate sampler aims at most {most}; drop some"
        )
    if isinstance(evaluator, str):
        evaluator = get_evaluator(evaluator, **options_for(evaluator, seed=seed))
    setup = Setup(space.hash, latency.target, budget, objective, evaluator.name, evaluator.describe())
    rung = _top_rung(evaluator, objective, eta, rungs)
    copies = warm_trials(warm_start, setup=setup, space=space, latency=latency, budget_ms=budget, objective=objective,
                         w=w, rung=rung)  # fmt: skip
    folder = result_folder(out, f"{Path(latency.target).stem}-{budget:g}ms")
    if isinstance(storage, str):
        make_storage(storage)  # a bad URL or folder is refused before anything is written
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ArgumentError("out", str(folder), f"cannot create it ({exc.strerror})") from None
    storage = default_storage(folder) if storage is None else storage
    work = _Work(
        space=space,
        latency=latency,
        evaluator=evaluator,
        budget_ms=budget,
        levels=tuple(levels),
        objective=objective,
        w=w,
        storage=storage,
        study_name=study_name or folder.name,
        setup=setup,
        sampler=sampler,
        seed=seed,
        trials=trials,
        timeout=timeout,
        eta=eta,
        rungs=rungs,
        checkpoints=folder / "checkpoints",
    )
    study = work.open(seed)
    if abandoned := fail_abandoned(study):
        logger.info("failed %d trials a killed run left running: %s", len(abandoned), _numbers(abandoned))
        if work.halving:
            from nas.search._halving import requeue_abandoned

            again = requeue_abandoned(study, space, abandoned)
            logger.info("asking %d of their configs again, training on from their checkpoints", again)
    copied = copy_scored(study, copies)
    total = None if trials is None else trials + copied  # ``trials`` counts the new ones
    work = replace(work, trials=total, live_from=len(study.get_trials(deepcopy=False)))
    done_before = len(study.get_trials(deepcopy=False, states=_COMPLETE))
    if done_before > copied:
        logger.info("resuming study %r: %d trials already complete", work.study_name, done_before - copied)
    start = time.perf_counter()
    children = [_start_worker(work, folder, index) for index in range(1, workers)]
    bar = _Progress(None if total is None else max(0, total - done_before), done_before) if show_progress_bar else None
    try:
        try:
            work.run(study, None if bar is None else bar.update)
        finally:
            for child in children:
                child.wait()
        if bar is not None:  # every worker's trials, from the storage (not after ctrl-C: a long study reads slowly)
            bar.update(study)
    finally:
        if bar is not None:
            bar.close()
    failed = [(index, child.returncode) for index, child in enumerate(children, 1) if child.returncode != 0]
    if failed:
        index, code = failed[0]
        raise NasError(f"search worker {index} failed (exit code {code}): {_last_line(folder / f'worker{index}.log')}")
    wall = time.perf_counter() - start
    sources = list(study.user_attrs.get(WARM, {}).get("from", []))  # also when resumed without ``warm_start``
    settings = {
        "space": space.source,
        "target": latency.target,
        "budget_ms": budget,
        "also_budgets_ms": levels,
        "evaluator": evaluator.describe(),
        "trials": trials,
        "timeout": timeout,
        "sampler": sampler if isinstance(sampler, str) else type(sampler).__name__,
        "objective": objective,
        "w": w,
        "storage": storage if isinstance(storage, str) else type(storage).__name__,
        "study": work.study_name,
        "seed": seed,
        "workers": workers,
        "eta": eta,
        "rungs": rungs,
        "warm_start": sources,
    }
    best, front, refs = write_results(
        out=folder,
        study=study,
        space=space,
        latency=latency,
        evaluator=evaluator,
        budget_ms=budget,
        settings=settings,
        wall_seconds=wall,
        final_budget_ms=final_budget_ms,
        progress=show_progress_bar,
        reference_networks=default_references(space) if references is None else references,
        levels=levels,
    )
    return SearchResult(
        study=study,
        space=space,
        best=best,
        front=front,
        references=refs,
        budget_ms=budget,
        latency=latency,
        evaluator=evaluator,
        out=folder,
        trials=len(study.get_trials(deepcopy=False, states=_COMPLETE)),
        feasible=len(feasible_trials(study)),
        wall_seconds=wall,
        also_budgets_ms=tuple(levels),
        copied=copied,
        warm_start=tuple(sources),
    )


def _halves(evaluator: Evaluator, objective: str) -> bool:
    """Successive halving: a training evaluator in the Pareto search."""
    return isinstance(evaluator, TrainEvaluator) and objective == "pareto"


def _top_rung(evaluator: Evaluator, objective: str, eta: int, rungs: int) -> int | None:
    """The successive-halving rung of a fully trained score; None where the search does not halve."""
    if not _halves(evaluator, objective):
        return None
    assert isinstance(evaluator, TrainEvaluator)
    from nas.search._halving import rung_steps

    return len(rung_steps(evaluator.steps, eta, rungs)) - 1


def _numbers(numbers: list[int]) -> str:
    return ", ".join(map(str, numbers[:10])) + (f" and {len(numbers) - 10} more" if len(numbers) > 10 else "")


def _within(total: int, live_from: int, objective: Callable[[optuna.Trial], Any]) -> Callable[[optuna.Trial], Any]:
    """The objective, refusing a trial that would go past ``total``: several workers each stop after the
    total is complete, but one may already have started another trial by then. Trials are numbered in
    the storage's order, so a trial runs only while fewer than ``total`` earlier ones are complete or
    running (numbered from ``live_from``: a trial left running by a killed run never ends); a refused one
    is pruned (not counted) and stops its worker."""

    def run(trial: optuna.Trial) -> Any:
        if taken_before(trial.study, trial.number, live_from=live_from) >= total:
            trial.study.stop()
            raise optuna.TrialPruned("the requested number of trials is complete")
        return objective(trial)

    return run


def _check_choices(
    *,
    sampler: str | optuna.samplers.BaseSampler,
    objective: str,
    eta: int,
    trials: int | None,
    workers: int,
    rungs: int,
) -> None:
    if isinstance(sampler, str) and sampler not in SAMPLERS:
        raise ArgumentError("sampler", repr(sampler), f"unknown; use one of {', '.join(SAMPLERS)}")
    if objective not in OBJECTIVES:
        raise ArgumentError("objective", repr(objective), f"unknown; use one of {', '.join(OBJECTIVES)}")
    if eta < 2:
        raise ArgumentError("eta", str(eta), "use 2 or more")
    for name, value in (("trials", trials), ("workers", workers), ("rungs", rungs)):
        if value is not None and value < 1:
            raise ArgumentError(name, str(value), "use 1 or more")


def _start_worker(work: _Work, folder: Path, index: int) -> subprocess.Popen[bytes]:
    """Another process on the same study, sampling with seed + index; its stderr goes to OUT/workerN.log.

    A fresh interpreter that imports only nas (not the caller's script, so no ``__main__`` guard is
    needed); the work reaches it pickled through its standard input, fed by a thread while it starts.
    """
    with (folder / f"worker{index}.log").open("w") as log:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            [sys.executable, "-m", "nas.search._worker", str(index), str(optuna.logging.get_verbosity())],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    threading.Thread(target=_feed, args=(process, pickle.dumps(work)), daemon=True).start()
    return process


def _feed(process: subprocess.Popen[bytes], data: bytes) -> None:
    assert process.stdin is not None
    try:
        process.stdin.write(data)
        process.stdin.close()
    except BrokenPipeError:  # the worker died first; its exit code and log say why
        pass


def _last_line(log: Path) -> str:
    try:
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no log"
    return lines[-1][:300] if lines else "no output"


class _Progress:
    """A tqdm bar: trials done (every worker's), feasible count, best score so far, ETA."""

    def __init__(self, total: int | None, done_before: int) -> None:
        from tqdm import tqdm

        self.bar = tqdm(
            total=total,
            desc="search",
            unit="trial",
            file=sys.stderr,
            dynamic_ncols=True,
            mininterval=0.5 if sys.stderr.isatty() else 10,
        )
        self.done_before = done_before
        self.feasible, self.best, self.synced = 0, float("-inf"), -math.inf

    def update(self, study: optuna.Study, trial: optuna.trial.FrozenTrial | None = None) -> None:
        """After each trial of this process (counted here), and at most once a second and once the workers
        are done, from the study: other workers' trials are counted too."""
        if trial is not None and time.monotonic() - self.synced < 1:
            if result(trial).get("feasible"):
                self.feasible += 1
                self.best = max(self.best, result(trial)["score"])
            advance = 1
        else:
            done = study.get_trials(deepcopy=False, states=_COMPLETE)
            scores = [result(t)["score"] for t in done if result(t).get("feasible")]
            self.feasible, self.best = len(scores), max(scores, default=float("-inf"))
            advance = len(done) - self.done_before - self.bar.n
            self.synced = time.monotonic()
        self.bar.set_postfix(feasible=self.feasible, best=f"{self.best:.4g}", refresh=False)
        self.bar.update(advance)

    def close(self) -> None:
        self.bar.close()
