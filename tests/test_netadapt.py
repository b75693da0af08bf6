"""NetAdapt's building blocks: prunable units never break a residual; weight inheritance is exact."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch import nn

from nas import ArchConfig, build_model
from nas.netadapt import plan, prunable_units, prune, selection
from tests.test_model import _randomize, _responds_to_input


@pytest.fixture(params=["large", "small"])
def network(request: pytest.FixtureRequest) -> tuple[ArchConfig, nn.Module]:
    config = replace(request.getfixturevalue(request.param), resolution=64, num_classes=10)
    torch.manual_seed(0)
    model = build_model(config)
    _randomize(model, 3)
    return config, model.eval()


def _silence(model: nn.Module, config: ArchConfig, unit, channels: int) -> nn.Module:
    """The original network with the channels pruning removes contributing nothing: every tensor that
    makes them (dim 0 of the unit's slices, and of the dependent SE squeeze set) zeroed."""
    chosen, kept = plan(model, unit), selection(model, unit, channels)
    state = model.state_dict()
    removed = torch.tensor([c for c in range(unit.channels) if c not in set(kept.keep.tolist())])
    for key, dim in chosen.slices:
        if dim == 0:
            state[key][removed] = 0
    if chosen.dependent is not None:
        _, norm_key, slices = chosen.dependent
        dropped = [u for u in range(state[norm_key].shape[0]) if u not in set(kept.squeeze.tolist())]
        for key, dim in slices:
            if dim == 0:
                state[key][dropped] = 0
    silenced = build_model(config)
    silenced.load_state_dict(state)
    return silenced.eval()


def test_every_unit_prunes_exactly(network: tuple[ArchConfig, nn.Module]) -> None:
    config, model = network
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    for unit in prunable_units(config):
        channels = max(8, unit.channels - 16)
        pruned = prune(model, unit, channels).eval()
        with torch.no_grad():
            expected, got = _silence(model, config, unit, channels)(x), pruned(x)
        assert _responds_to_input(expected)
        assert torch.allclose(got, expected, atol=1e-4, rtol=1e-4), unit.name


def test_coupled_groups_keep_every_residual(network: tuple[ArchConfig, nn.Module]) -> None:
    config, model = network
    residual = [b.use_res_connect for b in list(model.features)[1:-1]]
    widths = [u for u in prunable_units(config) if u.kind == "width"]
    assert len(widths) >= 4
    for unit in widths:
        pruned = prune(model, unit, 8)
        assert [b.use_res_connect for b in list(pruned.features)[1:-1]] == residual, unit.name
        assert pruned(torch.randn(1, 3, 64, 64)).shape == (1, 10)


def test_no_proposal_drops_an_expand_conv(large: ArchConfig) -> None:
    from nas.netadapt._units import keeps_structure

    units = {u.name: u for u in prunable_units(large)}
    assert not keeps_structure(large, units["layer1.expanded"], 16)  # 16 -> 64 -> 24: 16 would drop the expand
    assert keeps_structure(large, units["layer1.expanded"], 24)
    assert not keeps_structure(large, units["layers3-5.width"], 120)  # layers 4 and 5 expand 40 -> 120
    assert keeps_structure(large, units["layers3-5.width"], 32)


def test_units_of_large_follow_mobilenetv3_section_4_2(large: ArchConfig) -> None:
    units = prunable_units(large)
    assert {u.name for u in units if u.kind == "width"} == {
        "layers1-2.width",
        "layers3-5.width",
        "layers6-9.width",
        "layers10-11.width",
        "layers12-14.width",
    }  # layer 0 is a residual on the stem's output: its width cannot shrink alone
    assert sum(u.kind == "expanded" for u in units) == 14  # every block with an expand conv


# ---- the CLI, on a small network priced by the estimated arm64 table (it prices any width) ----------
import csv  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from nas import export_onnx  # noqa: E402
from nas._errors import ArgumentError  # noqa: E402
from nas.latency import LatencyTable  # noqa: E402
from nas.model import load_weights  # noqa: E402
from nas.netadapt import NetAdaptResult, run_netadapt  # noqa: E402
from nas.netadapt._algorithm import State  # noqa: E402
from tests.conftest import run_main, start_cli  # noqa: E402
from tests.test_evaluate import TINY  # noqa: E402


@pytest.fixture
def tiny_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    replace(TINY, name="tiny").save(path)
    return path


def _budget(fraction: float) -> str:
    return f"{LatencyTable.load('arm64').predict(TINY) * fraction:.4f}ms"


def _netadapt_args(config: Path, out: Path, budget: str, *extra: str) -> list[str]:
    return [
        "nas.netadapt",
        "--config",
        str(config),
        "--target",
        "arm64",
        "--budget",
        budget,
        "--out",
        str(out),
        "--short-steps",
        "3",
        "--long-epochs",
        "0.2",
        "--init-cut",
        "0.05",
        *extra,
    ]


def _netadapt(config: ArchConfig | Path, out: Path, fraction: float, **options) -> NetAdaptResult:
    options = {"short_steps": 3, "long_epochs": 0.2, "init_cut": 0.05, **options}
    return run_netadapt(config=config, latency="arm64", budget_ms=_budget(fraction), out=out, **options)


def test_latency_falls_every_iteration_and_ends_within_budget(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "run"
    budget = float(_budget(0.85).removesuffix("ms"))
    with caplog.at_level("INFO", logger="nas"):
        result = _netadapt(replace(TINY, name="tiny"), out, 0.85)
    assert "ESTIMATE" in caplog.text  # the arm64 table says what it is
    assert "no weights given: training tiny first" in caplog.text
    with (out / "history.csv").open() as handle:
        latencies = [float(row["latency_ms"]) for row in csv.DictReader(handle)]
    assert latencies == [row["latency_ms"] for row in result.history]
    assert result.start_ms == json.loads((out / "final.json").read_text())["start_ms"]
    assert latencies
    assert all(b < a for a, b in zip([result.start_ms, *latencies], latencies, strict=False))
    assert latencies[-1] <= budget
    assert result.final_ms <= budget
    assert LatencyTable.load("arm64").predict(result.config) == pytest.approx(result.final_ms)
    assert ArchConfig.load(out / "config.yaml") == result.config
    assert result.model is not None
    assert result.model.config == result.config
    assert 0 <= result.final_accuracy <= 1
    export_onnx(result.config, tmp_path / "trimmed.onnx")
    assert (out / "netadapt.png").stat().st_size > 0
    assert (out / "weights.pt").exists()


def test_resume_after_kill_continues_at_the_next_iteration(tiny_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    command = _netadapt_args(tiny_file, out, _budget(0.8), "--short-steps", "8")  # three iterations
    process = start_cli(*command)
    deadline = time.monotonic() + 300
    history: list = []
    while time.monotonic() < deadline and not history:
        time.sleep(0.2)
        if (out / "state.json").exists():
            history = json.loads((out / "state.json").read_text())["history"]
    assert process.poll() is None, "NetAdapt finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = json.loads((out / "state.json").read_text())["history"]
    result = run_main(*command)  # the rerun: in-process
    assert result.returncode == 0, result.stderr
    assert f"resuming {out}: {len(done)} iterations done" in result.stderr
    final = json.loads((out / "state.json").read_text())["history"]
    assert final[: len(done)] == done
    assert [row["iteration"] for row in final] == list(range(1, len(final) + 1))
    assert result.stdout.startswith("netadapt: ")  # what the CLI prints at the end
    assert str(out / "config.yaml") in result.stdout


def test_budget_already_met_is_nothing_to_do(tiny_file: Path, tmp_path: Path) -> None:
    result = run_main(*_netadapt_args(tiny_file, tmp_path / "run", _budget(1.5)))
    assert result.returncode == 0
    assert "nothing to do" in result.stdout
    assert not (tmp_path / "run").exists()


def test_unreachable_budget_names_what_pruning_can_reach(tiny_file: Path, tmp_path: Path) -> None:
    result = run_main(*_netadapt_args(tiny_file, tmp_path / "run", _budget(0.05)))
    assert result.returncode == 2
    assert "--budget" in result.stderr
    assert "is out of reach: pruning every unit to 8 channels gives" in result.stderr
    assert result.stderr.count("\n") == 2  # the estimate notice and the error


def test_weights_of_another_config_are_refused(tiny_file: Path, tmp_path: Path, small: ArchConfig) -> None:
    torch.save(build_model(small).state_dict(), tmp_path / "w.pt")
    result = run_main(*_netadapt_args(tiny_file, tmp_path / "run", _budget(0.85), "--weights", str(tmp_path / "w.pt")))
    assert result.returncode == 2
    assert "tensor 'features.2.block.0.0.weight' has shape (72, 16, 1, 1), the config needs" in result.stderr
    assert "Traceback" not in result.stderr


def test_resume_refuses_a_run_of_another_network(tiny_file: Path, tmp_path: Path, small: ArchConfig) -> None:
    out = tmp_path / "run"
    out.mkdir()
    small.save(out / "start.yaml")
    (out / "state.json").write_text("{}")
    result = run_main(*_netadapt_args(tiny_file, out, _budget(0.85)))
    assert result.returncode == 2
    assert f"--out {out}: holds NetAdapt of another network" in result.stderr


class Killed(BaseException):
    """Stands for kill -9 at one of the writes of a save."""


def test_a_kill_between_any_two_writes_of_a_save_leaves_one_whole_iteration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every write of a save ends with a rename; the save is stopped before each in turn, and what is on
    disk must load as the previous iteration or the new one, with its readable copies and no leftovers."""
    run = {"target": "x86_64", "budget_ms": 1.0}
    before = State(TINY, build_model(TINY), 2.0, 0.5, [], run)
    trimmed = prune(before.model, prunable_units(TINY)[0], 8)
    row = {"iteration": 1, "unit": "u", "latency_ms": 1.5, "accuracy": 0.25}
    after = State(trimmed.config, trimmed, 2.0, 0.5, [row], run)
    rename, moments = os.replace, 0
    while True:
        out = tmp_path / f"kill{moments}"
        out.mkdir()
        before.save(out)
        calls = 0

        def replace_until_killed(src: str, dst: str, stop: int = moments) -> None:
            nonlocal calls
            calls += 1
            if calls > stop:
                raise Killed
            rename(src, dst)

        monkeypatch.setattr(os, "replace", replace_until_killed)
        try:
            after.save(out)
            finished = True
        except Killed:
            finished = False
        monkeypatch.setattr(os, "replace", rename)
        loaded = State.load(out)
        assert (loaded.config, loaded.history) in ((TINY, []), (trimmed.config, [row]))
        assert ArchConfig.load(out / "config.yaml") == loaded.config
        load_weights(build_model(loaded.config), out / "weights.pt")
        with (out / "history.csv").open() as handle:
            assert len(list(csv.DictReader(handle))) == len(loaded.history)
        assert len(list((out / "state").iterdir())) == 2  # the record's two files, nothing orphaned
        if finished:
            assert moments > 2  # the kill was tried before each rename of a whole save
            break
        moments += 1


def test_resume_refuses_another_target_or_budget(tiny_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    ArchConfig.load(tiny_file).save(out / "start.yaml")
    config = ArchConfig.load(tiny_file)
    State(config, build_model(config), 2.0, 0.5, [], {"target": "arm64", "budget_ms": 9.0}).save(out)
    result = run_main(*_netadapt_args(tiny_file, out, _budget(0.85)))
    assert result.returncode == 2
    assert f"--out {out}: holds NetAdapt toward 9 ms on arm64 (now" in result.stderr
    assert result.stderr.count("\n") == 2  # the estimate notice and the error


@pytest.mark.parametrize("text", ["", "{", "[]", '{"run": 1}'])
def test_a_corrupt_state_is_one_line(tiny_file: Path, tmp_path: Path, text: str) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "state.json").write_text(text)
    result = run_main(*_netadapt_args(tiny_file, out, _budget(0.85)))
    assert result.returncode == 2
    assert f"{out / 'state.json'}: not a NetAdapt state this version can resume" in result.stderr
    assert "Traceback" not in result.stderr


def test_measure_missing_needs_a_measured_table(tmp_path: Path) -> None:
    with pytest.raises(ArgumentError, match="measure_missing True: needs a table measured on this machine"):
        _netadapt(TINY, tmp_path / "run", 0.85, measure_missing=True)
