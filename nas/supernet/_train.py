"""Training a supernet: the sandwich rule with in-place distillation (Yu et al. 2020, BigNAS).

Every step trains, on one batch, the largest config of the space (on the labels), the smallest (fewest
MACs) and ``random_subnets`` random ones (each on the largest's softened output, detached: in-place
distillation), and takes one SGD step on the sum of their gradients. As in BigNAS, every block with a
skip starts as the identity (``Supernet``) and only the largest config runs dropout. The largest takes
every stride at its least (``largest_config``: a teacher that always downsampled left the configs that
keep the resolution, the most accurate ones, untaught); its activations, and whether it leaves out each
stage that allows depth 0, are drawn per step, so every option is some step's teacher (leaving a
stride-2 stage out keeps the resolution: in the default space that network has 1.8x the MACs of the one
with every layer, and a teacher that never did left those configs ranked last while they train best
alone). Every random choice of step ``s`` (batch, augmentation, subnets, dropout, the teacher's choices)
is derived from (seed, s), and a checkpoint of the shared tensors, the optimizer and the step is written
every ``chunk`` steps, so a run killed at any moment loses at most one chunk and, rerun, ends exactly
where an uninterrupted run does.

``few_shot`` (Zhao et al. 2021, few-shot NAS) trains one such supernet per part of the space, the parts
split by every choice that moves a downsampling (``SearchSpace.downsampling_parts``): one supernet has its
late blocks' weights serve inputs of 4x4, 2x2 and 1x1 at 32 px, where a 5x5 kernel sees all its taps,
some, or only its centre, and the order of the networks that differ there is lost (bench/RESULTS.md).
The parts train one after another, each as above for ``steps`` steps, in ``out/part<k>/``; the finished
parts are then kept together in ``out/supernet.pt``.

Under ``torchrun`` the supernet is wrapped in DistributedDataParallel (gloo on CPU, NCCL on CUDA): each
process takes its share of every batch, and each config's backward pass averages the gradients across
processes (``find_unused_parameters``: every config of the sandwich uses a different subset of the
shared tensors). Averages of passes add up to the average of their sum, so the step is the same as one
process taking the whole batch would take, up to BN statistics, which are per process.
"""

from __future__ import annotations

import io
import logging
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nas._errors import ArgumentError, NasError, check_seed
from nas._files import check_file_out, write_bytes_atomic
from nas._provenance import versions
from nas.config import ArchConfig
from nas.data import Dataset
from nas.evaluate import TrainEvaluator
from nas.model import (
    SUPERNET_FORMAT,
    Supernet,
    largest_config,
    load_supernet,
    read_supernet,
    save_weights,
    skippable_stages,
)
from nas.model._supernet import Move
from nas.space import SearchSpace

logger = logging.getLogger(__name__)
SUPERNET = "supernet.pt"
CHECKPOINT = "checkpoint.pt"


@dataclass(frozen=True)
class SupernetRecipe:
    """What makes a supernet's training reproducible; a rerun with another recipe is refused."""

    data: str
    resolution: int
    steps: int
    batch_size: int
    lr: float
    momentum: float
    weight_decay: float
    label_smoothing: float
    random_subnets: int
    seed: int
    sort_every: int
    method: int = 4  # 2: skip blocks start as the identity; the largest alone runs dropout, takes the least
    # strides and draws its activations per step; 3: and a stage's first layer is keyed by its input's source;
    # 4: and the largest leaves each stage that allows depth 0 out in half the steps
    few_shot: bool = False  # one supernet per part of the space (SearchSpace.downsampling_parts), each `steps`

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


LEGACY = {"sort_every": 0, "method": 1, "few_shot": False}  # what a supernet written before a recipe field existed did


def smallest_config(space: SearchSpace) -> ArchConfig:
    """The config of fewest MACs (exact, by dynamic programming over the space)."""
    (_, lowest), _ = space.extremes(lambda op: float(op.cost()[0]))
    return lowest


def train_supernet(
    *,
    space: SearchSpace | str | os.PathLike[str],
    out: str | os.PathLike[str],
    data: str | Dataset = "fashion-mnist",
    resolution: int = 32,
    steps: int = 2000,
    batch_size: int = 64,
    lr: float = 0.1,
    momentum: float = 0.9,
    weight_decay: float = 4e-5,
    label_smoothing: float = 0.1,
    random_subnets: int = 2,
    seed: int = 0,
    sort_every: int = 250,
    few_shot: bool = False,
    part: int | None = None,
    chunk: int = 50,
    device: str | None = None,
    progress: bool = False,
) -> Path:
    """Train one supernet of ``space`` on ``data``; writes ``out/supernet.pt`` and returns its path.
    Every ``sort_every`` steps (0: never) each block's channels are reordered by importance
    (``Supernet.sort_channels``), the optimizer's momentum following them. ``few_shot``: one supernet of
    ``steps`` steps per part of the space (``SearchSpace.downsampling_parts``), trained one after another in
    ``out/part<k>/`` and kept together in ``out/supernet.pt`` (``SupernetParts``); ``part=k`` trains part k
    alone and returns its file (processes or machines sharing ``out`` can train the parts side by side; the
    call without ``part`` then only folds them together). Rerunning the same call resumes from the
    checkpoint (or returns at once when finished)."""
    for name, value in (("steps", steps), ("batch_size", batch_size), ("chunk", chunk), ("resolution", resolution)):
        if value < 1:
            raise ArgumentError(name, str(value), "use 1 or more")
    for name, value in (("random_subnets", random_subnets), ("sort_every", sort_every)):
        if value < 0:
            raise ArgumentError(name, str(value), "use 0 or more")
    for name, number in (("lr", lr), ("momentum", momentum), ("weight_decay", weight_decay)):
        if not (math.isfinite(number) and number >= 0):
            raise ArgumentError(name, f"{number}", "use a finite number >= 0")
    check_seed(seed)
    space = space if isinstance(space, SearchSpace) else SearchSpace.load(space)
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise ArgumentError("out", str(folder), "is a file; give a folder for the supernet")
    parts = space.downsampling_parts() if few_shot else [space]
    if part is not None and not few_shot:
        raise ArgumentError("part", str(part), "parts are few-shot training's; add few_shot=True (--few-shot)")
    if part is not None and not 0 <= part < len(parts):
        raise ArgumentError("part", str(part), f"the space has {len(parts)} parts: give 0 to {len(parts) - 1}")
    rank, world = _distributed()
    trainer = TrainEvaluator(
        data=data, resolution=resolution, steps=steps, batch_size=batch_size, seed=seed, device=device
    )
    recipe = SupernetRecipe(
        trainer.data.name,
        resolution,
        steps,
        batch_size,
        lr,
        momentum,
        weight_decay,
        label_smoothing,
        random_subnets,
        seed,
        sort_every,
        few_shot=few_shot,
    )
    final = folder / SUPERNET
    if final.exists():
        _same_setup(final, read_supernet(final), space, recipe)
        logger.info("supernet %s is already trained (%d steps); delete it to train again", final, steps)
        return final
    if few_shot:
        chosen = range(len(parts)) if part is None else [part]
        paths = [
            _train(parts[k], folder / f"part{k}", trainer, recipe, chunk=chunk, progress=progress,
                   label=f"supernet part {k + 1}/{len(parts)}")
            for k in chosen
        ]  # fmt: skip
        if part is not None:
            final = paths[0]
        elif rank == 0:
            _assemble(final, space, recipe, paths)
    else:
        _train(space, folder, trainer, recipe, chunk=chunk, progress=progress, label="supernet")
    if world > 1:
        import torch.distributed as dist

        dist.barrier()  # the first process hosts the rendezvous: none may leave while another still talks
        dist.destroy_process_group()
    return final


def _train(
    space: SearchSpace, folder: Path, trainer: TrainEvaluator, recipe: SupernetRecipe, *, chunk: int, progress: bool,
    label: str,
) -> Path:  # fmt: skip
    """Train (or resume, or find trained) the supernet of ``space`` in ``folder``: the sandwich steps."""
    rank, world = _distributed()
    final = folder / SUPERNET
    if final.exists():  # a few-shot part trained before an interruption
        _same_setup(final, read_supernet(final), space, recipe)
        return final
    steps, lr, seed = recipe.steps, recipe.lr, recipe.seed
    supernet = Supernet(space, num_classes=trainer.data.num_classes, resolution=recipe.resolution, seed=seed)
    supernet.to(trainer.device, memory_format=torch.channels_last)  # as TrainEvaluator trains: faster on CPU
    optimizer = torch.optim.SGD(
        _param_groups(supernet, recipe.weight_decay), lr=lr, momentum=recipe.momentum, nesterov=True
    )
    use_amp = trainer.device.type == "cuda"  # mixed precision on CUDA, as TrainEvaluator trains
    scaler = torch.amp.GradScaler(enabled=use_amp)
    start = 0
    checkpoint = folder / CHECKPOINT
    if checkpoint.exists():
        state = read_supernet(checkpoint)
        _same_setup(checkpoint, state, space, recipe)
        try:
            supernet.load_state_dict(state["state"])
            optimizer.load_state_dict(state["optimizer"])
            scaler.load_state_dict(state["scaler"])
            start = int(state["step"])
        except (KeyError, RuntimeError, TypeError, ValueError) as exc:
            raise NasError(
                f"{checkpoint}: a damaged checkpoint ({type(exc).__name__}); delete it to train from the start"
            ) from None
        logger.info("resuming %s training at step %d of %d", label, start, steps)
    smallest, skippable = smallest_config(space), skippable_stages(space)
    began = time.perf_counter()
    bar = None
    if progress and rank == 0:
        from tqdm import tqdm

        bar = tqdm(total=steps, initial=start, desc=label, unit="step", dynamic_ncols=True)
    supernet.train()
    model: nn.Module = supernet
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(supernet, find_unused_parameters=True)
    for step in range(start, steps):
        if recipe.sort_every and step and step % recipe.sort_every == 0:  # before the step: a checkpoint is unsorted
            _follow(optimizer, supernet, supernet.sort_channels())
        for group in optimizer.param_groups:
            group["lr"] = 0.5 * lr * (1 + math.cos(math.pi * step / steps))
        x, y = trainer.step_batch(step)
        x = x[rank::world].to(trainer.device, memory_format=torch.channels_last)
        y = y[rank::world].to(trainer.device)
        picks = random.Random(f"{seed}:{step}")
        left_out = [k for k in skippable if picks.random() < 0.5]  # leaving a stage out can be the larger network
        largest = largest_config(space, pick=picks.choice, skip=left_out)  # each is some step's teacher
        others = [smallest] + [space.random_config(picks.randrange(2**32)) for _ in range(recipe.random_subnets)]
        torch.manual_seed(seed * 7_919 + step)  # dropout of this step
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(trainer.device.type, enabled=use_amp):
            teacher = model(x, largest)
            loss = F.cross_entropy(teacher, y, label_smoothing=recipe.label_smoothing)
        scaler.scale(loss).backward()
        soft = teacher.detach().float().softmax(dim=1)
        for config in others:
            with torch.autocast(trainer.device.type, enabled=use_amp):
                student = model(x, config, dropout=False)
            loss = F.kl_div(student.float().log_softmax(dim=1), soft, reduction="batchmean")
            scaler.scale(loss).backward()
        scaler.step(optimizer)  # unscales the averaged gradients: every process sees the same ones
        scaler.update()
        if bar is not None:
            bar.update()
        if rank == 0 and ((step + 1) % chunk == 0 and step + 1 < steps):
            _save(checkpoint, space, recipe, step + 1, supernet.num_classes, state=supernet, optimizer=optimizer,
                  scaler=scaler)  # fmt: skip
    if bar is not None:
        bar.close()
    if rank == 0:
        seconds = time.perf_counter() - began
        _save(final, space, recipe, steps, supernet.num_classes, state=supernet, seconds=seconds, processes=world)
        checkpoint.unlink(missing_ok=True)
    if world > 1:
        _check_in_step(supernet)
    return final


def _assemble(final: Path, space: SearchSpace, recipe: SupernetRecipe, paths: list[Path]) -> None:
    """One file for the few-shot parts (``SupernetParts`` reads it); the parts' own files go."""
    records = [read_supernet(path) for path in paths]
    _save(
        final, space, recipe, recipe.steps, records[0]["num_classes"],
        seconds=sum(float(r.get("seconds", 0.0)) for r in records),  # each part's last run (a resumed one: since)
        processes=records[0].get("processes", 1),
        parts=[{key: r[key] for key in ("space_yaml", "space_hash", "state")} for r in records],
    )  # fmt: skip
    for path in paths:
        path.unlink()


def _follow(optimizer: torch.optim.Optimizer, supernet: Supernet, moves: list[Move]) -> None:
    """Reorder the optimizer's per-parameter state (SGD's momentum) as ``sort_channels`` reordered them."""
    for slot, dim, order in moves:
        tensor = supernet.shared(slot)
        for value in optimizer.state.get(tensor, {}).values():  # BN statistics have no state
            if isinstance(value, torch.Tensor) and value.shape == tensor.shape:
                value.copy_(value.index_select(dim, order.to(value.device)))


def _distributed() -> tuple[int, int]:
    """(rank, world size): one process unless started by torchrun (which sets WORLD_SIZE)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), dist.get_world_size()


def _check_in_step(supernet: nn.Module) -> None:
    """Every process must end with the same shared tensors (the averaged gradients make them so)."""
    import torch.distributed as dist

    total = torch.stack([p.detach().double().sum() for p in supernet.parameters()]).sum().reshape(1)
    totals = [torch.zeros_like(total) for _ in range(dist.get_world_size())]
    dist.all_gather(totals, total)
    if any(not torch.equal(t, totals[0]) for t in totals):
        raise NasError(f"the processes' supernets diverged (parameter sums {[float(t) for t in totals]})")


def _param_groups(supernet: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """No decay on BN weights, biases (1-D tensors) and depthwise kernels (one input channel)."""
    decay, no_decay = [], []
    for parameter in supernet.parameters():
        depthwise = parameter.dim() == 4 and parameter.shape[1] == 1
        (no_decay if parameter.dim() <= 1 or depthwise else decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _save(path: Path, space: SearchSpace, recipe: SupernetRecipe, step: int, num_classes: int, **extra: Any) -> None:
    """A supernet file: what rebuilds the space and the networks, and ``extra``: the shared tensors
    (``state``, a module) with, in a checkpoint, the optimizer and scaler; seconds, processes; a few-shot
    file's ``parts``. Objects with a state dict are kept as it."""
    record: dict[str, Any] = {
        "format": SUPERNET_FORMAT,
        "space_yaml": space.source_text(),
        "space_hash": space.hash,
        "num_classes": num_classes,
        "recipe": recipe.as_dict(),
        "step": step,
        "versions": versions(),
        **{key: value.state_dict() if hasattr(value, "state_dict") else value for key, value in extra.items()},
    }
    buffer = io.BytesIO()
    torch.save(record, buffer)
    write_bytes_atomic(path, buffer.getvalue())


def _same_setup(path: Path, record: dict[str, Any], space: SearchSpace, recipe: SupernetRecipe) -> None:
    if record.get("space_hash") != space.hash:
        raise NasError(f"{path}: trained on another space (hash {record.get('space_hash')}); use another --out")
    stored = {**LEGACY, **record.get("recipe", {})}
    differ = [f"{k} {stored.get(k)!r} (now {v!r})" for k, v in recipe.as_dict().items() if stored.get(k) != v]
    if differ:
        raise NasError(f"{path}: trained with {', '.join(differ)}; use another --out or the same settings")


def extract_weights(
    supernet: str | os.PathLike[str], config: ArchConfig | str | os.PathLike[str], out: str | os.PathLike[str]
) -> Path:
    """``config``'s weights from ``supernet``, as a state dict for ``build_model`` of the config at the
    supernet's resolution and classes (what ``nas.netadapt --weights`` and fine-tuning load)."""
    out = Path(out)
    check_file_out(out, flag="--out", example="weights.pt")
    network, _ = load_supernet(supernet)
    config = config if isinstance(config, ArchConfig) else ArchConfig.load(config)
    return save_weights(network.extract(config), out)
