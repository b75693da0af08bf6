"""The weight-sharing supernet: subnets extracted from it compute what it computes, its training resumes
exactly after kill -9 and runs data-parallel under torchrun, and its scores rank configs reproducibly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import yaml

from nas import ArchConfig, SearchSpace
from nas._errors import ArgumentError
from nas._paths import DEFAULT_SPACE
from nas.evaluate import get_evaluator
from nas.model import Supernet, build_model, largest_config, load_supernet, load_weights
from nas.supernet import smallest_config, train_supernet
from tests.conftest import ROOT, TINY_SPACE, extract_with_cli, run_main, start_cli

OFA_SPACE = ROOT / "search_spaces" / "ofa_mbv3_w1.2.yaml"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("supernet") / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY_SPACE))
    return path


def _train_args(space: Path, out: Path, steps: int = 8) -> list[str]:
    flags = ["--space", str(space), "--data", "digits", "--steps", str(steps), "--batch-size", "16", "--chunk", "2"]
    flags += ["--sort-every", "3"]  # channels reordered twice in 8 steps, once right after a checkpoint
    return ["nas.supernet", "train", *flags, "--out", str(out)]


@pytest.fixture(scope="module")
def trained(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("trained")
    return train_supernet(space=tiny, out=out, data="digits", steps=8, batch_size=16, chunk=2, sort_every=3)


@pytest.mark.parametrize("space_file", [DEFAULT_SPACE, OFA_SPACE], ids=["default", "ofa"])
def test_an_extracted_subnet_computes_exactly_what_the_supernet_does(space_file: Path) -> None:
    space = SearchSpace.load(space_file)
    supernet = Supernet(space, num_classes=10, resolution=32)
    with torch.no_grad():  # shared tensors away from their initial values, BN statistics included
        for tensor in [*supernet.parameters(), *(b for b in supernet.buffers() if b.is_floating_point())]:
            tensor.add_(torch.rand_like(tensor) * 0.1)
    supernet.eval()
    x = torch.randn(2, 3, 32, 32)
    configs = [largest_config(space), smallest_config(space), *(space.random_config(k) for k in range(3))]
    outputs = []
    for config in configs:
        network = supernet.extract(config).eval()
        with torch.no_grad():
            shared, alone = supernet(x, config), network(x)
        assert torch.equal(shared, alone)
        outputs.append(shared)
    assert not torch.equal(outputs[0], outputs[1])  # configs differ, so do their outputs
    for k in range(10):  # every config drawn gets tensors of its own shapes
        config = space.random_config(100 + k)
        build_model(supernet.adapted(config)).load_state_dict(supernet.subnet_state(config))


@pytest.mark.parametrize("space_file", [DEFAULT_SPACE, OFA_SPACE], ids=["default", "ofa"])
def test_sorting_channels_keeps_the_largest_config_and_puts_important_channels_first(space_file: Path) -> None:
    space = SearchSpace.load(space_file)
    supernet = Supernet(space, num_classes=10, resolution=32)
    with torch.no_grad():
        for tensor in supernet.parameters():
            tensor.mul_(torch.rand_like(tensor) * 2)  # channels of unequal importance
    supernet.eval()
    x = torch.randn(2, 3, 32, 32)
    largest, small = largest_config(space), smallest_config(space)
    skipping = [largest_config(space, skip=[3])] if space_file == DEFAULT_SPACE else []  # stage 4 reads stage 2
    with torch.no_grad():
        before = supernet(x, largest), supernet(x, small), *(supernet(x, c) for c in skipping)
        moves = supernet.sort_channels()
        after = supernet(x, largest), supernet(x, small), *(supernet(x, c) for c in skipping)
    assert moves
    for k in (0, *range(2, len(before))):  # every expansion at its largest: the same function, in another order
        assert (after[k] - before[k]).abs().max() <= 1e-5 * before[k].abs().max()
    assert (after[1] - before[1]).abs().max() > 0.01 * before[1].abs().max()  # the narrow one has other channels
    for block in supernet._sortable_blocks():
        project = supernet.weights[f"{block}.project.0.weight".replace(".", ":")]
        norms = project.abs().sum(dim=(0, 2, 3))
        assert bool((norms[:-1] >= norms[1:]).all()), block
    blocks = supernet._sortable_blocks()
    assert not any(block.startswith("s0.") for block in blocks) if space_file == DEFAULT_SPACE else blocks


def test_a_new_supernet_starts_with_deeper_configs_computing_what_shallower_ones_do() -> None:
    """BigNAS's initialisation: every block with a skip starts as the identity (its last BN scale at zero),
    so the layers only deep configs run begin as corrections to what the shallow ones compute."""
    space = SearchSpace.load(DEFAULT_SPACE)
    supernet = Supernet(space, num_classes=10, resolution=32).eval()

    def shallowest(name: str, options: tuple) -> object:  # the largest config, every stage one layer deep or more
        if name.endswith(".depth"):
            return min(d for d in options if d >= 1)
        if not all(isinstance(o, (int, float)) for o in options):
            return options[0]
        return min(options) if name.endswith(".stride") else max(options)

    deep, shallow = largest_config(space), space.build(shallowest)
    assert len(deep.layers) > len(shallow.layers)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(supernet(x, deep), supernet(x, shallow))


def test_only_the_largest_config_needs_dropout_in_training(tiny: Path) -> None:
    space = SearchSpace.load(tiny)
    supernet = Supernet(space, num_classes=10, resolution=32).train()
    x, config = torch.randn(4, 3, 32, 32), largest_config(space)
    with torch.no_grad():
        assert torch.equal(supernet(x, config, dropout=False), supernet(x, config, dropout=False))
        torch.manual_seed(0)
        assert not torch.equal(supernet(x, config), supernet(x, config))


def test_the_momentum_follows_the_channels_it_belongs_to(tiny: Path) -> None:
    from nas.supernet._train import _follow

    supernet = Supernet(SearchSpace.load(tiny), num_classes=10, resolution=32)
    block = supernet._sortable_blocks()[0]
    project = supernet.shared(f"{block}.project.0.weight")
    optimizer = torch.optim.SGD(supernet.parameters(), lr=0.1, momentum=0.9)
    for parameter in supernet.parameters():
        parameter.grad = torch.randn_like(parameter)
    optimizer.step()
    momentum = optimizer.state[project]["momentum_buffer"].clone()
    with torch.no_grad():
        project.mul_(torch.rand_like(project))
    moves = supernet.sort_channels()
    _follow(optimizer, supernet, moves)
    order = next(order for slot, dim, order in moves if slot == f"{block}.project.0.weight")
    assert torch.equal(optimizer.state[project]["momentum_buffer"], momentum.index_select(1, order))
    assert not torch.equal(order, torch.arange(len(order)))


def test_weights_are_shared_by_part_not_by_position(tiny: Path) -> None:
    """The projection of a block with SE and of the same block without it is one tensor (SE shifts the
    projection's position in the block)."""
    space = SearchSpace.load(tiny)
    supernet = Supernet(space, num_classes=10, resolution=32)
    with_se = next(c for c in map(space.random_config, range(200)) if c.layers and c.layers[0].se)
    without = replace(with_se, layers=(replace(with_se.layers[0], se=False), *with_se.layers[1:]))

    def projection(config: ArchConfig) -> torch.Tensor:
        prefix = {name: at for at, name in config.layers[0].state_names(config.stem.channels).items()}["project"]
        return supernet.subnet_tensors(config)[f"features.1.{prefix}.0.weight"]

    assert {"se"} <= set(with_se.layers[0].state_names(with_se.stem.channels).values())
    assert projection(with_se).data_ptr() == projection(without).data_ptr()
    assert torch.equal(projection(with_se), projection(without))


def test_a_layer_reading_another_stage_than_the_one_before_has_weights_of_its_own() -> None:
    """Leaving stage 3 out feeds stage 2's features to stage 4's first layer: that layer has tensors of its
    own (the channels it reads mean other things), the rest of stage 4 stays shared."""
    space = SearchSpace.load(DEFAULT_SPACE)
    full, skipping = largest_config(space), largest_config(space, skip=[3])
    supernet = Supernet(space, num_classes=10, resolution=32).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        before = supernet(x, full), supernet(x, skipping)
        own = [tensor for name, tensor in supernet.weights.items() if name.startswith("s4:l0@s2:")]
        for tensor in own:
            tensor.mul_(2)
        assert torch.equal(supernet(x, full), before[0])
        assert not torch.equal(supernet(x, skipping), before[1])
    assert own
    assert not any(name.startswith("s4:l1@") for name in supernet.weights)  # later layers: one slot, any source
    assert not any("@" in slot for slot in Supernet(space, num_classes=10, resolution=32, by_source=False).slots)


def test_a_supernet_trained_before_layers_had_sources_still_loads(trained: Path, tmp_path: Path) -> None:
    """Method 2 shared a stage's first layer whatever it read; its files load into that layout."""
    record = torch.load(trained, weights_only=True)
    space = load_supernet(trained)[0].space
    old = Supernet(space, num_classes=10, resolution=32, seed=1, by_source=False).eval()
    assert set(old.state_dict()) != set(record["state"])  # the tiny space can leave stage 0 out
    record.update(recipe={**record["recipe"], "method": 2}, state=old.state_dict())
    path = tmp_path / "method2.pt"
    torch.save(record, path)
    loaded = load_supernet(path)[0].eval()
    x, config = torch.randn(2, 3, 32, 32), largest_config(space, skip=[0])
    with torch.no_grad():
        assert torch.equal(loaded(x, config), old(x, config))


def test_training_killed_and_resumed_equals_an_uninterrupted_run(tiny: Path, trained: Path, tmp_path: Path) -> None:
    out = tmp_path / "killed"
    process = start_cli(*_train_args(tiny, out))
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not (out / "checkpoint.pt").exists() and process.poll() is None:
        time.sleep(0.05)
    assert process.poll() is None, "training ended before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not (out / "supernet.pt").exists()
    result = run_main(*_train_args(tiny, out))  # the rerun: in-process
    assert result.returncode == 0, result.stderr
    assert "resuming supernet training at step" in result.stderr
    resumed = torch.load(out / "supernet.pt", weights_only=True)["state"]
    whole = torch.load(trained, weights_only=True)["state"]
    assert resumed.keys() == whole.keys()
    assert all(torch.equal(resumed[k], whole[k]) for k in whole)
    assert not (out / "checkpoint.pt").exists()


def test_a_rerun_with_other_settings_is_refused(tiny: Path, trained: Path) -> None:
    result = run_main(*_train_args(tiny, trained.parent, steps=9))
    assert result.returncode == 2
    assert "steps 8 (now 9)" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_one_data_parallel_run_with_two_gloo_processes(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "29517"]
    result = subprocess.run(
        [*command, "-m", *_train_args(tiny, out, steps=2)], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-2000:]
    record = torch.load(out / "supernet.pt", weights_only=True)
    assert record["processes"] == 2
    assert record["step"] == 2


def test_inherited_scores_are_deterministic_and_tell_configs_apart(tiny: Path, trained: Path, tmp_path: Path) -> None:
    """On a supernet whose weights are spread apart (a few steps on digits leave every subnet predicting
    one class: equal scores would show nothing)."""
    record = torch.load(trained, weights_only=True)
    generator = torch.Generator().manual_seed(0)
    for key, tensor in record["state"].items():
        if tensor.is_floating_point() and "running" not in key:
            tensor.add_(torch.randn(tensor.shape, generator=generator) * tensor.std().clamp(min=0.1))
    spread = tmp_path / "spread.pt"
    torch.save(record, spread)
    space = SearchSpace.load(tiny)
    evaluator = get_evaluator("supernet", supernet=str(spread), images=300)
    configs = [largest_config(space), smallest_config(space), *(space.random_config(k) for k in range(4))]
    scores = [evaluator.score(c) for c in configs]
    assert all(0 <= s.value <= 1 for s in scores)
    assert len({s.value for s in scores}) > 1
    assert evaluator.score(configs[2]).value == scores[2].value
    assert "inherited from supernet" in scores[0].fidelity
    assert "validation" in scores[0].fidelity


def test_fine_tuned_scores_are_deterministic_and_leave_the_supernet_as_it_was(tiny: Path, trained: Path) -> None:
    config = SearchSpace.load(tiny).random_config(3)
    plain = get_evaluator("supernet", supernet=str(trained), images=300)
    before = {k: v.clone() for k, v in plain.supernet.state_dict().items()}
    tuned = get_evaluator("supernet", supernet=str(trained), images=300, finetune_steps=3)
    first = tuned.score(config)
    assert tuned.score(config).value == first.value
    assert "fine-tuned 3 steps" in first.fidelity
    assert first.details["finetune_steps"] == 3
    assert all(torch.equal(v, before[k]) for k, v in tuned.supernet.state_dict().items())
    inherited, network = plain.supernet.extract(config), tuned.supernet.extract(config)
    tuned.trainer.finetune(network, 3)
    assert not torch.equal(network.state_dict()["classifier.3.weight"], inherited.state_dict()["classifier.3.weight"])
    for option in ({"finetune_steps": -1}, {"calibration_batches": 0}):
        with pytest.raises(ArgumentError, match=next(iter(option))):
            get_evaluator("supernet", supernet=str(trained), **option)


def test_extracted_weights_load_into_the_config_network(tiny: Path, trained: Path, tmp_path: Path) -> None:
    config = SearchSpace.load(tiny).random_config(7)
    weights = extract_with_cli(trained, config, tmp_path)
    supernet, _ = load_supernet(trained)
    network = build_model(supernet.adapted(config))
    load_weights(network, weights)
    expected = supernet.subnet_state(config)
    assert all(torch.equal(network.state_dict()[k], expected[k]) for k in expected)


def test_bad_supernet_input_is_one_line(tiny: Path, trained: Path, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    outside = tmp_path / "large.yaml"
    largest_config(SearchSpace.load(DEFAULT_SPACE)).save(outside)
    weights = tmp_path / "w.pt"
    inside = tmp_path / "inside.yaml"
    SearchSpace.load(tiny).random_config(1).save(inside)
    cases = [
        (("nas.evaluate", str(inside), "--evaluator", "supernet", "--supernet", str(garbage)), "not a nas supernet"),
        (("nas.evaluate", str(outside), "--evaluator", "supernet", "--supernet", str(trained)), "is not a config of"),
        (("nas.evaluate", str(inside), "--evaluator", "supernet"), "needs --supernet"),
        (
            ("nas.supernet", "extract", "--supernet", str(trained), "--config", str(outside), "--out", str(weights)),
            "is not a config of",
        ),
        (("nas.evaluate", str(inside), "--supernet", str(trained)), "evaluator flops does not use it"),
        (
            (
                "nas.evaluate",
                str(inside),
                "--evaluator",
                "supernet",
                "--supernet",
                str(trained),
                "--data",
                "fashion-mnist",
            ),
            "was trained on digits",
        ),
    ]
    for args, fragment in cases:
        result = run_main(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert fragment in result.stderr, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1
        assert "Traceback" not in result.stderr
    assert not weights.exists()
    assert not (tmp_path / "mixed").exists()


def test_the_cli_sets_the_calibration_and_the_images_scored(tiny: Path, trained: Path, tmp_path: Path) -> None:
    inside = tmp_path / "inside.yaml"
    SearchSpace.load(tiny).random_config(1).save(inside)
    scored = run_main(
        "nas.evaluate", str(inside), "--evaluator", "supernet", "--supernet", str(trained),
        "--calibration-batches", "3", "--images", "40",
    )  # fmt: skip
    assert scored.returncode == 0, scored.stderr
    assert "BN recalibrated on 3 training batches, scored on the first 40 images" in scored.stdout
    for flags, fragment in (
        (("--evaluator", "supernet", "--supernet", str(trained), "--calibration-batches", "0"), "use 1 or more"),
        (("--images", "40"), "--images 40: evaluator flops does not use it (only supernet do)"),
        (("--evaluator", "train", "--calibration-batches", "3"), "evaluator train does not use it"),
    ):
        refused = run_main("nas.evaluate", str(inside), *flags)
        assert refused.returncode == 2, (flags, refused.stderr)
        assert fragment in refused.stderr, (flags, refused.stderr)
        assert len(refused.stderr.strip().splitlines()) == 1


def _tiny_table(tiny: Path, tmp_path: Path) -> Path:
    """A synthetic latency table of the tiny space, saved where a search can name it."""
    from tests.test_latency import synthetic_table

    table = synthetic_table(SearchSpace.load(tiny), seed=5)
    table.metadata["space"]["file"] = str(tiny)
    table.save(tmp_path / "table.yaml")
    return tmp_path / "table.yaml"


def test_a_search_runs_on_inherited_scores(tiny: Path, trained: Path, tmp_path: Path) -> None:
    from nas.search import run_search

    table = _tiny_table(tiny, tmp_path)
    evaluator = get_evaluator("supernet", supernet=str(trained), images=100)
    result = run_search(latency=table, budget_ms=2.5, space=tiny, evaluator=evaluator, trials=6, out=tmp_path / "run")
    assert result.best is not None
    assert "validation top-1 (inherited from the supernet)" in (tmp_path / "run" / "summary.md").read_text()


def test_the_same_supernet_named_another_way_resumes_the_study(
    tiny: Path, trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The study records the file, not the spelling: relative here, absolute there is one supernet."""
    from nas.search import run_search

    table = _tiny_table(tiny, tmp_path)

    def search(supernet: str, trials: int) -> int:
        evaluator = get_evaluator("supernet", supernet=supernet, images=50, calibration_batches=1)
        run = run_search(
            latency=table, budget_ms=2.5, space=tiny, evaluator=evaluator, trials=trials,
            out=tmp_path / "run",
        )  # fmt: skip
        return len(run.study.trials)

    assert search(str(trained.resolve()), 2) == 2
    monkeypatch.chdir(trained.parent)
    assert search(trained.name, 3) == 3


def test_a_damaged_checkpoint_is_one_line(tiny: Path, trained: Path, tmp_path: Path) -> None:
    out = tmp_path / "damaged"
    out.mkdir()
    record = torch.load(trained, weights_only=True)
    record["state"] = {"nothing": torch.zeros(1)}
    torch.save(record, out / "checkpoint.pt")
    result = run_main(*_train_args(tiny, out))
    assert result.returncode == 2, result.stderr
    assert "a damaged checkpoint" in result.stderr
    assert "delete it" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def default_supernet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A barely trained supernet of the default space, whose configs include MobileNetV3-Large/-Small."""
    out = tmp_path_factory.mktemp("default-supernet")
    return train_supernet(space=DEFAULT_SPACE, out=out, data="digits", steps=2, batch_size=16, chunk=2)


def test_pipeline_on_a_supernet_starts_every_network_from_inherited_weights(
    default_supernet: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """search on inherited scores -> extract -> NetAdapt from those weights -> fine-tune -> export; the
    references start from their own inherited weights, so the comparison stays like for like."""
    from nas import LatencyTable
    from nas.latency import space_bounds
    from nas.pipeline import run_pipeline

    evaluator = get_evaluator("supernet", supernet=str(default_supernet), images=100, calibration_batches=2)
    budget = 1.5 * space_bounds(SearchSpace.load(DEFAULT_SPACE), LatencyTable.load("arm64")).fastest_ms
    with caplog.at_level("INFO"):  # searched at 1.5 times the budget: NetAdapt has work to do
        result = run_pipeline(
            latency="arm64", budget_ms=budget, evaluator=evaluator, trials=8, slack=0.5, init_cut=0.08,
            epochs=0.05, netadapt_epochs=0.05, short_steps=1, seeds=[0], out=tmp_path / "run",
        )  # fmt: skip
    assert result.netadapt.history  # it trimmed the pick, starting from its inherited weights
    assert "no weights given" not in caplog.text  # (not training it first)
    supernet, _ = load_supernet(default_supernet)
    assert result.search.best is not None
    picked = torch.load(tmp_path / "run" / "inherited" / "picked.pt", weights_only=True)
    expected = supernet.subnet_state(result.search.best.config)
    assert all(torch.equal(picked[k], expected[k]) for k in expected)
    assert result.config.num_classes == supernet.num_classes
    assert result.final["predicted_ms"] <= budget
    start = f"from weights inherited from supernet {default_supernet}"
    assert f"Trained {start}" in result.report.read_text()
    for name in ("mobilenetv3_large", "mobilenetv3_small"):  # points of the default space: inherited too
        record = json.loads((tmp_path / "run" / "references" / name / "seed0.json").read_text())
        assert record["start"] == start
        assert (tmp_path / "run" / "inherited" / f"{name}.pt").exists()
    assert {row["name"] for row in result.references} == {"mobilenetv3_large", "mobilenetv3_small"}


def test_pipeline_on_a_supernet_refuses_other_data_or_resolution(default_supernet: Path, tmp_path: Path) -> None:
    result = run_main(
        "nas.pipeline", "--target", "arm64", "--budget", "30ms", "--evaluator", "supernet",
        "--supernet", str(default_supernet), "--data", "fashion-mnist", "--out", str(tmp_path / "run"),
    )  # fmt: skip
    assert result.returncode == 2
    assert "--data fashion-mnist: supernet" in result.stderr
    assert "was trained on digits" in result.stderr
    assert not (tmp_path / "run").exists()
    from nas._errors import ArgumentError
    from nas.pipeline import run_pipeline

    evaluator = get_evaluator("supernet", supernet=str(default_supernet))
    with pytest.raises(ArgumentError, match="was trained on digits at 32 px"):
        run_pipeline(latency="arm64", budget_ms=30, evaluator=evaluator, resolution=64, out=tmp_path / "run")
    assert not (tmp_path / "run").exists()
