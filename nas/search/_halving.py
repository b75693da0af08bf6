"""Successive halving for the training evaluator in the Pareto search (Optuna's pruners refuse
multi-objective studies): ask a bracket of configs within budget, train all of them a little, keep
the best 1/eta, continue the survivors from their checkpoints, and tell each config the score of the
highest rung it reached (the rung is recorded with it)."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna

from nas._files import write_bytes_atomic
from nas.evaluate import TrainEvaluator
from nas.latency import LatencyModel
from nas.search._study import INFEASIBLE, ScoredConfigs, price_trial, record_result, result, reused_record
from nas.space import SearchSpace

logger = logging.getLogger(__name__)


def rung_steps(total: int, eta: int, rungs: int) -> list[int]:
    """Training steps per rung, ending at ``total``: e.g. 300 steps, eta 3, 3 rungs -> [33, 100, 300]."""
    return sorted({max(1, total // eta**k) for k in range(rungs)})


def rung_checkpoint(folder: Path, params: dict[str, Any], until: int) -> Path:
    """Where to train the config of ``params`` to step ``until``: one folder per config (not per trial) and
    one file per rung reached, so a config asked again (a killed run's trial, re-asked on rerun) goes on
    from its last rung at or below ``until`` and scores exactly as it would have in one go."""
    key = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:16]
    target = folder / key / f"step_{until}.pt"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        reached = sorted(
            (int(step), path)
            for path in target.parent.glob("step_*.pt")
            if (step := path.stem.removeprefix("step_")).isdigit() and int(step) < until
        )
        if reached:  # the trainer resumes from it and writes step ``until`` over it
            write_bytes_atomic(target, reached[-1][1].read_bytes())
    return target


def requeue_abandoned(study: optuna.Study, space: SearchSpace, numbers: list[int]) -> int:
    """Ask the configs of a killed run's trials again (``fail_abandoned`` failed them), first: their
    training continues from their checkpoints instead of being lost. A trial killed while its config was
    being drawn holds only some choices and nothing trained: it is not re-asked (enqueued, its partial
    choices would pin a different config). Returns how many were re-asked."""
    wanted = set(numbers)
    again = [t.params for t in study.get_trials(deepcopy=False) if t.number in wanted and _drawn(space, t.params)]
    for params in again:
        study.enqueue_trial(params)
    return len(again)


def _drawn(space: SearchSpace, params: dict[str, Any]) -> bool:
    """Whether ``params`` hold every choice of a config of ``space``."""
    try:
        space.sample(optuna.trial.FixedTrial(params))
    except ValueError:
        return False
    return True


def run_halving(
    *,
    study: optuna.Study,
    space: SearchSpace,
    latency: LatencyModel,
    evaluator: TrainEvaluator,
    budget_ms: float,
    trials: int | None,
    timeout: float | None,
    eta: int,
    rungs: int,
    checkpoints: Path,
    callback: Callable[[optuna.Study, optuna.trial.FrozenTrial], None] | None,
) -> None:
    steps = rung_steps(evaluator.steps, eta, rungs)
    bracket = eta ** (len(steps) - 1)
    checkpoints.mkdir(parents=True, exist_ok=True)
    deadline = math.inf if timeout is None else time.monotonic() + timeout
    complete = (optuna.trial.TrialState.COMPLETE,)
    evaluated = ScoredConfigs()

    def left() -> float:
        return math.inf if trials is None else trials - len(study.get_trials(deepcopy=False, states=complete))

    def tell(trial: optuna.Trial, values: tuple[float, float]) -> None:
        frozen = study.tell(trial, values)
        if callback is not None:
            callback(study, frozen)

    while left() > 0 and time.monotonic() < deadline:
        population = []  # (trial, config, latency) within budget
        while len(population) < min(bracket, left()) and time.monotonic() < deadline:
            trial = study.ask()
            config, latency_ms, base = price_trial(trial, space, latency, budget_ms)
            earlier = evaluated.find(trial) if base["feasible"] else None
            if base["feasible"] and earlier is None:
                population.append((trial, config, latency_ms, base))
                continue
            if earlier is not None:  # scored in an earlier bracket: its score (and rung) stand
                record_result(trial, {**reused_record(base, earlier), "rung": result(earlier).get("rung")})
                tell(trial, (result(earlier)["score"], latency_ms))
            else:
                record_result(trial, base)
                tell(trial, (INFEASIBLE, latency_ms))
            if left() <= 0:
                break
        for rung, until in enumerate(steps):
            scored = sorted(
                (
                    (
                        evaluator.score(
                            config, steps=until, checkpoint=rung_checkpoint(checkpoints, trial.params, until)
                        ),
                        trial,
                        config,
                        latency_ms,
                        base,
                    )
                    for trial, config, latency_ms, base in population
                ),
                key=lambda item: item[0].value,
                reverse=True,
            )
            keep = 0 if rung == len(steps) - 1 else max(1, len(scored) // eta)
            for score, trial, _, latency_ms, base in scored[keep:]:  # they stop here, scored at this rung
                record_result(trial, {**base, "score": score.value, "fidelity": score.fidelity, "rung": rung})
                tell(trial, (score.value, latency_ms))
            population = [(trial, config, latency_ms, base) for _, trial, config, latency_ms, base in scored[:keep]]
