"""python -m nas.pipeline --target T --budget B: search -> pick -> NetAdapt -> train longer -> export ->
measure -> report, in one resumable command.

The search runs at a budget ``--slack`` above B and keeps its best config; NetAdapt then trims filter
counts until the table says B (as MobileNetV3 was made: blocks by search, widths by NetAdapt). The
result is trained from scratch with one recipe per seed, MobileNetV3-Large/-Small too (a like-for-like
comparison; three seeds, so the verdict says whether a gap is beyond the noise), exported to ONNX, timed
here when the table is this machine's, and written up in OUT/report.md. Rerunning the same command
resumes every stage.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from nas import _cli
from nas.search._run import DEFAULT_SPACE

FLAGS = {"budget_ms": "--budget", "latency": "--target", "warm_start": "--warm-start"}


def _parser() -> argparse.ArgumentParser:
    p = _cli.budget_parser("nas.pipeline", __doc__, budget_help="latency budget of the final network")
    p.add_argument("--space", default=DEFAULT_SPACE, help="search space YAML or shipped name (default: %(default)s)")
    p.add_argument(
        "--evaluator", default="flops", help=f"search evaluator: one of {_cli.EVALUATOR_NAMES} (default: %(default)s)"
    )
    p.add_argument("--trials", type=int, default=1000, help="search trials (default: %(default)s)")
    _cli.add_evaluator_flags(p)
    _cli.add_warm_start_flag(p)
    p.add_argument("--slack", type=float, default=0.1, help="search at budget x (1 + slack); NetAdapt trims the rest")
    p.add_argument(
        "--data", help="dataset for NetAdapt and the final training (default: digits; on a supernet, its own)"
    )
    p.add_argument("--resolution", type=int, help="training resolution (default: 32; on a supernet, its own)")
    p.add_argument(
        "--short-steps",
        type=int,
        default=20,
        help="NetAdapt's fine-tuning steps per proposal (default: %(default)s; nas.netadapt's is 100: here the"
        " result is trained from scratch afterwards, so the fine-tunes only rank proposals)",
    )
    p.add_argument(
        "--init-cut",
        type=float,
        default=0.05,
        help="NetAdapt's first latency cut, share of the start (default: %(default)s; nas.netadapt's is 0.025:"
        " here the start is at most --slack above the budget)",
    )
    p.add_argument(
        "--netadapt-epochs",
        type=float,
        default=2,
        help="NetAdapt's initial training and long fine-tune, its --long-epochs (default: %(default)s;"
        " nas.netadapt's is 5: here its weights are not kept)",
    )
    p.add_argument("--select", default="acc", choices=["acc", "acc-per-ms"], help="NetAdapt's proposal choice")
    p.add_argument(
        "--epochs",
        type=float,
        default=10,
        help="final training, from scratch or from supernet weights (default: %(default)s)",
    )
    p.add_argument("--seeds", default="0,1,2", help="final training seeds, comma-separated (default: %(default)s)")
    p.add_argument(
        "--train-references",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="train MobileNetV3-Large/-Small with the same recipe and seeds (default: on)",
    )
    p.add_argument("--seed", type=int, default=0, help="search and NetAdapt seed (default: %(default)s)")
    p.add_argument("--out", type=Path, help="run folder (default: runs/pipeline-TARGET-BUDGET)")
    return p


def _seeds(text: str) -> list[int]:
    from nas._errors import ArgumentError

    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        seeds = []
    if not seeds or len(set(seeds)) != len(seeds):
        raise ArgumentError("seeds", repr(text), "give distinct integers separated by commas, e.g. 0,1,2")
    return seeds


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(_cli.bind_dash_value(sys.argv[1:] if argv is None else argv, "--budget"))
    _cli.quiet_optuna()
    from nas.data import load_dataset
    from nas.evaluate import get_evaluator
    from nas.pipeline import run_pipeline

    seeds = _seeds(args.seeds)
    data = (
        load_dataset(args.data or "digits") if args.evaluator == "train" else args.data
    )  # loaded once: the search's and training's
    evaluator = get_evaluator(args.evaluator, **_cli.evaluator_options(args, data=data, uses_data=True))
    result = run_pipeline(
        latency=args.target,
        budget_ms=args.budget,
        space=args.space,
        evaluator=evaluator,
        trials=args.trials,
        warm_start=args.warm_start,
        slack=args.slack,
        data=args.data,
        resolution=args.resolution,
        short_steps=args.short_steps,
        init_cut=args.init_cut,
        netadapt_epochs=args.netadapt_epochs,
        select=args.select,
        epochs=args.epochs,
        seeds=seeds,
        train_references=args.train_references,
        seed=args.seed,
        out=args.out,
        show_progress_bar=True,
    )
    row = result.final
    measured = "" if row["measured_ms"] is None else f", {row['measured_ms']:.3f} ms measured here"
    estimated = "" if result.netadapt.latency.measured else " (ESTIMATED table)"
    print(
        f"pipeline: final network {row['predicted_ms']:.3f} ms predicted{estimated}{measured},"
        f" test top-1 {row['accuracy']}"
    )
    out = result.out
    print(f"report: {out / 'report.md'}   model: {out / 'model.onnx'}   config: {out / 'config.yaml'}")
    return 0


def entry() -> None:
    """Console script."""
    raise SystemExit(_cli.run(main, flags=FLAGS))


if __name__ == "__main__":
    entry()
