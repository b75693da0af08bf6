"""The NetAdapt loop (Yang et al. 2018; MobileNetV3 variant, Howard et al. 2019 section 4.2), priced by a
latency table. Every finished iteration is saved whole, so a rerun resumes at the next one."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas._errors import NasError
from nas._files import write_bytes_atomic, write_csv, write_text_atomic
from nas.config import ArchConfig
from nas.evaluate import TrainEvaluator
from nas.latency import LatencyModel, LatencyTable, UnpricedOpError
from nas.model import Network, build_model, load_weights, save_weights
from nas.netadapt._slice import prune
from nas.netadapt._units import Unit, keeps_structure, prunable_units, shrink, smallest

logger = logging.getLogger(__name__)
HISTORY = [
    "iteration",
    "unit",
    "channels_before",
    "channels_after",
    "latency_ms",
    "modelled_ops",
    "accuracy",
    "proposals",
    "seconds",
]


@dataclass(frozen=True)
class Options:
    budget_ms: float
    short_steps: int = 100
    init_cut: float = 0.025
    decay: float = 0.96
    step: int = 8
    select: str = "acc"  # "acc" (NetAdapt) or "acc-per-ms" (MobileNetV3: accuracy change per ms saved)


@dataclass(frozen=True)
class Pricer:
    """Prices configs from the table. A measured table prices widths it lacks by interpolation or its op
    model (flagged); with ``measure_missing`` (target = this machine) a config with modelled ops has its
    missing ops timed on the spot instead. A config the model cannot price at all is no candidate."""

    table: LatencyModel
    measure_missing: bool = False
    on_timed: Callable[[int], None] | None = None  # told how many ops each measurement timed (one bar for all)

    def __call__(self, config: ArchConfig) -> float | None:
        try:
            explanation = self.table.explain(config)
        except UnpricedOpError:
            if not self.measure_missing or not isinstance(self.table, LatencyTable):
                return None
        else:
            if not (self.measure_missing and explanation.modelled and isinstance(self.table, LatencyTable)):
                return explanation.total_ms
        from nas._progress import silenced
        from nas.latency._build import extend_table

        with silenced():
            timed = extend_table(self.table, [config])
        if self.on_timed is not None:
            self.on_timed(timed)
        return self.table.predict(config)

    def modelled(self, config: ArchConfig) -> int:
        """How many of the config's ops the table prices by its op model rather than by measurements."""
        try:
            return self.table.explain(config).modelled
        except UnpricedOpError:
            return 0


def largest_fitting(config: ArchConfig, unit: Unit, target_ms: float, price: Pricer, step: int) -> int | None:
    """The largest channel count (a multiple of ``step`` below the current one) that meets ``target_ms``."""
    for channels in range((unit.channels - 1) // step * step, step - 1, -step):
        if not keeps_structure(config, unit, channels):
            continue
        latency = price(shrink(config, unit, channels))
        if latency is not None and latency <= target_ms:
            return channels
    return None


def minimum_widths(config: ArchConfig, step: int) -> ArchConfig:
    """Every unit at its minimum width (widths first, then expansions): the fastest network pruning can reach."""
    for unit in sorted(prunable_units(config), key=lambda u: u.kind != "width"):
        unit = next(u for u in prunable_units(config) if u.kind == unit.kind and u.layers == unit.layers)
        config = shrink(config, unit, smallest(config, unit, step))
    return config


STATE = "state.json"  # the commit record: names the files of the last finished iteration
SAVED = "state"  # the folder of iteration files; only those the record names survive a save
PUBLISHED = {"config": "config.yaml", "weights": "weights.pt"}  # the readable copies of the record's network


@dataclass
class State:
    """What a run has finished: the network after the last iteration and the history that led to it;
    ``run`` names the target and budget it works toward, ``final`` the report once the long fine-tune
    is done."""

    config: ArchConfig
    model: Network
    start_ms: float
    start_accuracy: float
    history: list[dict[str, Any]]
    run: dict[str, Any]
    final: dict[str, Any] | None = None

    def save(self, out: Path) -> None:
        """All or nothing: the iteration's weights and config under new names, then the record naming them
        (one atomic rename: a kill before it leaves the previous iteration whole), then the readable
        copies and the cleanup, both redone from the record by ``load`` if a kill stops them."""
        stamp = f"{len(self.history):04d}{'-final' if self.final else ''}"
        (out / SAVED).mkdir(exist_ok=True)
        save_weights(self.model, out / SAVED / f"{stamp}.pt")
        self.config.save(out / SAVED / f"{stamp}.yaml")
        record = {
            "run": self.run,
            "weights": f"{SAVED}/{stamp}.pt",
            "config": f"{SAVED}/{stamp}.yaml",
            "start_ms": self.start_ms,
            "start_accuracy": self.start_accuracy,
            "history": self.history,
            "final": self.final,
        }
        write_text_atomic(out / STATE, json.dumps(record, indent=1))
        _publish(out, record)

    @classmethod
    def load(cls, out: Path) -> State:
        """The last finished iteration; a record or file that cannot be read is one line naming it."""
        path = out / STATE
        try:
            record = json.loads(path.read_text())
            files = {key: out / record[key] for key in ("config", "weights")}
            run, start = record["run"], (float(record["start_ms"]), float(record["start_accuracy"]))
            history, final = list(record["history"]), record["final"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise NasError(
                f"{path}: not a NetAdapt state this version can resume ({type(exc).__name__}); use another --out"
            ) from None
        config = ArchConfig.load(files["config"])
        model = build_model(config)
        load_weights(model, files["weights"])
        _publish(out, record)
        return cls(config, model, *start, history, run, final)

    @property
    def accuracy(self) -> float:
        return self.history[-1]["accuracy"] if self.history else self.start_accuracy


def _publish(out: Path, record: dict[str, Any]) -> None:
    """The record's network as config.yaml and weights.pt, its history.csv and final.json, and no iteration
    file the record does not name (a kill mid-save leaves some)."""
    for name in ("config", "weights"):
        write_bytes_atomic(out / PUBLISHED[name], (out / record[name]).read_bytes())
    write_csv(out / "history.csv", HISTORY, [[row.get(k, "") for k in HISTORY] for row in record["history"]])
    if record["final"] is not None:
        write_text_atomic(out / "final.json", json.dumps(record["final"], indent=1))
    named = {out / record["config"], out / record["weights"]}
    for leftover in (out / SAVED).iterdir():
        if leftover not in named:
            leftover.unlink()


def netadapt_loop(*, state: State, price: Pricer, trainer: TrainEvaluator, options: Options, out: Path) -> State:
    """Iterate until the predicted latency is within budget; ``state`` is saved after every iteration."""
    latency = price(state.config)
    while latency > options.budget_ms:
        iteration = len(state.history) + 1
        cut = options.init_cut * options.decay ** (iteration - 1) * state.start_ms
        target = max(latency - cut, options.budget_ms)
        began, proposals = time.perf_counter(), []
        units = prunable_units(state.config)
        for n, unit in enumerate(units, 1):
            channels = largest_fitting(state.config, unit, target, price, options.step)
            if channels is None:
                continue
            candidate = prune(state.model, unit, channels)
            trainer.finetune(candidate, options.short_steps, label=f"{unit.name} -> {channels}")
            accuracy = trainer.accuracy(candidate)
            proposal_ms = price(candidate.config)
            proposals.append((accuracy, proposal_ms, unit, channels, candidate))
            logger.info(
                "  iteration %d, proposal %d/%d: %s %d -> %d, %.3f ms, validation accuracy %.4f",
                *(iteration, n, len(units), unit.name, unit.channels, channels, proposal_ms, accuracy),
            )
        if not proposals:
            raise NasError(f"no unit can shrink to reach {target:.3f} ms by the table")
        if options.select == "acc":
            chosen = max(proposals, key=lambda p: (p[0], -p[1]))
        else:
            chosen = max(proposals, key=lambda p: (p[0] - state.accuracy) / max(latency - p[1], 1e-9))
        accuracy, latency, unit, channels, model = chosen
        state.history.append(
            {
                "iteration": iteration,
                "unit": unit.name,
                "channels_before": unit.channels,
                "channels_after": channels,
                "latency_ms": round(latency, 4),
                "modelled_ops": price.modelled(model.config),
                "accuracy": round(accuracy, 5),
                "proposals": len(proposals),
                "seconds": round(time.perf_counter() - began, 1),
            }
        )
        state.config, state.model = model.config, model
        state.save(out)
        logger.info(
            "iteration %d: kept %s %d -> %d: %.3f ms, validation accuracy %.4f",
            *(iteration, unit.name, unit.channels, channels, latency, accuracy),
        )
    return state
