"""The library surface: latency models behind one protocol, package data found from anywhere, table
format versions, and a latency model of the user's own driving a search."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest
import tomllib
import yaml

from nas import ArchConfig, NasError, SearchSpace
from nas._paths import PACKAGE_DIR, REFERENCE_DIR, find_shipped
from nas.config import Op, ops
from nas.latency import (
    EstimatedTable,
    Explanation,
    LatencyModel,
    LatencyTable,
    MeasuredTable,
    OpLatency,
    Overhead,
    UnpricedOpError,
    latency_basis,
    space_bounds,
)
from nas.search import run_search
from tests.conftest import LARGE, ROOT, run_main


def test_shipped_tables_are_the_two_kinds_of_one_protocol(large: ArchConfig) -> None:
    measured, estimated = LatencyTable.load("x86_64"), LatencyTable.load("arm64")
    assert isinstance(measured, MeasuredTable)
    assert isinstance(estimated, EstimatedTable)
    for table in (measured, estimated, LatencyTable.load("note10")):
        assert isinstance(table, LatencyModel)
    assert measured.notice() is None
    assert "ESTIMATE" in (estimated.notice() or "")
    assert estimated.measured is False
    # what every shown latency is: a table's prediction, and from what
    assert latency_basis(LatencyTable.load("note10")) == "the note10 table (ops measured on Samsung Galaxy Note10)"
    assert latency_basis(estimated).startswith("the arm64 table (an ESTIMATE, not measured on Pixel-1")


def test_an_op_a_measured_table_cannot_price_is_its_own_error(large: ArchConfig) -> None:
    table = LatencyTable.load("note10")  # MobileNetV3 ops only: no op of MobileNetV1's kinds to price from
    with pytest.raises(UnpricedOpError) as caught:
        table.predict(ArchConfig.load(REFERENCE_DIR / "mobilenetv1_025.yaml"))
    assert isinstance(caught.value, NasError)
    assert caught.value.ops
    estimated = LatencyTable.load("arm64")
    assert estimated.predict(replace(large, resolution=240)) > estimated.predict(large)  # the model prices any op


def test_tables_carry_a_format_version(tmp_path: Path, large: ArchConfig) -> None:
    table = LatencyTable.load("x86_64")
    table.save(tmp_path / "t.yaml")
    data = yaml.safe_load((tmp_path / "t.yaml").read_text())
    assert data["format_version"] == 1
    assert LatencyTable.load(tmp_path / "t.yaml").predict(large) == pytest.approx(table.predict(large))
    data.pop("format_version")  # tables written before versions load as version 1
    (tmp_path / "old.yaml").write_text(yaml.safe_dump(data))
    assert LatencyTable.load(tmp_path / "old.yaml").predict(large) == pytest.approx(table.predict(large))
    data["format_version"] = 7
    (tmp_path / "new.yaml").write_text(yaml.safe_dump(data))
    result = run_main("nas.latency", "show", "--target", str(tmp_path / "new.yaml"))
    assert result.returncode == 2
    assert "format_version: format 7 is newer than this nas reads (2); upgrade nas" in result.stderr


@dataclass
class MacsModel:
    """A latency model of one's own: 1 ms per 10 million MACs, per op, no overhead."""

    target: str = "macs-device"
    measured: bool = False
    metadata: dict[str, Any] = field(default_factory=lambda: {"device": "a MACs counter"})
    overhead: Overhead = field(default_factory=Overhead)
    source: str = "MacsModel"

    def notice(self, ops: Iterable[Op] = ()) -> str | None:
        return "note: latency from MACs, not measured"

    def op_ms(self, op: Op) -> OpLatency:
        return OpLatency(op, op_macs(op) / 1e7, False)

    def explain(self, config: ArchConfig) -> Explanation:
        rows = tuple(self.op_ms(op) for op in ops(config))
        total = sum(row.ms for row in rows)
        return Explanation(rows, total, self.overhead, total)

    def predict(self, config: ArchConfig) -> float:
        return self.explain(config).total_ms

    def check_space(self, space: SearchSpace) -> None:
        return None


def op_macs(op: Op) -> float:
    return float(op.cost()[0])


def test_a_latency_model_of_ones_own_drives_bounds_and_search(tiny_space: SearchSpace, tmp_path: Path) -> None:
    model = MacsModel()
    assert isinstance(model, LatencyModel)
    bounds = space_bounds(tiny_space, model)
    assert bounds.fastest_ms == pytest.approx(model.predict(bounds.fastest))
    budget = (bounds.fastest_ms + bounds.slowest_ms) / 2
    result = run_search(latency=model, space=tiny_space, budget_ms=budget, evaluator="params", trials=20, out=tmp_path)
    assert result.latency is model
    assert all(point.latency_ms <= budget for point in result.front)
    summary = (tmp_path / "summary.md").read_text()
    assert "as predicted by the macs-device table (an ESTIMATE, not measured on a MACs counter)" in summary


def test_not_a_latency_model_is_refused_by_name(tiny_space: SearchSpace, tmp_path: Path) -> None:
    with pytest.raises(NasError, match="not a latency model"):
        run_search(latency=42, space=tiny_space, budget_ms=5, trials=1, out=tmp_path)  # type: ignore[arg-type]


def test_shipped_files_are_package_data_found_from_any_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert SearchSpace.load("search_spaces/mobilenetv3.yaml").name == "mobilenetv3"
    assert SearchSpace.load("ofa_mbv3_w1.2").name == "ofa_mbv3_w1.2"
    assert ArchConfig.load("search_spaces/reference/mobilenetv3_large.yaml") == ArchConfig.load(LARGE)
    assert LatencyTable.load("latency_tables/x86_64.yaml").target == "x86_64"
    assert find_shipped("nowhere.yaml") == Path("nowhere.yaml")  # not shipped: the reader says "no such file"
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["nas"]
    for folder in ("search_spaces", "latency_tables"):
        for path in (PACKAGE_DIR / folder).rglob("*"):
            if path.is_file():
                relative = path.relative_to(PACKAGE_DIR).as_posix()
                assert any(fnmatch(relative, pattern) for pattern in patterns), f"{relative} is not package data"
