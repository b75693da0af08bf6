"""Few-shot supernets: the space split by downsampling profile holds every config exactly once, each
config is scored on its own part's weights, and training the parts resumes exactly after kill -9."""

from __future__ import annotations

import copy
import json
import os
import signal
import time
from pathlib import Path

import pytest
import torch
import yaml

from nas import SearchSpace
from nas._errors import OutsideSpaceError
from nas._paths import DEFAULT_SPACE
from nas.evaluate import get_evaluator
from nas.model import SupernetParts, largest_config, load_supernet
from nas.supernet import smallest_config, train_supernet
from tests.conftest import ROOT, TINY_SPACE, extract_with_cli, run_main, start_cli


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fewshot") / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY_SPACE))
    return path


def _train_args(space: Path, out: Path) -> list[str]:
    flags = ["--space", str(space), "--data", "digits", "--steps", "4", "--batch-size", "16", "--chunk", "1"]
    return ["nas.supernet", "train", *flags, "--few-shot", "--out", str(out)]


@pytest.fixture(scope="module")
def parts(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("parts")
    return train_supernet(space=tiny, out=out, data="digits", steps=4, batch_size=16, chunk=1, few_shot=True)


@pytest.mark.parametrize("space_file", [None, DEFAULT_SPACE, ROOT / "search_spaces" / "ofa_mbv3_w1.2.yaml"])
def test_the_parts_hold_every_config_of_the_space_exactly_once(space_file: Path | None) -> None:
    """The tiny space's first stage may stride 1 or 2 and may be left out: left out, it asks no stride."""
    space = SearchSpace.load(space_file) if space_file else SearchSpace.from_dict(copy.deepcopy(TINY_SPACE))
    split = space.downsampling_parts()
    assert sum(part.size() for part in split) == space.size()
    for k in range(200):
        config = space.random_config(k)
        assert sum(part.contains(config) for part in split) == 1
    for part in split:  # what a supernet file keeps of a part rebuilds it
        assert SearchSpace.from_dict(yaml.safe_load(part.source_text())).hash == part.hash


def test_the_default_space_splits_by_stage_0_stride_and_stage_3_being_there() -> None:
    names = [part.name for part in SearchSpace.load(DEFAULT_SPACE).downsampling_parts()]
    assert names == [
        "mobilenetv3[s0.stride=1,s3.depth=0]",
        "mobilenetv3[s0.stride=1,s3.depth=2/3/4]",
        "mobilenetv3[s0.stride=2,s3.depth=0]",
        "mobilenetv3[s0.stride=2,s3.depth=2/3/4]",
    ]


def test_a_stage_left_out_is_one_part_whatever_its_stride() -> None:
    names = [part.name for part in SearchSpace.from_dict(copy.deepcopy(TINY_SPACE)).downsampling_parts()]
    assert names == ["tiny[s0.depth=0]", "tiny[s0.stride=1,s0.depth=1]", "tiny[s0.stride=2,s0.depth=1]"]


def test_a_space_without_such_choices_is_its_own_only_part() -> None:
    data = copy.deepcopy(TINY_SPACE)
    data["stages"][0].update(stride=2, depth=1)
    space = SearchSpace.from_dict(data)
    assert [part.hash for part in space.downsampling_parts()] == [space.hash]


def test_each_config_runs_on_its_own_part(tiny: Path, parts: Path) -> None:
    supernet, record = load_supernet(parts)
    assert isinstance(supernet, SupernetParts)
    assert len(record["parts"]) == len(supernet.parts) == 3
    assert not list(parts.parent.glob("part*/*.pt"))  # the parts' own files are folded into one
    space = SearchSpace.load(tiny)
    supernet.eval()
    x = torch.randn(2, 3, 32, 32)
    for config in (largest_config(space), smallest_config(space), *(space.random_config(k) for k in range(4))):
        part = supernet.part_of(config)
        assert part.space.contains(config)
        with torch.no_grad():
            assert torch.equal(supernet(x, config), part(x, config))
            assert torch.allclose(supernet.extract(config).eval()(x), part(x, config), atol=1e-5)
    first, second = (part.weights["head0:0:weight"] for part in supernet.parts[:2])
    assert not torch.equal(first, second)  # trained apart


def test_a_few_shot_supernet_scores_configs_and_refuses_others(tiny: Path, parts: Path) -> None:
    evaluator = get_evaluator("supernet", supernet=str(parts), images=200)
    score = evaluator.score(SearchSpace.load(tiny).random_config(3))
    assert 0 <= score.value <= 1
    assert "3 few-shot parts x 4 steps" in score.fidelity
    supernet, _ = load_supernet(parts)
    with pytest.raises(OutsideSpaceError):
        supernet.extract(largest_config(SearchSpace.load(DEFAULT_SPACE)))


def test_few_shot_training_killed_in_a_later_part_and_resumed_equals_an_uninterrupted_run(
    tiny: Path, parts: Path, tmp_path: Path
) -> None:
    out = tmp_path / "killed"
    process = start_cli(*_train_args(tiny, out))
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not (out / "part1" / "checkpoint.pt").exists() and process.poll() is None:
        time.sleep(0.05)
    assert process.poll() is None, "training ended before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert (out / "part0" / "supernet.pt").exists()
    assert not (out / "supernet.pt").exists()
    result = run_main(*_train_args(tiny, out))
    assert result.returncode == 0, result.stderr
    resumed = torch.load(out / "supernet.pt", weights_only=True)["parts"]
    whole = torch.load(parts, weights_only=True)["parts"]
    for a, b in zip(resumed, whole, strict=True):
        assert a["space_hash"] == b["space_hash"]
        assert all(torch.equal(a["state"][k], b["state"][k]) for k in b["state"])


def test_extract_gives_the_weights_of_the_configs_part(tiny: Path, parts: Path, tmp_path: Path) -> None:
    config = SearchSpace.load(tiny).random_config(5)
    weights = torch.load(extract_with_cli(parts, config, tmp_path), weights_only=True)
    supernet, _ = load_supernet(parts)
    expected = supernet.part_of(config).subnet_state(config)
    assert all(torch.equal(weights[k], expected[k]) for k in expected)


def test_a_part_out_of_range_or_without_few_shot_is_one_line(tiny: Path, tmp_path: Path) -> None:
    for flags, says in ((["--few-shot", "--part", "3"], "give 0 to 2"), (["--part", "0"], "--few-shot")):
        args = ["nas.supernet", "train", "--space", str(tiny), "--data", "digits", "--steps", "1", *flags]
        result = run_main(*args, "--out", str(tmp_path / "out"))
        assert result.returncode == 2
        assert says in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_a_search_runs_on_few_shot_scores(tiny: Path, parts: Path, tmp_path: Path) -> None:
    from nas.search import run_search
    from tests.test_supernet import _tiny_table

    evaluator = get_evaluator("supernet", supernet=str(parts), images=100)
    run_search(latency=_tiny_table(tiny, tmp_path), budget_ms=2.5, space=tiny, evaluator=evaluator, trials=8,
               out=tmp_path / "run")  # fmt: skip
    recorded = json.loads((tmp_path / "run" / "run.json").read_text())["evaluator"]
    assert recorded["supernet_recipe"]["few_shot"] is True
    summary = (tmp_path / "run" / "summary.md").read_text()  # the best's score says what it is and on which data
    assert "Its score: inherited from supernet supernet.pt (3 few-shot parts x 4 steps on digits" in summary
    assert "validation split" in summary
