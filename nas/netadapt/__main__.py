"""python -m nas.netadapt --config C --target T --budget 45ms: trim filter counts until the table says the
network meets the budget (NetAdapt: short fine-tune per proposal, long fine-tune at the end)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from nas import _cli

FLAGS = {"budget_ms": "--budget", "latency": "--target"}


def _parser() -> argparse.ArgumentParser:
    p = _cli.budget_parser("nas.netadapt", __doc__, budget_help="latency budget")
    p.add_argument("--config", required=True, help="the network to trim (config YAML)")
    p.add_argument("--weights", help="its trained weights (state dict); default: none, it is trained first")
    p.add_argument("--data", default="digits", help="dataset for fine-tuning and validation accuracy")
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
        help="time ops the table lacks here, into a copy in the run folder (a table measured on this machine)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the training and fine-tuning")
    p.add_argument("--out", type=Path, help="run folder (default: runs/netadapt-CONFIG-TARGET-BUDGET)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(_cli.bind_dash_value(sys.argv[1:] if argv is None else argv, "--budget"))
    from nas.latency import latency_basis
    from nas.netadapt import run_netadapt

    result = run_netadapt(
        config=args.config,
        latency=args.target,
        budget_ms=args.budget,
        weights=args.weights,
        data=args.data,
        out=args.out,
        resolution=args.resolution,
        short_steps=args.short_steps,
        long_epochs=args.long_epochs,
        init_cut=args.init_cut,
        decay=args.decay,
        step=args.step,
        select=args.select,
        measure_missing=args.measure_missing,
        seed=args.seed,
        show_progress_bar=sys.stderr.isatty(),
    )
    if result.model is None:
        print(
            f"nothing to do: {args.config} already takes {result.start_ms:.3f} ms as predicted by"
            f" {latency_basis(result.latency)}, within {result.budget_ms:g} ms"
        )
        return 0
    print(
        f"netadapt: {len(result.history)} iterations, {result.start_ms:.3f} -> {result.final_ms:.3f} ms"
        f" predicted{'' if result.latency.measured else ' (ESTIMATED table)'}, validation accuracy"
        f" {result.start_accuracy:.4f} -> {result.final_accuracy:.4f}"
    )
    if result.measured:
        m = result.measured
        print(f"measured here: {m['start_ms']:.3f} -> {m['final_ms']:.3f} ms ({m['speedup']:.2f}x)")
    out = result.out
    print(f"config: {out / 'config.yaml'}   weights: {out / 'weights.pt'}   history: {out / 'history.csv'}")
    return 0


def entry() -> None:
    """Console script."""
    raise SystemExit(_cli.run(main, flags=FLAGS))


if __name__ == "__main__":
    entry()
