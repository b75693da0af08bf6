"""A search interrupted (Ctrl-C, kill -9) and rerun: finished work kept, nothing drawn or scored twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from nas import ArchConfig
from nas.evaluate import Score
from nas.evaluate._baselines import FlopsEvaluator
from tests.conftest import ROOT, run_main, start_cli
from tests.searching import complete_trials, count_trials, search, search_args, study_of


def test_ctrl_c_is_one_line_and_the_rerun_resumes(search_setup: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "run"
    command = [sys.executable, "-m", *search_args(search_setup, out, "--trials", "100000", evaluator="synflow")]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and count_trials(out / "study.db") < 5:
        time.sleep(0.3)
    assert process.poll() is None, "the search ended before it could be interrupted"
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "failed with parameters" not in stderr
    assert stderr.strip().splitlines()[-1] == "interrupted: rerun the same command to resume (finished work is kept)"
    done = count_trials(out / "study.db")
    result = run_main(
        *search_args(search_setup, out, "--trials", str(done + 2), evaluator="synflow")
    )  # the rerun: in-process
    assert result.returncode == 0, result.stderr
    assert f"{done} trials already complete" in result.stderr
    study = study_of(out)
    assert len(complete_trials(study)) == done + 2
    # a trial the Ctrl-C caught mid-record names the exited process as its owner: the rerun fails it
    assert not study.get_trials(states=(optuna.trial.TrialState.RUNNING,))


def _configs(study: optuna.Study) -> list[tuple]:
    return sorted(tuple(sorted(t.params.items())) for t in complete_trials(study))


@pytest.mark.parametrize(("sampler", "trials"), [("random", 25), ("nsga2", 60)])  # NSGA-II: past one generation
def test_a_run_killed_and_resumed_ends_where_an_uninterrupted_one_does(
    search_setup: dict[str, Path], tmp_path: Path, sampler: str, trials: int
) -> None:
    """kill -9 mid-run, rerun: finished trials are kept, the stale running trial is failed, and the
    resumed run draws what the uninterrupted run drew (no replay of the first run's configs). The first
    run asks for far more trials than it gets to (trials are fast); a trial's draw does not depend on the
    total asked for."""
    out = tmp_path / "run"

    def command(total: int) -> list[str]:
        return search_args(search_setup, out, "--trials", str(total), "--sampler", sampler, evaluator="synflow")

    process = start_cli(*command(100_000))
    deadline = time.monotonic() + 120
    finished = 0
    while time.monotonic() < deadline and finished < 10:  # wait for ten trials recorded in the study
        time.sleep(0.1)
        finished = count_trials(out / "study.db")
    assert process.poll() is None, "the search ended before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    before = {t.number: t.values for t in complete_trials(study_of(out))}
    assert len(before) >= 10
    total = max(trials, len(before) + 10)

    result = run_main(*command(total))  # the rerun: in-process
    assert result.returncode == 0, result.stderr
    assert f"resuming study 'run': {len(before)} trials already complete" in result.stderr
    study = study_of(out)
    after = {t.number: t.values for t in complete_trials(study)}
    assert len(after) == total
    assert all(after[number] == values for number, values in before.items())
    assert not study.get_trials(states=(optuna.trial.TrialState.RUNNING,))  # none left running forever

    uninterrupted = search(search_setup, tmp_path / "whole", evaluator="synflow", trials=total, sampler=sampler)
    assert _configs(study) == _configs(uninterrupted.study)


def test_a_config_drawn_again_is_not_evaluated_again(search_setup: dict[str, Path], tmp_path: Path) -> None:
    class Counting(FlopsEvaluator):
        calls = 0

        def score(self, config: ArchConfig) -> Score:
            Counting.calls += 1
            return super().score(config)

    outcome = search(search_setup, tmp_path / "run", evaluator=Counting(), trials=60, sampler="random", budget_ms=100.0)
    trials = complete_trials(outcome.study)
    distinct = {tuple(sorted(t.params.items())) for t in trials}
    assert len(distinct) < len(trials)  # the tiny space makes a random sampler draw some configs twice
    assert Counting.calls == len(distinct)
    for trial in trials:
        if "reused_from" in trial.user_attrs["nas"]:
            earlier = outcome.study.trials[trial.user_attrs["nas"]["reused_from"]]
            assert (earlier.params, earlier.values) == (trial.params, trial.values)
