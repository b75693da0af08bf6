"""What the search tests share: ways to run a search on the ``search_setup`` fixture and to read its study."""

from __future__ import annotations

import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

import optuna

from nas.search import SearchResult, run_search
from tests.conftest import run_cli


def search_args(
    search_setup: dict[str, Path], out: Path, *extra: str, budget: str = "2.5ms", evaluator: str = "params"
) -> list[str]:
    return [
        "nas.search",
        "--target",
        str(search_setup["table"]),
        "--space",
        str(search_setup["space"]),
        "--budget",
        budget,
        "--evaluator",
        evaluator,
        "--out",
        str(out),
        *extra,
    ]


def search_cli(
    search_setup: dict[str, Path], out: Path, *extra: str, budget: str = "2.5ms"
) -> subprocess.CompletedProcess:
    return run_cli(*search_args(search_setup, out, *extra, budget=budget))


def study_of(out: Path) -> optuna.Study:
    return optuna.load_study(study_name=out.name, storage=f"sqlite:///{out / 'study.db'}")


def count_trials(db: Path, state: str = "COMPLETE") -> int:
    """Trials in ``state``, read without creating anything: a reader that opened the file through Optuna
    while the search was still creating its tables would race it. Read-write, not read-only: a read-only
    reader of a WAL database cannot set up the shared-memory index itself and may fail where one that can waits."""
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=rw", uri=True, timeout=1)) as connection:
            return connection.execute("SELECT COUNT(*) FROM trials WHERE state = ?", (state,)).fetchone()[0]
    except sqlite3.Error:  # no file or no table yet
        return 0


def complete_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))


def search(search_setup: dict[str, Path], out: Path, **options) -> SearchResult:
    options = {"budget_ms": 2.5, "evaluator": "params", **options}
    return run_search(latency=search_setup["table"], space=search_setup["space"], out=out, **options)
