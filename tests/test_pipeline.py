"""The pipeline end to end (search -> NetAdapt -> training -> export -> report) and its parts."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from nas import ArchConfig, LatencyTable, SearchSpace
from nas.config import agreement, stages
from nas.latency import measure_here, space_bounds
from nas.pipeline import Entry, PipelineResult, Recipe, run_pipeline, train_seed
from nas.pipeline._report import evaluator_caveat, verdict
from nas.search import run_search
from tests.conftest import DEFAULT_SPACE, run_main
from tests.conftest import LARGE as LARGE_REF
from tests.conftest import SMALL as SMALL_REF
from tests.test_evaluate import TINY

PIPELINE = {
    "latency": "arm64",
    "init_cut": 0.2,
    "trials": 20,
    "slack": 0.15,
    "epochs": 0.2,
    "netadapt_epochs": 0.1,
    "short_steps": 2,
    "seeds": [0, 1],
    "train_references": True,
}


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[PipelineResult, float]:
    """One small pipeline run on the estimated arm64 table: budget near the default space's fastest
    networks (cheap to train), one NetAdapt iteration (a 20 % cut); its search begins with the scores of
    an x86_64 search's (``warm_start``)."""
    folder = tmp_path_factory.mktemp("pipeline")
    space = SearchSpace.load(DEFAULT_SPACE)
    x86 = space_bounds(space, LatencyTable.load("x86_64")).slowest_ms  # every trial scored
    run_search(latency="x86_64", budget_ms=x86, space=space, evaluator="flops", trials=10, out=folder / "x86")
    budget = 3 * space_bounds(space, LatencyTable.load("arm64")).fastest_ms  # ~15th percentile of random configs
    return run_pipeline(budget_ms=budget, out=folder / "run", warm_start=[folder / "x86"], **PIPELINE), budget


def test_pipeline_ends_within_budget_with_a_deployable_model(pipeline_run: tuple[PipelineResult, float]) -> None:
    result, budget = pipeline_run
    out = result.out
    final = ArchConfig.load(out / "config.yaml")
    assert final == replace(result.config, num_classes=10) == result.model.config  # digits' classes
    assert "trained at 32 px" in (out / "config.yaml").read_text()
    assert LatencyTable.load("arm64").predict(final) <= budget
    assert result.final["predicted_ms"] <= budget
    assert result.search.best is not None
    assert result.search.copied == 10  # the x86_64 search's trials, scored once
    assert result.search.trials == PIPELINE["trials"] + 10
    assert result.search.best.latency_ms <= budget * 1.15
    assert result.netadapt.start_ms == pytest.approx(result.search.best.latency_ms)
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    x = np.zeros((1, 3, final.resolution, final.resolution), np.float32)
    assert session.run(None, {"input": x})[0].shape == (1, 10)  # digits' classes
    meta = session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["classes"]) == [str(digit) for digit in range(10)]
    assert json.loads(meta["input_shape"]) == [1, 3, final.resolution, final.resolution]
    assert json.loads(meta["trained"])["resolution"] == 32
    assert json.loads(meta["latency"])["predicted_ms"] == pytest.approx(LatencyTable.load("arm64").predict(final))
    assert len(json.loads(meta["normalization"])["mean"]) == 1
    # the folder's files agree: the config and weights rebuild the ONNX file
    rebuilt = run_main(
        "nas.export", str(out / "config.yaml"), "--weights", str(out / "weights.pt"), "--out", str(out / "x.onnx")
    )
    assert rebuilt.returncode == 0, rebuilt.stderr
    x = np.random.default_rng(0).standard_normal(x.shape).astype(np.float32)
    again = ort.InferenceSession(str(out / "x.onnx"), providers=["CPUExecutionProvider"])
    assert np.array_equal(again.run(None, {"input": x})[0], session.run(None, {"input": x})[0])
    for plot in ("search/pareto.png", "netadapt/netadapt.png"):
        if plot in result.report.read_text():
            assert (out / plot).stat().st_size > 0


def test_report_compares_with_references_trained_the_same_way(pipeline_run: tuple[PipelineResult, float]) -> None:
    result, _ = pipeline_run
    report = result.report.read_text()
    assert "ESTIMATE" in report  # the arm64 table is an estimate and the report says so
    assert "(n=2)" in report
    assert "not trained" not in report
    assert report.count("points (beyond noise)") + report.count("points (within noise)") == 2  # one verdict each
    assert [r["name"] for r in result.references] == ["mobilenetv3_large", "mobilenetv3_small"]
    record = json.loads((result.out / "run.json").read_text())
    assert record["final"]["accuracies"] == result.final["accuracies"]
    assert len(record["final"]["accuracies"]) == 2
    assert [r["name"] for r in record["references"]] == ["mobilenetv3_large", "mobilenetv3_small"]
    assert all(len(r["accuracies"]) == 2 for r in record["references"])
    assert record["table"]["measured"] is False
    assert record["settings"]["warm_start"] == [str(result.out.parent / "x86")]
    assert f"10 copied with their scores from `{result.out.parent / 'x86'}`" in report
    assert record["space_hash"]
    assert record["versions"]["torch"]
    assert set(record["agreement"]) == {"mobilenetv3_large", "mobilenetv3_small"}


def test_rerun_through_the_cli_resumes_every_stage(pipeline_run: tuple[PipelineResult, float]) -> None:
    first, budget = pipeline_run
    flags = {f"--{k.replace('_', '-')}": str(v) for k, v in PIPELINE.items() if k not in ("latency", "seeds")}
    flags.pop("--train-references")
    result = run_main(
        "nas.pipeline",
        *(part for item in flags.items() for part in item),
        *("--target", "arm64", "--budget", f"{budget}ms", "--seeds", "0,1", "--train-references"),
        *("--out", str(first.out), "--warm-start", str(first.out.parent / "x86")),
    )
    assert result.returncode == 0, result.stderr
    assert "resuming study" in result.stderr
    assert "10 copied with their scores" in first.report.read_text()  # copied once
    assert "training final seed" not in result.stderr  # finished seeds are reused
    assert result.stdout.startswith(f"pipeline: final network {first.final['predicted_ms']:.3f} ms predicted")
    assert json.loads((first.out / "run.json").read_text())["final"]["accuracies"] == first.final["accuracies"]
    assert ArchConfig.load(first.out / "config.yaml") == first.model.config


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--seeds", "0,x", "--seeds '0,x': give distinct integers separated by commas"),
        ("--slack", "-1", "--slack -1.0: use 0"),
        ("--epochs", "0", "--epochs 0: use a positive number of epochs"),
        ("--target", "nowhere", "nowhere"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, flag: str, value: str, message: str) -> None:
    args = {"--target": "arm64", "--budget": "20ms", "--out": str(tmp_path / "run"), flag: value}
    result = run_main("nas.pipeline", *(part for item in args.items() for part in item))
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert not (tmp_path / "run").exists()


def test_structure_agreement(large: ArchConfig, small: ArchConfig) -> None:
    assert [len(v) for v in stages(large).values()] == [1, 2, 3, 6, 3]  # Table 1's stages by output size
    same = agreement(large, large)
    assert (same.kernel, same.se, same.act, same.depth, same.aligned) == (1, 1, 1, 1, 15)
    layers = list(large.layers)
    layers[5] = replace(layers[5], kernel=3)
    changed = agreement(replace(large, layers=tuple(layers)), large)
    assert changed.kernel == pytest.approx(14 / 15)
    assert (changed.se, changed.act) == (1, 1)


def test_only_a_table_of_this_machine_is_timed_here(large: ArchConfig) -> None:
    assert measure_here([large], LatencyTable.load("arm64")) is None


def test_training_results_are_reused_only_for_the_same_network_and_recipe(tmp_path: Path) -> None:
    short, longer = Recipe(epochs=0.1), Recipe(epochs=0.2)
    first = train_seed(TINY, short, 0, tmp_path)
    record = tmp_path / "seed0.json"
    stamp = record.stat().st_mtime_ns
    assert train_seed(TINY, short, 0, tmp_path) == first
    assert record.stat().st_mtime_ns == stamp  # reused, not retrained
    train_seed(TINY, longer, 0, tmp_path)
    assert json.loads(record.read_text())["recipe"]["steps"] == longer.trainer(0).steps
    wider = replace(TINY, layers=(replace(TINY.layers[0], kernel=5), *TINY.layers[1:]))
    train_seed(wider, longer, 0, tmp_path)
    assert ArchConfig.from_dict(json.loads(record.read_text())["config"]) == wider


def test_a_new_pick_restarts_netadapt_and_training(tmp_path: Path, large: ArchConfig, small: ArchConfig) -> None:
    from nas.pipeline._run import _forget_other_pick

    (tmp_path / "netadapt").mkdir()
    (tmp_path / "final").mkdir()
    large.save(tmp_path / "netadapt" / "start.yaml")
    _forget_other_pick(tmp_path, large)
    assert (tmp_path / "netadapt").exists()
    assert (tmp_path / "final").exists()
    _forget_other_pick(tmp_path, small)
    assert not (tmp_path / "netadapt").exists()
    assert not (tmp_path / "final").exists()


def _row(name: str, ms: float, accuracies: list[float]) -> dict:
    return {"name": name, "predicted_ms": ms, "accuracies": accuracies}


@pytest.mark.parametrize(
    ("final", "reference", "text"),
    [
        (
            _row("final", 1.0, [0.990, 0.992, 0.994]),
            _row("mobilenetv3_small", 1.0, [0.980, 0.981, 0.982]),
            "- final dominates mobilenetv3_small: better by 1.10 ± 0.13 points (beyond noise) at 1.00x",
        ),
        (
            _row("final", 0.9, [0.990, 0.960, 0.975]),
            _row("mobilenetv3_small", 1.0, [0.970, 0.980, 0.975]),
            "faster than mobilenetv3_small with accuracy within noise: better by 0.00 ± 0.91 points (within noise)",
        ),
        (
            _row("final", 1.0, [0.970, 0.972, 0.974]),
            _row("mobilenetv3_small", 0.98, [0.980, 0.981, 0.982]),
            "- mobilenetv3_small dominates: ship it. final is worse by 0.90 ± 0.13 points (beyond noise) at 1.02x",
        ),
        (
            _row("final", 0.5, [0.970, 0.972, 0.974]),
            _row("mobilenetv3_large", 1.0, [0.990, 0.991, 0.992]),
            "- against mobilenetv3_large: a trade-off, worse by 1.90 ± 0.13 points (beyond noise) at 0.50x",
        ),
        (
            _row("final", 1.0, [0.99]),
            _row("mobilenetv3_small", 1.0, [0.98]),
            "+1.00 points (noise unknown with one seed: use --seeds 0,1,2)",
        ),
    ],
)
def test_verdict_decides_with_its_uncertainty(final: dict, reference: dict, text: str) -> None:
    assert text in verdict(final, reference)


def test_report_accuracy_is_mean_and_standard_error() -> None:
    entry = Entry(ArchConfig.load(LARGE_REF), [0.97, 0.98, 0.99])
    assert entry.accuracy == "98.00 ± 0.58 % (n=3)"
    assert Entry(entry.config, [0.97]).accuracy == "97.00 % (n=1)"


def test_flops_evaluator_is_flagged_where_the_benchmark_found_it_weak() -> None:
    table = LatencyTable.load("x86_64")
    small_ms = table.predict(ArchConfig.load(SMALL_REF))
    assert "0.8-1.0 points short of MobileNetV3-Small" in evaluator_caveat("flops", small_ms, table)
    assert evaluator_caveat("flops", 3 * small_ms, table) is None
    assert evaluator_caveat("train", small_ms, table) is None
