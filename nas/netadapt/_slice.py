"""Weight inheritance for a pruned unit: keep the filters with the largest L2 norm and slice every tensor
that makes, normalizes or reads those channels (Yang et al. 2018, NetAdapt). Which tensors those are, each
block type declares (``Part.internal``, ``output``, ``reads``); this module only resolves and slices."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from nas.blocks import Dependent, Prunable, Slice
from nas.model import Network, build_model
from nas.netadapt._units import Unit, consumer_reads, shrink


@dataclass(frozen=True)
class Plan:
    """The state-dict tensors a unit indexes: (key, dim) pairs, the keys whose norms choose, a dependent set."""

    slices: tuple[tuple[str, int], ...]
    norms: tuple[str, ...]
    dependent: tuple[Dependent, str, tuple[tuple[str, int], ...]] | None  # (declaration, norm key, slices)


def _unit_paths(model: Network) -> dict[tuple[str, int], list[str]]:
    """Module paths of each (role, index) unit of the model: blocks by block index, head units by place."""
    return {(unit.kind, unit.index): paths for unit, paths in zip(model.config.units(), model.unit_paths, strict=True)}


def _resolve(paths: list[str], s: Slice) -> str:
    return f"{paths[s.module]}.{s.key}"


def plan(model: Network, unit: Unit) -> Plan:
    """Every tensor ``unit`` indexes in ``model``."""
    config = model.config
    cins, where = config.block_inputs(), _unit_paths(model)
    parts: list[tuple[list[str], Prunable]] = []
    first = unit.layers[0]
    if unit.kind != "width":
        parts.append((where["block", first], config.layers[first].internal(cins[first])[unit.kind]))
    else:
        for j in unit.layers:
            layer, paths = config.layers[j], where["block", j]
            if j != first:
                parts.append((paths, layer.reads(cins[j])))  # type: ignore[arg-type]  # checked by prunable_units
            parts.append((paths, layer.output(cins[j])))  # type: ignore[arg-type]
        after = unit.layers[-1] + 1
        paths = where["block", after] if after < len(config.layers) else where["head", 0]
        parts.append((paths, consumer_reads(config, unit.layers[-1], unit.channels)))  # type: ignore[arg-type]
    slices = tuple((_resolve(paths, s), s.dim) for paths, p in parts for s in p.slices)
    norms = tuple(_resolve(paths, s) for paths, p in parts for s in p.slices if s.norm)
    dependent = None
    for paths, p in parts:
        if p.dependent is not None:
            d = p.dependent
            dependent = (d, _resolve(paths, d.norm), tuple((_resolve(paths, s), s.dim) for s in d.slices))
    return Plan(slices, norms, dependent)


def _keep(norms: torch.Tensor, count: int) -> torch.Tensor:
    """Indices of the ``count`` largest norms, in their original order."""
    return torch.topk(norms, count).indices.sort().values


def _take(state: dict[str, torch.Tensor], key: str, dim: int, index: torch.Tensor) -> None:
    state[key] = state[key].index_select(dim, index)


@dataclass(frozen=True)
class Selection:
    """What pruning keeps: channels of the unit and, where a set follows them (SE's squeeze), that set's."""

    keep: torch.Tensor
    squeeze: torch.Tensor | None


def selection(model: Network, unit: Unit, channels: int) -> Selection:
    """The ``channels`` filters of ``unit`` with the largest L2 norm (summed over a coupled group)."""
    state, chosen = model.state_dict(), plan(model, unit)
    norms = sum(state[key].flatten(1).norm(dim=1) ** 2 for key in chosen.norms)
    keep = _keep(norms, channels)  # type: ignore[arg-type]
    if chosen.dependent is None:
        return Selection(keep, None)
    declaration, key, _ = chosen.dependent
    inner = state[key].index_select(declaration.outer_dim, keep)
    return Selection(keep, _keep(inner.flatten(1).norm(dim=1), declaration.count(channels)))


def prune(model: Network, unit: Unit, channels: int) -> Network:
    """A new network with ``unit`` at ``channels``, inheriting the weights of the kept filters."""
    chosen, kept = plan(model, unit), selection(model, unit, channels)
    state = {key: value.clone() for key, value in model.state_dict().items()}
    for key, dim in chosen.slices:
        _take(state, key, dim, kept.keep)
    if chosen.dependent is not None and kept.squeeze is not None:
        for key, dim in chosen.dependent[2]:
            _take(state, key, dim, kept.squeeze)
    pruned = build_model(shrink(model.config, unit, channels))
    pruned.load_state_dict(state)
    return pruned
