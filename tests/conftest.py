"""Shared fixtures: project paths, the reference configs, tiny spaces for exhaustive checks, and two ways
to run a command: in a subprocess (the CLI as a user starts it) or in-process (its parsing and messages)."""

from __future__ import annotations

import atexit
import contextlib
import copy
import hashlib
import importlib
import io
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from nas import ArchConfig, SearchSpace
from nas._paths import REFERENCE_DIR, SPACES_DIR
from nas.evaluate._baselines import FlopsEvaluator

# Tables and bundles built by tests go to a throwaway user folder, for subprocesses too, removed at exit.
os.environ["NAS_HOME"] = tempfile.mkdtemp(prefix="nas-home-")
atexit.register(shutil.rmtree, os.environ["NAS_HOME"], ignore_errors=True)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SPACE = SPACES_DIR / "mobilenetv3.yaml"
LARGE = REFERENCE_DIR / "mobilenetv3_large.yaml"
SMALL = REFERENCE_DIR / "mobilenetv3_small.yaml"
SHARED_DATA = ROOT.parent / "shared" / "data"

TINY_SPACE: dict[str, Any] = {
    "name": "tiny",
    "resolution": [32, 40],
    "num_classes": 10,
    "stem": {"channels": [8, 16], "kernel": 3, "stride": 2, "act": ["relu", "hswish"]},
    "stages": [
        {"stride": [1, 2], "depth": [0, 1], "width": 16, "expansion": 1, "kernel": [3, 5], "se": [False, True]},
        {
            "stride": 2,
            "depth": [1, 2],
            "width": [16, 24],
            "expansion": [3, 4],
            "kernel": [3, 5],
            "act": "hswish",
            "shared": ["kernel"],
        },
    ],
    "head": {"last_channels": [32, 48], "hidden_channels": 64, "dropout": 0.1},
}


def _tracked() -> dict[str, str]:
    """Content digest of every file git tracks in the checkout, but the benchmark records (bench/records/),
    which a benchmark running beside the tests may be appending to."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True)
    names = [name for name in listed.stdout.split("\0") if name and not name.startswith("bench/records/")]
    return {name: hashlib.sha256((ROOT / name).read_bytes()).hexdigest() for name in names if (ROOT / name).is_file()}


def pytest_configure(config: pytest.Config) -> None:
    """Each pytest-xdist worker gets its share of the cores, for torch in it and for the commands it starts:
    every worker's torch taking all of them made two workers on 2 cores slower than one."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers:
        import torch

        threads = max(1, (os.cpu_count() or 1) // int(workers))
        os.environ["OMP_NUM_THREADS"] = str(threads)
        torch.set_num_threads(threads)


@pytest.fixture(scope="session", autouse=True)
def tracked_files_stay_as_they_were() -> Any:
    """No test, so no stage run as the README runs it, changes a shipped file (a table, a space, a config):
    checked once over the whole session, which runs every stage."""
    before = _tracked()
    yield
    after = _tracked()
    changed = sorted(name for name in before if after.get(name) != before[name])
    assert not changed, f"tracked files changed by the tests: {changed}"


@pytest.fixture
def tiny_space_dict() -> dict[str, Any]:
    return copy.deepcopy(TINY_SPACE)


@pytest.fixture
def tiny_space() -> SearchSpace:
    return SearchSpace.from_dict(copy.deepcopy(TINY_SPACE), source="tiny")


@pytest.fixture
def default_space() -> SearchSpace:
    return SearchSpace.load(DEFAULT_SPACE)


@pytest.fixture
def large() -> ArchConfig:
    return ArchConfig.load(LARGE)


@pytest.fixture
def small() -> ArchConfig:
    return ArchConfig.load(SMALL)


@pytest.fixture(scope="session")
def search_setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny space with a table of made-up latencies, for tests of the search itself (read-only)."""
    import yaml

    from tests.test_latency import synthetic_table  # here, not at the top: test_latency imports this module

    folder = tmp_path_factory.mktemp("search")
    space_file = folder / "tiny.yaml"
    space_file.write_text(yaml.safe_dump(TINY_SPACE))
    table = synthetic_table(SearchSpace.load(space_file), seed=5)
    table.metadata["space"]["file"] = str(space_file)
    table.save(folder / "tiny_table.yaml")
    return {"space": space_file, "table": folder / "tiny_table.yaml"}


def run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run ``python -m <args>`` as a user would, capturing its output."""
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def start_cli(*args: str) -> subprocess.Popen[bytes]:
    """Start ``python -m <args>`` in the background, output discarded: a run for a test to kill."""
    return subprocess.Popen(
        [sys.executable, "-m", *args], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def run_main(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    """A command's ``main`` in this process, through the same error handling as its console script:
    its exit code, stdout and stderr, without a new interpreter's imports."""
    command = importlib.import_module(f"{module}.__main__" if module != "nas.export" else module)
    return call_main(command.main, module, *args, flags=getattr(command, "FLAGS", None))


def call_main(
    main: Callable[[Sequence[str] | None], int | None], name: str, *args: str, flags: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``main`` through the CLIs' error handling (``nas._cli.run``), with stdout and stderr captured and the
    ``nas`` logger's handlers restored afterwards, so no later test logs into a closed capture."""
    logger = logging.getLogger("nas")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    out, err = io.StringIO(), io.StringIO()
    from nas import _cli

    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = _cli.run(main, list(args), flags=flags)
            except SystemExit as exc:  # argparse's own usage errors
                code = int(exc.code or 0)
    finally:
        logger.handlers[:], logger.level, logger.propagate = saved
    return subprocess.CompletedProcess([name, *args], code, out.getvalue(), err.getvalue())


class BreaksInWorkers(FlopsEvaluator):
    """Scores like flops in the process that made it, but cannot be rebuilt in a search worker (it lives
    here, in an importable module, so a worker gets as far as unpickling it)."""

    def __init__(self) -> None:
        self.pid = os.getpid()  # some state, so unpickling calls __setstate__

    def __setstate__(self, state: dict) -> None:
        raise RuntimeError("this evaluator cannot run in a worker")


class EnumeratingTrial:
    """Walks every combination of ``suggest_categorical`` answers, odometer-style (see all_configs)."""

    def __init__(self, path: list[list[int]]) -> None:
        self.path = path
        self.depth = 0

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        if self.depth == len(self.path):
            self.path.append([0, len(choices)])
        index = self.path[self.depth][0]
        self.depth += 1
        return choices[index]


def all_configs(space: SearchSpace) -> list[ArchConfig]:
    """Every config reachable through ``sample``, one per choice path (duplicates kept)."""
    configs, path = [], []
    while True:
        trial = EnumeratingTrial(path)
        configs.append(space.sample(trial))
        del path[trial.depth :]
        while path and path[-1][0] + 1 == path[-1][1]:
            path.pop()
        if not path:
            return configs
        path[-1][0] += 1


def extract_with_cli(supernet: Path, config: Any, folder: Path) -> Path:
    """``python -m nas.supernet extract`` of ``config`` (an ArchConfig) from ``supernet``: the weights file."""
    config_file, weights = folder / "config.yaml", folder / "w.pt"
    config.save(config_file)
    result = run_main("nas.supernet", "extract", "--supernet", str(supernet), "--config", str(config_file),
                      "--out", str(weights))  # fmt: skip
    assert result.returncode == 0, result.stderr
    return weights
