"""Host side: export a space's ops (and calibration networks) to a bundle, then measure it here."""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from nas._errors import ArgumentError, NasError, check_seed
from nas._paths import reference_configs, shipped_name, user_dir
from nas._progress import progress
from nas.config import ArchConfig, Op, ops
from nas.latency._bundle import FORMAT, BundleModel, Manifest, shape_key
from nas.latency._table import EstimatedTable, LatencyTable
from nas.latency.measure import finished_table, measure_bundle
from nas.space import SearchSpace


def op_file(op: Op, context: int) -> str:
    """Folders named by the context width: a bundle exported by a nas with another one is not mixed in."""
    return f"ops-c{context}/" + op.key.replace("|", "_") + ".onnx"


def references_and_samples(
    space: SearchSpace, count: int, *, stream: str, prefix: str, digits: int
) -> dict[str, ArchConfig]:
    """The shipped references the space contains, plus ``count`` random configs from the seed ``stream``."""
    configs = {
        name: config for name, path in reference_configs().items() if space.contains(config := ArchConfig.load(path))
    }
    rng = random.Random(stream)
    configs.update({f"{prefix}{i:0{digits}d}": space.random_config(rng) for i in range(count)})
    return configs


def calibration_configs(space: SearchSpace, count: int, seed: int) -> dict[str, ArchConfig]:
    """Networks timed whole at build time to fit the table's overhead (a seed stream of their own)."""
    return references_and_samples(space, count, stream=f"calibration-{seed}", prefix="random", digits=2)


def write_bundle(
    bundle: Path, target: str, space_info: dict[str, str], op_list: Sequence[Op], models: dict[str, ArchConfig]
) -> float:
    """Export every op and model not exported yet (files are written atomically); returns seconds spent."""
    import torch

    from nas.model import CONTEXT_CHANNELS, context_input_shape, context_module, export_onnx, shape_module

    start = time.perf_counter()
    context = CONTEXT_CHANNELS
    shapes = {shape for op in op_list for shape in op.context_shapes() if shape is not None}
    shape_files = {shape_key(shape): f"shapes-c{context}/{shape_key(shape)}.onnx" for shape in sorted(shapes)}
    for (channels, size), file in zip(sorted(shapes), shape_files.values(), strict=True):
        if not (bundle / file).exists():
            torch.manual_seed(0)
            export_onnx(shape_module(channels), bundle / file, input_shape=context_input_shape(channels, size))
    todo = [op for op in op_list if not (bundle / op_file(op, context)).exists()]
    for op in progress(todo, total=len(todo), desc=f"exporting {len(op_list)} ops"):
        torch.manual_seed(0)
        export_onnx(context_module(op), bundle / op_file(op, context), input_shape=context_input_shape(op.cin, op.size))
    entries = []
    for name, config in models.items():
        file = f"models/{name}.onnx"
        config.save(bundle / f"models/{name}.yaml")
        if not (bundle / file).exists():
            export_onnx(config, bundle / file)
        entries.append(BundleModel(name, file, tuple(op.key for op in ops(config))))
    op_files = {op.key: op_file(op, context) for op in op_list}
    Manifest(target, space_info, op_files, shape_files, tuple(entries), context).save(bundle)
    return time.perf_counter() - start


def space_info(space: SearchSpace) -> dict[str, str]:
    """How a table names the space it was built for (the hash guards against mixing spaces)."""
    return {"name": space.name, "hash": space.hash, "file": shipped_name(space.source)}


def space_bundle(bundle: Path, *, space: SearchSpace, target: str, calibration: int = 20, seed: int = 0) -> float:
    """Bundle of every op of ``space`` plus calibration networks; returns export seconds."""
    if calibration < 1:
        raise ArgumentError("calibration", str(calibration), "use 1 or more (networks timed whole to fit the overhead)")
    check_seed(seed)
    models = calibration_configs(space, calibration, seed)
    return write_bundle(bundle, target, space_info(space), space.ops(), models)


def build_table(
    *,
    space: SearchSpace,
    target: str,
    out: Path,
    threads: int = 1,
    calibration: int = 20,
    seed: int = 0,
    device: str | None = None,
    bundle: Path | None = None,
    force: bool = False,
    correct_drift: bool = True,
) -> LatencyTable:
    """Enumerate, export and measure every op of ``space`` here; rerunning resumes an interrupted build, and
    a finished one is kept unless ``force``. ``correct_drift``: see ``measure_bundle``."""
    if not force and (done := finished_table(out, space.hash, threads, correct_drift)) is not None:
        return done
    bundle = bundle or user_dir() / "bundles" / f"{target}-{space.hash}-v{FORMAT.rsplit('/', 1)[1]}"
    export_seconds = space_bundle(bundle, space=space, target=target, calibration=calibration, seed=seed)
    return measure_bundle(
        bundle,
        out,
        threads=threads,
        device=device,
        target=target,
        extra_metadata={"export_seconds": round(export_seconds, 1), "calibration_seed": seed},
        force=force,
        correct_drift=correct_drift,
    )


def missing_ops(
    table: LatencyTable, configs: Sequence[ArchConfig] = (), *, space: SearchSpace | None = None
) -> list[Op]:
    """The ops of ``configs`` (and of every config of ``space``) that ``table`` lacks, checked to be ones
    ``extend_table`` can add: a measured table must say how it was timed (its threads)."""
    wanted = {op for config in configs for op in ops(config)} | set(space.ops() if space is not None else ())
    missing = sorted(op for op in wanted if op.key not in table.entries)
    threads = table.metadata.get("threads")
    if missing and table.measured and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise NasError(
            f"table {table.source} lacks {len(missing)} ops of these configs and does not say how it was timed"
            f" (threads: {str(threads)[:40]}), so ops timed here would not add up with its own; time them on"
            " its device (python -m nas.latency build there) or pick configs it holds"
        )
    return missing


def extend_table(
    table: LatencyTable,
    configs: Sequence[ArchConfig] = (),
    *,
    space: SearchSpace | None = None,
    correct_drift: bool = True,
) -> int:
    """Measure here the ops of ``configs`` (and of every config of ``space``) that ``table`` lacks and add
    them to its file; returns how many. A space's ops go into one bundle, timed in one session.
    ``correct_drift``: see ``measure_bundle``."""
    missing = missing_ops(table, configs, space=space)
    if missing and isinstance(table, EstimatedTable):  # it prices new ops with its own model
        table.add(table.price(missing))
        table.save(table.source)
    elif missing:
        with tempfile.TemporaryDirectory() as tmp:
            write_bundle(Path(tmp), table.target, table.metadata["space"], missing, {})
            extended = measure_bundle(
                tmp,
                Path(table.source),
                threads=table.metadata["threads"],
                base=table,
                extension={"space": space_info(space)} if space is not None else None,
                correct_drift=correct_drift,
            )
        table.add(extended.entries)
    return len(missing)
