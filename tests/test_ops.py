"""Latency ops: decomposition of configs, stable keys, exact enumeration over a space."""

from __future__ import annotations

import pytest

from nas import ArchConfig, SearchSpace
from nas.config import Op, ops
from tests.conftest import all_configs


@pytest.mark.parametrize(("arch", "blocks"), [("large", 15), ("small", 11)])
def test_ops_cover_every_layer_of_the_references(arch: str, blocks: int, request: pytest.FixtureRequest) -> None:
    config: ArchConfig = request.getfixturevalue(arch)
    result = ops(config)
    assert [op.kind for op in result] == ["stem"] + ["ir"] * blocks + ["last", "head"]
    units = config.units()
    for op, unit, layer in zip(result[1:-2], units[1:-2], config.layers, strict=True):
        assert (op.size, op.cin, op.out, op.out_size) == (
            unit.in_size,
            unit.in_channels,
            unit.out_channels,
            unit.out_size,
        )
        assert op.part == layer
    assert result[-2].key == f"last|r7|i{config.layers[-1].out}|o{config.head.last_channels}|hs"


def test_keys_are_stable_and_round_trip(large: ArchConfig) -> None:
    keys = [op.key for op in ops(large)]
    assert keys[0] == "stem|r224|i3|o16|k3|s2|hs"
    assert keys[4] == "ir|r56|i24|e72|o40|k5|s2|se1|re"
    assert keys[-1] == "head|r7|i960|h1280|o1000|hs"
    assert [Op.parse(key).key for key in keys] == keys


@pytest.mark.parametrize(
    "key", ["ir|r56|i24", "conv|r1|re", "ir|r56|i24|e72|o40|k5|s2|se1|gelu", "stem|r1|i3|o8|k3|s2"]
)
def test_malformed_keys_are_refused(key: str) -> None:
    with pytest.raises(ValueError, match="op key"):
        Op.parse(key)


def test_space_ops_equal_the_ops_of_all_configs(tiny_space: SearchSpace) -> None:
    brute = {op for config in all_configs(tiny_space) for op in ops(config)}
    assert set(tiny_space.ops()) == brute


def test_no_sampled_config_has_an_op_the_enumeration_misses(default_space: SearchSpace) -> None:
    enumerated = set(default_space.ops())
    sampled = {op for seed in range(300) for op in ops(default_space.random_config(seed))}
    assert sampled <= enumerated
    assert len(enumerated) == 2753
