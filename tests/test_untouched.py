"""NetAdapt's timing of missing ops goes into its own folder, where its result can still be priced, and
the shipped table stays as it was. (That no test, and so no stage, changes a tracked file is checked
for the whole session in conftest.py.)"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from nas import ArchConfig, LatencyTable
from nas.latency import measure
from nas.netadapt._algorithm import Pricer
from nas.netadapt._run import own_copy
from tests.conftest import SMALL


def test_timing_missing_ops_fills_the_run_folders_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
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
