"""Spaces whose stages choose their block type: exact size, membership, op enumeration and DP latency bounds
checked against brute force on a tiny mixed space; the shipped lightweight space loads, samples and is
priced by its table; mixed-space mistakes fail with one line."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from nas import ArchConfig, NasError, SearchSpace
from nas._paths import SPACES_DIR
from nas.latency import LatencyTable
from tests.conftest import all_configs, run_main

MIXED: dict[str, Any] = {
    "name": "mixed",
    "resolution": 32,
    "num_classes": 10,
    "stem": {"channels": 24, "act": ["relu", "hswish"]},
    "stages": [
        {
            "stride": 2,
            "depth": [1, 2],
            "width": 48,
            "type": ["mbv3", "fire", "shufflenet", "shufflenetv2"],
            "mbv3": {"kernel": [3, 5], "expansion": [3, 6], "shared": ["kernel"]},
            "fire": {"squeeze_ratio": [0.125, 0.25]},
            "shufflenet": {"groups": 3},
        },
        {"stride": 2, "depth": [0, 1], "width": [72, 96], "type": ["dsconv", "mbv2"], "mbv2": {"expansion": 6}},
    ],
    "head": {"type": "fc", "last_channels": [0, 64]},
}


@pytest.fixture
def mixed() -> SearchSpace:
    return SearchSpace.from_dict(copy.deepcopy(MIXED), source="mixed")


def test_size_membership_and_ops_match_brute_force(mixed: SearchSpace) -> None:
    configs = all_configs(mixed)
    distinct = set(configs)
    assert mixed.size() == len(distinct)
    assert {layer.TYPE for c in distinct for layer in c.layers} == {
        "mbv3",
        "fire",
        "shufflenet",
        "shufflenetv2",
        "dsconv",
        "mbv2",
    }
    assert all(mixed.contains(c) for c in distinct)
    assert set(mixed.ops()) == {op for c in distinct for op in c.ops()}
    # a stage must keep one type: a fire block after an mbv3 block in stage 0 is not in the space
    mbv3 = next(c for c in distinct if len(c.layers) == 2 and c.layers[0].TYPE == "mbv3")
    fire = next(c for c in distinct if c.layers and c.layers[0].TYPE == "fire")
    assert not mixed.contains(ArchConfig(32, 10, mbv3.stem, (mbv3.layers[0], fire.layers[0]), mbv3.head))


def test_dp_bounds_equal_brute_force(mixed: SearchSpace) -> None:
    def cost(op: Any) -> float:
        return op.cost()[0] / 1e6 + 0.01 * len(op.key)

    (low, fastest), (high, slowest) = mixed.extremes(cost)
    totals = [sum(cost(op) for op in c.ops()) for c in all_configs(mixed)]
    assert low == pytest.approx(min(totals))
    assert high == pytest.approx(max(totals))
    assert mixed.contains(fastest)
    assert mixed.contains(slowest)


def test_mixed_space_hash_round_trips_its_canonical_form(mixed: SearchSpace) -> None:
    again = SearchSpace.from_dict(mixed.spec.to_dict(), source="again")
    assert again.hash == mixed.hash
    assert again.size() == mixed.size()


def test_random_configs_of_the_shipped_lightweight_space_are_priced_by_its_table() -> None:
    space = SearchSpace.load(SPACES_DIR / "lightweight.yaml")
    table = LatencyTable.load("x86_64-lightweight")
    table.check_space(space)
    for seed in range(20):
        config = space.random_config(seed)
        assert space.contains(config)
        assert table.explain(config).interpolated == 0
    # the default table (another device, another space) refuses it and names the table that fits
    with pytest.raises(NasError, match=r"lacks \d+ of its ops; use --target x86_64-lightweight, or .* extend"):
        LatencyTable.load("x86_64").check_space(space)


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda d: d["stages"][0].update(type=["mbv3", "resnet"]), "stages[0].type[1]: 'resnet' is not allowed"),
        (lambda d: d["stages"][1].update(fire={"squeeze_ratio": 0.5}), "stages[1].fire: type 'fire' is not in"),
        (lambda d: d["stages"][0].update(width=47), "stages[0].width: 47 does not suit type 'shufflenetv2'"),
        (lambda d: d["stages"][0]["mbv3"].update(se="yes"), "stages[0].mbv3.se: expected true or false"),
        (lambda d: d["stages"][0].update(stride=1), "space.yaml: stages[0]: a shufflenet"),
    ],
)
def test_mixed_space_mistakes_give_one_line(change: Any, fragment: str, tmp_path: Path) -> None:
    data = copy.deepcopy(MIXED)
    change(data)
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(data))
    result = run_main("nas.space", "show", str(path))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert fragment in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
