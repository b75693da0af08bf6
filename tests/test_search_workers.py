"""Several search workers on one study (SQLite, PostgreSQL), and a worker that fails."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nas import NasError
from tests.conftest import BreaksInWorkers, run_cli
from tests.searching import complete_trials, search, search_args, study_of


def test_two_workers_share_one_study_and_stop_at_the_total(search_setup: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = run_cli(*search_args(search_setup, out, "--trials", "80", "--workers", "2"))
    assert result.returncode == 0, result.stderr
    assert "80/80" in result.stderr  # the bar counts every worker's trials
    study = study_of(out)
    numbers = [t.number for t in study.trials]
    assert len(numbers) == len(set(numbers))
    assert len(complete_trials(study)) == 80  # no worker starts a trial past the total
    assert (out / "worker1.log").exists()


def test_a_crashing_worker_fails_the_run_with_its_message(search_setup: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(NasError, match=r"search worker 1 failed \(exit code 1\): .*cannot run in a worker"):
        search(search_setup, tmp_path / "run", trials=20, workers=2, evaluator=BreaksInWorkers())


@pytest.mark.skipif(not os.environ.get("NAS_TEST_POSTGRES_URL"), reason="no PostgreSQL server (.ci/run starts one)")
def test_two_workers_on_postgresql(search_setup: dict[str, Path], tmp_path: Path) -> None:
    url = os.environ["NAS_TEST_POSTGRES_URL"]
    name = f"pg{os.getpid()}"
    study = search(search_setup, tmp_path / "run", trials=40, workers=2, storage=url, study_name=name).study
    numbers = [t.number for t in study.trials]
    assert len(numbers) == len(set(numbers))
    assert len(complete_trials(study)) >= 40


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
