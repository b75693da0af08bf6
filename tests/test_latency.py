"""Latency tables: predict and interpolate, exact space bounds, and the bad inputs users make."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml

from nas import ArchConfig, NasError, SearchSpace
from nas._errors import SpecError
from nas._paths import DEFAULT_SPACE, REFERENCE_DIR
from nas.config import Op, ops
from nas.latency import LatencyTable, MeasuredTable, Overhead, fit_overhead, space_bounds
from nas.latency._opmodel import relative_nnls
from tests.conftest import all_configs


def synthetic_table(space: SearchSpace, *, drop: set[str] = frozenset(), seed: int = 0) -> LatencyTable:
    """A table with made-up (but consistent) latencies: enough to test the arithmetic without timing."""
    rng = random.Random(seed)
    entries = {op.key: (rng.uniform(0.01, 1.0), 0.0, 0.0, 30) for op in space.ops() if op.key not in drop}
    return MeasuredTable(
        metadata={"target": "synthetic", "measured": True, "space": {"name": space.name, "hash": space.hash}},
        entries=entries,
        overhead=Overhead(scale=1.1, offset_ms=0.05),
    )


def test_predict_is_overhead_applied_to_the_sum_of_ops(tiny_space: SearchSpace) -> None:
    table = synthetic_table(tiny_space)
    config = tiny_space.random_config(1)
    op_sum = sum(table.entries[op.key][0] for op in ops(config))
    assert table.predict(config) == pytest.approx(1.1 * op_sum + 0.05)
    explanation = table.explain(config)
    assert [row.op for row in explanation.rows] == ops(config)
    assert explanation.interpolated == 0


def test_space_bounds_equal_brute_force(tiny_space: SearchSpace) -> None:
    table = synthetic_table(tiny_space, seed=3)
    latencies = {config: table.predict(config) for config in all_configs(tiny_space)}
    bounds = space_bounds(tiny_space, table)
    assert bounds.fastest_ms == pytest.approx(min(latencies.values()))
    assert bounds.slowest_ms == pytest.approx(max(latencies.values()))
    assert table.predict(bounds.fastest) == pytest.approx(bounds.fastest_ms)
    assert tiny_space.contains(bounds.fastest)
    assert tiny_space.contains(bounds.slowest)


def _missing_op_config(tiny_space: SearchSpace) -> tuple[ArchConfig, Op]:
    config = next(c for c in all_configs(tiny_space) if len(c.layers) == 3 and c.layers[1].expanded == 64)
    return config, ops(config)[2]


def test_absent_channel_count_is_interpolated_and_flagged(tiny_space: SearchSpace) -> None:
    config, op = _missing_op_config(tiny_space)  # ir op with 16 -> 64 expanded
    table = synthetic_table(tiny_space)
    # an expansion of 56 lies between 48 and 64, both measured for the same shape
    narrower = replace(op, part=replace(op.part, expanded=56))
    lo, hi = table.entries[replace(op, part=replace(op.part, expanded=48)).key][0], table.entries[op.key][0]
    priced = table.op_ms(narrower)
    assert priced.interpolated
    assert priced.ms == pytest.approx((lo + hi) / 2)
    layers = list(config.layers)
    layers[1] = replace(layers[1], expanded=56)
    assert table.explain(replace(config, layers=tuple(layers))).interpolated == 1


def test_op_without_neighbours_is_priced_by_the_op_model_and_flagged(tiny_space: SearchSpace) -> None:
    config, op = _missing_op_config(tiny_space)
    table = synthetic_table(tiny_space, drop={op.key})  # 64 is the largest expansion: nothing above it
    row = table.op_ms(op)
    assert row.modelled
    assert not row.interpolated
    assert row.ms > 0
    assert table.explain(config).modelled == 1


def test_an_op_added_to_the_table_replaces_its_remembered_price(tiny_space: SearchSpace) -> None:
    config, op = _missing_op_config(tiny_space)
    table = synthetic_table(tiny_space, drop={op.key})
    modelled = table.predict(config)
    assert table.explain(config).modelled == 1  # priced twice: the second from what the table remembers
    table.add({op.key: (table.op_ms(op).ms + 1.0, 0.0, 0.0, 30)})
    assert table.explain(config).modelled == 0
    fresh = MeasuredTable(metadata=table.metadata, entries=dict(table.entries), overhead=table.overhead)
    assert table.predict(config) == fresh.predict(config) > modelled


def test_op_model_recovers_a_cost_the_features_explain() -> None:
    """Latencies that are a non-negative combination of the features: a narrower width no entry or pair of
    neighbours covers is priced within a fraction of a percent, and so is each measured op left out."""
    from nas.latency._estimate import op_features

    space = SearchSpace.load(DEFAULT_SPACE)
    weights = np.array([3.0, 2.0, 9.0, 11.0, 13.0, 20.0, 4.0, 1.5, 2.5, 0.01])
    entries = {op.key: (float(op_features(op) @ weights), 0.0, 0.0, 1) for op in space.ops()}
    table = MeasuredTable(metadata={"target": "t", "measured": True}, entries=entries)
    large = ArchConfig.load(REFERENCE_DIR / "mobilenetv3_large.yaml")
    narrow = replace(large.layers[5], expanded=48)  # below every measured expansion of its shape
    op = next(o for o in large.ops() if o.part == large.layers[5])
    op = replace(op, part=narrow)
    row = table.op_ms(op)
    assert row.modelled
    assert row.ms == pytest.approx(float(op_features(op) @ weights), rel=1e-3)
    assert max(table.op_model.errors.values()) < 0.1


def test_an_op_of_a_kind_never_measured_gives_a_clear_error(tiny_space: SearchSpace) -> None:
    table = synthetic_table(tiny_space)
    op = Op.parse("dsconv|r16|i16|o32|k3|s2|re")
    with pytest.raises(NasError) as info:
        table.op_ms(op)
    assert op.key in str(info.value)
    assert "python -m nas.latency extend --target synthetic --config CONFIG" in str(info.value)


def test_overhead_fit_recovers_a_line() -> None:
    fit = fit_overhead([1.0, 2.0, 4.0, 8.0], [1.3, 2.5, 4.9, 9.7])
    assert (fit.scale, fit.offset_ms) == pytest.approx((1.2, 0.1))
    assert fit.max_abs_error_pct == pytest.approx(0, abs=1e-9)


def test_per_kind_factors_are_fitted_when_they_beat_the_line(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    sums = [{"ir": float(a), "shuffle": float(b), "stem": 0.2} for a, b in rng.uniform(0.5, 5, size=(20, 2))]
    wholes = [1.05 * (s["ir"] + s["stem"]) + 1.3 * s["shuffle"] + 0.05 for s in sums]
    fit = fit_overhead(sums, wholes)
    assert fit.kinds  # the shuffle ops cost 1.3 / 1.05 more inside a network: one line cannot say that
    assert fit.scale * fit.factor("shuffle") == pytest.approx(1.3, rel=1e-6)
    assert fit.scale * fit.factor("ir") == pytest.approx(1.05, rel=1e-6)
    assert fit.max_abs_error_pct == pytest.approx(0, abs=1e-6)
    # a single-kind calibration keeps the plain line, and so does one where factors do not help
    assert not fit_overhead([{"ir": s["ir"]} for s in sums], [1.1 * s["ir"] for s in sums]).kinds
    assert not fit_overhead(sums, [1.1 * (s["ir"] + s["shuffle"] + s["stem"]) for s in sums]).kinds
    # a fit that would price a kind at nothing keeps the line: every network has one head, whose sum varies
    # too little to tell it from the offset, and its factor went to 0 (a table no reader would load)
    heads = [{"ir": s["ir"], "head": 0.5 + 0.01 * (k % 3)} for k, s in enumerate(sums)]
    skewed = np.array([1.1 * h["ir"] + 0.4 - 2 * (h["head"] - 0.5) for h in heads])
    design = np.array([[h["head"], h["ir"], 1.0] for h in heads])
    assert relative_nnls(design, skewed, free_last=True)[0] == 0  # what its factor would be
    assert not fit_overhead(heads, list(skewed)).kinds
    # factors round-trip through the table file, which then says it needs a newer reader
    key = "ir|r8|i8|e8|o8|k3|s1|se0|re"
    table = MeasuredTable(metadata={"target": "t", "measured": True}, entries={key: (1.0, 1.0, 1.0, 1)}, overhead=fit)
    table.save(tmp_path / "t.yaml")
    again = LatencyTable.load(tmp_path / "t.yaml")
    assert again.overhead.kinds == fit.kinds
    assert "format_version: 2" in (tmp_path / "t.yaml").read_text()
    assert again.op_ms(Op.parse(key)).ms == pytest.approx(fit.factor("ir"))
    # a table an older nas wrote with a kind at 0 is refused with the way out
    zero = yaml.safe_load((tmp_path / "t.yaml").read_text())
    zero["overhead"]["kinds"]["shuffle"] = 0
    (tmp_path / "zero.yaml").write_text(yaml.safe_dump(zero))
    with pytest.raises(SpecError, match=r"overhead\.kinds\.shuffle: 0 is out of range.*rebuild the table"):
        LatencyTable.load(tmp_path / "zero.yaml")


def test_table_of_another_space_is_refused(tiny_space: SearchSpace, default_space: SearchSpace) -> None:
    table = synthetic_table(tiny_space)
    with pytest.raises(NasError, match=r"was built for space 'tiny' .* not for 'mobilenetv3'.* lacks 2753 of its ops"):
        space_bounds(default_space, table)


def test_an_estimated_table_prices_any_space(tiny_space: SearchSpace) -> None:
    table = LatencyTable.load("arm64")
    table.check_space(tiny_space)  # built for the default space, but its model prices any op
    bounds = space_bounds(tiny_space, table)
    assert 0 < bounds.fastest_ms < bounds.slowest_ms
    assert table.explain(tiny_space.random_config(0)).interpolated > 0  # priced by the model, flagged


def test_save_load_round_trip(tiny_space: SearchSpace, tmp_path: Path) -> None:
    table = synthetic_table(tiny_space)
    table.save(tmp_path / "t.yaml")
    again = LatencyTable.load(tmp_path / "t.yaml")
    assert again.overhead == table.overhead
    assert again.entries.keys() == table.entries.keys()
    config = tiny_space.random_config(0)
    assert again.predict(config) == pytest.approx(table.predict(config), rel=1e-4)


def test_unknown_target_lists_the_available_tables() -> None:
    with pytest.raises(NasError, match=r"unknown target 'nope'; available tables: .*or give a table file path"):
        LatencyTable.load("nope")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("metadata: {target: t, measured: true}\nops:\n  ir|r7|i8: [0.1, 0.1, 0.1, 30]\n", "malformed op key"),
        (
            "metadata: {target: t, measured: true}\nops:\n  last|r7|i8|o16|re: [0.1, 0.1]\n",
            "[latency_ms, p50_ms, p90_ms, runs]",
        ),
        ("metadata: {target: t, measured: true}\nops: {}\n", "ops: expected a non-empty mapping"),
        ("metadata: {target: t}\nops: {}\n", "metadata: missing key 'measured'"),
        ("metadata: {target: t, measured: true}\nops:\n  last|r7|i8|o16|re: [0.1, 0.1, 0.", "not valid YAML"),
    ],
)
def test_corrupt_or_truncated_table_is_a_clear_error(text: str, fragment: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(NasError) as info:
        LatencyTable.load(path)
    assert str(info.value).startswith(str(path))
    assert fragment in str(info.value)


def test_drift_correction_undoes_a_machine_that_slows_down_halfway() -> None:
    from nas.latency.measure import Timing, drift_corrected

    rng = random.Random(0)
    true = {f"op{i}": rng.uniform(0.05, 2.0) for i in range(60)}
    sequence = []
    for i, (name, ms) in enumerate(true.items()):
        speed = 1.0 if i < 30 else 1.3  # another process takes the core halfway through
        canary = Timing(0.2 * speed, 0.21 * speed, 0.25 * speed, 60)
        sequence.append((name, Timing(ms * speed, ms * speed * 1.02, ms * speed * 1.1, 60), canary))
    corrected, drift = drift_corrected(sequence)
    assert list(corrected) == list(true)
    assert [t.ms for t in corrected.values()] == pytest.approx(list(true.values()))
    assert corrected["op40"].p90_ms == pytest.approx(true["op40"] * 1.1)
    assert drift["canaries"] == 60
    assert drift["canary_ms"] == pytest.approx(0.2)
    assert drift["min_pct"] == 0
    assert drift["max_pct"] == pytest.approx(30)
    assert drift["end_pct"] == pytest.approx(30)
    uncorrected = {name: t for name, t, _ in sequence}
    assert uncorrected["op40"].ms == pytest.approx(1.3 * true["op40"])  # what a table as timed holds


def test_drift_level_is_the_machines_unhindered_speed_across_a_resume() -> None:
    """A run that starts at half speed and is resumed at full speed is scaled to full speed throughout, and
    one canary timing hit by interference moves only its own file, not the level or the recorded drift."""
    from nas.latency.measure import Timing, drift_corrected

    def timing(ms: float) -> Timing:
        return Timing(ms, ms, ms, 60)

    sequence = [(f"a{i}", timing(2.0), timing(1.0)) for i in range(20)]  # something else holds the core
    sequence += [(f"b{i}", timing(1.0), timing(0.5)) for i in range(20)]  # resumed later, the core free
    sequence[23] = ("b3", timing(1.0), timing(5.0))  # its canary ran while something else held the core
    corrected, drift = drift_corrected(sequence)
    assert corrected["a0"].ms == corrected["b0"].ms == pytest.approx(1.0)
    assert corrected["b3"].ms == pytest.approx(0.1)
    assert drift["canary_ms"] == pytest.approx(0.5)
    assert drift["max_pct"] == pytest.approx(100)
    assert drift["end_pct"] == 0
    assert drift_corrected([]) == ({}, {"canaries": 0})
