"""Warm start: an earlier search's scores carry over to a search on another table or budget, once."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from nas import ArchConfig, NasError, SearchSpace
from nas._errors import ArgumentError
from nas.evaluate import Score, TrainEvaluator
from nas.evaluate._baselines import ParamsEvaluator
from nas.latency import LatencyTable
from nas.search._study import WARM, result
from nas.search._warm import GENERATION
from tests.conftest import TINY_SPACE
from tests.searching import complete_trials, search, search_cli, study_of


class CountingParams(ParamsEvaluator):
    """The params evaluator, counting the configs it scores (same name and settings: its scores carry over)."""

    def __init__(self) -> None:
        self.scored: list[ArchConfig] = []

    def score(self, config: ArchConfig) -> Score:
        self.scored.append(config)
        return super().score(config)


@pytest.fixture
def other_table(search_setup: dict[str, Path], tmp_path: Path) -> Path:
    """Another device: the same space with other made-up latencies."""
    from tests.test_latency import synthetic_table

    table = synthetic_table(SearchSpace.load(search_setup["space"]), seed=6)
    table.metadata["target"] = "other"
    table.save(tmp_path / "other.yaml")
    return tmp_path / "other.yaml"


def key(config: dict) -> str:
    return json.dumps(config, sort_keys=True)


def scored(out: Path) -> dict[str, float]:
    """The scored configs of a search, by their config's record."""
    return {
        key(result(t)["config"]): result(t)["score"]
        for t in complete_trials(study_of(out))
        if math.isfinite(result(t).get("score", math.nan))
    }


def test_copies_keep_their_scores_get_the_new_price_and_are_not_evaluated_again(
    search_setup: dict[str, Path], other_table: Path, tmp_path: Path
) -> None:
    source = tmp_path / "first"
    search(search_setup, source, trials=40, sampler="random")
    before = scored(source)
    evaluator, table = CountingParams(), LatencyTable.load(other_table)
    elsewhere = {**search_setup, "table": other_table}
    run = search(
        elsewhere, tmp_path / "second", budget_ms=3.0, evaluator=evaluator, trials=10,
        warm_start=[source],
    )  # fmt: skip
    assert run.copied == len(before) > 10
    assert run.trials == run.copied + 10  # ``trials`` counts new trials
    assert len(evaluator.scored) <= 10
    copies = [t for t in complete_trials(run.study) if "copied_from" in result(t)]
    assert len(copies) == run.copied
    for trial in copies:
        record = result(trial)
        config = ArchConfig.from_dict(record["config"])
        assert record["score"] == before[key(record["config"])]
        assert record["latency_ms"] == pytest.approx(table.predict(config))  # priced on the new table
        assert record["feasible"] == (record["latency_ms"] <= 3.0)
        assert trial.system_attrs[GENERATION] == 0
        assert record["copied_from"].startswith(f"{source.resolve()} trial ")
    # a copy is never scored again
    assert {key(json.loads(json.dumps(c.to_dict()))) for c in evaluator.scored}.isdisjoint(before)
    assert any("copied_from" in result(t) for t in run.study.best_trials)  # the front includes copies
    summary = (run.out / "summary.md").read_text()
    assert f"{run.copied} of them were copied with their scores from earlier searches" in summary

    again = search(
        elsewhere, tmp_path / "second", budget_ms=3.0, evaluator="params", trials=14,
        warm_start=[source],
    )  # fmt: skip
    assert again.copied == run.copied  # resumed: not copied twice
    assert again.trials == run.copied + 14
    assert again.study.user_attrs[WARM] == {"from": [str(source.resolve())], "copied": run.copied, "complete": True}
    resumed = search(elsewhere, tmp_path / "second", budget_ms=3.0, trials=15)
    assert resumed.trials == run.copied + 15  # resumed without the flag: the copies still do not count
    assert (
        f"{run.copied} of them were copied with their scores from earlier searches (`{source.resolve()}`)"
        in (resumed.out / "summary.md").read_text()
    )


def test_a_killed_copy_is_finished_by_the_rerun(search_setup: dict[str, Path], tmp_path: Path) -> None:
    from nas.search._warm import copy_scored

    source = tmp_path / "first"
    search(search_setup, source, trials=20, sampler="random")
    out = tmp_path / "second"
    search(search_setup, out, trials=1, warm_start=[source])
    study = study_of(out)
    record = study.user_attrs[WARM]
    study.set_user_attr(WARM, {**record, "complete": False})  # as a kill before the copy was marked done
    with pytest.raises(ArgumentError, match="was cut short; give it again"):
        copy_scored(study, {})
    rerun = search(search_setup, out, trials=1, warm_start=[source])
    assert rerun.copied == record["copied"]
    assert len([t for t in complete_trials(rerun.study) if "copied_from" in result(t)]) == record["copied"]


def test_copies_count_as_the_top_rung_of_successive_halving(search_setup: dict[str, Path], tmp_path: Path) -> None:
    """A search that halves gets the copies at its top rung (a fully trained score), as ``run_search`` asks
    (``_top_rung``: 9 steps, eta 3, 2 rungs -> [3, 9], rung 1); training itself is not needed to see it."""
    from nas.search._run import _top_rung
    from nas.search._study import Setup
    from nas.search._warm import warm_trials

    source = tmp_path / "first"
    search(search_setup, source, trials=10, sampler="random")
    assert _top_rung(TrainEvaluator(steps=9), "pareto", 3, 2) == 1
    assert _top_rung(TrainEvaluator(steps=9), "mnas", 3, 2) is None
    space = SearchSpace.load(search_setup["space"])
    evaluator = ParamsEvaluator()
    setup = Setup(space.hash, "tiny", 2.5, "pareto", evaluator.name, evaluator.describe())
    table = LatencyTable.load(search_setup["table"])
    copies = warm_trials([source], setup=setup, space=space, latency=table, budget_ms=2.5, objective="pareto",
                         w=-0.07, rung=1)  # fmt: skip
    records = [result(template) for template in copies[str(source.resolve())]]
    assert records
    assert {record["rung"] for record in records} == {1}


def test_a_source_with_other_scores_is_refused_before_anything_is_written(
    search_setup: dict[str, Path], tmp_path: Path
) -> None:
    source, out = tmp_path / "first", tmp_path / "second"
    search(search_setup, source, trials=10, sampler="random")
    with pytest.raises(ArgumentError, match=r"its evaluator_settings\.name is 'params', this search's 'flops'"):
        search(search_setup, out, trials=5, warm_start=[source], evaluator="flops")
    narrower = tmp_path / "narrower.yaml"
    narrower.write_text(yaml.safe_dump({**TINY_SPACE, "resolution": [32]}))
    with pytest.raises(ArgumentError, match=r"its space_hash is '[0-9a-f]+', this search's '[0-9a-f]+'"):
        search({**search_setup, "space": narrower}, out, trials=5, warm_start=[source])
    assert not out.exists()


def test_a_study_begun_otherwise_refuses_a_warm_start(search_setup: dict[str, Path], tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    search(search_setup, first, trials=10, sampler="random")
    search(search_setup, second, trials=5)
    with pytest.raises(ArgumentError, match="this study began without one; use another folder"):
        search(search_setup, second, trials=5, warm_start=[first])
    with pytest.raises(NasError, match="not a finished search folder"):
        search(search_setup, tmp_path / "third", trials=5, warm_start=[tmp_path])


def test_cli_warm_start(search_setup: dict[str, Path], tmp_path: Path) -> None:
    first = tmp_path / "first"
    search(search_setup, first, trials=20, sampler="random")
    done = search_cli(search_setup, tmp_path / "second", "--trials", "5", "--warm-start", str(first))
    assert done.returncode == 0, done.stderr
    copied = sum("copied_from" in result(t) for t in complete_trials(study_of(tmp_path / "second")))
    assert f"; {copied} copied from --warm-start)" in done.stdout.splitlines()[0]


def test_nsga2_breeds_its_next_generation_from_the_copies(search_setup: dict[str, Path], tmp_path: Path) -> None:
    source = tmp_path / "first"
    search(search_setup, source, trials=150, sampler="random", budget_ms=10)  # every config within: scored
    run = search(search_setup, tmp_path / "second", trials=5, warm_start=[source])  # NSGA-II, population 50
    assert run.copied >= 50
    new = [t for t in complete_trials(run.study) if "copied_from" not in result(t)]
    assert len(new) == 5
    assert {t.system_attrs[GENERATION] for t in new} == {1}
