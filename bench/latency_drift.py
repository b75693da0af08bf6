"""Does drift correction keep a latency table right when the machine's speed changes during a build?

Exports one bundle of the default space, then measures it twice on this machine, pinned to core 0: once
quiet, and once with a CPU-bound process started on core 1 (``--same-core``: on core 0) partway through.
Every file is timed run by run in turn with a canary, and each run keeps its raw timings, so each
gives two tables: drift-corrected by the canary, with the files whose canary ran slow timed again (what
``measure`` writes), and the first pass as timed (``--no-drift-correction``). Reports the drift the
canary saw, how well the two runs agree op by op and on whole networks (absolute: the table's level), and
how each table validates in ratio form: networks timed here afterwards, quiet, each timed run by run in
turn with a reference network (MobileNetV3-Large), so the check itself does not drift.

    python bench/latency_drift.py [--calibration 8] [--networks 20] [--at 0.4] [--same-core] [--work DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from nas import ArchConfig, SearchSpace
from nas._paths import DEFAULT_SPACE
from nas.latency import LatencyTable
from nas.latency._build import references_and_samples, space_bundle
from nas.latency._validate import Sample, summarize, validate
from nas.latency.measure import measure_bundle, partial_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calibration", type=int, default=8, help="whole networks in the bundle")
    parser.add_argument("--networks", type=int, default=20, help="random networks validated (plus the references)")
    parser.add_argument("--at", type=float, default=0.4, help="share of the quiet run's time before the load starts")
    parser.add_argument("--same-core", action="store_true", help="load the measuring core itself")
    parser.add_argument("--work", type=Path, help="folder for bundle, tables and records (default: a temp folder)")
    args = parser.parse_args()
    os.sched_setaffinity(0, {0})
    work = args.work or Path(tempfile.mkdtemp(prefix="latency-drift-"))
    space = SearchSpace.load(DEFAULT_SPACE)
    bundle = work / "bundle"
    if not (bundle / "manifest.yaml").exists():
        space_bundle(bundle, space=space, target="drift", calibration=args.calibration)

    start = time.perf_counter()
    tables = {"quiet": _measure(bundle, work, "quiet")}
    quiet_s = time.perf_counter() - start
    load_core = 0 if args.same_core else 1
    hog: list[subprocess.Popen[bytes]] = []

    def start_load() -> None:
        hog.append(subprocess.Popen([sys.executable, "-c", "while True: pass"]))
        os.sched_setaffinity(hog[0].pid, {load_core})

    timer = threading.Timer(args.at * quiet_s, start_load)
    timer.start()
    try:
        tables["loaded"] = _measure(bundle, work, "loaded")
    finally:
        timer.cancel()
        for process in hog:
            process.kill()
    print(
        f"bundle: {len(tables['quiet']['corrected'].entries)} ops of {space.name}; quiet run {quiet_s:.0f} s; a"
        f" CPU-bound process on core {load_core} from {args.at:.0%} of that time (measurement on core 0)"
    )
    for run, pair in tables.items():
        drift = pair["uncorrected"].metadata["drift"]
        print(
            f"{run}: canary {drift['canary']} timed {drift['canaries']} times, level {drift['min_pct']:+.1f} % to"
            f" {drift['max_pct']:+.1f} % of its level (p10 over the run), {drift['end_pct']:+.1f} % at the end"
        )

    print("\nop by op, loaded run / quiet run (latency_ms of each entry):")
    for kind in ("corrected", "uncorrected"):
        quiet, loaded = tables["quiet"][kind].entries, tables["loaded"][kind].entries
        ratios = np.array([loaded[key][0] / quiet[key][0] for key in quiet])
        print(
            f"  {kind:11s}: median ratio {np.median(ratios):.3f}, median |ratio - 1| {_pct(ratios):.1f} %,"
            f" p90 {np.percentile(np.abs(ratios - 1), 90) * 100:.1f} %"
        )

    configs = references_and_samples(space, args.networks, stream="latency-drift", prefix="sample", digits=3)
    print("whole networks, loaded run / quiet run (each table's prediction, overhead included):")
    for kind in ("corrected", "uncorrected"):
        quiet, loaded = tables["quiet"][kind], tables["loaded"][kind]
        ratios = np.array([loaded.predict(config) / quiet.predict(config) for config in configs.values()])
        print(f"  {kind:11s}: median ratio {np.median(ratios):.3f}, median |ratio - 1| {_pct(ratios):.1f} %")
    samples = validate(tables["quiet"]["corrected"], configs, work / "validate")  # timed quiet, after both runs
    print(f"\nvalidation on {len(samples)} networks timed here, quiet, each alternated with {samples[0].name}:")
    print("| table | ratio form: MAPE | within ±5 % | Spearman | absolute MAPE | oracle line |")
    print("|---|---|---|---|---|---|")
    for run, pair in tables.items():
        for kind, table in pair.items():
            scored = _predicted_by(table, samples, configs)
            ratio, absolute = summarize(scored, ratio=True), summarize(scored)
            print(
                f"| {run}, {kind} | {ratio.mape:.2f} % | {ratio.within5:.0f} % | {ratio.spearman:.3f} |"
                f" {absolute.mape:.2f} % | {_oracle_mape(table, samples, configs):.2f} % |"
            )
    print("(oracle line: the table's op sums with a scale and offset fitted on these networks themselves)")
    print(f"\nfiles: {work}")


def _measure(bundle: Path, work: Path, run: str) -> dict[str, LatencyTable]:
    """One measurement of the bundle: its drift-corrected table (what ``measure`` writes) and its first
    pass's raw timings uncorrected (what ``--no-drift-correction`` writes)."""
    record = work / f"{run}.jsonl"
    corrected = measure_bundle(bundle, work / f"{run}-corrected.yaml", keep_record=record, force=True)
    lines = record.read_text().splitlines()
    first_pass = [line for line in lines if '"again": true' not in line]
    print(f"{run}: {len(lines) - len(first_pass)} of {len(first_pass) - 1} files timed again (their canary ran slow)")
    raw = work / f"{run}.yaml"
    partial_path(raw).write_text("\n".join(first_pass) + "\n")  # every file is in it: this only assembles
    uncorrected = measure_bundle(bundle, raw, force=True, correct_drift=False)
    return {"corrected": corrected, "uncorrected": uncorrected}


def _pct(ratios: np.ndarray) -> float:
    return float(np.median(np.abs(ratios - 1)) * 100)


def _oracle_mape(table: LatencyTable, samples: list[Sample], configs: dict[str, ArchConfig]) -> float:
    """Ratio-form MAPE of the table's op sums under a scale and offset fitted on the validation networks
    themselves: the best any overhead calibration could do with the table's ops, so what is left is theirs."""
    sums = np.array([table.explain(configs[s.name]).op_sum_ms for s in samples])
    measured = np.array([s.measured_ms / s.reference_ms for s in samples])  # ratio to the reference
    scale, offset = np.polyfit(sums, measured, 1)
    fitted = scale * sums + offset
    return float(np.mean(np.abs(fitted / fitted[0] / measured - 1)) * 100)


def _predicted_by(table: LatencyTable, samples: list[Sample], configs: dict[str, ArchConfig]) -> list[Sample]:
    """The validation's measurements with ``table``'s predictions."""
    reference = table.predict(configs[samples[0].name])
    return [replace(s, predicted_ms=table.predict(configs[s.name]), reference_predicted_ms=reference) for s in samples]


if __name__ == "__main__":
    main()
