"""A weight-sharing supernet of a search space (Once-for-All, BigNAS): one set of tensors from which every
config of the space takes its weights.

Each tensor of a config's network has a *slot*: the unit it belongs to (the stem, the ``j``-th layer of
stage ``s``, the head) and its name inside the unit by what it is (``expand``, ``dw``, ``se``,
``project``: see ``state_names``), never by position. The supernet keeps, per slot, one tensor of the
largest shape any config needs; a config's tensor is its leading slice in every channel dimension and
the centre of the kernel (elastic width, expansion and kernel), a stage's first ``d`` layers are its
layers (elastic depth), and SE and the activation are per-config structure. A stage's first layer whose
input comes from another place than the stage before it (a config that leaves that stage out: depth 0)
has tensors of its own (slot ``s{stage}.l0@s{source}``): the channels it reads mean other features.
(Measured, bench/RESULTS.md: on its own this did not lift the configs that leave a stage out; a teacher
that leaves stages out too did.) A config runs through its
own network, as ``build_model`` makes it, with these slices in place of its parameters (``functional_call``),
so a subnet extracted from the supernet (``subnet_state``) computes exactly what the supernet computes
for it, and gradients reach the shared tensors.

Since a config takes the leading channels, training reorders each block's expanded channels (and its SE's
squeeze channels) by importance from time to time (``sort_channels``, OFA's re-organisation of middle
weights): the narrow configs then keep the channels the wide ones rely on most.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call

from nas._errors import NasError, OutsideSpaceError
from nas.config import ArchConfig
from nas.model._layers import InvertedResidual
from nas.model._network import Network, build_model
from nas.space import SearchSpace

BY_SOURCE = 3  # the first training method (``SupernetRecipe.method``) whose supernets key inputs by source
SUPERNET_FORMAT = "nas-supernet-1"  # what a supernet file (python -m nas.supernet train) says it is
_CACHED = 64  # networks (structure only, on the meta device) kept for the configs last run
# An inverted residual's tensors along its expanded channels and its SE's squeeze channels (slot suffix,
# dimension), in the MobileNetV3 block's layout (ConvBNAct: 0 the conv, 1 its BN).
_EXPANDED = (
    *((f"{part}.0.weight", 0) for part in ("expand", "dw")),
    *((f"{part}.1.{t}", 0) for part in ("expand", "dw") for t in ("weight", "bias", "running_mean", "running_var")),
    ("se.fc1.weight", 1),
    ("se.fc2.weight", 0),
    ("se.fc2.bias", 0),
    ("project.0.weight", 1),
)
_SQUEEZE = (("se.fc1.weight", 0), ("se.fc1.bias", 0), ("se.fc2.weight", 1))
Move = tuple[str, int, Tensor]  # (slot, dimension, new order of its indices)


def largest_config(
    space: SearchSpace, *, pick: Callable[[Sequence[Any]], Any] | None = None, skip: Sequence[int] = ()
) -> ArchConfig:
    """Every choice at its largest (the deepest, widest, largest kernels, SE on, strides at their least:
    the most computation): the config whose tensors bound every other config's, for the spaces nas ships.
    Choices that are not numbers (activations) take ``pick(options)``, by default the first. The stages in
    ``skip`` (each must allow depth 0) are left out."""
    skipped = {f"s{k}.depth" for k in skip}

    def choose(name: str, options: Sequence[Any]) -> Any:
        if name in skipped:
            return 0
        if not all(isinstance(o, (int, float)) for o in options):
            return pick(options) if pick is not None else options[0]
        return min(options) if name.endswith(".stride") else max(options)

    return space.build(choose)


def skippable_stages(space: SearchSpace) -> list[int]:
    """The stages a config may leave out (depth 0 is one of their options)."""
    return [k for k, stage in enumerate(space.spec.stages) if 0 in stage.depth]


def _skipping_configs(space: SearchSpace) -> list[ArchConfig]:
    """The largest config with each run of consecutive stages that allow depth 0 left out: between them
    they read every stage's input from every place it can come from (see ``Supernet``)."""
    skippable = set(skippable_stages(space))
    runs = []
    for first in sorted(skippable):
        last = first
        while last in skippable:
            runs.append(range(first, last + 1))
            last += 1
    return [largest_config(space, skip=run) for run in runs]


class Supernet(nn.Module):
    """Shared weights for every config of ``space``, for networks adapted to ``num_classes`` and
    ``resolution`` (the data it is trained on). ``forward(x, config)`` runs one config of the space."""

    def __init__(
        self, space: SearchSpace, *, num_classes: int, resolution: int, seed: int = 0, by_source: bool = True
    ) -> None:
        super().__init__()
        others = [
            f"stage {k}: {t.type}" for k, stage in enumerate(space.spec.stages) for t in stage.types if t.type != "mbv3"
        ]
        if others:  # other blocks name their parts by position, which would share one part's weights with another
            raise NasError(
                f"space {space.name}: supernets cover MobileNetV3-style blocks (mbv3) so far, not {others[0]};"
                " search it with another evaluator"
            )
        self.space, self.num_classes, self.resolution = space, num_classes, resolution
        self.by_source = by_source
        self._networks: OrderedDict[ArchConfig, tuple[Network, list[tuple[str, str, torch.Size]]]] = OrderedDict()
        generator = torch.Generator().manual_seed(seed)
        shapes: dict[str, torch.Size] = {}
        kinds: dict[str, bool] = {}  # slot -> is a parameter
        top, skipping = largest_config(space), _skipping_configs(space)
        for config in (top, *skipping, *(space.random_config(seed * 1000 + k) for k in range(8))):
            network, slots = self._structure(config)
            parameters = dict(network.named_parameters())
            for key, slot, shape in slots:
                largest = shapes.get(slot, shape)
                shapes[slot] = torch.Size(max(a, b) for a, b in zip(largest, shape, strict=True))
                kinds[slot] = key in parameters
        self.slots = sorted(shapes)
        self._slot_set = frozenset(self.slots)
        self.weights = nn.ParameterDict()
        self.stats = nn.Module()  # BN statistics: buffers, by slot
        residual_ends = self._residual_ends(top).union(*map(self._residual_ends, skipping))
        for slot in self.slots:
            tensor = torch.zeros(shapes[slot]) if slot in residual_ends else _initial(slot, shapes[slot], generator)
            if kinds[slot]:
                self.weights[_name(slot)] = nn.Parameter(tensor)
            else:
                self.stats.register_buffer(_name(slot), tensor)

    # ---- one config ----------------------------------------------------------------------------------
    def adapted(self, config: ArchConfig) -> ArchConfig:
        """``config`` at the supernet's resolution and classes: the network that is actually run."""
        return replace(config, resolution=self.resolution, num_classes=self.num_classes)

    def _structure(self, config: ArchConfig) -> tuple[Network, list[tuple[str, str, torch.Size]]]:
        """The config's network (on the meta device: no memory, no initialisation) and, per state-dict
        key, its slot and shape. Kept for the last configs run: the sandwich rule runs the same ones often."""
        found = self._networks.get(config)
        if found is not None:
            self._networks.move_to_end(config)
            return found
        positions = self.space.layer_positions(config)
        adapted = self.adapted(config)
        with torch.device("meta"):
            network = build_model(adapted)
        prefixes: list[tuple[str, str]] = []  # (module path, slot prefix)
        units = adapted.units()
        seen_in_block: dict[int, int] = {}
        for unit, paths in zip(units, network.unit_paths, strict=True):
            if unit.kind == "block":
                stage, place = positions[unit.index]
                ordinal = seen_in_block[unit.index] = seen_in_block.get(unit.index, -1) + 1
                source = positions[unit.index - 1][0] if unit.index else -1  # the stage it reads; -1: the stem
                base = f"s{stage}.l{place}" + (f".u{ordinal}" if ordinal else "")
                if self.by_source and place == 0 and source != stage - 1:
                    base += f"@s{source}" if source >= 0 else "@stem"
                names = adapted.layers[unit.index].state_names(unit.in_channels)
            else:
                base, names = f"{unit.kind}{unit.index}", {}
            for k, path in enumerate(paths):
                slot = f"{base}.m{k}" if len(paths) > 1 else base
                prefixes.append((path, slot))
                prefixes.extend((f"{path}.{inner}", f"{slot}.{name}") for inner, name in names.items())
        slots = []
        for key, tensor in network.state_dict(keep_vars=True).items():
            path, slot = max(((p, s) for p, s in prefixes if key.startswith(p + ".")), key=lambda ps: len(ps[0]))
            slots.append((key, slot + key[len(path) :], tensor.shape))
        found = self._networks[config] = (network, slots)
        if len(self._networks) > _CACHED:
            self._networks.popitem(last=False)
        return found

    def _residual_ends(self, config: ArchConfig) -> set[str]:
        """Slots of the last BN scale of every block with a skip in ``config``, which start at zero (BigNAS):
        each such block then starts as the identity, so a deeper subnet first computes what a shallower one
        does and the layers that only deep subnets run learn a correction to it."""
        network, slots = self._structure(config)
        slot_of = {key: slot for key, slot, _ in slots}
        return {
            slot_of[f"{path}.block.{len(module.block) - 1}.1.weight"]
            for path, module in network.named_modules()
            if isinstance(module, InvertedResidual) and module.use_res_connect
        }

    def subnet_tensors(self, config: ArchConfig) -> dict[str, Tensor]:
        """The config's state dict as views of the shared tensors (gradients and BN updates reach them)."""
        _, slots = self._structure(config)
        tensors = {}
        for key, slot, shape in slots:
            if slot not in self._slot_set:
                raise NasError(f"the supernet has no tensor for {slot} ({config.name or 'config'}: {key})")
            tensors[key] = _crop(self.shared(slot), shape, slot)
        return tensors

    def forward(self, x: Tensor, config: ArchConfig, *, dropout: bool = True) -> Tensor:
        """``config``'s output; ``dropout=False`` runs its dropout layers as in evaluation (BigNAS regularises
        only the largest config: the others learn from its output, not from the labels)."""
        network, _ = self._structure(config)
        network.train(self.training)
        if not dropout:
            for module in network.modules():
                if isinstance(module, nn.Dropout):
                    module.eval()
        return functional_call(network, self.subnet_tensors(config), (x,), strict=True)

    # ---- channel order ------------------------------------------------------------------------------
    def sort_channels(self) -> list[Move]:
        """Reorder every block's expanded channels by importance, the L1 norm of the projection weights
        that read them, largest first, and its SE's squeeze channels by the L1 norm of the weights that
        read those. The largest config computes what it did (a consistent permutation); a narrower one now
        takes the most important channels. A stage that allows expansion 1 keeps its order (its depthwise
        conv may then run on the input channels). Returns the moves, for an optimizer's state to follow."""
        moves: list[Move] = []
        for block in self._sortable_blocks():
            order = _importance_order(self.shared(f"{block}.project.0.weight"), 1)
            moves += [
                (f"{block}.{suffix}", dim, order) for suffix, dim in _EXPANDED if f"{block}.{suffix}" in self._slot_set
            ]
            if f"{block}.se.fc2.weight" in self._slot_set:
                squeeze = _importance_order(self.shared(f"{block}.se.fc2.weight"), 1)
                moves += [(f"{block}.{suffix}", dim, squeeze) for suffix, dim in _SQUEEZE]
        with torch.no_grad():
            for slot, dim, order in moves:
                tensor = self.shared(slot)
                tensor.copy_(tensor.index_select(dim, order.to(tensor.device)))
        return moves

    def _sortable_blocks(self) -> list[str]:
        """Slot prefixes (``s{stage}.l{place}``) of blocks with an expansion conv in every config."""
        blocks = []
        for slot in self.slots:
            if not slot.endswith(".expand.0.weight"):
                continue
            block = slot.removesuffix(".expand.0.weight")
            stage = self.space.spec.stages[int(block.split(".")[0][1:])]
            expansions = [dict(t.options).get("expansion", (1,)) for t in stage.types]
            if all(e > 1 for options in expansions for e in options):
                blocks.append(block)
        return blocks

    def shared(self, slot: str) -> Tensor:
        """The tensor of ``slot``: a parameter, or a BN statistic."""
        name = _name(slot)
        return self.weights[name] if name in self.weights else getattr(self.stats, name)

    def subnet_state(self, config: ArchConfig) -> dict[str, Tensor]:
        """Standalone weights of ``config`` (adapted: see ``adapted``) for ``build_model``: copies."""
        return {key: tensor.detach().clone() for key, tensor in self.subnet_tensors(config).items()}

    def extract(self, config: ArchConfig) -> Network:
        """The config's own network with its weights from the supernet; a config of another space (or
        another class count than the space's) is refused."""
        if not self.space.contains(config):
            raise OutsideSpaceError(
                f"{config.name or 'the config'} is not a config of the supernet's space {self.space.name}"
            )
        network = build_model(self.adapted(config))
        network.load_state_dict(self.subnet_state(config))
        return network


def read_supernet(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A supernet or checkpoint file, read without unpickling code (weights_only)."""
    path = Path(path)
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise NasError(f"{path}: no such supernet file; train one with python -m nas.supernet train") from None
    except Exception as exc:  # torch raises many types for a corrupt or foreign file
        raise NasError(f"{path}: not a nas supernet file ({type(exc).__name__}); train it again") from None
    if not isinstance(record, dict) or record.get("format") != SUPERNET_FORMAT:
        raise NasError(f"{path}: not a nas supernet file (format {SUPERNET_FORMAT!r} expected); train it again")
    return record


class SupernetParts(nn.Module):
    """Few-shot supernets (``train_supernet(few_shot=True)``): one ``Supernet`` per part of ``space``
    (``SearchSpace.downsampling_parts``). A config runs in, and takes its weights from, the part that holds
    it; the rest of the interface is ``Supernet``'s."""

    def __init__(self, space: SearchSpace, parts: Sequence[Supernet]) -> None:
        super().__init__()
        self.space, self.parts = space, nn.ModuleList(parts)
        self.num_classes, self.resolution = parts[0].num_classes, parts[0].resolution

    def part_of(self, config: ArchConfig) -> Supernet:
        for part in self.parts:
            if part.space.contains(config):
                return part
        raise OutsideSpaceError(
            f"{config.name or 'the config'} is not a config of the supernet's space {self.space.name}"
        )

    def forward(self, x: Tensor, config: ArchConfig, *, dropout: bool = True) -> Tensor:
        return self.part_of(config)(x, config, dropout=dropout)

    def subnet_state(self, config: ArchConfig) -> dict[str, Tensor]:
        return self.part_of(config).subnet_state(config)

    def extract(self, config: ArchConfig) -> Network:
        return self.part_of(config).extract(config)


def load_supernet(path: str | os.PathLike[str]) -> tuple[Supernet | SupernetParts, dict[str, Any]]:
    """A trained supernet (or few-shot parts) and its record (recipe, space, steps), its space rebuilt
    from the file."""
    record = read_supernet(path)
    try:
        space = _space(path, record)
        if "parts" in record:
            supernet: Supernet | SupernetParts = SupernetParts(
                space, [_supernet(path, part, record) for part in record["parts"]]
            )
        else:
            supernet = _supernet(path, record, record)
    except NasError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise NasError(f"{path}: a damaged supernet file ({type(exc).__name__}); train it again") from None
    return supernet, record


def _space(path: str | os.PathLike[str], record: dict[str, Any]) -> SearchSpace:
    """The space a record keeps, checked against its recorded hash."""
    from nas._yaml import parse_mapping

    space = SearchSpace.from_dict(parse_mapping(record["space_yaml"], f"{path}: space"), source=f"{path}: space")
    if space.hash != record.get("space_hash"):
        raise NasError(f"{path}: its space does not hash to the recorded {record.get('space_hash')}; train it again")
    return space


def _supernet(path: str | os.PathLike[str], part: dict[str, Any], record: dict[str, Any]) -> Supernet:
    """The supernet of ``part`` (the record itself, or one of its few-shot parts) with its tensors."""
    recipe = record["recipe"]
    supernet = Supernet(
        _space(path, part),
        num_classes=int(record["num_classes"]),
        resolution=int(recipe["resolution"]),
        seed=int(recipe["seed"]),
        by_source=int(recipe.get("method", 1)) >= BY_SOURCE,
    )
    supernet.load_state_dict(part["state"])
    return supernet


def _importance_order(weights: Tensor, dim: int) -> Tensor:
    """Indices along ``dim`` by the L1 norm of ``weights`` over every other dimension, largest first."""
    others = [d for d in range(weights.dim()) if d != dim]
    return weights.detach().abs().sum(dim=others).argsort(descending=True, stable=True)


def _name(slot: str) -> str:
    return slot.replace(".", ":")  # torch refuses dots in parameter names


def _crop(shared: Tensor, shape: torch.Size, slot: str) -> Tensor:
    """The leading slice in every dimension, except a conv kernel's spatial ones: their centre."""
    if len(shape) != shared.dim() or any(a > b for a, b in zip(shape, shared.shape, strict=True)):
        raise NasError(f"the supernet's {slot} is {tuple(shared.shape)}; a config needs {tuple(shape)}")
    index = []
    for dim, (want, have) in enumerate(zip(shape, shared.shape, strict=True)):
        start = (have - want) // 2 if shared.dim() == 4 and dim >= 2 else 0
        index.append(slice(start, start + want))
    return shared[tuple(index)]


def _initial(slot: str, shape: torch.Size, generator: torch.Generator) -> Tensor:
    """torchvision's initialisation (see ``Network.reset_parameters``), by what the tensor is."""
    leaf = slot.rsplit(".", 1)[-1]
    if leaf == "running_var":
        return torch.ones(shape)
    if leaf in ("running_mean", "bias", "num_batches_tracked"):
        return torch.zeros(shape, dtype=torch.long if leaf == "num_batches_tracked" else torch.float32)
    if len(shape) == 1:  # a BN weight
        return torch.ones(shape)
    tensor = torch.empty(shape)
    if len(shape) == 4:
        nn.init.kaiming_normal_(tensor, mode="fan_out", generator=generator)
    else:
        nn.init.normal_(tensor, 0, 0.01, generator=generator)
    return tensor
