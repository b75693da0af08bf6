"""The search through its library call (results, front, budgets, objectives) and its CLI (output, bad input)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import optuna
import pytest
import yaml

from nas import ArchConfig, NasError, SearchSpace
from nas._errors import ArgumentError
from nas.evaluate import get_evaluator
from nas.evaluate._baselines import FlopsEvaluator
from nas.latency import LatencyTable, space_bounds
from nas.search import parse_budget, run_search
from tests.conftest import TINY_SPACE, run_main
from tests.searching import complete_trials, search, search_args, search_cli, study_of


@pytest.mark.parametrize(
    ("text", "ms"), [("60ms", 60.0), ("60 ms", 60.0), ("0.06s", 60.0), ("60", 60.0), ("1.5 MS", 1.5), ("2e1ms", 20.0)]
)
def test_budget_forms(text: str, ms: float) -> None:
    assert parse_budget(text) == pytest.approx(ms)


def test_cli_writes_every_result_and_prints_five_lines(search_setup: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = search_cli(search_setup, out, "--trials", "60", "--seed", "1")
    assert result.returncode == 0, result.stderr
    for name in ("study.db", "run.json", "pareto.csv", "best.yaml", "best.onnx", "pareto.png", "summary.md"):
        assert (out / name).stat().st_size > 0, name
    assert list((out / "pareto").glob("*.yaml"))
    best = ArchConfig.load(out / "best.yaml")
    assert LatencyTable.load(search_setup["table"]).predict(best) <= 2.5
    record = json.loads((out / "run.json").read_text())
    assert record["seed"] == 1
    assert record["space"]["hash"] == SearchSpace.load(search_setup["space"]).hash
    assert record["table"]["measured"] is True
    assert {"torch", "optuna", "onnxruntime"} <= set(record["versions"])
    assert len(complete_trials(study_of(out))) == 60
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 5
    assert str(out / "best.yaml") in lines[2]
    # a score says what it is (the params evaluator: log10 of the parameter count), and best.onnx too
    assert "log10 params" in lines[1]
    # so does a latency: the table's prediction, and from what
    assert "priced by the synthetic table (ops measured on a device it does not name)" in lines[0]
    assert lines[1].endswith(" ms predicted")
    assert "random weights" in lines[2]
    summary = (out / "summary.md").read_text()
    assert "score (log10 params)" in summary
    assert "as predicted by the synthetic table (ops measured on" in summary
    assert "| predicted latency ms |" in summary
    assert "random weights" in summary
    assert "rung" not in summary  # no successive halving ran: no rung column or paragraph


def test_run_search_returns_the_front_and_takes_objects(search_setup: dict[str, Path], tmp_path: Path) -> None:
    space = SearchSpace.load(search_setup["space"])
    table = LatencyTable.load(search_setup["table"])
    result = run_search(
        latency=table,
        space=space,
        budget_ms="2.5ms",
        evaluator=FlopsEvaluator(),
        trials=40,
        sampler=optuna.samplers.RandomSampler(seed=3),
        storage=optuna.storages.InMemoryStorage(),
        out=tmp_path / "run",
    )
    assert result.trials == 40
    assert result.front
    assert all(p.latency_ms <= 2.5 for p in result.front)
    assert [p.latency_ms for p in result.front] == sorted(p.latency_ms for p in result.front)
    assert result.best is not None
    assert result.best.score == max(p.score for p in result.front)
    assert result.best.latency_ms == pytest.approx(table.predict(result.best.config))
    assert result.study.user_attrs["setup"]["evaluator"] == "flops"
    assert (tmp_path / "run" / "best.yaml").exists()


def test_default_results_go_under_the_current_directory(
    search_setup: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = run_search(
        latency=search_setup["table"], space=search_setup["space"], budget_ms=2.5, evaluator="params", trials=5
    )
    assert result.out == tmp_path / "runs" / "synthetic-2.5ms"  # the table's target
    assert (result.out / "summary.md").exists()


def test_over_budget_configs_are_recorded_but_not_evaluated(search_setup: dict[str, Path], tmp_path: Path) -> None:
    study = search(search_setup, tmp_path / "run", trials=40, budget_ms=1.8).study
    over = [t for t in complete_trials(study) if not t.user_attrs["nas"]["feasible"]]
    assert over
    for trial in over:
        assert "score" not in trial.user_attrs["nas"]
        assert trial.user_attrs["nas"]["latency_ms"] > 1.8
        assert trial.constraints["latency_over_budget_ms"] > 0


def test_unreachable_budget_names_the_fastest_latency(search_setup: dict[str, Path], tmp_path: Path) -> None:
    space = SearchSpace.load(search_setup["space"])
    fastest = space_bounds(space, LatencyTable.load(search_setup["table"])).fastest_ms
    with pytest.raises(ArgumentError, match=f"the fastest config of tiny takes {fastest:.3f} ms") as caught:
        search(search_setup, tmp_path / "run", budget_ms=fastest * 0.9)
    assert caught.value.parameter == "budget_ms"
    assert not (tmp_path / "run").exists()


def test_also_budgets_name_the_fronts_best_within_each(search_setup: dict[str, Path], tmp_path: Path) -> None:
    space = SearchSpace.load(search_setup["space"])
    fastest = space_bounds(space, LatencyTable.load(search_setup["table"])).fastest_ms
    with pytest.raises(ArgumentError, match=f"the fastest config of tiny takes {fastest:.3f} ms") as caught:
        search(search_setup, tmp_path / "slow", also_budgets_ms=[fastest * 0.9], trials=5)
    assert caught.value.parameter == "also_budgets_ms"
    many = [fastest + k * (2.5 - fastest) / 9 for k in range(1, 9)]
    with pytest.raises(ArgumentError, match="the surrogate sampler aims at most 6") as caught:
        search(search_setup, tmp_path / "many", also_budgets_ms=many, sampler="surrogate", trials=5)
    assert caught.value.parameter == "also_budgets_ms"
    assert not (tmp_path / "many").exists()
    levels = [fastest * 1.2, 2.0]
    outcome = search(search_setup, tmp_path / "run", also_budgets_ms=[f"{levels[1]}ms", levels[0], 2.5], trials=40)
    record = json.loads((outcome.out / "run.json").read_text())
    assert record["settings"]["also_budgets_ms"] == levels  # sorted, the budget itself left out
    named = record["best_within"]
    assert [b["budget_ms"] for b in named] == [*levels, 2.5]
    summary = (outcome.out / "summary.md").read_text()
    assert "## Best within each budget" in summary
    for entry in named:
        within = [p for p in outcome.front if p.latency_ms <= entry["budget_ms"]]
        assert entry.get("score") == max((p.score for p in within), default=None)
        assert entry.get("latency_ms", 0) <= entry["budget_ms"]
        assert f"| {entry.get('trial', 'none')} " in summary
    assert named[-1]["trial"] == outcome.best.name
    again = run_main(
        *search_args(search_setup, outcome.out, "--trials", "40", "--also-budgets", f"{levels[1]}ms,{levels[0]}")
    )
    assert again.returncode == 0, again.stderr  # the same study, resumed with nothing left to run
    for entry in named[:-1]:
        assert f"within {entry['budget_ms']:g} ms: {entry.get('trial', 'none')}" in again.stdout


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--budget", "abc"], "--budget 'abc': not a latency; write it like 60ms"),
        (["--budget", "-5ms"], "--budget '-5ms': not a latency"),
        (["--budget", "0"], "--budget '0': must be a positive latency"),
        (["--target", "nowhere"], "unknown target 'nowhere'; available tables: arm64"),
        (["--sampler", "cmaes"], "--sampler 'cmaes': unknown; use one of nsga2, tpe, gp, random"),
        (["--evaluator", "acc"], "unknown evaluator 'acc'; available: params"),
        (["--trials", "0"], "--trials 0: use 1 or more"),
        (["--seed", "-1"], "--seed -1: use an integer from 0 to 2**32 - 1"),
        (
            ["--storage", "postgresql://nobody@127.0.0.1:9/none"],
            "--storage postgresql://nobody@127.0.0.1:9/none: cannot open it",
        ),
        (["--out", "{file}"], "is a file; give a folder for the run's results"),
        (["--also-budgets", "2ms,3ms"], "--also-budgets 3 ms: over the search budget 2.5 ms"),
        (["--also-budgets", "1ms,x"], "--also-budgets 'x': not a latency"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    search_setup: dict[str, Path], tmp_path: Path, args: list[str], fragment: str
) -> None:
    (tmp_path / "file.txt").write_text("x")
    base = {"--target": str(search_setup["table"]), "--budget": "2.5ms", "--out": str(tmp_path / "run")}
    given = dict(zip(args[::2], (a.replace("{file}", str(tmp_path / "file.txt")) for a in args[1::2]), strict=True))
    flat = [item for pair in {**base, **given}.items() for item in pair]
    result = run_main("nas.search", "--space", str(search_setup["space"]), "--evaluator", "params", *flat)
    assert result.returncode == 2, result.stderr
    assert fragment in result.stderr
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert not (tmp_path / "run" / "best.yaml").exists()


def test_a_study_of_other_evaluator_settings_is_not_mixed(search_setup: dict[str, Path], tmp_path: Path) -> None:
    """Another seed (or steps, or supernet file) scores the same config otherwise: the rerun is refused."""
    out = tmp_path / "run"
    search(search_setup, out, trials=5, evaluator="synflow")
    search(search_setup, out, trials=6, evaluator="synflow")  # the same settings resume
    with pytest.raises(NasError, match=r"already holds a search with evaluator_settings.seed 0 \(now 1\); use another"):
        search(search_setup, out, trials=7, evaluator=get_evaluator("synflow", seed=1))
    older = {k: v for k, v in study_of(out).user_attrs["setup"].items() if k != "evaluator_settings"}
    with sqlite3.connect(out / "study.db") as db:  # a study recorded before evaluator settings were: resumed
        db.execute("UPDATE study_user_attributes SET value_json = ? WHERE key = 'setup'", (json.dumps(older),))
    assert (
        len(complete_trials(search(search_setup, out, trials=7, evaluator=get_evaluator("synflow", seed=1)).study)) == 7
    )


def test_a_study_of_another_space_is_not_mixed(search_setup: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "run"
    search(search_setup, out, trials=5)
    other = dict(yaml.safe_load(search_setup["space"].read_text()), head={"last_channels": [32], "hidden_channels": 64})
    with pytest.raises(NasError, match="study 'run' already holds a search with space_hash"):
        run_search(
            latency=search_setup["table"],
            space=SearchSpace.from_dict(other),
            budget_ms=2.5,
            evaluator="params",
            out=out,
            trials=10,
        )


def test_mnas_objective_is_a_single_reward_under_the_budget(search_setup: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "run"
    study = search(search_setup, out, trials=30, objective="mnas", w=-0.07).study
    assert len(study.directions) == 1
    for trial in complete_trials(study):
        record = trial.user_attrs["nas"]
        if record["feasible"]:
            assert trial.value == pytest.approx(record["score"] * (record["latency_ms"] / 2.5) ** -0.07)
    assert (out / "best.yaml").exists()


def test_the_front_is_the_brute_force_front_by_latency() -> None:
    import random

    from nas.search._results import Point, pareto_front

    config = SearchSpace.from_dict(TINY_SPACE).random_config(0)
    draw = random.Random(4)
    points = [Point(f"t{k:03d}", config, draw.randint(0, 9), draw.randint(1, 12) / 2) for k in range(300)]
    points += points[:5]  # exact duplicates

    def beats(q: Point, p: Point) -> bool:
        at_least = q.score >= p.score and q.latency_ms <= p.latency_ms
        return at_least and (q.score, q.latency_ms) != (p.score, p.latency_ms)

    expected = {(p.score, p.latency_ms) for p in points if not any(beats(q, p) for q in points)}
    front = pareto_front(points)
    assert {(p.score, p.latency_ms) for p in front} == expected
    assert [p.latency_ms for p in front] == sorted(p.latency_ms for p in front)
    for p in front:  # of points equal on both, the last by name
        assert p.name == max(q.name for q in points if (q.score, q.latency_ms) == (p.score, p.latency_ms))


def test_a_config_enqueued_in_the_study_is_run_first(search_setup: dict[str, Path], tmp_path: Path) -> None:
    """Optuna's enqueue_trial: a known config a user wants scored (the sampler runs in memory, these on
    the study itself)."""
    out = tmp_path / "run"
    first = search(search_setup, out, trials=3, sampler="random")
    params = first.study.trials[0].params
    first.study.enqueue_trial(params, user_attrs={"from": "user"})
    again = search(search_setup, out, trials=8, sampler="random")
    enqueued = [t for t in again.study.trials if t.user_attrs.get("from") == "user"]
    assert len(enqueued) == 1
    assert enqueued[0].state == optuna.trial.TrialState.COMPLETE
    assert enqueued[0].params == params
    assert len(complete_trials(again.study)) == 8
