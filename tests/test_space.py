"""SearchSpace: membership of the references, sampling stays inside, exact size, schema errors."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import optuna
import pytest

from nas import ArchConfig, SearchSpace, SpecError
from tests.conftest import all_configs


def test_default_space_contains_both_references(
    default_space: SearchSpace, large: ArchConfig, small: ArchConfig
) -> None:
    assert default_space.contains(large)
    assert default_space.contains(small)


@pytest.mark.parametrize(
    "change",
    [
        lambda c: {"layers": (*c.layers[:-1], replace(c.layers[-1], kernel=7))},  # kernel 7 is not a choice
        lambda c: {"layers": (c.layers[0], *c.layers[2:])},  # a stage-1 block gone: 16 -> 24 jump lost
        lambda c: {"layers": c.layers[:-3]},  # last stage removed: depth 0 is not allowed there
        lambda c: {"num_classes": 10},
        lambda c: {"resolution": 192},
    ],
)
def test_configs_outside_the_space_are_rejected(default_space: SearchSpace, large: ArchConfig, change: Any) -> None:
    assert not default_space.contains(replace(large, **change(large)))


def test_other_depths_of_a_reference_stay_inside(default_space: SearchSpace, large: ArchConfig) -> None:
    assert default_space.contains(replace(large, layers=large.layers[:-1]))  # last stage at depth 2


def test_mixed_kernels_in_a_shared_stage_are_outside(default_space: SearchSpace, large: ArchConfig) -> None:
    layers = list(large.layers)
    layers[5] = replace(layers[5], kernel=3)  # stage 2 shares its kernel: 5, 5, 3 is not a point
    assert not default_space.contains(replace(large, layers=tuple(layers)))


def test_optuna_samples_stay_in_the_space(default_space: SearchSpace) -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(300):
        trial = study.ask()
        config = default_space.sample(trial)
        assert default_space.contains(config)
        seen.add(config)
        study.tell(trial, 0.0)
    assert len(seen) == 300


@pytest.mark.parametrize("seed", range(100))
def test_random_configs_stay_in_the_space(default_space: SearchSpace, seed: int) -> None:
    assert default_space.contains(default_space.random_config(seed))


def test_random_config_is_deterministic_for_a_seed(default_space: SearchSpace) -> None:
    import numpy as np

    assert default_space.random_config(3) == default_space.random_config(3)
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    assert default_space.random_config(rng_a) == default_space.random_config(rng_b)


@pytest.mark.parametrize("name", ["mobilenetv3", "lightweight", "ofa_mbv3_w1.2"])
def test_a_space_builds_each_config_as_a_fresh_space_does(name: str) -> None:
    """Building remembers layers and the choices' names: nothing remembered may stand in for another layer
    (the same choices in another stage, after other channels, of another block type)."""
    used = SearchSpace.load(name)
    configs = [used.random_config(seed) for seed in range(200)]
    for seed, config in enumerate(configs):
        assert SearchSpace.load(name).random_config(seed) == config


def test_size_of_the_tiny_space_equals_brute_force(tiny_space: SearchSpace) -> None:
    configs = all_configs(tiny_space)
    assert all(tiny_space.contains(c) for c in configs)
    assert tiny_space.size() == len(set(configs))


def _space(stages: list[dict[str, Any]], tiny_space_dict: dict[str, Any]) -> SearchSpace:
    data = copy.deepcopy(tiny_space_dict)
    data["stages"] = stages
    return SearchSpace.from_dict(data)


def test_size_counts_rounding_collisions_once(tiny_space_dict: dict[str, Any]) -> None:
    # 16 * 3 = 48 and make_divisible(16 * 3.1) = 48: two choice paths, one network
    space = _space([{"depth": [1, 2], "width": 16, "expansion": [3, 3.1], "shared": False}], tiny_space_dict)
    configs = all_configs(space)
    assert len(set(configs)) < len(configs)
    assert space.size() == len(set(configs))


def test_size_counts_ambiguous_stage_boundaries_once(tiny_space_dict: dict[str, Any]) -> None:
    # two stride-1 stages of one width: depths (1, 2) and (2, 1) build the same three blocks
    stage = {"depth": [0, 1, 2], "width": [16, 24], "expansion": [1, 2], "kernel": [3, 5], "shared": ["kernel"]}
    space = _space([stage, {**stage, "depth": [1, 2]}], tiny_space_dict)
    configs = all_configs(space)
    assert len(set(configs)) < len(configs)
    assert space.size() == len(set(configs))


def test_default_space_size_is_exact_and_large(default_space: SearchSpace) -> None:
    size = default_space.size()
    assert isinstance(size, int)
    assert 10**18 < size < 10**21


def test_hash_ignores_formatting_but_not_content(tiny_space_dict: dict[str, Any]) -> None:
    a = SearchSpace.from_dict(copy.deepcopy(tiny_space_dict))
    b = SearchSpace.from_dict(copy.deepcopy(tiny_space_dict), source="elsewhere.yaml")
    tiny_space_dict["head"]["dropout"] = 0.2
    c = SearchSpace.from_dict(tiny_space_dict)
    assert a.hash == b.hash != c.hash


@pytest.mark.parametrize(
    ("path", "value", "fragment"),
    [
        (("stages", 0, "width"), [], "stages[0].width: the list is empty; give at least one entry"),
        (("stages", 0, "kernel"), [3, 4], "stages[0].kernel[1]: 4 is not allowed; use one of 3, 5, 7"),
        (("stages", 1, "stride"), 3, "stages[1].stride: 3 is not allowed; use one of 1, 2"),
        (("stages", 1, "expansion"), [0.5], "stages[1].expansion[0]: 0.5 is out of range; use a number >= 1"),
        (("stages", 1, "shared"), ["width"], "stages[1].shared[0]: 'width' is not allowed; use one of 'kernel'"),
        (("stages", 1, "depth"), [1, 1], "stages[1].depth[1]: 1 is listed twice"),
        (("stages", 1, "widht"), 8, "stages[1]: unknown key 'widht'"),
        (("stem", "channels"), 0, "stem.channels: 0 is too small"),
        (("head", "act"), ["gelu"], "head.act[0]: 'gelu' is not allowed"),
        (("stages",), "abc", "stages: expected a list"),
        (("stages", 1, "depth"), [0, 2], "stages: every stage allows depth 0, so a network could have no layers"),
    ],
)
def test_bad_space_names_field_and_fix(
    tiny_space_dict: dict[str, Any], path: tuple[Any, ...], value: Any, fragment: str
) -> None:
    node = tiny_space_dict
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(SpecError) as info:
        SearchSpace.from_dict(tiny_space_dict, source="space.yaml")
    assert str(info.value).startswith("space.yaml: ")
    assert fragment in str(info.value)
