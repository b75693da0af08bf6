"""The surrogate sampler: every proposal a new config within budget, reproducible from its seed, and
steered by what the study has scored; and the space's list of choices it works from."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest

from nas import ArchConfig, SearchSpace
from nas._errors import ArgumentError
from nas.latency import LatencyTable
from nas.search import SurrogateSampler, run_search
from nas.search._study import result
from nas.search._surrogate import _Ensemble
from tests.conftest import TINY_SPACE
from tests.test_latency import synthetic_table

BUDGET_MS = 2.5


class RecordingTrial:
    """Answers ``suggest_categorical`` at random and remembers what was asked."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)
        self.params: dict[str, Any] = {}

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        self.params[name] = self.random.choice(choices)
        return self.params[name]


@pytest.mark.parametrize("space", [TINY_SPACE, "mobilenetv3", "ofa_mbv3_w1.2", "lightweight"])
def test_choices_name_every_param_sampling_asks(space: Any) -> None:
    space = SearchSpace.from_dict(space) if isinstance(space, dict) else SearchSpace.load(space)
    choices = space.choices()
    for seed in range(200):
        trial = RecordingTrial(seed)
        space.sample(trial)
        for name, value in trial.params.items():
            assert value in choices[name], name


@pytest.fixture(scope="module")
def tiny() -> tuple[SearchSpace, LatencyTable]:
    space = SearchSpace.from_dict(TINY_SPACE)
    return space, synthetic_table(space, seed=5)


def _search(tiny: tuple[SearchSpace, LatencyTable], out: Path, trials: int = 32) -> list[optuna.trial.FrozenTrial]:
    space, table = tiny
    sampler = SurrogateSampler(space=space, latency=table, budget_ms=BUDGET_MS, seed=0, initial=8, batch=4)
    outcome = run_search(
        latency=table,
        space=space,
        budget_ms=BUDGET_MS,
        evaluator="params",
        trials=trials,
        sampler=sampler,
        storage=optuna.storages.InMemoryStorage(),
        out=out,
    )
    return outcome.study.get_trials()


def test_every_proposal_is_new_and_within_budget_and_the_model_steers(
    tiny: tuple[SearchSpace, LatencyTable], tmp_path: Path
) -> None:
    trials = _search(tiny, tmp_path / "a")
    assert len(trials) == 32
    assert all(result(t)["feasible"] for t in trials)  # priced before it was proposed: no trial wasted
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 32
    scores = [result(t)["score"] for t in trials]
    assert max(scores[8:]) > max(scores[:8])  # the surrogate's choices beat its own random draws...
    space, table = tiny
    uniform = run_search(
        latency=table, space=space, budget_ms=BUDGET_MS, evaluator="params", trials=32, sampler="random",
        storage=optuna.storages.InMemoryStorage(), out=tmp_path / "random",
    )  # fmt: skip
    assert max(scores) > uniform.best.score  # ...and Optuna's random sampler given as many trials
    assert uniform.feasible < 32  # which spends some of them over budget
    again = _search(tiny, tmp_path / "b", trials=16)  # past the random draws and the first fit
    assert [t.params for t in again] == [t.params for t in trials[:16]]  # the seed fixes every proposal


def test_the_cli_name_makes_one(tiny: tuple[SearchSpace, LatencyTable], tmp_path: Path) -> None:
    space, table = tiny
    outcome = run_search(
        latency=table, space=space, budget_ms=BUDGET_MS, evaluator="params", trials=5, sampler="surrogate",
        out=tmp_path / "run",
    )  # fmt: skip
    assert isinstance(outcome.study.sampler, SurrogateSampler)


def test_budgets_of_interest_get_their_share_of_every_batch(tiny: tuple[SearchSpace, LatencyTable]) -> None:
    space, table = tiny
    plain = SurrogateSampler(space=space, latency=table, budget_ms=BUDGET_MS, seed=0, batch=8)
    spread = sorted(plain._targets(1.0))
    assert all(1.0 + k * 0.1875 <= ms <= 1.0 + (k + 1) * 0.1875 for k, ms in enumerate(spread))
    sampler = SurrogateSampler(space=space, latency=table, budget_ms=BUDGET_MS, seed=0, batch=8, levels=(2.0, 1.5))
    targets = list(sampler._targets(1.0))
    assert targets[:6] == [1.5, 1.5, 2.0, 2.0, BUDGET_MS, BUDGET_MS]  # focus 2 on each, the budget included
    low, high = targets[6:]
    assert 1.0 <= low <= 1.75 <= high <= BUDGET_MS  # the rest still spread over the whole front
    with pytest.raises(ArgumentError, match="give at most 2 besides the budget at focus 2"):
        SurrogateSampler(space=space, latency=table, budget_ms=BUDGET_MS, batch=8, levels=(1.2, 1.5, 2.0))


def _config(space: SearchSpace, params: dict[str, Any]) -> ArchConfig:
    """The config a trial's params make, decoded apart from the sampler (whose latencies are remembered)."""
    return space.sample(optuna.trial.FixedTrial(params))


def _changed(centre: dict[str, Any], params: dict[str, Any]) -> list[str]:
    # (a depth change also drops or adds the choices of layers it cuts: those are not counted)
    return [name for name in centre if name in params and params[name] != centre[name]]


def test_neighbours_are_one_or_two_asked_choices_away_new_and_within_the_target(
    tiny: tuple[SearchSpace, LatencyTable],
) -> None:
    space, table = tiny
    centre = RecordingTrial(3)
    space.sample(centre)
    target = table.predict(space.sample(RecordingTrial(3))) * 1.2
    for pairs in (0, 50):
        sampler = SurrogateSampler(space=space, latency=table, budget_ms=BUDGET_MS, seed=0, pairs=pairs)
        first = sampler._neighbours(centre.params, target, set())
        assert first
        changed = []
        for genome, _ in first:
            params, ms = sampler._decode(genome)
            assert ms == table.predict(_config(space, params)) <= target
            changed.append(len(_changed(centre.params, params)))
        assert set(changed) == ({1} if pairs == 0 else {1, 2})
        keys = {tuple(sorted(sampler._decode(genome)[0].items())) for genome, _ in first}
        assert len(keys) == len(first)
        if pairs == 0:  # every one-choice step seen: nothing new is left
            assert sampler._neighbours(centre.params, target, keys) == []


@pytest.mark.parametrize("name", ["tiny", "ofa_mbv3_w1.2"])
def test_features_are_the_one_hot_of_the_choices_asked_and_the_rank_of_ordered_ones(
    tiny: tuple[SearchSpace, LatencyTable], name: str
) -> None:
    """The tiny space's choices are all two-way (a one-hot says all); every choice of OFA's (kernels 3/5/7,
    expansions 3/4/6, depths 2/3/4, 17 resolutions) also gets its rank among the options, 0 when not asked."""
    space, table = tiny if name == "tiny" else (SearchSpace.load(name), LatencyTable.load("note10"))
    sampler = SurrogateSampler(space=space, latency=table, budget_ms=BUDGET_MS, seed=0)
    columns = [(name, option) for name, options in sampler.genes.items() for option in options]
    ordered = [] if name == "tiny" else list(sampler.genes)
    for _ in range(20):
        params = sampler._decode(sampler._random_genome())[0]
        x = sampler._features(params)
        assert len(x) == len(columns) + len(ordered)
        hot = np.flatnonzero(x[: len(columns)])
        assert [columns[k] for k in hot] == sorted(params.items(), key=columns.index)
        options = {choice: sorted(set(sampler.genes[choice])) for choice in ordered}
        ranks = [(options[c].index(params[c]) + 1) / len(options[c]) if c in params else 0.0 for c in ordered]
        assert x[len(columns) :] == pytest.approx(ranks)
    if ordered:  # the largest option ranks 1, the smallest 1/3 of three; the choices not asked 0
        x = sampler._features({"resolution": 224, "s1.depth": 2, "s1.l0.kernel": 7, "s1.l0.expansion": 3.0})
        assert sorted(x[len(columns) :][x[len(columns) :] > 0]) == pytest.approx([1 / 3, 1 / 3, 1, 1])


def _climber(
    tiny: tuple[SearchSpace, LatencyTable], score: Callable[[ArchConfig, float], float]
) -> tuple[SurrogateSampler, list[tuple[ArchConfig, dict[str, Any]]], list[float]]:
    """A sampler whose surrogate is fitted to ``score(config, latency)`` on 64 random configs, with those
    configs and their latencies."""
    space, table = tiny
    sampler = SurrogateSampler(space=space, latency=table, budget_ms=BUDGET_MS, seed=0, climbs=4)
    decoded = [sampler._decode(sampler._random_genome()) for _ in range(64)]
    drawn = [(_config(space, params), params) for params, _ in decoded]
    x = np.stack([sampler._features(params) for _, params in drawn])
    latencies = [ms for _, ms in decoded]
    sampler._surrogate = _Ensemble(inputs=x.shape[1], seed=0)
    sampler._surrogate.fit(x, np.array([score(config, ms) for (config, _), ms in zip(drawn, latencies, strict=True)]))
    return sampler, drawn, latencies


def test_climbs_end_within_the_target_and_up_the_surrogate(tiny: tuple[SearchSpace, LatencyTable]) -> None:
    sampler, drawn, latencies = _climber(tiny, lambda _, ms: ms)  # "slower is better"
    centre = drawn[int(np.argmin(latencies))][1]  # the fastest: far below the target, the climbs must go up
    target = float(np.median(latencies))
    climbed = sampler._climbs(centre, target)
    assert 1 <= len(climbed) <= 4
    for genome, features in climbed:
        params, ms = sampler._decode(genome)
        assert ms == tiny[1].predict(_config(tiny[0], params)) <= target
        np.testing.assert_array_equal(features, sampler._features(params))
    # each end is up the surrogate's slope: rated above three in four configs within the target
    within = [rated[2][1] for rated in sampler._rate([sampler._genome(params) for _, params in drawn], target)
              if rated[2][0]]  # fmt: skip
    for rated in sampler._rate([genome for genome, _ in climbed], target):
        assert rated[2][1] > np.percentile(within, 75)


def test_climbs_hold_another_resolution(tiny: tuple[SearchSpace, LatencyTable]) -> None:
    """A climb jumps to another resolution's basin and stays there, even where the surrogate prefers the
    centre's: a climb free to move the resolution would undo the jump first."""
    centre = tiny[0].choices()[SearchSpace.RESOLUTION][0]
    sampler, drawn, _ = _climber(tiny, lambda config, _: float(config.resolution == centre))
    start = next(params for config, params in drawn if config.resolution == centre)
    climbed = sampler._climbs(start, BUDGET_MS)
    assert climbed
    assert all(sampler._decode(genome)[0][SearchSpace.RESOLUTION] != centre for genome, _ in climbed)
