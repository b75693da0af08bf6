"""python -m nas.pipeline --target T --budget B: search -> pick -> NetAdapt -> train longer -> export ->
measure -> report, in one resumable command.

The search runs at a budget ``--slack`` above B and keeps its best config; NetAdapt then trims filter
counts until the table says B (as MobileNetV3 was made: blocks by search, widths by NetAdapt). The
result is trained from scratch with one recipe per seed (references too, with --train-references, so
the comparison is like for like), exported to ONNX, timed here when the table is this machine's, and
written up in OUT/report.md. Rerunning the same command resumes every stage.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from nas import _cli
from nas._errors import NasError
from nas._paths import DEFAULT_SPACE, PROJECT_ROOT

if TYPE_CHECKING:
    from nas.latency import LatencyTable


def _parser() -> argparse.ArgumentParser:
    p = _cli.budget_parser("nas.pipeline", __doc__, budget_help="latency budget of the final network")
    p.add_argument("--space", default=str(DEFAULT_SPACE), help="search space YAML (default: %(default)s)")
    p.add_argument("--evaluator", default="flops", help="search evaluator (default: %(default)s; train for accuracy)")
    p.add_argument("--trials", type=int, default=1000, help="search trials (default: %(default)s)")
    p.add_argument("--steps", type=int, default=300, help="training steps of the train evaluator in the search")
    p.add_argument("--slack", type=float, default=0.1, help="search at budget x (1 + slack); NetAdapt trims the rest")
    p.add_argument("--data", default="digits", help="dataset for NetAdapt and the final training")
    p.add_argument("--resolution", type=int, default=32, help="training resolution (default: %(default)s)")
    p.add_argument("--short-steps", type=int, default=20, help="NetAdapt fine-tuning steps per proposal")
    p.add_argument("--init-cut", type=float, default=0.05, help="NetAdapt's first latency cut (share of the start)")
    p.add_argument("--netadapt-epochs", type=float, default=2, help="NetAdapt's initial training and long fine-tune")
    p.add_argument("--select", default="acc", choices=["acc", "acc-per-ms"], help="NetAdapt's proposal choice")
    p.add_argument("--epochs", type=float, default=10, help="final training from scratch (default: %(default)s)")
    p.add_argument("--seeds", default="0", help="final training seeds, comma-separated (default: %(default)s)")
    p.add_argument("--train-references", action="store_true", help="train MobileNetV3-Large/-Small the same way")
    p.add_argument("--seed", type=int, default=0, help="search and NetAdapt seed (default: %(default)s)")
    p.add_argument("--out", type=Path, help="run folder (default: runs/pipeline-TARGET-BUDGET)")
    return p


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        seeds = []
    if not seeds or len(set(seeds)) != len(seeds):
        raise NasError(f"--seeds {text!r}: give distinct integers separated by commas, e.g. 0,1,2")
    return seeds


def _own_table(table: LatencyTable, out: Path) -> Path | None:
    """Where NetAdapt prices widths the table lacks by timing them: on this machine's table, a copy in the
    run folder (the shipped table stays as it is). Other tables interpolate or use their model: None."""
    from nas.latency import measures_here

    if not measures_here(table):
        return None
    copy = out / "netadapt-table.yaml"
    if not copy.exists():
        table.save(copy)
    return copy


def _forget_other_pick(out: Path, picked: Path) -> None:
    """A rerun whose search now picks another config (e.g. after more --trials) trims and trains that one:
    the NetAdapt run and final training of the previous pick are removed, not mixed in."""
    from nas.config import ArchConfig

    started_from = out / "netadapt" / "start.yaml"
    if started_from.exists() and ArchConfig.load(started_from) != ArchConfig.load(picked):
        print("note: the search picked another config than last time; NetAdapt and training restart", file=sys.stderr)
        shutil.rmtree(out / "netadapt")
        shutil.rmtree(out / "final", ignore_errors=True)


def _stage(number: int, text: str) -> None:
    print(f"[{number}/4] {text}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    raw = _cli.bind_dash_value(sys.argv[1:] if argv is None else argv, "--budget")
    args = _parser().parse_args(raw)
    from nas.latency import LatencyTable
    from nas.search import parse_budget

    budget = parse_budget(args.budget)
    seeds = _seeds(args.seeds)
    if args.slack < 0:
        raise NasError(f"--slack {args.slack}: use 0 (search at the budget) or more")
    for flag in ("epochs", "netadapt_epochs"):
        if getattr(args, flag) <= 0:
            raise NasError(f"--{flag.replace('_', '-')} {getattr(args, flag):g}: use a positive number of epochs")
    table = LatencyTable.load(args.target)
    out = args.out or PROJECT_ROOT / "runs" / f"pipeline-{Path(args.target).stem}-{budget:g}ms"
    if out.exists() and not out.is_dir():
        raise NasError(f"--out {out}: is a file; give a folder for the run's results")
    out.mkdir(parents=True, exist_ok=True)
    search_budget = budget * (1 + args.slack)

    from nas.netadapt.__main__ import main as netadapt
    from nas.search.__main__ import main as search

    _stage(1, f"search {args.space} within {search_budget:g} ms ({args.trials} trials, {args.evaluator})")
    common = ["--target", args.target, "--seed", str(args.seed), "--data", args.data]
    search(
        [
            *common,
            "--budget",
            f"{search_budget}ms",
            "--space",
            args.space,
            "--evaluator",
            args.evaluator,
            "--trials",
            str(args.trials),
            "--steps",
            str(args.steps),
            "--out",
            str(out / "search"),
        ]
    )
    picked = out / "search" / "best.yaml"
    if not picked.exists():
        raise NasError(f"the search found no config within {search_budget:g} ms; raise --trials or --slack")

    _forget_other_pick(out, picked)
    _stage(2, f"NetAdapt {picked} to {budget:g} ms")
    netadapt_argv = [
        *common,
        "--config",
        str(picked),
        "--budget",
        f"{budget}ms",
        "--resolution",
        str(args.resolution),
        "--short-steps",
        str(args.short_steps),
        "--init-cut",
        str(args.init_cut),
        "--long-epochs",
        str(args.netadapt_epochs),
        "--select",
        args.select,
        "--out",
        str(out / "netadapt"),
    ]
    own = _own_table(table, out)
    netadapt(netadapt_argv + ([] if own is None else ["--target", str(own), "--measure-missing"]))
    if own is not None:  # NetAdapt's widths are priced by the copy it extended
        table = LatencyTable.load(own)

    from nas.config import ArchConfig
    from nas.pipeline._report import Entry, write_report
    from nas.pipeline._train import Recipe, train_seed, trained_network

    trimmed = out / "netadapt" / "config.yaml"
    final = replace(ArchConfig.load(trimmed if trimmed.exists() else picked), name="final")
    recipe = Recipe(data=args.data, resolution=args.resolution, epochs=args.epochs)
    _stage(3, f"training {final.name} from scratch, {args.epochs:g} epochs on {args.data}, seeds {args.seeds}")
    entries = [Entry(final, [train_seed(final, recipe, s, out / "final") for s in seeds])]
    from nas._paths import reference_configs

    for name, path in reference_configs().items():
        if name in ("mobilenetv3_large", "mobilenetv3_small"):
            reference = replace(ArchConfig.load(path), num_classes=final.num_classes)
            folder = out / "references" / name
            trained = [train_seed(reference, recipe, s, folder) for s in seeds] if args.train_references else []
            entries.append(Entry(reference, trained))

    _stage(4, "export, measure and report")
    from nas.model import export_onnx, save_weights

    final.save(out / "config.yaml")
    model = trained_network(final, recipe, seeds[0], out / "final")
    export_onnx(model, out / "model.onnx")
    save_weights(model, out / "weights.pt")
    final_row = write_report(out=out, entries=entries, table=table, budget_ms=budget, args=vars(args), recipe=recipe)
    measured = "" if final_row["measured_ms"] is None else f", {final_row['measured_ms']:.3f} ms measured here"
    print(
        f"pipeline: final network {final_row['predicted_ms']:.3f} ms predicted"
        f"{'' if table.measured else ' (ESTIMATED table)'}{measured}, held-out top-1 {final_row['accuracy']}"
    )
    print(f"report: {out / 'report.md'}   model: {out / 'model.onnx'}   config: {out / 'config.yaml'}")
    return 0


def entry() -> None:
    """Console script."""
    raise SystemExit(_cli.run(main))


if __name__ == "__main__":
    entry()
