"""python -m nas.netadapt --config C --target T --budget 45ms: trim filter counts until the table says the
network meets the budget (NetAdapt: short fine-tune per proposal, long fine-tune at the end)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas import _cli
from nas._errors import NasError
from nas._paths import PROJECT_ROOT

if TYPE_CHECKING:
    from nas.config import ArchConfig
    from nas.latency import LatencyTable
    from nas.netadapt._algorithm import State


def _parser() -> argparse.ArgumentParser:
    p = _cli.budget_parser("nas.netadapt", __doc__, budget_help="latency budget")
    p.add_argument("--config", required=True, help="the network to trim (config YAML)")
    p.add_argument("--weights", help="its trained weights (state dict); without them it is trained first")
    p.add_argument("--data", default="digits", help="dataset for fine-tuning and held-out accuracy")
    p.add_argument("--resolution", type=int, default=32, help="training resolution (default: %(default)s)")
    p.add_argument("--short-steps", type=int, default=100, help="fine-tuning steps per proposal")
    p.add_argument("--long-epochs", type=float, default=5, help="fine-tuning epochs at the end")
    p.add_argument("--init-cut", type=float, default=0.025, help="first latency cut, share of the start latency")
    p.add_argument("--decay", type=float, default=0.96, help="cut decay per iteration (1 for MobileNetV3's fixed 1 %%)")
    p.add_argument("--step", type=int, default=8, help="channel granularity (default: %(default)s)")
    p.add_argument("--select", default="acc", choices=["acc", "acc-per-ms"], help="how the kept proposal is chosen")
    p.add_argument(
        "--measure-missing",
        action="store_true",
        help="time ops the table lacks here (only for a table measured on this machine)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, help="run folder (default: runs/netadapt-CONFIG-TARGET-BUDGET)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(_cli.bind_dash_value(sys.argv[1:] if argv is None else argv, "--budget"))
    from nas.config import ArchConfig
    from nas.latency import LatencyTable
    from nas.search import parse_budget

    budget = parse_budget(args.budget)
    for flag in ("short_steps", "step", "resolution"):
        if getattr(args, flag) < 1:
            raise NasError(f"--{flag.replace('_', '-')} {getattr(args, flag)}: use 1 or more")
    if not 0 < args.init_cut < 1 or not 0 < args.decay <= 1:
        raise NasError("--init-cut must be in (0, 1) and --decay in (0, 1]")
    config = ArchConfig.load(args.config)
    table = LatencyTable.load(args.target)
    if notice := table.notice():
        print(notice, file=sys.stderr)
    start_ms = table.predict(config)
    if start_ms <= budget:
        print(f"nothing to do: {args.config} already takes {start_ms:.3f} ms on {table.target}, within {budget:g} ms")
        return 0
    from nas.netadapt._algorithm import Options, Pricer, State, minimum_widths, run_netadapt

    price = Pricer(table, args.measure_missing)
    floor = price(minimum_widths(config, args.step))
    if floor is None:
        print(
            f"note: {table.target} cannot price the network at minimum widths (add --measure-missing on the"
            " machine the table was measured on); reachability is checked as pruning goes",
            file=sys.stderr,
        )
    elif floor > budget:
        raise NasError(
            f"--budget {budget:g} ms is out of reach: pruning every unit to {args.step} channels gives"
            f" {floor:.3f} ms on {table.target}; raise the budget or start from a smaller network"
        )
    out = args.out or PROJECT_ROOT / "runs" / f"netadapt-{Path(args.config).stem}-{table.target}-{budget:g}ms"
    if out.exists() and not out.is_dir():
        raise NasError(f"--out {out}: is a file; give a folder for the run's results")
    out.mkdir(parents=True, exist_ok=True)

    from nas.evaluate import TrainEvaluator
    from nas.model import build_model, load_weights

    trainer = TrainEvaluator(data=args.data, resolution=args.resolution, seed=args.seed, progress=sys.stderr.isatty())
    long_steps = trainer.steps_for(args.long_epochs)
    if (out / "state.json").exists():
        started_from = out / "start.yaml"
        if started_from.exists() and ArchConfig.load(started_from) != config:
            raise NasError(
                f"--out {out} holds NetAdapt of another network ({started_from}); give another --out or delete it"
            )
        state = State.load(out)
        print(
            f"resuming {out}: {len(state.history)} iterations done ({price(state.config):.3f} ms)",
            file=sys.stderr,
        )
    else:
        model = build_model(config)
        if args.weights:
            load_weights(model, args.weights)
        else:
            print(
                f"no --weights: training {args.config} first ({long_steps} steps on {trainer.data.name})",
                file=sys.stderr,
            )
            trainer.finetune(model, long_steps, lr=trainer.lr, label="initial training")
        state = State(config, model, start_ms, trainer.accuracy(model), [])
        config.save(out / "start.yaml")
        state.save(out)
    options = Options(
        budget_ms=budget,
        short_steps=args.short_steps,
        init_cut=args.init_cut,
        decay=args.decay,
        step=args.step,
        select=args.select,
    )
    state = run_netadapt(state=state, price=price, trainer=trainer, options=options, out=out)
    final = out / "final.json"
    if not final.exists():
        trainer.finetune(state.model, long_steps, label="long-term fine-tune")
        state.save(out)
        report = {
            "start_ms": state.start_ms,
            "start_accuracy": state.start_accuracy,
            "final_ms": price(state.config),
            "final_accuracy": trainer.accuracy(state.model),
            "measured": _measured(config, state.config, table),
            "table": table.target,
            "estimated_table": not table.measured,
        }
        from nas._files import write_text_atomic

        write_text_atomic(final, json.dumps(report, indent=1))
    report = json.loads(final.read_text())
    _plot(out, state, report, table, budget)
    print(
        f"netadapt: {len(state.history)} iterations, {report['start_ms']:.3f} -> {report['final_ms']:.3f} ms"
        f" predicted{'' if table.measured else ' (ESTIMATED table)'}, held-out accuracy"
        f" {report['start_accuracy']:.4f} -> {report['final_accuracy']:.4f}"
    )
    if report["measured"]:
        m = report["measured"]
        print(f"measured here: {m['start_ms']:.3f} -> {m['final_ms']:.3f} ms ({m['speedup']:.2f}x)")
    print(f"config: {out / 'config.yaml'}   weights: {out / 'weights.pt'}   history: {out / 'history.csv'}")
    return 0


def _measured(start: ArchConfig, final: ArchConfig, table: LatencyTable) -> dict[str, float] | None:
    """Whole-network latency timed here, when the table was measured on this machine."""
    from nas.latency import measure_here

    times = measure_here([start, final], table)
    if times is None:
        return None
    return {"start_ms": times[0], "final_ms": times[1], "speedup": times[0] / times[1]}


def _plot(out: Path, state: State, report: dict[str, Any], table: LatencyTable, budget_ms: float) -> None:
    from nas._files import pyplot, save_figure

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
    ax.set_ylabel("held-out top-1")
    ax.invert_xaxis()
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, out / "netadapt.png")


if __name__ == "__main__":
    raise SystemExit(_cli.run(main))
