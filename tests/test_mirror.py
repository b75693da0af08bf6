"""The in-memory search loop's storage writes: a trial written in one transaction is the trial Optuna
itself would have written, on every kind of storage nas opens."""

from __future__ import annotations

import math
import os
from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from nas.search._mirror import insert_trial, insert_trials
from nas.search._study import make_storage

_DISTRIBUTIONS = {
    "s1.kernel": CategoricalDistribution([3, 5, 7]),
    "s1.act": CategoricalDistribution(["relu", "hswish"]),
    "s1.se": CategoricalDistribution([False, True]),
    "head.dropout": FloatDistribution(0.0, 0.5),
    "s2.depth": IntDistribution(1, 4),
}


def _template(state: TrialState = TrialState.COMPLETE) -> optuna.trial.FrozenTrial:
    return optuna.trial.create_trial(
        state=state,
        params={"s1.kernel": 5, "s1.act": "hswish", "s1.se": True, "head.dropout": 0.25, "s2.depth": 3},
        distributions=_DISTRIBUTIONS,
        values=None if state == TrialState.RUNNING else [-math.inf, 12.5],
        user_attrs={"nas": {"config": {"stages": [1, 2]}, "feasible": False}, "owner": {"pid": 7}},
        system_attrs={"constraints": [0.75], "nsga2:generation": 0},
    )


def _storages(tmp_path: Path) -> list[optuna.storages.BaseStorage]:
    storages = [
        optuna.storages.get_storage(make_storage(f"sqlite:///{tmp_path / 'study.db'}")),
        optuna.storages.InMemoryStorage(),
        make_storage(f"journal:{tmp_path / 'journal.log'}"),
    ]
    if url := os.environ.get("NAS_TEST_POSTGRES_URL"):
        storages.append(optuna.storages.get_storage(make_storage(url)))
    return storages


def _same(ours: optuna.trial.FrozenTrial, optunas: optuna.trial.FrozenTrial) -> None:
    assert ours.state == optunas.state
    assert ours.params == optunas.params
    assert ours.distributions == optunas.distributions
    assert ours.values == optunas.values
    assert ours.user_attrs == optunas.user_attrs
    assert ours.system_attrs == optunas.system_attrs
    assert ours.datetime_start == optunas.datetime_start
    assert ours.datetime_complete == optunas.datetime_complete


def test_a_trial_written_in_one_transaction_reads_back_as_the_one_optuna_writes(tmp_path: Path) -> None:
    for storage in _storages(tmp_path):
        study = optuna.create_study(storage=storage, directions=["maximize", "minimize"], study_name=f"s{id(storage)}")
        template = _template()
        study.add_trial(template)  # Optuna's own write
        _, number = insert_trial(study, template)
        assert number == 1
        written = study.get_trials(deepcopy=False)
        _same(written[1], written[0])
        assert type(written[1].params["s2.depth"]) is int
        assert type(written[1].params["s1.se"]) is bool
        # many at once (a warm start's copies): numbered on, each the trial Optuna writes
        running = _template(TrialState.RUNNING)
        assert [n for _, n in insert_trials(study, [template, running, template])] == [2, 3, 4]
        written = study.get_trials(deepcopy=False)
        _same(written[2], written[0])
        _same(written[4], written[0])
        assert written[3].state == TrialState.RUNNING
        assert written[3].user_attrs == running.user_attrs


def test_a_running_trial_written_so_is_completed_by_optuna(tmp_path: Path) -> None:
    """Several processes write a trial as RUNNING, then complete it (see MirroredLoop)."""
    study = optuna.create_study(
        storage=make_storage(f"sqlite:///{tmp_path / 'study.db'}"), directions=["maximize", "minimize"]
    )
    trial_id, number = insert_trial(study, _template(TrialState.RUNNING))
    assert study.get_trials(deepcopy=False)[number].state == TrialState.RUNNING
    study._storage.set_trial_state_values(trial_id, TrialState.COMPLETE, [1.0, 2.0])
    trial = study.get_trials(deepcopy=False)[number]
    assert (trial.state, trial.values) == (TrialState.COMPLETE, [1.0, 2.0])
    assert trial.datetime_complete is not None


@pytest.mark.parametrize("workers", [1, 2])
def test_numbers_stay_unique_when_processes_write_at_once(tmp_path: Path, workers: int) -> None:
    """Two writers on one SQLite file (threads with their own storage objects), one trial or several at a
    time, never share a number."""
    from concurrent.futures import ThreadPoolExecutor

    url = f"sqlite:///{tmp_path / 'study.db'}"
    optuna.create_study(storage=make_storage(url), study_name="s", directions=["maximize", "minimize"])

    def write(_: int) -> list[int]:
        study = optuna.load_study(storage=make_storage(url), study_name="s")
        singles = [insert_trial(study, _template())[1] for _ in range(5)]
        return singles + [n for _ in range(3) for _, n in insert_trials(study, [_template()] * 5)]

    with ThreadPoolExecutor(workers) as pool:
        numbers = [n for part in pool.map(write, range(workers)) for n in part]
    assert sorted(numbers) == list(range(20 * workers))


def test_the_indexed_nsga2_draws_exactly_what_optunas_draws() -> None:
    """Several generations (population 10), with some trials failed and some infeasible on the way."""
    from optuna.samplers import NSGAIISampler

    from nas.search._nsga import GenerationIndex, IndexedNSGAII

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        x = [trial.suggest_categorical(f"x{i}", [0, 1, 2, 3]) for i in range(6)]
        if sum(x) == 7:
            raise optuna.TrialPruned()  # a trial that does not complete
        return float(sum(x)), float(x[0] * 3 - x[1])

    drawn = []
    for sampler in (
        NSGAIISampler(seed=3, population_size=10),
        IndexedNSGAII(index=GenerationIndex(NSGAIISampler._get_generation_key()), seed=3, population_size=10),
    ):
        study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
        study.optimize(objective, n_trials=80)
        drawn.append([(t.params, t.system_attrs.get("NSGAIISampler:generation")) for t in study.trials])
    assert drawn[0] == drawn[1]
    assert max(generation for _, generation in drawn[0]) >= 5
