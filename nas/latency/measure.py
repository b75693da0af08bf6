"""Device side: time a bundle's ONNX files with onnxruntime and write a latency table.

Needs only numpy, onnxruntime and yaml on the device (tests check that torch is never imported).

Each op is timed inside a context (1x1 conv -> op -> 1x1 conv, leading from and to 16 channels) so
that onnxruntime lays it out and fuses it as inside a network; half of a two-conv chain at each side's
activation shape is then subtracted (nas/model/_op_module.py says why the context is narrow). The
statistic is the 10th percentile of single-inference times: on a busy or virtual machine interference
only ever adds time, and the low percentile is the most repeatable estimate of the op's own cost
(bench/RESULTS.md compares median, p10 and minimum).

Results are appended to ``TABLE.partial.jsonl`` as they come, so an interrupted run resumes where it
stopped; the table is written once, atomically, when everything is measured.
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from nas._errors import NasError
from nas._progress import progress
from nas.config import Op
from nas.latency._bundle import Manifest, key_shape, read_manifest, shape_key
from nas.latency._table import LatencyTable, MeasuredTable, fit_overhead

logger = logging.getLogger(__name__)

BATCH_RUNS = 10
MIN_LATENCY_MS = 0.001  # floor for an op whose context-corrected time rounds to nothing
ROW = "[latency_ms (p10, in context), p50_ms, p90_ms, runs]"
TREND_FILES = 21  # running median over this many canary timings: the drift recorded in the metadata
SLOW = 1.15  # a file whose canary ran this much over the level is timed once more (see measure_bundle)
RATIO = "ratio:"  # record names of calibration networks timed in turn with the first one, not the canary
LEVEL, LEVELS = "level:", 10  # record names of the first calibration network's timings spread over the run
DRIFT = (
    "drift-corrected: every file timed run by run in turn with a canary (the bundle's two-conv chain of median"
    f" cost) and scaled by the canary's level (p10 of its timings over the run) / its own canary timing; a file"
    f" whose canary ran over {SLOW:g} x the level timed once more, the attempt with the faster canary kept"
)  # method note of a table measured with correct_drift


def method(context: int | None) -> str:
    """The table's method note for a bundle whose context convs lead from and to ``context`` channels (None:
    the op's own widths, bundles exported before 2026-12-04)."""
    widths = f"from and to {context} channels" if context is not None else "at the op's own widths"
    return (
        f"onnxruntime CPUExecutionProvider, batch 1; each op timed between two 1x1 convs ({widths}), minus half"
        " a two-conv chain at each side's shape; p10 of single-inference times, batches of 10 runs until p10"
        " moves < 1 %; calibration networks priced by their ratio to the first one, timed run by run in turn"
        f" with it, and the first one at the p10 of {LEVELS} timings spread over the run"
    )


@dataclass(frozen=True)
class Timing:
    """Single-inference times of one ONNX file, in ms; ``ms`` is the statistic tables use (p10)."""

    p10_ms: float
    median_ms: float
    p90_ms: float
    count: int

    @property
    def ms(self) -> float:
        return self.p10_ms

    def scaled(self, factor: float) -> Timing:
        return Timing(self.p10_ms * factor, self.median_ms * factor, self.p90_ms * factor, self.count)


def time_onnx(
    path: str | os.PathLike[str],
    *,
    threads: int = 1,
    min_runs: int = 60,
    max_seconds: float = 3.0,
    tolerance: float = 0.01,
) -> Timing:
    """Warm up, then time batches of runs until adding a batch moves p10 by less than ``tolerance``.

    One session at a time, created and destroyed here: with several intra-op threads, idle open
    sessions spin and steal cores (MEASURED.md).
    """
    return time_alternated([path], threads=threads, min_runs=min_runs, max_seconds=max_seconds, tolerance=tolerance)[0]


def time_alternated(
    paths: Sequence[str | os.PathLike[str]],
    *,
    threads: int = 1,
    min_runs: int = 60,
    max_seconds: float = 3.0,
    tolerance: float = 0.01,
) -> list[Timing]:
    """Time several ONNX files run by run in turn (the first file first in one round, second in the next),
    until adding a batch moves no file's p10 by ``tolerance`` or more.

    A ratio of two files' timings taken this way holds still while the machine's speed moves: on the 2 vCPU
    VM its spread was 0.5-0.8 % against 2-9 % for the same ratio timed block by block
    (bench/latency_alternation.py). With several files and several threads, idle sessions do not spin
    (they would steal the running session's cores), which can cost a little latency on each run.
    """
    sessions = [OpenSession(path, threads=threads, spin=len(paths) == 1) for path in paths]
    return time_sessions(sessions, min_runs=min_runs, max_seconds=max_seconds, tolerance=tolerance)


class OpenSession:
    """An onnxruntime session with its input, run one inference at a time so that several can take turns
    (``time_sessions``)."""

    def __init__(self, path: str | os.PathLike[str], *, threads: int, spin: bool) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if not spin:  # an idle session's threads would spin on the cores another session runs on
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        given = self.session.get_inputs()[0]
        shape = [d if isinstance(d, int) else 1 for d in given.shape]
        self.feed = {given.name: np.random.default_rng(0).standard_normal(shape, dtype=np.float32)}

    def run(self) -> float:
        """One inference, in ms."""
        start = time.perf_counter_ns()
        self.session.run(None, self.feed)
        return (time.perf_counter_ns() - start) / 1e6


def time_sessions(
    sessions: Sequence[OpenSession], *, min_runs: int = 60, max_seconds: float = 3.0, tolerance: float = 0.01
) -> list[Timing]:
    """Warm up, then time open sessions run by run in turn (see ``time_alternated``)."""
    warm_until = time.perf_counter() + 0.05
    for _ in range(3):
        _round(sessions, 0)
    while time.perf_counter() < warm_until:
        _round(sessions, 0)
    times: list[list[float]] = [[] for _ in sessions]
    stop_at = time.perf_counter() + max_seconds * len(sessions)
    rounds = 0
    while True:
        for _ in range(BATCH_RUNS):
            for i, ms in _round(sessions, rounds):
                times[i].append(ms)
            rounds += 1
        if rounds >= min_runs and (
            time.perf_counter() > stop_at or all(_steady(file_times, tolerance) for file_times in times)
        ):
            break
    return [Timing(*map(float, np.percentile(t, [10, 50, 90])), len(t)) for t in times]


def _round(sessions: Sequence[OpenSession], turn: int) -> list[tuple[int, float]]:
    """One run of each session, starting with session ``turn`` (mod their number): no file always goes first."""
    order = [(turn + k) % len(sessions) for k in range(len(sessions))]
    return [(i, sessions[i].run()) for i in order]


def _steady(times: Sequence[float], tolerance: float) -> bool:
    """Whether the last batch moved p10 by less than ``tolerance``."""
    now, before = np.percentile(times, 10), np.percentile(times[:-BATCH_RUNS], 10)
    return bool(abs(now - before) <= tolerance * now)


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "Hardware", "Model")):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu or "unknown",
        "cores": os.cpu_count(),
        "os": platform.platform(),
        "arch": platform.machine(),
        "runtime": f"onnxruntime {ort.__version__}",
        "provider": "CPUExecutionProvider",
        "python": platform.python_version(),
    }


_SETUP = {"cpu": "CPU", "arch": "architecture", "runtime": "runtime", "provider": "provider"}
_NOTICED: set[str] = set()  # tables already noticed in this process: one notice per table and run


def setup_differences(metadata: dict[str, Any]) -> list[str]:
    """How this machine's setup differs from the one a table states it was measured on (CPU, architecture,
    onnxruntime version, provider); what a table does not state is not compared."""
    here = machine()
    return [
        f"{what} {metadata[key]!r} there, {here[key]!r} here"
        for key, what in _SETUP.items()
        if key in metadata and str(metadata[key]) != str(here[key])
    ]


def notice_setup(table: LatencyTable) -> None:
    """One notice per table and run when timings here are compared with or added to a measured table of
    another setup: a new onnxruntime or CPU can move every op, and the table cannot know."""
    if not table.measured or table.source in _NOTICED or not (differences := setup_differences(table.metadata)):
        return
    _NOTICED.add(table.source)
    space = (table.metadata.get("space") or {}).get("file")
    logger.warning(
        "note: latency table %s was measured on another setup (%s), so timings here may differ from it for that"
        " reason alone; rebuild it here with: python -m nas.latency build --target %s%s",
        table.source, "; ".join(differences), table.target, f" --space {space}" if isinstance(space, str) else "",
    )  # fmt: skip


def canary_level(sequence: Sequence[tuple[str, Timing, Timing]]) -> float:
    """The canary's level over (name, timing, its canary's timing) in the order taken: the p10 of its timings
    (see ``drift_corrected``)."""
    return float(np.percentile([c.ms for _, _, c in sequence], 10))


def drift_corrected(sequence: Sequence[tuple[str, Timing, Timing]]) -> tuple[dict[str, Timing], dict[str, Any]]:
    """Timings (name, timing, its canary's timing, in the order taken), each scaled to one speed of the
    machine.

    A change of speed (another process, a CPU clocking down, a phone heating up) moves every op timed during
    it; p10 only removes short interference. Each file was timed run by run in turn with one fixed canary, so
    the file's ratio to its canary holds still while the speed moves (on the 2 vCPU VM, two passes over 60-80
    ops agreed at 2.5-4 % median this way and at 17-20 % timed alone). The ratio is scaled back by the
    canary's level: p10 of all its timings, the machine's speed when nothing slows it, which a run at another
    pace reaches too (the median over the first files of a run was off by a third when those files ran slow).
    Files timed before and after a resume share the level. Returns the corrected timings and the drift seen:
    the canary's running median, in percent of that level."""
    if not sequence:
        return {}, {"canaries": 0}
    canary = np.array([c.ms for _, _, c in sequence])
    level = canary_level(sequence)
    corrected = {name: t.scaled(level / c.ms) for name, t, c in sequence}
    half = TREND_FILES // 2
    trend = np.array([np.median(canary[max(k - half, 0) : k + half + 1]) for k in range(len(canary))])
    pct = (trend / level - 1) * 100
    drift = {
        "canaries": len(canary),
        "canary_ms": round(level, 6),
        "min_pct": round(float(pct.min()), 2),
        "max_pct": round(float(pct.max()), 2),
        "end_pct": round(float(pct[-1]), 2),
    }
    return corrected, drift


def _wholes(manifest: Manifest, done: dict[str, tuple[Timing, Timing]]) -> list[float]:
    """The calibration networks' latencies: the first one's level, the p10 of its ``LEVELS`` timings spread
    over the run (its unhindered speed, as the canary's level is the canary's), and each other one's ratio to
    it, timed run by run in turn with it, times that. A whole network's ratio to another holds still while
    the machine's speed moves (0.6 % spread on the 2 vCPU VM); its ratio to the op-sized canary does not:
    run after a whole network, the canary ran 4-124 % over its level, so a network corrected by it came out
    up to 13 % fast, and every network priced from it (bench/RESULTS.md)."""
    if not manifest.models:
        return []
    first = float(np.percentile([done[f"{LEVEL}{k}"][0].ms for k in range(LEVELS)], 10))
    pairs = [done[f"{RATIO}{m.name}"] for m in manifest.models[1:]]
    return [first] + [first * timing.ms / reference.ms for timing, reference in pairs]


def _time_paired(path: Path, partner: Path, threads: int, runs: int) -> tuple[Timing, Timing, float]:
    """A file and its partner (the canary, or the first calibration network) timed run by run in turn,
    and the seconds it took."""
    start = time.perf_counter()
    timing, partner_timing = time_alternated([path, partner], threads=threads, min_runs=runs)
    return timing, partner_timing, round(time.perf_counter() - start, 3)


def _canary(bundle: Path, manifest: Manifest) -> Path:
    """The file timed in turn with every other: the bundle's two-conv chain of median cost (channels² x
    pixels). It takes a third of a median op file's time (0.09 ms against 0.25 ms on the 2 vCPU VM), so
    pairing it with every file adds a fraction to a build, where a whole network would double it; a much
    smaller one times mostly the timer."""
    keys = sorted(manifest.shapes, key=lambda key: (math.prod(key_shape(key)), key))  # channels x side: same order
    return bundle / manifest.shapes[keys[len(keys) // 2]]


class _Record:
    """The append-only record of a measurement run: one JSON line per timed file with its partner's timing
    (the canary's; the first network's for the other calibration networks), in the order timed. A file
    timed again because its canary ran slow (``again``) keeps the attempt whose canary ran faster: the less
    a timing is scaled, the less a slowdown that does not hit every op alike stays in it."""

    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        self.path = path
        self.done: dict[str, tuple[Timing, Timing]] = {}
        self.again: set[str] = set()
        self.seconds = 0.0
        lines = path.read_text(errors="replace").splitlines() if path.exists() else []
        if not lines or _line(lines[0]) is None:  # new, or a kill came before its header was whole
            if len(lines) > 1:
                raise NasError(f"{path}: its first line is not a measurement header; the file is corrupt, delete it")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"header": header}) + "\n")
            return
        first = _line(lines[0]) or {}
        if first.get("header") != header:
            raise NasError(
                f"{path}: left by a run with other settings ({str(first.get('header'))[:200]}); delete it to start"
                " over, or rerun with the same options to resume"
            )
        for line in lines[1:]:
            record = _line(line)
            try:
                timing, canary = Timing(*record["t"]), Timing(*record["c"])  # type: ignore[index]
                self._keep(str(record["name"]), timing, canary, again=record.get("again") is True)  # type: ignore[union-attr]
                self.seconds += float(record["s"])  # type: ignore[index]
            except (KeyError, TypeError, ValueError):
                continue  # a line cut short by a kill: that file is timed again

    def add(self, name: str, timing: Timing, canary: Timing, seconds: float, *, again: bool = False) -> None:
        line = {"name": name, "t": _row(timing), "c": _row(canary), "s": seconds, **({"again": True} if again else {})}
        with self.path.open("a") as handle:
            handle.write(json.dumps(line) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        self._keep(name, timing, canary, again=again)
        self.seconds += seconds

    def _keep(self, name: str, timing: Timing, canary: Timing, *, again: bool) -> None:
        if again:
            self.again.add(name)
            if name in self.done and self.done[name][1].ms <= canary.ms:
                return
        self.done.pop(name, None)  # timed again: it moves to the end of the order
        self.done[name] = (timing, canary)

    @property
    def with_canary(self) -> list[tuple[str, Timing, Timing]]:
        """(name, timing, its canary's timing) in the order timed: every file but the calibration networks
        (the first one's ``LEVEL`` timings: a canary run after a whole network runs slow; the others, timed
        in turn with the first one, ``RATIO``)."""
        return [(name, *pair) for name, pair in self.done.items() if not name.startswith((RATIO, LEVEL))]


def _row(timing: Timing) -> list[float]:
    return [timing.p10_ms, timing.median_ms, timing.p90_ms, timing.count]


def _line(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def partial_path(out: Path) -> Path:
    return out.with_name(out.name + ".partial.jsonl")


def in_context(op_key: str, timing: Timing, shapes: dict[str, Timing]) -> tuple[float, float, float, int]:
    """A table row: the op's timing in its context minus half the two-conv chain at each side."""
    before, after = Op.parse(op_key).context_shapes()
    context = shapes[f"shape:{shape_key(before)}"].ms / 2
    if after is not None:
        context += shapes[f"shape:{shape_key(after)}"].ms / 2
    return (
        max(timing.p10_ms - context, MIN_LATENCY_MS),
        max(timing.median_ms - context, MIN_LATENCY_MS),
        max(timing.p90_ms - context, MIN_LATENCY_MS),
        timing.count,
    )


def measure_bundle(
    bundle: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    threads: int = 1,
    device: str | None = None,
    target: str | None = None,
    extra_metadata: dict[str, Any] | None = None,
    base: LatencyTable | None = None,
    extension: dict[str, Any] | None = None,
    force: bool = False,
    keep_record: str | os.PathLike[str] | None = None,
    correct_drift: bool = True,
) -> MeasuredTable:
    """Time what ``out.partial.jsonl`` does not hold yet, then write the table ``out`` atomically. A table
    ``out`` already measured here for the bundle's space with these threads is kept as it is (and
    returned) unless ``force``.

    With ``base``, its entries and fit are kept and only the bundle's ops are added (``extend``); the
    extension is recorded in the metadata with ``extension`` (e.g. the space whose ops were added).
    ``keep_record`` keeps the raw timings (one JSON line per file, in order, each with its canary's timing)
    at that path. ``correct_drift`` scales each timing by its canary (see ``drift_corrected``), and times once
    more each file whose canary ran over ``SLOW`` times the level (the attempt with the faster canary is
    kept): on the 2 vCPU VM, two builds of one bundle agreed op by op at 5.4 % median with the scaling alone,
    3.2-5.0 % with the second pass, and 19-25 % as timed (bench/RESULTS.md). Without it the canaries still
    record in the metadata how far the speed moved.
    """
    bundle, out = Path(bundle), Path(out)
    manifest: Manifest = read_manifest(bundle)
    if threads < 1:
        raise NasError(f"--threads {threads}: use 1 or more")
    if base is not None:
        _check_same_machine(base, threads)
        notice_setup(base)
    elif not force and (done := finished_table(out, manifest.space["hash"], threads, correct_drift)) is not None:
        return done
    canary = _canary(bundle, manifest)
    header = {
        "space_hash": manifest.space["hash"],
        "threads": threads,
        "ops": len(manifest.ops),
        "canary": canary.name,
        "calibration": f"ratio to the first network, its level the p10 of {LEVELS} timings over the run",
    }
    record = _Record(partial_path(out), header)
    # (record name, file, runs, the file timed in turn with it)
    work = [(f"shape:{key}", file, 200, canary) for key, file in manifest.shapes.items()]
    work += [(key, file, 60, canary) for key, file in manifest.ops.items()]
    if manifest.models:
        first = manifest.models[0]
        files = len(work)
        for k in reversed(range(LEVELS)):  # the k-th after (k + 1) / LEVELS of the files: spread over the run
            work.insert(round((k + 1) * files / LEVELS), (f"{LEVEL}{k}", first.file, 60, canary))
        work += [(f"{RATIO}{m.name}", m.file, 60, bundle / first.file) for m in manifest.models[1:]]
    todo = [item for item in work if item[0] not in record.done]
    if len(todo) < len(work):
        logger.info("resuming: %d of %d already measured (%s)", len(work) - len(todo), len(work), record.path)
    for name, file, runs, partner in progress(todo, total=len(todo), desc=f"measuring {bundle.name}"):
        record.add(name, *_time_paired(bundle / file, partner, threads, runs))
    if correct_drift:
        level = canary_level(record.with_canary)
        late = {name for name, _, c in record.with_canary if name not in record.again and c.ms > SLOW * level}
        slow = [item for item in work if item[0] in late]
        for name, file, runs, partner in progress(slow, total=len(slow), desc="timing again what ran slow"):
            record.add(name, *_time_paired(bundle / file, partner, threads, runs), again=True)
    corrected, drift = drift_corrected(record.with_canary)
    drift.update(canary=canary.name, corrected=correct_drift)
    timings = corrected if correct_drift else {name: timing for name, timing, _ in record.with_canary}

    entries = dict(base.entries) if base else {}
    entries.update({key: in_context(key, timings[key], timings) for key in manifest.ops})
    seconds = round(record.seconds, 1)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    if base is not None:
        metadata = dict(base.metadata)
        metadata["extensions"] = [
            *metadata.get("extensions", []),
            {
                "date": now,
                "ops": len(manifest.ops),
                "method": method(manifest.context),
                "measure_seconds": seconds,
                "drift": drift,
                **(extension or {}),
            },
        ]
        overhead = base.overhead
    else:
        metadata = {
            "target": target or manifest.target,
            "measured": True,
            "device": device or platform.node() or "unknown",
            **machine(),
            "threads": threads,
            "batch": 1,
            "dtype": "float32",
            "date": now,
            "method": f"{method(manifest.context)}; {DRIFT}" if correct_drift else method(manifest.context),
            "drift": drift,
            "row": ROW,
            "space": manifest.space,
            "measure_seconds": seconds,
            **(extra_metadata or {}),
        }
        sums = [_by_kind(model.ops, entries) for model in manifest.models]
        overhead = fit_overhead(sums, _wholes(manifest, record.done))
    table = MeasuredTable(metadata=metadata, entries=entries, overhead=overhead, source=str(out))
    table.metadata["op_model_error_pct"] = table.op_model.errors
    table.save(out)
    if keep_record is not None:
        os.replace(partial_path(out), keep_record)
    else:
        partial_path(out).unlink()
    return table


def finished_table(out: Path, space_hash: str, threads: int, correct_drift: bool = True) -> MeasuredTable | None:
    """The table at ``out`` when an earlier run finished it: measured on this machine, for this space,
    with these threads, drift-corrected or not as asked (and no interrupted run's partial file beside it)."""
    if not out.is_file() or partial_path(out).exists():
        return None
    try:
        table = LatencyTable.load(out)
    except NasError:
        return None  # not a table (yet): the run writes it
    meta = table.metadata
    same = (
        (meta.get("space") or {}).get("hash") == space_hash
        and int(meta.get("threads", 0)) == threads
        and (meta.get("drift") or {}).get("corrected", False) == correct_drift
    )
    if not (isinstance(table, MeasuredTable) and same and not setup_differences(meta)):
        return None
    logger.info(
        "already measured: %s (%d ops, %s); nothing to do (--force times them again)",
        out, len(table.entries), meta.get("date", "date not recorded"),
    )  # fmt: skip
    return table


def _by_kind(keys: Sequence[str], entries: dict[str, tuple[float, float, float, int]]) -> dict[str, float]:
    """Summed op latencies of one network per op kind (the part of a key before the first '|')."""
    sums: dict[str, float] = {}
    for key in keys:
        kind = key.split("|", 1)[0]
        sums[kind] = sums.get(kind, 0.0) + entries[key][0]
    return sums


def _check_same_machine(base: LatencyTable, threads: int) -> None:
    """Entries measured elsewhere or with other threads would not add up with the table's."""
    here = machine()["cpu"]
    if base.metadata.get("cpu") != here or int(base.metadata.get("threads", 1)) != threads:
        raise NasError(
            f"table {base.source} was measured on {base.metadata.get('cpu')!r} with {base.metadata.get('threads')}"
            f" threads; this is {here!r} with {threads}: extend it on its own device"
        )
