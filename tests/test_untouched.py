"""Shipped files are never changed: every stage, run as the README runs it (with small settings), leaves
every git-tracked file as it was, and NetAdapt's timing of missing ops goes into its own folder, where its
result can still be priced."""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from nas import ArchConfig, LatencyTable
from nas.latency import measure
from nas.netadapt._algorithm import Pricer
from nas.netadapt._run import own_copy
from nas.pipeline import run_pipeline
from tests.conftest import ROOT, SMALL, run_main


def _tracked() -> dict[str, str]:
    """Content digest of every file git tracks in the checkout."""
    names = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    return {
        name: hashlib.sha256((ROOT / name).read_bytes()).hexdigest()
        for name in names
        if name and (ROOT / name).is_file()
    }


@pytest.fixture
def untouched() -> object:
    before = _tracked()
    yield
    after = _tracked()
    changed = sorted(name for name in before if after.get(name) != before[name])
    assert not changed, f"tracked files changed: {changed}"


@pytest.mark.usefixtures("untouched")
def test_every_stage_leaves_tracked_files_as_they_were(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    commands = [
        ("nas.search", "--target", "x86_64", "--budget", "3ms", "--trials", "20", "--out", str(tmp_path / "s")),
        ("nas.space", "show", "search_spaces/lightweight.yaml"),
        ("nas.latency", "show", "--target", "x86_64", "--config", str(SMALL)),
        ("nas.latency", "extend", "--target", "arm64", "--config", str(tmp_path / "s" / "best.yaml")),
        ("nas.evaluate", str(SMALL), "--evaluator", "synflow"),
        ("nas.export", str(tmp_path / "s" / "best.yaml"), "--out", str(tmp_path / "best.onnx")),
    ]
    for command in commands:
        result = run_main(*command)
        assert result.returncode == 0, f"{command}: {result.stderr}"
    run_pipeline(
        latency="arm64",
        budget_ms=30,
        trials=10,
        epochs=0.05,
        netadapt_epochs=0.05,
        short_steps=1,
        seeds=[0],
        train_references=False,
        out=tmp_path / "p",
    )

    # NetAdapt's --measure-missing on a shipped table: a config whose narrowed widths the table lacks is
    # priced by timing those ops for real, here, into the run folder's copy. Only the machine check is
    # told this is the table's machine (CI's CPU is not the one x86_64.yaml was measured on).
    table = LatencyTable.load("x86_64")
    machine = measure.machine
    monkeypatch.setattr(measure, "machine", lambda: {**machine(), "cpu": table.metadata["cpu"]})
    small = ArchConfig.load(SMALL)
    narrowed = replace(small, layers=[small.layers[0], replace(small.layers[1], expanded=40), *small.layers[2:]])
    assert table.explain(narrowed).modelled > 0
    price = Pricer(own_copy(table, tmp_path / "n"), measure_missing=True)
    assert price(narrowed) is not None
    own = LatencyTable.load(tmp_path / "n" / "table.yaml")
    assert len(own.entries) > len(table.entries)  # the timed ops went into the run folder's copy
    assert own.explain(narrowed).modelled == 0  # which prices the narrowed network from measurements alone
