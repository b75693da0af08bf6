"""The search through its library call (results, workers, objectives) and as a user runs it (the CLI's
output, resume after kill -9, bad input)."""

from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import optuna
import pytest
import yaml

from nas import ArchConfig, NasError, SearchSpace
from nas._errors import ArgumentError
from nas.evaluate import Score, TrainEvaluator, get_evaluator
from nas.evaluate._baselines import FlopsEvaluator
from nas.latency import LatencyTable, space_bounds
from nas.search import SearchResult, parse_budget, run_search
from nas.search._halving import requeue_abandoned
from tests.conftest import ROOT, TINY_SPACE, BreaksInWorkers, run_cli, run_main, start_cli
from tests.test_latency import synthetic_table


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny space with a table of made-up latencies (the search itself is what is tested here)."""
    folder = tmp_path_factory.mktemp("search")
    space_file = folder / "tiny.yaml"
    space_file.write_text(yaml.safe_dump(TINY_SPACE))
    space = SearchSpace.load(space_file)
    table = synthetic_table(space, seed=5)
    table.metadata["space"]["file"] = str(space_file)
    table.save(folder / "tiny_table.yaml")
    return {"space": space_file, "table": folder / "tiny_table.yaml"}


def _args(
    setup: dict[str, Path], out: Path, *extra: str, budget: str = "2.5ms", evaluator: str = "params"
) -> list[str]:
    return [
        "nas.search",
        "--target",
        str(setup["table"]),
        "--space",
        str(setup["space"]),
        "--budget",
        budget,
        "--evaluator",
        evaluator,
        "--out",
        str(out),
        *extra,
    ]


def _search(setup: dict[str, Path], out: Path, *extra: str, budget: str = "2.5ms") -> subprocess.CompletedProcess:
    return run_cli(*_args(setup, out, *extra, budget=budget))


def _study(out: Path) -> optuna.Study:
    return optuna.load_study(study_name=out.name, storage=f"sqlite:///{out / 'study.db'}")


def _complete_count(db: Path, state: str = "COMPLETE") -> int:
    """Trials in ``state``, read without creating anything: a reader that opened the file through Optuna
    while the search was still creating its tables would race it. Read-write, not read-only: a read-only
    reader of a WAL database cannot set up the shared-memory index itself and may fail where one that can waits."""
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=rw", uri=True, timeout=1)) as connection:
            return connection.execute("SELECT COUNT(*) FROM trials WHERE state = ?", (state,)).fetchone()[0]
    except sqlite3.Error:  # no file or no table yet
        return 0


def _complete(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))


@pytest.mark.parametrize(
    ("text", "ms"), [("60ms", 60.0), ("60 ms", 60.0), ("0.06s", 60.0), ("60", 60.0), ("1.5 MS", 1.5), ("2e1ms", 20.0)]
)
def test_budget_forms(text: str, ms: float) -> None:
    assert parse_budget(text) == pytest.approx(ms)


def _run(setup: dict[str, Path], out: Path, **options) -> SearchResult:
    options = {"budget_ms": 2.5, "evaluator": "params", **options}
    return run_search(latency=setup["table"], space=setup["space"], out=out, **options)


def test_cli_writes_every_result_and_prints_five_lines(setup: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = _search(setup, out, "--trials", "60", "--seed", "1")
    assert result.returncode == 0, result.stderr
    for name in ("study.db", "run.json", "pareto.csv", "best.yaml", "best.onnx", "pareto.png", "summary.md"):
        assert (out / name).stat().st_size > 0, name
    assert list((out / "pareto").glob("*.yaml"))
    best = ArchConfig.load(out / "best.yaml")
    assert LatencyTable.load(setup["table"]).predict(best) <= 2.5
    record = json.loads((out / "run.json").read_text())
    assert record["seed"] == 1
    assert record["space"]["hash"] == SearchSpace.load(setup["space"]).hash
    assert record["table"]["measured"] is True
    assert {"torch", "optuna", "onnxruntime"} <= set(record["versions"])
    assert len(_complete(_study(out))) == 60
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 5
    assert str(out / "best.yaml") in lines[2]
    # a score says what it is (the params evaluator: log10 of the parameter count), and best.onnx too
    assert "log10 params" in lines[1]
    assert "random weights" in lines[2]
    summary = (out / "summary.md").read_text()
    assert "score (log10 params)" in summary
    assert "random weights" in summary
    assert "rung" not in summary  # no successive halving ran: no rung column or paragraph


def test_run_search_returns_the_front_and_takes_objects(setup: dict[str, Path], tmp_path: Path) -> None:
    space = SearchSpace.load(setup["space"])
    table = LatencyTable.load(setup["table"])
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
    setup: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = run_search(latency=setup["table"], space=setup["space"], budget_ms=2.5, evaluator="params", trials=5)
    assert result.out == tmp_path / "runs" / "synthetic-2.5ms"  # the table's target
    assert (result.out / "summary.md").exists()


def test_over_budget_configs_are_recorded_but_not_evaluated(setup: dict[str, Path], tmp_path: Path) -> None:
    study = _run(setup, tmp_path / "run", trials=40, budget_ms=1.8).study
    over = [t for t in _complete(study) if not t.user_attrs["nas"]["feasible"]]
    assert over
    for trial in over:
        assert "score" not in trial.user_attrs["nas"]
        assert trial.user_attrs["nas"]["latency_ms"] > 1.8
        assert trial.constraints["latency_over_budget_ms"] > 0


def test_ctrl_c_is_one_line_and_the_rerun_resumes(setup: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "run"
    command = [sys.executable, "-m", *_args(setup, out, "--trials", "100000", evaluator="synflow")]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and _complete_count(out / "study.db") < 5:
        time.sleep(0.3)
    assert process.poll() is None, "the search ended before it could be interrupted"
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "failed with parameters" not in stderr
    assert stderr.strip().splitlines()[-1] == "interrupted: rerun the same command to resume (finished work is kept)"
    done = _complete_count(out / "study.db")
    result = run_main(*_args(setup, out, "--trials", str(done + 2), evaluator="synflow"))  # the rerun: in-process
    assert result.returncode == 0, result.stderr
    assert f"{done} trials already complete" in result.stderr
    assert len(_complete(_study(out))) == done + 2


def _configs(study: optuna.Study) -> list[tuple]:
    return sorted(tuple(sorted(t.params.items())) for t in _complete(study))


@pytest.mark.parametrize(("sampler", "trials"), [("random", 25), ("nsga2", 60)])  # NSGA-II: past one generation
def test_a_run_killed_and_resumed_ends_where_an_uninterrupted_one_does(
    setup: dict[str, Path], tmp_path: Path, sampler: str, trials: int
) -> None:
    """kill -9 mid-run, rerun: finished trials are kept, the stale running trial is failed, and the
    resumed run draws what the uninterrupted run drew (no replay of the first run's configs). The first
    run asks for far more trials than it gets to (trials are fast); a trial's draw does not depend on the
    total asked for."""
    out = tmp_path / "run"

    def command(total: int) -> list[str]:
        return _args(setup, out, "--trials", str(total), "--sampler", sampler, evaluator="synflow")

    process = start_cli(*command(100_000))
    deadline = time.monotonic() + 120
    finished = 0
    while time.monotonic() < deadline and finished < 10:  # wait for ten trials recorded in the study
        time.sleep(0.1)
        finished = _complete_count(out / "study.db")
    assert process.poll() is None, "the search ended before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    before = {t.number: t.values for t in _complete(_study(out))}
    assert len(before) >= 10
    total = max(trials, len(before) + 10)

    result = run_main(*command(total))  # the rerun: in-process
    assert result.returncode == 0, result.stderr
    assert f"resuming study 'run': {len(before)} trials already complete" in result.stderr
    study = _study(out)
    after = {t.number: t.values for t in _complete(study)}
    assert len(after) == total
    assert all(after[number] == values for number, values in before.items())
    assert not study.get_trials(states=(optuna.trial.TrialState.RUNNING,))  # none left running forever

    uninterrupted = _run(setup, tmp_path / "whole", evaluator="synflow", trials=total, sampler=sampler)
    assert _configs(study) == _configs(uninterrupted.study)


def test_a_config_drawn_again_is_not_evaluated_again(setup: dict[str, Path], tmp_path: Path) -> None:
    class Counting(FlopsEvaluator):
        calls = 0

        def score(self, config: ArchConfig) -> Score:
            Counting.calls += 1
            return super().score(config)

    outcome = _run(setup, tmp_path / "run", evaluator=Counting(), trials=60, sampler="random", budget_ms=100.0)
    trials = _complete(outcome.study)
    distinct = {tuple(sorted(t.params.items())) for t in trials}
    assert len(distinct) < len(trials)  # the tiny space makes a random sampler draw some configs twice
    assert Counting.calls == len(distinct)
    for trial in trials:
        if "reused_from" in trial.user_attrs["nas"]:
            earlier = outcome.study.trials[trial.user_attrs["nas"]["reused_from"]]
            assert (earlier.params, earlier.values) == (trial.params, trial.values)


def test_two_workers_share_one_study_and_stop_at_the_total(setup: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = run_cli(*_args(setup, out, "--trials", "80", "--workers", "2"))
    assert result.returncode == 0, result.stderr
    assert "80/80" in result.stderr  # the bar counts every worker's trials
    study = _study(out)
    numbers = [t.number for t in study.trials]
    assert len(numbers) == len(set(numbers))
    assert len(_complete(study)) == 80  # no worker starts a trial past the total
    assert (out / "worker1.log").exists()


def test_a_crashing_worker_fails_the_run_with_its_message(setup: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(NasError, match=r"search worker 1 failed \(exit code 1\): .*cannot run in a worker"):
        _run(setup, tmp_path / "run", trials=20, workers=2, evaluator=BreaksInWorkers())


@pytest.mark.skipif(not os.environ.get("NAS_TEST_POSTGRES_URL"), reason="no PostgreSQL server (.ci/run starts one)")
def test_two_workers_on_postgresql(setup: dict[str, Path], tmp_path: Path) -> None:
    url = os.environ["NAS_TEST_POSTGRES_URL"]
    name = f"pg{os.getpid()}"
    study = _run(setup, tmp_path / "run", trials=40, workers=2, storage=url, study_name=name).study
    numbers = [t.number for t in study.trials]
    assert len(numbers) == len(set(numbers))
    assert len(_complete(study)) >= 40


def test_unreachable_budget_names_the_fastest_latency(setup: dict[str, Path], tmp_path: Path) -> None:
    space = SearchSpace.load(setup["space"])
    fastest = space_bounds(space, LatencyTable.load(setup["table"])).fastest_ms
    with pytest.raises(ArgumentError, match=f"the fastest config of tiny takes {fastest:.3f} ms") as caught:
        _run(setup, tmp_path / "run", budget_ms=fastest * 0.9)
    assert caught.value.parameter == "budget_ms"
    assert not (tmp_path / "run").exists()


def test_also_budgets_name_the_fronts_best_within_each(setup: dict[str, Path], tmp_path: Path) -> None:
    space = SearchSpace.load(setup["space"])
    fastest = space_bounds(space, LatencyTable.load(setup["table"])).fastest_ms
    with pytest.raises(ArgumentError, match=f"the fastest config of tiny takes {fastest:.3f} ms") as caught:
        _run(setup, tmp_path / "slow", also_budgets_ms=[fastest * 0.9], trials=5)
    assert caught.value.parameter == "also_budgets_ms"
    many = [fastest + k * (2.5 - fastest) / 9 for k in range(1, 9)]
    with pytest.raises(ArgumentError, match="the surrogate sampler aims at most 6") as caught:
        _run(setup, tmp_path / "many", also_budgets_ms=many, sampler="surrogate", trials=5)
    assert caught.value.parameter == "also_budgets_ms"
    assert not (tmp_path / "many").exists()
    levels = [fastest * 1.2, 2.0]
    outcome = _run(setup, tmp_path / "run", also_budgets_ms=[f"{levels[1]}ms", levels[0], 2.5], trials=40)
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
    again = run_main(*_args(setup, outcome.out, "--trials", "40", "--also-budgets", f"{levels[1]}ms,{levels[0]}"))
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
    setup: dict[str, Path], tmp_path: Path, args: list[str], fragment: str
) -> None:
    (tmp_path / "file.txt").write_text("x")
    base = {"--target": str(setup["table"]), "--budget": "2.5ms", "--out": str(tmp_path / "run")}
    given = dict(zip(args[::2], (a.replace("{file}", str(tmp_path / "file.txt")) for a in args[1::2]), strict=True))
    flat = [item for pair in {**base, **given}.items() for item in pair]
    result = run_main("nas.search", "--space", str(setup["space"]), "--evaluator", "params", *flat)
    assert result.returncode == 2, result.stderr
    assert fragment in result.stderr
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert not (tmp_path / "run" / "best.yaml").exists()


def test_a_study_of_other_evaluator_settings_is_not_mixed(setup: dict[str, Path], tmp_path: Path) -> None:
    """Another seed (or steps, or supernet file) scores the same config otherwise: the rerun is refused."""
    out = tmp_path / "run"
    _run(setup, out, trials=5, evaluator="synflow")
    _run(setup, out, trials=6, evaluator="synflow")  # the same settings resume
    with pytest.raises(NasError, match=r"already holds a search with evaluator_settings.seed 0 \(now 1\); use another"):
        _run(setup, out, trials=7, evaluator=get_evaluator("synflow", seed=1))
    older = {k: v for k, v in _study(out).user_attrs["setup"].items() if k != "evaluator_settings"}
    with sqlite3.connect(out / "study.db") as db:  # a study recorded before evaluator settings were: resumed
        db.execute("UPDATE study_user_attributes SET value_json = ? WHERE key = 'setup'", (json.dumps(older),))
    assert len(_complete(_run(setup, out, trials=7, evaluator=get_evaluator("synflow", seed=1)).study)) == 7


def test_a_study_of_another_space_is_not_mixed(setup: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "run"
    _run(setup, out, trials=5)
    other = dict(yaml.safe_load(setup["space"].read_text()), head={"last_channels": [32], "hidden_channels": 64})
    with pytest.raises(NasError, match="study 'run' already holds a search with space_hash"):
        run_search(
            latency=setup["table"],
            space=SearchSpace.from_dict(other),
            budget_ms=2.5,
            evaluator="params",
            out=out,
            trials=10,
        )


def test_rung_steps() -> None:
    from nas.search._halving import rung_steps

    assert rung_steps(300, 3, 3) == [33, 100, 300]
    assert rung_steps(10, 2, 2) == [5, 10]


def test_successive_halving_trains_survivors_further(setup: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "run"
    _run(setup, out, trials=12, evaluator=TrainEvaluator(steps=9), eta=3, rungs=2, budget_ms=4)
    feasible = [t.user_attrs["nas"] for t in _complete(_study(out)) if t.user_attrs["nas"]["feasible"]]
    rungs = sorted(r["rung"] for r in feasible)
    assert rungs.count(0) > rungs.count(1) >= 1  # eta 3: one of each full bracket of three goes on
    assert all(r["fidelity"].startswith("trained 3/9" if r["rung"] == 0 else "trained 9/9") for r in feasible)
    trained = [r for r in feasible if "reused_from" not in r]
    assert len(list((out / "checkpoints").iterdir())) == len(trained)  # one folder per config trained
    assert len(list((out / "checkpoints").glob("*/step_*.pt"))) == len(trained) + rungs.count(1)
    with (out / "pareto.csv").open() as handle:
        assert {row["rung"] for row in csv.DictReader(handle)} <= {"0", "1"}
    best = next(t for t in _complete(_study(out)) if f"trial_{t.number:05d}" == ArchConfig.load(out / "best.yaml").name)
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


def test_requeue_abandoned_asks_only_whole_configs(setup: dict[str, Path]) -> None:
    """A trial killed halfway through drawing its config is failed, not re-asked: pinned, its partial
    choices would make another config, and nothing of it was trained."""
    space = SearchSpace.load(setup["space"])
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=0))
    whole = study.ask()
    config = space.sample(whole)
    partial = study.ask()
    name, options = next((n, o) for n, o in space.choices().items() if len(o) > 1)
    partial.suggest_categorical(name, list(options))
    assert requeue_abandoned(study, space, [whole.number, partial.number]) == 1
    again = study.ask()
    assert space.sample(again) == config


def test_successive_halving_killed_leaves_no_trial_running(setup: dict[str, Path], tmp_path: Path) -> None:
    """Halving asks a whole bracket before training it: a kill leaves several trials RUNNING, which the
    rerun fails (their processes are gone) before it goes on to the requested count."""
    out = tmp_path / "run"
    flags = ("--trials", "9", "--steps", "9", "--eta", "3", "--rungs", "2")
    command = _args(setup, out, *flags, budget="4ms", evaluator="train")
    process = start_cli(*command)
    deadline = time.monotonic() + 120
    db = out / "study.db"
    while time.monotonic() < deadline and not (_complete_count(db) >= 3 and _complete_count(db, "RUNNING")):
        time.sleep(0.2)  # one bracket told, the next one asked
    assert process.poll() is None, "the search ended before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    running = _study(out).get_trials(states=(optuna.trial.TrialState.RUNNING,))
    done_before = len(_complete(_study(out)))  # over-budget configs are told at once, so it varies

    result = run_main(*command)  # the rerun: in-process
    assert result.returncode == 0, result.stderr
    assert running
    assert f"failed {len(running)} trials a killed run left running" in result.stderr
    space = SearchSpace.load(setup["space"])
    asked = [t for t in running if _whole_config(space, t.params)]  # a kill mid-draw leaves a partial one
    assert f"asking {len(asked)} of their configs again" in result.stderr
    study = _study(out)
    assert not study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
    assert len(_complete(study)) == 9
    complete = [t.params for t in _complete(study)]
    # their training went on in the rerun, as far as the requested count left room for them
    assert sum(t.params in complete for t in asked) >= min(len(asked), 9 - done_before)


def test_mnas_objective_is_a_single_reward_under_the_budget(setup: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "run"
    study = _run(setup, out, trials=30, objective="mnas", w=-0.07).study
    assert len(study.directions) == 1
    for trial in _complete(study):
        record = trial.user_attrs["nas"]
        if record["feasible"]:
            assert trial.value == pytest.approx(record["score"] * (record["latency_ms"] / 2.5) ** -0.07)
    assert (out / "best.yaml").exists()


def test_mnas_with_training_reports_rungs_for_optunas_pruner(setup: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "run"
    trials = _run(setup, out, trials=6, objective="mnas", evaluator=TrainEvaluator(steps=9), budget_ms=4).study.trials
    evaluated = [t for t in trials if t.intermediate_values]
    assert evaluated
    for trial in evaluated:
        assert set(trial.intermediate_values) <= {1, 3, 9}
        if trial.state == optuna.trial.TrialState.COMPLETE:
            assert set(trial.intermediate_values) == {1, 3, 9}


def test_storage_creation_survives_a_race_for_the_schema() -> None:
    from sqlalchemy.exc import OperationalError

    from nas.search._study import _create_schema_tolerantly

    calls: list[int] = []

    def create():
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("CREATE TABLE studies", {}, Exception("table studies already exists"))
        return "storage"

    assert _create_schema_tolerantly(create, pause=0) == "storage"
    assert len(calls) == 2
    calls.clear()

    def always_fails():
        calls.append(1)
        raise OperationalError("connect", {}, Exception("could not connect to server"))

    with pytest.raises(OperationalError):
        _create_schema_tolerantly(always_fails, attempts=2, pause=0)
    assert len(calls) == 2


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


def test_a_config_enqueued_in_the_study_is_run_first(setup: dict[str, Path], tmp_path: Path) -> None:
    """Optuna's enqueue_trial: a known config a user wants scored (the sampler runs in memory, these on
    the study itself)."""
    out = tmp_path / "run"
    first = _run(setup, out, trials=3, sampler="random")
    params = first.study.trials[0].params
    first.study.enqueue_trial(params, user_attrs={"from": "user"})
    again = _run(setup, out, trials=8, sampler="random")
    enqueued = [t for t in again.study.trials if t.user_attrs.get("from") == "user"]
    assert len(enqueued) == 1
    assert enqueued[0].state == optuna.trial.TrialState.COMPLETE
    assert enqueued[0].params == params
    assert len(_complete(again.study)) == 8
