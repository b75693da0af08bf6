"""The estimated arm64 table and the OFA import: published figures, honesty, reproducibility."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from nas import ArchConfig, SearchSpace
from nas._paths import REFERENCE_DIR, SPACES_DIR, TABLES_DIR, user_tables_dir
from nas.latency import LatencyTable
from nas.latency._estimate import FEATURES, DeviceModel, is_compute
from nas.latency._ofa import ofa_keys, read_ofa_file, read_proxyless_file
from tests.conftest import SHARED_DATA, run_main

OFA_DIR = SHARED_DATA / "ofa_note10_lut"
PIXEL1_DIR = SHARED_DATA / "proxylessnas_pixel1_lut"
needs_ofa = pytest.mark.skipif(
    not (OFA_DIR.exists() and PIXEL1_DIR.exists()),
    reason="../shared/data/ofa_note10_lut and proxylessnas_pixel1_lut are not beside this checkout",
)


@pytest.mark.parametrize(
    ("name", "published", "tolerance"),
    [
        ("mobilenetv3_large", 51.0, 0.05),
        ("mobilenetv3_small", 15.8, 0.10),
        ("mobilenetv3_large_075", 39.0, 0.15),  # not used for fitting
        ("mobilenetv3_small_075", 12.8, 0.15),  # not used for fitting
    ],
)
def test_arm64_matches_published_pixel1_latency(name: str, published: float, tolerance: float) -> None:
    table = LatencyTable.load("arm64")
    predicted = table.predict(ArchConfig.load(REFERENCE_DIR / f"{name}.yaml"))
    assert predicted == pytest.approx(published, rel=tolerance)


def test_arm64_is_labelled_an_estimate_with_its_sources() -> None:
    meta = LatencyTable.load("arm64").metadata
    assert meta["measured"] is False
    assert "ESTIMATE" in meta["method"]
    assert any("once-for-all" in source for source in meta["sources"])
    assert any("Tables 3 and 5 (Pixel-1 latencies)" in source for source in meta["sources"])
    assert any("ProxylessNAS mobile latency table (Google Pixel 1)" in source for source in meta["sources"])
    assert {name: fit["loo_mape_pct"] > 0 for name, fit in meta["transfer"].items()} == {"pixel1": True, "note10": True}
    assert {row["network"] for row in meta["calibration"]["held_out"]} == {
        "mobilenetv3_large_075",
        "mobilenetv3_small_075",
    }
    assert all("cross_validated_error_pct" in row for row in meta["calibration"]["fitted"])
    # Pixel 1's ops have no SE and no h-swish: those two features, and only they, are priced from Note10
    groups = meta["model"]["groups"]
    assert sorted(name for name, group in groups.items() if group == "note10") == ["hswish_melems", "se_melems"]


def test_estimate_notice_appears_in_cli_output() -> None:
    result = run_main("nas.latency", "show", "--target", "arm64")
    assert result.returncode == 0, result.stderr
    notice = [line for line in result.stderr.splitlines() if "is an ESTIMATE" in line]
    assert len(notice) == 1
    assert "python -m nas.latency build --target arm64 --bundle DIR" in notice[0]
    assert "is an ESTIMATE" not in run_main("nas.latency", "show", "--target", "x86_64").stderr


@needs_ofa
def test_ofa_import_round_trips_keys() -> None:
    for path in sorted(OFA_DIR.glob("*_lookup_table.yaml")):
        original = set(yaml.safe_load(path.read_text()))
        back = {key for op in read_ofa_file(path) for key in ofa_keys(op)}
        assert back == original, path.name


def test_ofa_space_is_priced_from_the_note10_table_without_interpolation() -> None:
    space = SearchSpace.load(SPACES_DIR / "ofa_mbv3_w1.2.yaml")
    table = LatencyTable.load("note10")
    assert table.metadata["measured"] is True
    assert table.metadata["space"]["hash"] == space.hash
    assert {op.key for op in space.ops()} <= set(table.entries)
    for seed in range(50):
        config = space.random_config(seed)
        assert table.explain(config).interpolated == 0


@needs_ofa
def test_documented_commands_rebuild_the_shipped_tables(tmp_path: Path) -> None:
    estimate = ["estimate", "--ofa", str(OFA_DIR), "--pixel1", str(PIXEL1_DIR)]
    for command, target in ((estimate, "arm64"), (["import-ofa", str(OFA_DIR)], "note10")):
        out = tmp_path / f"{target}.yaml"
        result = run_main("nas.latency", *command, "--target", target, "--out", str(out))
        assert result.returncode == 0, result.stderr
        rebuilt, shipped = LatencyTable.load(out), LatencyTable.load(target)
        assert rebuilt.entries.keys() == shipped.entries.keys()
        for key, row in shipped.entries.items():
            assert rebuilt.entries[key][0] == pytest.approx(row[0], rel=1e-6)


def test_estimated_table_prices_new_ops_with_its_model(tmp_path: Path) -> None:
    path = tmp_path / "arm64.yaml"
    shutil.copy(TABLES_DIR / "arm64.yaml", path)
    large = ArchConfig.load(REFERENCE_DIR / "mobilenetv3_large.yaml")
    layers = list(large.layers)
    layers[7] = replace(layers[7], expanded=152)  # a NetAdapt-style width no config of the space has
    config = replace(large, layers=tuple(layers))
    config.save(tmp_path / "narrow.yaml")
    result = run_main("nas.latency", "extend", "--target", str(path), "--config", str(tmp_path / "narrow.yaml"))
    assert result.returncode == 0, result.stderr
    assert "estimated (by the table's model) and added 1 ops" in result.stdout
    extended = LatencyTable.load(path)
    assert extended.explain(config).interpolated == 0
    assert extended.predict(config) < extended.predict(large)


def test_extending_a_shipped_table_writes_a_user_copy(tmp_path: Path) -> None:
    shipped = (TABLES_DIR / "arm64.yaml").read_bytes()
    large = ArchConfig.load(REFERENCE_DIR / "mobilenetv3_large.yaml")
    layers = list(large.layers)
    layers[7] = replace(layers[7], expanded=144)
    replace(large, layers=tuple(layers)).save(tmp_path / "narrow.yaml")
    result = run_main("nas.latency", "extend", "--target", "arm64", "--config", str(tmp_path / "narrow.yaml"))
    assert result.returncode == 0, result.stderr
    copy = user_tables_dir() / "arm64.yaml"
    assert f"extending a copy of the shipped table 'arm64': {copy}" in result.stderr
    assert (TABLES_DIR / "arm64.yaml").read_bytes() == shipped
    assert LatencyTable.load("arm64").source == str(copy)  # the user's copy now answers to the name
    copy.unlink()


def test_import_of_a_folder_without_tables_is_a_clear_error(tmp_path: Path) -> None:
    result = run_main("nas.latency", "import-ofa", str(tmp_path), "--target", "x", "--out", str(tmp_path / "x.yaml"))
    assert result.returncode == 2
    assert "no *_lookup_table.yaml files" in result.stderr
    assert not (tmp_path / "x.yaml").exists()


PROXYLESS_KEYS = {
    "Conv-input:224x224x3-output:112x112x32": 4.0,
    "expanded_conv-input:112x112x32-output:112x112x16-expand:1-kernel:3-stride:1-idskip:0": 3.9,
    "expanded_conv-input:112x112x16-output:56x56x24-expand:6-kernel:5-stride:2-idskip:0": 9.0,
    "Conv_1-input:7x7x320-output:7x7x1280": 3.1,
    "Logits-input:7x7x1280-output:1000": 0.3,
}


def _proxyless_file(path: Path, entries: dict[str, float]) -> Path:
    path.write_text(yaml.safe_dump({key: {"count": 10, "mean": ms, "var": 0.1} for key, ms in entries.items()}))
    return path


def test_proxyless_table_reads_as_relu_ops_without_se(tmp_path: Path) -> None:
    ops = read_proxyless_file(_proxyless_file(tmp_path / "mobile_trim.yaml", PROXYLESS_KEYS))
    assert sorted(op.key for op in ops) == [
        "fc|r7|i1280|o1000",
        "ir|r112|i16|e96|o24|k5|s2|se0|re",  # expand is a ratio: 16 x 6
        "ir|r112|i32|e32|o16|k3|s1|se0|re",  # expand 1: no expansion conv
        "last|r7|i320|o1280|re",
        "stem|r224|i3|o32|k3|s2|re",
    ]
    assert sorted(ops.values()) == sorted(PROXYLESS_KEYS.values())


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("expanded_conv-input:56x56x24-output:56x56x24-expand:3-kernel:3-stride:1-idskip:0", "idskip"),
        ("Conv-input:224x224x3-output:75x75x32", "goes from 224 px to 75 px"),
        ("Conv_2-input:1x1x960-output:1x1x1280", "not in ProxylessNAS's mobile latency-table format"),
    ],
)
def test_bad_proxyless_key_is_one_line_and_nothing_written(tmp_path: Path, key: str, message: str) -> None:
    bad = _proxyless_file(tmp_path / "bad.yaml", {**PROXYLESS_KEYS, key: 1.0})
    out = tmp_path / "arm64.yaml"
    result = run_main("nas.latency", "estimate", "--ofa", str(tmp_path), "--pixel1", str(bad), "--out", str(out))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert message in result.stderr
    assert repr(key) in result.stderr
    assert not out.exists()


def test_cross_validation_of_consistent_anchors_is_exact() -> None:
    """Anchors that one set of factors explains exactly are each predicted exactly without them."""
    large = ArchConfig.load(REFERENCE_DIR / "mobilenetv3_large.yaml")
    small = ArchConfig.load(REFERENCE_DIR / "mobilenetv3_small.yaml")
    model = DeviceModel((0.1,) * len(FEATURES), tuple("compute" if is_compute(n) else "rest" for n in FEATURES))
    truth = DeviceModel(model.weights, model.groups, (2.0, 0.5))
    anchors = [(large.ops(), sum(truth.op_ms(op) for op in large.ops()))]
    anchors += [(small.ops(), sum(truth.op_ms(op) for op in small.ops()))]
    anchors += [(large.ops()[:5], sum(truth.op_ms(op) for op in large.ops()[:5]))]
    assert model.calibrated(anchors).factors == pytest.approx((2.0, 0.5))
    assert model.cross_validated(anchors) == pytest.approx([0, 0, 0], abs=1e-6)


def test_corrupt_model_of_an_estimated_table_is_one_line(tmp_path: Path) -> None:
    data = yaml.safe_load((TABLES_DIR / "arm64.yaml").read_text())
    data["metadata"]["model"]["factors"].pop("rest")
    path = tmp_path / "arm64.yaml"
    path.write_text(yaml.safe_dump(data))
    result = run_main("nas.latency", "show", "--target", str(path))
    assert result.returncode == 2
    assert f"{path}: metadata.model.factors: missing key 'rest'" in result.stderr
    assert "Traceback" not in result.stderr
