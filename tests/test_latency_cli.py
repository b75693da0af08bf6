"""nas.latency as a user runs it: real export, real onnxruntime timing, kill -9 and resume."""

from __future__ import annotations

import json
import logging
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from nas import ArchConfig, NasError, SearchSpace
from nas._paths import TABLES_DIR, user_tables_dir
from nas.config import Op
from nas.latency import LatencyTable
from nas.latency._bundle import key_shape, read_manifest, shape_key
from nas.latency.measure import (
    LEVELS,
    SLOW,
    OpenSession,
    Timing,
    _Record,
    _round,
    _wholes,
    in_context,
    time_alternated,
)
from tests.conftest import ROOT, TINY_SPACE, run_cli, run_main, start_cli


@pytest.fixture(scope="module")
def space_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("space") / "tiny.yaml"
    path.write_text(yaml.safe_dump({**TINY_SPACE, "resolution": 32}))  # one resolution: half the ops to time
    return path


@pytest.fixture(scope="module")
def bundle(space_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bundle") / "tiny-bundle"
    result = run_main(
        "nas.latency",
        "build",
        "--space",
        str(space_file),
        "--target",
        "tiny",
        "--bundle",
        str(folder),
        "--calibration",
        "2",
    )
    assert result.returncode == 0, result.stderr
    assert "python -m nas.latency measure tiny-bundle --out tiny.yaml" in result.stdout
    return folder


def test_measure_side_never_imports_torch() -> None:
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'optuna', 'matplotlib'):\n"
        "            raise ImportError('device side must not import ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import nas.latency.measure, nas.latency.__main__\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.stdout == "ok\n", result.stderr


def test_killed_measurement_resumes_without_remeasuring(bundle: Path, tmp_path: Path) -> None:
    manifest = read_manifest(bundle)
    total = len(manifest.shapes) + len(manifest.ops) + LEVELS + len(manifest.models) - 1
    out = tmp_path / "tiny.yaml"
    partial = tmp_path / "tiny.yaml.partial.jsonl"
    command = ["nas.latency", "measure", str(bundle), "--out", str(out)]
    process = start_cli(*command)
    wanted = len(manifest.shapes) + 20  # every shape baseline (timed first) and some ops
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if partial.exists() and partial.read_text().count("\n") > wanted:
            break
        time.sleep(0.02)
    assert process.poll() is None, "measurement finished before it could be interrupted"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not out.exists()
    records = [json.loads(line) for line in partial.read_text().splitlines()[1:] if line.endswith("}")]
    before = {r["name"]: Timing(*r["t"]) for r in records}
    assert len(before) >= wanted
    assert all(Timing(*r["c"]).count == Timing(*r["t"]).count for r in records)  # each timed with its canary
    assert any(name.startswith("level:") for name in before)  # the first network is timed among the ops too

    result = run_cli(*command)
    assert result.returncode == 0, result.stderr
    assert f"resuming: {len(before)} of {total} already measured" in result.stderr
    assert not partial.exists()
    table = LatencyTable.load(out)
    assert len(table.entries) == len(manifest.ops) == 72
    resumed_ops = [name for name in before if name in manifest.ops]
    assert resumed_ops
    level = table.metadata["drift"]["canary_ms"]  # timings are scaled by level / their canary's timing
    scaled = {r["name"]: Timing(*r["t"]).scaled(level / Timing(*r["c"]).ms) for r in records}
    steady = {r["name"] for r in records if Timing(*r["c"]).ms <= SLOW * level}  # not timed again
    for name in steady.intersection(resumed_ops):  # rows from timings taken before the kill come back as timed
        sides = [f"shape:{shape_key(shape)}" for shape in Op.parse(name).context_shapes() if shape is not None]
        if steady.issuperset(sides):
            row = in_context(name, scaled[name], scaled)
            assert table.entries[name][0] == pytest.approx(row[0], rel=1e-4, abs=1e-5)
    assert table.metadata["measured"] is True
    assert table.metadata["threads"] == 1
    assert table.overhead.models == 2

    written = out.read_bytes()
    again = run_cli(*command)  # a finished run is not redone
    assert again.returncode == 0, again.stderr
    assert f"already measured: {out} (72 ops," in again.stderr
    assert again.stdout.startswith(f"kept {out}: 72 ops")
    assert out.read_bytes() == written


@pytest.fixture(scope="module")
def measured_table(space_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built by name: the table goes to the user's tables folder (never the shipped one) and is found by name."""
    result = run_main(
        "nas.latency", "build", "--space", str(space_file), "--target", "tiny-built", "--calibration", "3"
    )
    assert result.returncode == 0, result.stderr
    out = user_tables_dir() / "tiny-built.yaml"
    assert f"wrote {out}" in result.stdout
    assert not (TABLES_DIR / "tiny-built.yaml").exists()
    assert LatencyTable.load("tiny-built").source == str(out)
    copy = tmp_path_factory.mktemp("table") / "tiny.yaml"  # tests below extend it
    copy.write_bytes(out.read_bytes())
    return copy


def test_ops_are_timed_between_convs_from_and_to_a_narrow_width(bundle: Path, measured_table: Path) -> None:
    """An op's context leads from and to 16 channels (fewer for a narrower activation), not the op's own
    widths: a wide context would cost more than the op and multiply its noise in the entry."""
    import onnxruntime as ort

    from nas.latency.measure import method
    from nas.model import CONTEXT_CHANNELS

    manifest = read_manifest(bundle)
    assert manifest.context == CONTEXT_CHANNELS == 16
    inputs = {}
    for key, file in [*manifest.ops.items(), *(("shape:" + k, f) for k, f in manifest.shapes.items())]:
        channels = key_shape(key.removeprefix("shape:"))[0] if key.startswith("shape:") else Op.parse(key).cin
        shape = ort.InferenceSession(str(bundle / file)).get_inputs()[0].shape
        inputs[key] = (channels, shape[1])
    assert all(given == min(16, channels) for channels, given in inputs.values())
    assert any(channels > 16 for channels, _ in inputs.values())  # the tiny space has wider ops too
    assert method(16) in LatencyTable.load(measured_table).metadata["method"]
    # a bundle exported before (no context_channels) reads as one at the op's widths, and says so
    copy = bundle.parent / "old-bundle"
    shutil.copytree(bundle, copy)
    old = yaml.safe_load((copy / "manifest.yaml").read_text())
    del old["context_channels"]
    (copy / "manifest.yaml").write_text(yaml.safe_dump(old))
    assert read_manifest(copy).context is None
    assert "at the op's own widths" in method(None)


def test_built_table_prices_every_config_of_its_space(measured_table: Path, space_file: Path) -> None:
    table = LatencyTable.load(measured_table)
    space = SearchSpace.load(space_file)
    assert table.metadata["space"]["hash"] == space.hash
    for seed in range(20):
        assert table.explain(space.random_config(seed)).interpolated == 0
    result = run_main("nas.latency", "show", "--target", str(measured_table))
    assert result.returncode == 0, result.stderr
    assert "space tiny: fastest" in result.stdout


def test_validate_writes_csv_plot_and_summary(measured_table: Path, space_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "validation"
    result = run_main(
        "nas.latency",
        "validate",
        "--target",
        str(measured_table),
        "--space",
        str(space_file),
        "--samples",
        "3",
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    assert "all: 3 networks, MAPE" in result.stdout
    lines = (out / "validation.csv").read_text().splitlines()
    assert lines[0].startswith("name,predicted_ms,measured_ms,error_pct")
    assert len(lines) == 4
    assert (out / "validation.png").stat().st_size > 0


def test_files_timed_alternately_run_by_run_in_turn(bundle: Path) -> None:
    """Each file gets as many runs as the other, and the two take turns at going first (no order effect)."""
    manifest = read_manifest(bundle)
    paths = [bundle / manifest.models[0].file, bundle / next(iter(manifest.ops.values()))]
    for threads in (1, 2):  # with 2, the idle session does not spin
        timings = time_alternated(paths, threads=threads, min_runs=20, max_seconds=0.1)
        assert [t.count for t in timings] == [timings[0].count] * 2
        assert timings[0].count >= 20
        assert all(0 < t.p10_ms <= t.median_ms <= t.p90_ms for t in timings)
    sessions = [OpenSession(path, threads=1, spin=True) for path in paths]
    assert [i for i, _ in _round(sessions, 0)] == [0, 1]
    assert [i for i, _ in _round(sessions, 1)] == [1, 0]


def test_extend_measures_only_missing_ops(measured_table: Path, space_file: Path, tmp_path: Path) -> None:
    from dataclasses import replace

    table = LatencyTable.load(measured_table)
    config = SearchSpace.load(space_file).random_config(0)
    wider = replace(config, head=replace(config.head, hidden_channels=80))  # hidden 80 was never measured
    path = tmp_path / "wider.yaml"
    wider.save(path)
    result = run_main("nas.latency", "extend", "--target", str(measured_table), "--config", str(path))
    assert result.returncode == 0, result.stderr
    assert "measured and added 1 ops" in result.stdout
    extended = LatencyTable.load(measured_table)
    assert len(extended.entries) == len(table.entries) + 1
    assert extended.explain(ArchConfig.load(path)).interpolated == 0
    assert len(extended.metadata["extensions"]) == 1


def test_a_table_of_another_onnxruntime_version_is_noticed_once_per_run(
    measured_table: Path, space_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataclasses import replace

    import onnxruntime

    from nas.latency import measure, measure_here
    from nas.latency._build import extend_table

    table = LatencyTable.load(measured_table)
    table.metadata["runtime"] = "onnxruntime 0.0.1"
    table.save(tmp_path / "old.yaml")
    old, same = LatencyTable.load(tmp_path / "old.yaml"), LatencyTable.load(measured_table)
    config = SearchSpace.load(space_file).random_config(0)
    wider = replace(config, head=replace(config.head, hidden_channels=96))  # not in the table: timed here
    monkeypatch.setattr(measure, "_NOTICED", set())
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logging.getLogger(measure.__name__).addHandler(handler)
    try:
        measure_here([config], same)
        measure_here([config], old)
        measure_here([config], old)
        assert extend_table(old, [wider]) == 1
    finally:
        logging.getLogger(measure.__name__).removeHandler(handler)
    notices = [record.getMessage() for record in records if "another setup" in record.getMessage()]
    assert len(notices) == 1, notices
    assert f"runtime 'onnxruntime 0.0.1' there, 'onnxruntime {onnxruntime.__version__}' here" in notices[0]
    assert f"python -m nas.latency build --target {old.target}" in notices[0]


def test_a_finished_table_of_another_onnxruntime_version_is_measured_again(measured_table: Path) -> None:
    from nas.latency.measure import finished_table

    table = LatencyTable.load(measured_table)
    space_hash, threads = table.metadata["space"]["hash"], table.metadata["threads"]
    assert finished_table(measured_table, space_hash, threads) is not None
    table.metadata["runtime"] = "onnxruntime 0.0.1"
    table.save(measured_table.parent / "old.yaml")
    assert finished_table(measured_table.parent / "old.yaml", space_hash, threads) is None


def test_a_table_timed_without_drift_correction_says_so_and_is_not_kept_for_a_corrected_build(
    bundle: Path, tmp_path: Path
) -> None:
    from nas.latency.measure import finished_table

    out = tmp_path / "raw.yaml"
    result = run_main("nas.latency", "measure", str(bundle), "--out", str(out), "--no-drift-correction")
    assert result.returncode == 0, result.stderr
    table = LatencyTable.load(out)
    assert table.metadata["drift"]["corrected"] is False
    assert "drift-corrected" not in table.metadata["method"]
    space_hash = table.metadata["space"]["hash"]
    assert finished_table(out, space_hash, 1, correct_drift=False) is not None
    assert finished_table(out, space_hash, 1) is None  # a default (corrected) run times it again


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["show", "--target", "nope"], "unknown target 'nope'; available tables:"),
        (["measure", "{tmp}", "--out", "{tmp}/t.yaml"], "no manifest.yaml in this folder"),
        (["measure", "{tmp}/absent", "--out", "{tmp}/t.yaml"], "no such bundle folder"),
        (["build", "--target", "t", "--threads", "0", "--out", "{tmp}/t.yaml"], "--threads 0: use 1 or more"),
        (["show", "--target", "{tmp}/missing.yaml"], "no such latency table file"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], fragment: str, tmp_path: Path) -> None:
    result = run_main("nas.latency", *(a.replace("{tmp}", str(tmp_path)) for a in args))
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("name", ["/etc/passwd", "../outside.onnx", "ops/../../outside.onnx"])
def test_a_manifest_naming_files_outside_its_bundle_is_refused(bundle: Path, tmp_path: Path, name: str) -> None:
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    (tmp_path / "outside.onnx").write_bytes((bundle / next(iter(read_manifest(bundle).ops.values()))).read_bytes())
    manifest = yaml.safe_load((copy / "manifest.yaml").read_text())
    first = next(iter(manifest["ops"]))
    manifest["ops"][first] = name
    (copy / "manifest.yaml").write_text(yaml.safe_dump(manifest))
    result = run_main("nas.latency", "measure", str(copy), "--out", str(tmp_path / "t.yaml"))
    assert result.returncode == 2
    assert "names 1 files outside the bundle" in result.stderr
    assert not (tmp_path / "t.yaml").exists()


@pytest.mark.parametrize(
    ("content", "resumed"),
    [
        ("", 0),  # killed before its header was written: starts over
        ('{"head', 0),  # killed while writing it
        ('{"header": {"a": 1}}\n{"name": "x", "t": [1, 1, 1, 5], "c": [1, 1, 1, 5], "s": 0.5}\n{"name": "y"}\n{"na', 1),
    ],
)
def test_a_partial_record_cut_anywhere_resumes(tmp_path: Path, content: str, resumed: int) -> None:
    path = tmp_path / "t.yaml.partial.jsonl"
    path.write_text(content)
    record = _Record(path, {"a": 1})
    assert len(record.done) == resumed
    assert json.loads(path.read_text().splitlines()[0]) == {"header": {"a": 1}}


def test_calibration_networks_are_priced_by_their_ratio_to_the_first(bundle: Path) -> None:
    """The first network's level is the p10 of its timings spread over the run (not corrected by the canary,
    which runs slow after a whole network); each other one is timed in turn with the first, and its ratio
    scaled to that level: a whole network's ratio to another holds still."""
    manifest = read_manifest(bundle)
    second = manifest.models[1].name
    spread = [3.0, 2.0, 2.0, 2.2, 2.4, 2.6, 2.8, 3.2, 3.4, 3.6]  # the first one over the run: its p10 is 2.0
    done = {f"level:{k}": (Timing(ms, ms, ms, 60), Timing(9.9, 9.9, 9.9, 60)) for k, ms in enumerate(spread)}
    done[f"ratio:{second}"] = (Timing(3.0, 3.1, 3.2, 60), Timing(2.5, 2.6, 2.7, 60))  # timed while slow
    assert _wholes(manifest, done) == pytest.approx([2.0, 2.4])  # the canaries paired with the first: unused


def test_a_file_timed_again_keeps_the_attempt_whose_canary_ran_faster(tmp_path: Path) -> None:
    def timing(ms: float) -> Timing:
        return Timing(ms, ms, ms, 60)

    header = {"space_hash": "x", "threads": 1, "ops": 2, "canary": "c.onnx"}
    path = tmp_path / "t.yaml.partial.jsonl"
    record = _Record(path, header)
    record.add("a", timing(2.0), timing(0.3), 1.0)  # its canary ran slow
    record.add("b", timing(1.0), timing(0.1), 1.0)
    record.add("a", timing(1.4), timing(0.2), 1.0, again=True)  # a faster canary: this attempt is kept
    record.add("b", timing(0.9), timing(0.15), 1.0, again=True)  # a slower one: the first is kept
    for reread in (record, _Record(path, header)):  # the same after a kill
        assert reread.again == {"a", "b"}
        assert {name: t.ms for name, (t, _) in reread.done.items()} == {"b": 1.0, "a": 1.4}
        assert reread.seconds == 4.0


def test_a_partial_record_with_a_corrupt_header_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml.partial.jsonl"
    path.write_text('garbage\n{"name": "x", "t": [1, 1, 1, 5], "s": 0.5}\n')
    with pytest.raises(NasError, match="its first line is not a measurement header; the file is corrupt, delete it"):
        _Record(path, {"a": 1})
