"""run_netadapt: NetAdapt as one call (the CLI parses flags and calls it)."""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas._errors import ArgumentError, check_seed
from nas._files import pyplot, save_figure
from nas._paths import result_folder
from nas.config import ArchConfig
from nas.data import Dataset
from nas.evaluate import TrainEvaluator
from nas.latency import LatencyModel, LatencyTable, MeasuredTable, load_latency, measure_here
from nas.model import Network, build_model, load_weights
from nas.netadapt._algorithm import STATE, Options, Pricer, State, minimum_widths, netadapt_loop
from nas.netadapt._units import fixed_widths, prunable_units
from nas.search import parse_budget

logger = logging.getLogger(__name__)
SELECTIONS = ("acc", "acc-per-ms")


@dataclass(frozen=True)
class NetAdaptResult:
    """A finished NetAdapt run. When the start already meets the budget nothing is trained:
    ``model`` and the accuracies are None and ``out`` was not created."""

    config: ArchConfig  # the trimmed network
    model: Network | None  # its weights after the long fine-tune
    start_ms: float
    final_ms: float  # predicted by ``latency``
    start_accuracy: float | None  # validation top-1
    final_accuracy: float | None
    history: list[dict[str, Any]]  # one row per kept proposal
    measured: dict[str, float] | None  # whole networks timed here, when the table is this machine's
    latency: LatencyModel  # what priced it (the run folder's copy with --measure-missing)
    budget_ms: float
    out: Path


def run_netadapt(
    *,
    config: ArchConfig | str | os.PathLike[str],
    latency: LatencyModel | str | os.PathLike[str],
    budget_ms: float | str,
    weights: str | os.PathLike[str] | None = None,
    data: str | Dataset = "digits",
    out: str | os.PathLike[str] | None = None,
    resolution: int = 32,
    short_steps: int = 100,
    long_epochs: float = 5,
    init_cut: float = 0.025,
    decay: float = 0.96,
    step: int = 8,
    select: str = "acc",
    measure_missing: bool = False,
    seed: int = 0,
    show_progress_bar: bool = False,
) -> NetAdaptResult:
    """Trim ``config``'s filter counts until ``latency`` predicts at most ``budget_ms`` (NetAdapt, Yang et al.
    2018, as MobileNetV3 used it): per iteration every prunable unit proposes its largest width that meets
    the iteration's latency cut, each proposal is fine-tuned ``short_steps`` and scored on the validation split,
    and the best is kept (``select``); a long fine-tune ends the run. Without ``weights`` the network is
    trained first. Calling again with the same ``out`` resumes after the last finished iteration.

    ``measure_missing`` (a table measured on this machine) times the widths the table lacks into a copy of
    it in ``out``; the given table is never changed.
    """
    budget = parse_budget(budget_ms)
    if isinstance(config, (str, os.PathLike)):
        name = Path(config).stem
        config = ArchConfig.load(config)
    else:
        name = config.name or "config"
    check_options(
        short_steps=short_steps, step=step, resolution=resolution, init_cut=init_cut, decay=decay,
        long_epochs=long_epochs, select=select, seed=seed,
    )  # fmt: skip
    latency = load_latency(latency)
    if notice := latency.notice(config.ops()):
        logger.warning(notice)
    start_ms = latency.predict(config)
    folder = result_folder(out, f"netadapt-{name}-{latency.target}-{budget:g}ms")
    if start_ms <= budget:
        logger.info(
            "nothing to do: %s already takes %.3f ms on %s, within %g ms", name, start_ms, latency.target, budget
        )
        return NetAdaptResult(config, None, start_ms, start_ms, None, None, [], None, latency, budget, folder)
    for line in fixed_widths(config):
        logger.info("fixed widths: %s", line)
    if not prunable_units(config):
        raise ArgumentError("config", name, "has no width NetAdapt can prune (see the fixed-widths lines above)")
    timed_bar = _timed_bar() if measure_missing and show_progress_bar else None
    pricer = Pricer(
        own_copy(latency, folder) if measure_missing else latency,
        measure_missing,
        None if timed_bar is None else timed_bar.update,
    )
    try:
        floor = pricer(minimum_widths(config, step))
        if floor is None:
            logger.warning(
                "note: %s cannot price the network at minimum widths (measure_missing on the machine the table was"
                " measured on would); reachability is checked as pruning goes",
                latency.target,
            )
        elif floor > budget:
            raise ArgumentError(
                "budget_ms",
                f"{budget:g} ms",
                f"is out of reach: pruning every unit to {step} channels gives {floor:.3f} ms on {latency.target};"
                " raise the budget or start from a smaller network",
            )
        if weights is not None:  # unreadable or mismatched weights are refused before the folder is made
            load_weights(build_model(config), weights)
        folder.mkdir(parents=True, exist_ok=True)
        trainer = TrainEvaluator(data=data, resolution=resolution, seed=seed, progress=show_progress_bar)
        long_steps = trainer.steps_for(long_epochs)
        run = {"target": latency.target, "budget_ms": budget}
        state = _start(config, weights, folder, trainer, long_steps, start_ms, pricer, run)
        options = Options(
            budget_ms=budget, short_steps=short_steps, init_cut=init_cut, decay=decay, step=step, select=select
        )
        state = netadapt_loop(state=state, price=pricer, trainer=trainer, options=options, out=folder)
        if state.final is None:
            trainer.finetune(state.model, long_steps, label="long-term fine-tune")
            state.final = {
                "start_ms": state.start_ms,
                "start_accuracy": state.start_accuracy,
                "final_ms": pricer(state.config),
                "final_accuracy": trainer.accuracy(state.model),
                "measured": _measured(config, state.config, pricer.table),
                "table": pricer.table.target,
                "estimated_table": not pricer.table.measured,
            }
            state.save(folder)  # the fine-tuned weights and the report in one commit (final.json with them)
        report = state.final
        _plot(folder, state, report, pricer.table, budget)
        return NetAdaptResult(
            config=state.config,
            model=state.model,
            start_ms=report["start_ms"],
            final_ms=report["final_ms"],
            start_accuracy=report["start_accuracy"],
            final_accuracy=report["final_accuracy"],
            history=state.history,
            measured=report["measured"],
            latency=pricer.table,
            budget_ms=budget,
            out=folder,
        )
    finally:
        if timed_bar is not None:
            timed_bar.close()


def check_options(
    *,
    short_steps: int = 100,
    step: int = 8,
    resolution: int = 32,
    init_cut: float = 0.025,
    decay: float = 0.96,
    long_epochs: float = 5,
    select: str = "acc",
    seed: int = 0,
) -> None:
    """NetAdapt's settings, checked before any work (the pipeline checks them before its search)."""
    for parameter, value in (("short_steps", short_steps), ("step", step), ("resolution", resolution)):
        if value < 1:
            raise ArgumentError(parameter, str(value), "use 1 or more")
    if not 0 < init_cut < 1:
        raise ArgumentError("init_cut", f"{init_cut:g}", "use a share of the start latency in (0, 1)")
    if not 0 < decay <= 1:
        raise ArgumentError("decay", f"{decay:g}", "use a factor in (0, 1]")
    if not long_epochs > 0:
        raise ArgumentError("long_epochs", f"{long_epochs:g}", "use a positive number of epochs")
    if select not in SELECTIONS:
        raise ArgumentError("select", repr(select), f"use one of {', '.join(SELECTIONS)}")
    check_seed(seed)


def _timed_bar() -> Any:
    """One counter for every op --measure-missing times, however many proposals ask for some."""
    from tqdm import tqdm

    return tqdm(desc="ops timed here", unit="op", file=sys.stderr, mininterval=0.5 if sys.stderr.isatty() else 10)


def own_copy(latency: LatencyModel, folder: Path) -> LatencyTable:
    """The run folder's copy of a measured table, which timing missing widths extends."""
    if not isinstance(latency, MeasuredTable):
        raise ArgumentError(
            "measure_missing", "True", f"needs a table measured on this machine; {latency.target} is not one"
        )
    copy = folder / "table.yaml"
    if not copy.exists():
        folder.mkdir(parents=True, exist_ok=True)
        latency.save(copy)
    return LatencyTable.load(copy)


def _start(
    config: ArchConfig,
    weights: str | os.PathLike[str] | None,
    folder: Path,
    trainer: TrainEvaluator,
    long_steps: int,
    start_ms: float,
    pricer: Pricer,
    run: dict[str, Any],
) -> State:
    """The saved state of an interrupted run of the same network toward the same target and budget, else
    a new one (trained first when no weights are given)."""
    if (folder / STATE).exists():
        started_from = folder / "start.yaml"
        if started_from.exists() and ArchConfig.load(started_from) != config:
            raise ArgumentError(
                "out", str(folder), f"holds NetAdapt of another network ({started_from}); use another folder"
            )
        state = State.load(folder)
        if state.run != run:
            raise ArgumentError(
                "out",
                str(folder),
                f"holds NetAdapt toward {state.run['budget_ms']:g} ms on {state.run['target']} (now"
                f" {run['budget_ms']:g} ms on {run['target']}); rerun with those flags or use another folder",
            )
        logger.info(
            "resuming %s: %d iterations done (%.3f ms)", folder, len(state.history), pricer(state.config) or 0.0
        )
        return state
    model = build_model(config)
    if weights is not None:
        load_weights(model, weights)
    else:
        logger.info("no weights given: training %s first (%d steps on %s)", config.name, long_steps, trainer.data.name)
        trainer.finetune(model, long_steps, lr=trainer.lr, label="initial training")
    state = State(config, model, start_ms, trainer.accuracy(model), [], run)
    config.save(folder / "start.yaml")
    state.save(folder)
    return state


def _measured(start: ArchConfig, final: ArchConfig, table: LatencyModel) -> dict[str, float] | None:
    """Whole-network latency timed here, when the table was measured on this machine."""
    times = measure_here([start, final], table)
    if times is None:
        return None
    return {"start_ms": times[0], "final_ms": times[1], "speedup": times[0] / times[1]}


def _plot(out: Path, state: State, report: dict[str, Any], table: LatencyModel, budget_ms: float) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    latency = [state.start_ms] + [row["latency_ms"] for row in state.history]
    accuracy = [state.start_accuracy] + [row["accuracy"] for row in state.history]
    ax.plot(latency, accuracy, "-o", ms=4, label="after each iteration (short fine-tune)")
    ax.scatter(
        [report["final_ms"]],
        [report["final_accuracy"]],
        marker="*",
        s=150,
        color="tab:orange",
        label="after long fine-tune",
        zorder=5,
    )
    ax.axvline(budget_ms, color="tab:red", ls="--", lw=1, label=f"budget {budget_ms:g} ms")
    ax.set_xlabel(f"latency on {table.target} (ms, {'measured' if table.measured else 'ESTIMATED'} table)")
    ax.set_ylabel("validation top-1")
    ax.invert_xaxis()
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, out / "netadapt.png")
