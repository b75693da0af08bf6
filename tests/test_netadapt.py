"""NetAdapt's building blocks: prunable units never break a residual; weight inheritance is exact."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch import nn

from nas import ArchConfig, build_model
from nas.netadapt import block_keys, prunable_units, prune, selection
from tests.test_model import _randomize, _responds_to_input


@pytest.fixture(params=["large", "small"])
def network(request: pytest.FixtureRequest) -> tuple[ArchConfig, nn.Module]:
    config = replace(request.getfixturevalue(request.param), resolution=64, num_classes=10)
    torch.manual_seed(0)
    model = build_model(config)
    _randomize(model, 3)
    return config, model.eval()


def _silence(model: nn.Module, config: ArchConfig, unit, channels: int) -> nn.Module:
    """The original network with the channels pruning removes contributing nothing."""
    chosen = selection(model, unit, channels)
    state = model.state_dict()
    removed = torch.tensor([c for c in range(unit.channels) if c not in set(chosen.keep.tolist())])
    parts = ("expand", "dw") if unit.kind == "expanded" else ("project",)
    for index in unit.layers:
        keys = block_keys(config, index)
        for part in parts:
            for name in ("weight", "bias"):
                state[f"{keys[part]}.1.{name}"][removed] = 0
        if unit.kind == "expanded" and chosen.squeeze is not None:
            dropped = [
                u for u in range(state[f"{keys['se']}.fc1.bias"].numel()) if u not in set(chosen.squeeze.tolist())
            ]
            state[f"{keys['se']}.fc1.weight"][dropped] = 0
            state[f"{keys['se']}.fc1.bias"][dropped] = 0
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
