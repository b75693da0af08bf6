"""Successive halving: rungs, checkpoints per config, and a kill mid-bracket."""

from __future__ import annotations

import csv
import os
import signal
import time
from pathlib import Path

import optuna

from nas import ArchConfig, SearchSpace
from nas.evaluate import TrainEvaluator
from nas.search._halving import requeue_abandoned
from tests.conftest import run_main, start_cli
from tests.searching import complete_trials, count_trials, search, search_args, study_of


def test_rung_steps() -> None:
    from nas.search._halving import rung_steps

    assert rung_steps(300, 3, 3) == [33, 100, 300]
    assert rung_steps(10, 2, 2) == [5, 10]


def test_successive_halving_trains_survivors_further(search_setup: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "run"
    search(search_setup, out, trials=12, evaluator=TrainEvaluator(steps=9), eta=3, rungs=2, budget_ms=4)
    feasible = [t.user_attrs["nas"] for t in complete_trials(study_of(out)) if t.user_attrs["nas"]["feasible"]]
    rungs = sorted(r["rung"] for r in feasible)
    assert rungs.count(0) > rungs.count(1) >= 1  # eta 3: one of each full bracket of three goes on
    assert all(r["fidelity"].startswith("trained 3/9" if r["rung"] == 0 else "trained 9/9") for r in feasible)
    trained = [r for r in feasible if "reused_from" not in r]
    assert len(list((out / "checkpoints").iterdir())) == len(trained)  # one folder per config trained
    assert len(list((out / "checkpoints").glob("*/step_*.pt"))) == len(trained) + rungs.count(1)
    with (out / "pareto.csv").open() as handle:
        assert {row["rung"] for row in csv.DictReader(handle)} <= {"0", "1"}
    best = next(
        t for t in complete_trials(study_of(out)) if f"trial_{t.number:05d}" == ArchConfig.load(out / "best.yaml").name
    )
    assert best.user_attrs["nas"]["rung"] == 1  # the best is taken among the fully trained
    assert "| rung |" in (out / "summary.md").read_text()


def test_rung_checkpoints_are_per_config_and_go_on_from_the_last_rung_below(tmp_path: Path) -> None:
    from nas.search._halving import rung_checkpoint

    params = {"depth_0": 2, "kernel_0_0": 3}
    first = rung_checkpoint(tmp_path, params, 3)
    assert not first.exists()
    assert first.name == "step_3.pt"
    first.write_bytes(b"three steps")
    assert rung_checkpoint(tmp_path, dict(reversed(params.items())), 3) == first  # the same config
    assert rung_checkpoint(tmp_path, {**params, "kernel_0_0": 5}, 3).parent != first.parent
    assert rung_checkpoint(tmp_path, params, 9).read_bytes() == b"three steps"  # training goes on from it
    assert not rung_checkpoint(tmp_path, params, 1).exists()  # nothing at or below step 1
    assert sorted(p.name for p in first.parent.iterdir()) == ["step_3.pt", "step_9.pt"]


def _whole_config(space: SearchSpace, params: dict[str, object]) -> bool:
    try:
        space.sample(optuna.trial.FixedTrial(params))
    except ValueError:
        return False
    return True


def test_requeue_abandoned_asks_only_whole_configs(search_setup: dict[str, Path]) -> None:
    """A trial killed halfway through drawing its config is failed, not re-asked: pinned, its partial
    choices would make another config, and nothing of it was trained."""
    space = SearchSpace.load(search_setup["space"])
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=0))
    whole = study.ask()
    config = space.sample(whole)
    partial = study.ask()
    name, options = next((n, o) for n, o in space.choices().items() if len(o) > 1)
    partial.suggest_categorical(name, list(options))
    assert requeue_abandoned(study, space, [whole.number, partial.number]) == 1
    again = study.ask()
    assert space.sample(again) == config


def test_successive_halving_killed_leaves_no_trial_running(search_setup: dict[str, Path], tmp_path: Path) -> None:
    """Halving asks a whole bracket before training it: a kill leaves several trials RUNNING, which the
    rerun fails (their processes are gone) before it goes on to the requested count."""
    out = tmp_path / "run"
    flags = ("--trials", "9", "--steps", "9", "--eta", "3", "--rungs", "2")
    command = search_args(search_setup, out, *flags, budget="4ms", evaluator="train")
    process = start_cli(*command)
    deadline = time.monotonic() + 120
    db = out / "study.db"
    while time.monotonic() < deadline and not (count_trials(db) >= 3 and count_trials(db, "RUNNING")):
        time.sleep(0.2)  # one bracket told, the next one asked
    assert process.poll() is None, "the search ended before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    running = study_of(out).get_trials(states=(optuna.trial.TrialState.RUNNING,))
    done_before = len(complete_trials(study_of(out)))  # over-budget configs are told at once, so it varies

    result = run_main(*command)  # the rerun: in-process
    assert result.returncode == 0, result.stderr
    assert running
    assert f"failed {len(running)} trials a killed run left running" in result.stderr
    space = SearchSpace.load(search_setup["space"])
    asked = [t for t in running if _whole_config(space, t.params)]  # a kill mid-draw leaves a partial one
    assert f"asking {len(asked)} of their configs again" in result.stderr
    study = study_of(out)
    assert not study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
    assert len(complete_trials(study)) == 9
    complete = [t.params for t in complete_trials(study)]
    # their training went on in the rerun, as far as the requested count left room for them
    assert sum(t.params in complete for t in asked) >= min(len(asked), 9 - done_before)


def test_mnas_with_training_reports_rungs_for_optunas_pruner(search_setup: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "run"
    trials = search(
        search_setup, out, trials=6, objective="mnas", evaluator=TrainEvaluator(steps=9), budget_ms=4
    ).study.trials
    evaluated = [t for t in trials if t.intermediate_values]
    assert evaluated
    for trial in evaluated:
        assert set(trial.intermediate_values) <= {1, 3, 9}
        if trial.state == optuna.trial.TrialState.COMPLETE:
            assert set(trial.intermediate_values) == {1, 3, 9}
