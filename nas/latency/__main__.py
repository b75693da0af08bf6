"""python -m nas.latency: build, measure, extend, validate and show latency lookup tables.

build     enumerate a space's ops, export them to ONNX and measure them here (or --bundle DIR to
          measure on a device with `measure`)
measure   on the device: time a bundle's ONNX files (needs numpy, onnxruntime, pyyaml only)
extend    measure here the ops of configs that a table lacks, and add them
validate  time whole networks here and compare with the table's prediction
show      a table's metadata, fit and the fastest/slowest latency of its space
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nas import _cli
from nas._errors import NasError
from nas._files import check_file_out
from nas._paths import DEFAULT_SPACE, SPACES_DIR, TABLES_DIR, find_shipped, result_folder, user_tables_dir
from nas.config import ArchConfig
from nas.latency._table import LatencyTable, MeasuredTable, OpLatency


def _parser() -> argparse.ArgumentParser:
    parser = _cli.parser("nas.latency", __doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    build = sub.add_parser(
        "build",
        help="measure every op of a space here, or write a bundle for a device",
        formatter_class=_cli.HelpFormatter,
    )
    build.add_argument("--space", default=str(DEFAULT_SPACE), help="space YAML (default: %(default)s)")
    build.add_argument("--target", required=True, help="table name: writes NAME.yaml in your tables folder")
    build.add_argument(
        "--out", type=Path, help="table file to write instead (default: NAME.yaml in your tables folder)"
    )
    build.add_argument(
        "--bundle",
        type=Path,
        help="only export ONNX files + manifest here, to measure on a device (default: measure here)",
    )
    build.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads (default 1)")
    build.add_argument("--calibration", type=int, default=20, help="random networks timed whole to fit overhead")
    build.add_argument("--seed", type=int, default=0, help="seed of the calibration networks")
    build.add_argument("--device", help="device description to record (default: host name)")
    build.add_argument("--force", action="store_true", help="time again a table this machine already finished")
    _drift_flag(build)

    measure = sub.add_parser(
        "measure", help="time a bundle on this device and write the table", formatter_class=_cli.HelpFormatter
    )
    measure.add_argument("bundle", type=Path, help="folder written by build --bundle")
    measure.add_argument("--out", type=Path, required=True, help="table file to write")
    measure.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads (default 1)")
    measure.add_argument("--target", help="table name to record (default: the bundle's)")
    measure.add_argument("--device", help="device description to record (default: host name)")
    measure.add_argument("--force", action="store_true", help="time again a table this machine already finished")
    _drift_flag(measure)

    extend = sub.add_parser(
        "extend",
        help="measure here the ops of configs or of a space that a table lacks",
        formatter_class=_cli.HelpFormatter,
    )
    extend.add_argument("--target", required=True, help="table name or path")
    extend.add_argument("--config", nargs="+", default=[], help="config YAML files")
    extend.add_argument(
        "--space", help="a space file or shipped name: every op its configs can contain (default: none)"
    )
    _drift_flag(extend)

    validate = sub.add_parser(
        "validate", help="compare predictions with whole networks timed here", formatter_class=_cli.HelpFormatter
    )
    validate.add_argument("--target", required=True, help="table name or path")
    validate.add_argument("--samples", type=int, default=100, help="random configs of the space (default 100)")
    validate.add_argument("--space", help="space YAML (default: the one the table was built for)")
    validate.add_argument("--seed", type=int, default=0, help="seed of the random configs")
    validate.add_argument("--out", type=Path, help="folder for validation.csv/.png (default runs/validate-NAME)")

    estimate = sub.add_parser(
        "estimate", help="estimate the arm64 table from published ARM measurements", formatter_class=_cli.HelpFormatter
    )
    estimate.add_argument("--target", default="arm64", help="table name (default: %(default)s)")
    estimate.add_argument("--ofa", type=Path, required=True, help="folder of OFA's Note10 *_lookup_table.yaml files")
    estimate.add_argument(
        "--pixel1", type=Path, required=True, help="ProxylessNAS's Pixel-1 table (mobile_trim.yaml or its folder)"
    )
    estimate.add_argument("--space", default=str(DEFAULT_SPACE), help="space to price (default: %(default)s)")
    estimate.add_argument("--out", type=Path, help="table file (default: TARGET.yaml in your tables folder)")

    ofa = sub.add_parser(
        "import-ofa", help="convert OFA/ProxylessNAS latency lookup tables", formatter_class=_cli.HelpFormatter
    )
    ofa.add_argument("folder", type=Path, help="folder of *_lookup_table.yaml files (one per resolution)")
    ofa.add_argument("--target", required=True, help="table name, e.g. note10")
    ofa.add_argument("--device", default="Samsung Galaxy Note10", help="device the tables were measured on")
    ofa.add_argument("--space", default=str(SPACES_DIR / "ofa_mbv3_w1.2.yaml"), help="space the tables cover")
    ofa.add_argument("--out", type=Path, help="table file (default: TARGET.yaml in your tables folder)")

    show = sub.add_parser(
        "show", help="a table's metadata and its space's latency range", formatter_class=_cli.HelpFormatter
    )
    show.add_argument("--target", required=True, help="table name or path")
    show.add_argument("--config", help="explain one config op by op (default: none, the table only)")
    return parser


def _drift_flag(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--no-drift-correction",
        dest="correct_drift",
        action="store_false",
        help="keep the timings as measured; by default each is scaled by a canary timed in turn with it, so a"
        " change of the machine's speed during the run does not enter the table",
    )


def _space_of(table: LatencyTable, given: str | None):
    from nas.space import SearchSpace

    if given:
        return SearchSpace.load(given)
    file = table.metadata.get("space", {}).get("file")
    path = find_shipped(file) if file else None
    if path is None or not path.exists():
        raise NasError(f"table {table.source} does not name a space file that exists here; pass --space FILE")
    return SearchSpace.load(path)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "measure":
        from nas.latency.measure import measure_bundle

        check_file_out(args.out, flag="--out", example=f"{args.target or 'TARGET'}.yaml")  # before any timing
        before = _stamp(args.out)
        table = measure_bundle(
            args.bundle,
            args.out,
            threads=args.threads,
            device=args.device,
            target=args.target,
            force=args.force,
            correct_drift=args.correct_drift,
        )
        done = "kept" if _stamp(args.out) == before else "wrote"
        print(f"{done} {args.out}: {len(table.entries)} ops; copy it to latency_tables/ on the host")
        return 0
    if args.command == "build":
        return _build(args)
    if args.command in ("estimate", "import-ofa"):
        return _make_table(args)
    table = LatencyTable.load(args.target)
    given = getattr(args, "config", None)  # extend: several; show: one or none
    configs = [ArchConfig.load(path) for path in (given if isinstance(given, list) else [given] if given else [])]
    if notice := table.notice([op for config in configs for op in config.ops()]):
        print(notice, file=sys.stderr)
    if args.command == "extend":
        from nas.latency._build import extend_table, missing_ops
        from nas.space import SearchSpace

        if not configs and not args.space:
            raise NasError("extend: give --config FILE ... or --space SPACE (or both)")
        space = SearchSpace.load(args.space) if args.space else None
        missing_ops(table, configs, space=space)  # refused before a shipped table is copied
        table = _own_table(table)
        added = extend_table(table, configs, space=space, correct_drift=args.correct_drift)
        how = "measured" if table.measured else "estimated (by the table's model)"
        print(f"{table.source}: {how} and added {added} ops" if added else f"{table.source}: nothing missing")
    elif args.command == "validate":
        _validate(args, table)
    else:
        _show(args, table, configs[0] if configs else None)
    return 0


def _build(args: argparse.Namespace) -> int:
    from nas.latency._build import build_table, space_bundle
    from nas.space import SearchSpace

    space = SearchSpace.load(args.space)
    if args.threads < 1:
        raise NasError(f"--threads {args.threads}: use 1 or more")
    if args.bundle:
        if args.bundle.exists() and not args.bundle.is_dir():
            raise NasError(f"--bundle {args.bundle}: is a file; give a folder")
        space_bundle(args.bundle, space=space, target=args.target, calibration=args.calibration, seed=args.seed)
        print(
            f"wrote bundle {args.bundle} ({len(space.ops())} ops). On the device, with numpy, onnxruntime and"
            f" pyyaml installed and this repository's nas/ folder copied:\n  python -m nas.latency measure"
            f" {args.bundle.name} --out {args.target}.yaml\nthen copy {args.target}.yaml to latency_tables/ here."
        )
        return 0
    out = _table_out(args)
    before = _stamp(out)
    table = build_table(
        space=space,
        target=args.target,
        out=out,
        threads=args.threads,
        calibration=args.calibration,
        seed=args.seed,
        device=args.device,
        force=args.force,
        correct_drift=args.correct_drift,
    )
    o, done = table.overhead, "kept" if _stamp(out) == before else "wrote"
    print(
        f"{done} {out}: {len(table.entries)} ops; whole = {o.scale:.3f} x sum + {o.offset_ms:.3f} ms"
        f" (fit on {o.models} networks, mean error {o.mean_abs_error_pct:.1f} %)"
    )
    return 0


def _stamp(path: Path) -> int | None:
    """When a file was last written (None: no file): tells a kept table from a rewritten one."""
    return path.stat().st_mtime_ns if path.exists() else None


def _own_table(table: LatencyTable) -> LatencyTable:
    """A shipped table is extended in a copy in the user's tables folder, which then takes its place."""
    if Path(table.source).resolve().parent != TABLES_DIR.resolve():
        return table
    copy = user_tables_dir() / Path(table.source).name
    print(f"note: extending a copy of the shipped table '{table.target}': {copy}", file=sys.stderr)
    table.save(copy)
    return LatencyTable.load(copy)


def _table_out(args: argparse.Namespace) -> Path:
    """``--out``, else NAME.yaml in the user's tables folder: a shipped table is only ever replaced by
    naming its file (it then shadows nothing: the user folder is looked up first)."""
    out = args.out or user_tables_dir() / f"{args.target}.yaml"
    check_file_out(out, flag="--out", example=f"{args.target}.yaml")
    if args.out is None and (TABLES_DIR / out.name).exists():
        print(
            f"note: writing {out}; it takes the place of the shipped table '{args.target}' by that name",
            file=sys.stderr,
        )
    return out


def _make_table(args: argparse.Namespace) -> int:
    from nas.latency._build import space_info
    from nas.space import SearchSpace

    out = _table_out(args)
    space = SearchSpace.load(args.space)
    if args.command == "estimate":
        from nas.latency._arm64 import estimate_arm64

        table = estimate_arm64(args.ofa, args.pixel1, space, target=args.target)
        for t in table.metadata["transfer"].values():
            print(
                f"op model on {t['samples']} {t['source']}: leave-one-out error {t['loo_mape_pct']} %"
                f" ({t['loo_within10_pct']} % within ±10 %, worst {t['loo_worst_pct']} %)"
            )
        for line in _calibration_lines(table.metadata["calibration"]):
            print(f"  {line}")
    else:
        from nas.latency._ofa import import_ofa

        table = import_ofa(args.folder, target=args.target, device=args.device, space=space_info(space))
    table.source = str(out)
    table.save(out)
    print(f"wrote {out}: {len(table.entries)} ops{'' if table.measured else ' (ESTIMATED, measured: false)'}")
    return 0


def _calibration_lines(calibration: dict[str, list[dict[str, Any]]]) -> list[str]:
    """An estimated table's anchors: estimate against the published figure, fitted or held out."""
    lines = []
    for kind in ("fitted", "held_out"):
        for row in calibration.get(kind, []):
            cross = row.get("cross_validated_error_pct")
            without = "" if cross is None else f"; {cross:+.1f} % with factors fitted without it"
            lines.append(
                f"{kind.replace('_', ' ')}: {row['network']} estimated {row['estimated_ms']} ms, published"
                f" {row['published_ms']} ms ({row['error_pct']:+.1f} %{without})"
            )
    return lines


def _validate(args: argparse.Namespace, table: LatencyTable) -> None:
    from nas.latency._validate import summary_text, validate, validation_configs, write_summary
    from nas.latency.measure import notice_setup

    if args.samples < 0:
        raise NasError(f"--samples {args.samples}: use 0 or more")
    out = result_folder(args.out, f"validate-{table.target}")
    space = _space_of(table, args.space)
    table.check_space(space)
    notice_setup(table)  # errors then include the difference between setups
    samples = validate(table, validation_configs(space, args.samples, args.seed), out)
    text = summary_text(table, samples)
    write_summary(out, text)
    print(f"{text}\nwrote {out}/validation.csv, validation.png, summary.txt")


def _show(args: argparse.Namespace, table: LatencyTable, config: ArchConfig | None) -> None:
    from nas._paths import reference_configs
    from nas._table import format_table
    from nas.latency._bounds import space_bounds

    meta, o = table.metadata, table.overhead
    print(
        f"table {table.source}: target {table.target}, {'measured' if table.measured else 'ESTIMATED'},"
        f" {len(table.entries)} ops"
    )
    for key in ("device", "cpu", "os", "runtime", "threads", "batch", "dtype", "date", "method"):
        if key in meta:
            print(f"  {key}: {meta[key]}")
    print(f"  space: {meta.get('space')}")
    if o.models:
        print(
            f"  overhead: whole = {o.scale:.3f} x sum of ops + {o.offset_ms:.3f} ms (fit on {o.models} networks,"
            f" mean error {o.mean_abs_error_pct:.1f} %, worst {o.max_abs_error_pct:.1f} %)"
        )
    else:
        print("  overhead: none fitted; a prediction is the plain sum of ops")
    if isinstance(table, MeasuredTable):
        errors = meta.get("op_model_error_pct") or table.op_model.errors
        listed = ", ".join(f"{kind} {error:.1f} %" for kind, error in sorted(errors.items()))
        print(f"  op model (prices widths the table lacks, flagged 'modelled'): error per kind: {listed}")
    for line in _calibration_lines(meta.get("calibration", {})):
        print(f"  {line}")
    if config is not None:
        ex = table.explain(config)
        rows = [[row.op.key, round(row.ms, 4), _flags(row)] for row in ex.rows]
        print(format_table(["op", "ms", ""], rows))
        print(f"sum of ops {ex.op_sum_ms:.3f} ms -> predicted {ex.total_ms:.3f} ms")
        return
    try:
        space = _space_of(table, None)
    except NasError:
        return
    for name, path in reference_configs().items():
        if space.contains(reference := ArchConfig.load(path)):
            print(f"  {name}: predicted {table.predict(reference):.3f} ms")
    bounds = space_bounds(space, table)
    print(f"  space {space.name}: fastest {bounds.fastest_ms:.3f} ms, slowest {bounds.slowest_ms:.3f} ms")


def _flags(row: OpLatency) -> str:
    return ", ".join(flag for flag in ("interpolated", "extrapolated", "modelled") if getattr(row, flag))


def entry() -> None:
    """Console script."""
    raise SystemExit(_cli.run(main))


if __name__ == "__main__":
    entry()
