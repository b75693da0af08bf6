"""Weight inheritance for a pruned unit: keep the filters with the largest L2 norm, slice every tensor
that reads or normalizes them (BN and SE follow their channels). Yang et al. 2018, NetAdapt."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from nas.config import ArchConfig, se_channels
from nas.model import Network, build_model
from nas.netadapt._units import Unit, shrink

_BN = ("weight", "bias", "running_mean", "running_var")


def block_keys(config: ArchConfig, index: int) -> dict[str, str]:
    """State-dict prefixes of one block's parts (torchvision layout: features.{index + 1}.block.{k})."""
    layer = config.layers[index]
    prefix = f"features.{index + 1}.block"
    keys, k = {}, 0
    if layer.expanded != config.in_channels(index):
        keys["expand"], k = f"{prefix}.{k}", k + 1
    keys["dw"], k = f"{prefix}.{k}", k + 1
    if layer.se:
        keys["se"], k = f"{prefix}.{k}", k + 1
    keys["project"] = f"{prefix}.{k}"
    return keys


def _keep(norms: torch.Tensor, count: int) -> torch.Tensor:
    """Indices of the ``count`` largest norms, in their original order."""
    return torch.topk(norms, count).indices.sort().values


def _take(state: dict[str, torch.Tensor], key: str, dim: int, index: torch.Tensor) -> None:
    state[key] = state[key].index_select(dim, index)


def _take_conv_bn(state: dict[str, torch.Tensor], prefix: str, index: torch.Tensor) -> None:
    """Output channels of a ConvBN(Act): conv filters and their BN."""
    _take(state, f"{prefix}.0.weight", 0, index)
    for name in _BN:
        _take(state, f"{prefix}.1.{name}", 0, index)


@dataclass(frozen=True)
class Selection:
    """What pruning keeps: channels of the unit and, for an SE block, its squeeze units."""

    keep: torch.Tensor
    squeeze: torch.Tensor | None


def selection(model: Network, unit: Unit, channels: int) -> Selection:
    """The ``channels`` filters of ``unit`` with the largest L2 norm (summed over a coupled group)."""
    state, config = model.state_dict(), model.config
    if unit.kind == "width":
        norms = sum(
            state[f"{block_keys(config, i)['project']}.0.weight"].flatten(1).norm(dim=1) ** 2 for i in unit.layers
        )
        return Selection(_keep(norms, channels), None)
    keys = block_keys(config, unit.layers[0])
    keep = _keep(state[f"{keys['expand']}.0.weight"].flatten(1).norm(dim=1), channels)
    if "se" not in keys:
        return Selection(keep, None)
    fc1 = state[f"{keys['se']}.fc1.weight"].index_select(1, keep)
    return Selection(keep, _keep(fc1.flatten(1).norm(dim=1), se_channels(channels)))


def prune(model: Network, unit: Unit, channels: int) -> Network:
    """A new network with ``unit`` at ``channels``, inheriting the weights of the kept filters."""
    config = model.config
    chosen = selection(model, unit, channels)
    keep = chosen.keep
    state = {key: value.clone() for key, value in model.state_dict().items()}
    if unit.kind == "expanded":
        keys = block_keys(config, unit.layers[0])
        _take_conv_bn(state, keys["expand"], keep)
        _take_conv_bn(state, keys["dw"], keep)
        _take(state, f"{keys['project']}.0.weight", 1, keep)
        if "se" in keys:
            se = keys["se"]
            squeeze = chosen.squeeze
            _take(state, f"{se}.fc1.weight", 1, keep)
            for name in ("fc1.weight", "fc1.bias"):
                _take(state, f"{se}.{name}", 0, squeeze)
            _take(state, f"{se}.fc2.weight", 1, squeeze)
            _take(state, f"{se}.fc2.weight", 0, keep)
            _take(state, f"{se}.fc2.bias", 0, keep)
    else:
        for index in unit.layers:
            _take_conv_bn(state, block_keys(config, index)["project"], keep)
        after = unit.layers[-1] + 1
        for index in (*unit.layers[1:], after):
            if index < len(config.layers):
                _take(state, f"{block_keys(config, index)['expand']}.0.weight", 1, keep)
            else:  # the group ends the network: the last 1x1 conv reads its width
                _take(state, f"features.{index + 1}.0.weight", 1, keep)
    pruned = build_model(shrink(config, unit, channels))
    pruned.load_state_dict(state)
    return pruned
