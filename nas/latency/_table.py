"""Latency models: the protocol search, bounds, NetAdapt and the pipeline depend on, and the two kinds of
table behind it (measured on a device; estimated from published measurements). A prediction is
scale * sum(ops) + offset."""

from __future__ import annotations

import abc
import itertools
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from nas._errors import NasError, SpecError
from nas._fields import Field
from nas._paths import TABLES_DIR, shipped, user_tables_dir
from nas._yaml import FlowList, FlowMap, read_mapping, write_yaml
from nas.config import ArchConfig, Op, ops
from nas.latency._opmodel import OpModel, fit_op_model, relative_nnls
from nas.space import SearchSpace

FORMAT_VERSION = 2  # of table files; files without the key are version 1; 2 adds per-kind overhead factors


@dataclass(frozen=True)
class Overhead:
    """Whole-model latency vs the per-op sum, fitted on networks timed whole:
    whole = scale * sum(kind factor * op) + offset. ``kinds`` holds a factor per op kind where ops of some
    kinds cost more inside a network than in their timing context (concat, split, shuffle); absent
    kinds have factor 1. Factors multiply each op, so costs stay additive per op (exact DP bounds)."""

    scale: float = 1.0
    offset_ms: float = 0.0
    models: int = 0
    mean_abs_error_pct: float = 0.0
    max_abs_error_pct: float = 0.0
    kinds: dict[str, float] = field(default_factory=dict)

    def apply(self, op_sum_ms: float) -> float:
        return self.scale * op_sum_ms + self.offset_ms

    def factor(self, kind: str) -> float:
        return self.kinds.get(kind, 1.0)

    def to_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in ("scale", "offset_ms", "models")}
        data.update(mean_abs_error_pct=self.mean_abs_error_pct, max_abs_error_pct=self.max_abs_error_pct)
        return {**data, "kinds": FlowMap(self.kinds)} if self.kinds else data


def _line(sums: np.ndarray, wholes: np.ndarray) -> tuple[float, float]:
    if len(sums) < 3:
        return 1.0, float(np.mean(wholes - sums))
    scale, offset = np.polyfit(sums, wholes, 1)
    return float(scale), float(offset)


LOO_TIE_PCT = 1e-9  # leave-one-out errors closer than this are a tie of rounding noise: the line wins it


def _loo_pct(predict: Any, count: int, wholes: np.ndarray) -> float:
    """Mean leave-one-out error (%) of a fit: ``predict(train_mask, i)`` fits without network i."""
    errors = [abs(predict(np.arange(count) != i, i) - wholes[i]) / wholes[i] * 100 for i in range(count)]
    return float(np.mean(errors))


def fit_overhead(op_sums: Sequence[float | dict[str, float]], wholes: Sequence[float]) -> Overhead:
    """Least-squares line through (sum of ops, whole model); a plain offset when fewer than 3 models.

    Given the sums per op kind, it also fits a factor per kind (on relative error) and keeps that fit
    only when its leave-one-out error beats the line's and it prices every kind: per-kind factors must earn
    their parameters, and a kind at factor 0 (its sum varies too little to tell it from the offset) would
    make its ops free.
    """
    by_kind = [s if isinstance(s, dict) else {"": float(s)} for s in op_sums]
    w = np.asarray(wholes, dtype=float)
    if len(w) == 0:
        return Overhead()
    kinds = sorted({k for sums in by_kind for k, v in sums.items() if v > 0})
    x = np.array([[sums.get(k, 0.0) for k in kinds] for sums in by_kind])
    total = x.sum(axis=1)
    scale, offset = _line(total, w)
    errors = np.abs(scale * total + offset - w) / w * 100
    plain = Overhead(scale, offset, len(w), float(errors.mean()), float(errors.max()))
    if len(kinds) < 2 or len(w) < len(kinds) + 4:
        return plain
    design = np.column_stack([x, np.ones(len(w))])

    def line(train: np.ndarray, i: int) -> float:
        a, b = _line(total[train], w[train])
        return a * total[i] + b

    def per_kind(train: np.ndarray, i: int) -> float:
        return float(design[i] @ relative_nnls(design[train], w[train], free_last=True))

    if _loo_pct(per_kind, len(w), w) >= _loo_pct(line, len(w), w) - LOO_TIE_PCT:
        return plain
    weights = relative_nnls(design, w, free_last=True)
    if not all(weights[:-1] > 0):  # a kind priced at nothing rode with the offset (every network has one head)
        return plain
    common = float(np.median(weights[:-1]))
    errors = np.abs(design @ weights - w) / w * 100
    factors = {k: round(float(v) / common, 6) for k, v in zip(kinds, weights[:-1], strict=True)}
    return Overhead(common, float(weights[-1]), len(w), float(errors.mean()), float(errors.max()), factors)


@dataclass(frozen=True)
class OpLatency:
    """One op's price; ``interpolated`` when the table lacks the op itself, ``extrapolated`` when an estimate
    prices an op unlike any in the data it was fitted on."""

    op: Op
    ms: float
    interpolated: bool
    extrapolated: bool = False
    modelled: bool = False  # a measured table priced it by its op model (no entry, no neighbours around it)


@dataclass(frozen=True)
class Explanation:
    """Per-op breakdown of one prediction."""

    rows: tuple[OpLatency, ...]
    op_sum_ms: float
    overhead: Overhead
    total_ms: float

    @property
    def interpolated(self) -> int:
        return sum(row.interpolated for row in self.rows)

    @property
    def extrapolated(self) -> int:
        return sum(row.extrapolated for row in self.rows)

    @property
    def modelled(self) -> int:
        return sum(row.modelled for row in self.rows)


class UnpricedOpError(NasError):
    """A latency model cannot price these ops (a measured table without them or measured neighbours)."""

    def __init__(self, message: str, ops: Sequence[Op]) -> None:
        super().__init__(message)
        self.ops = tuple(ops)


@runtime_checkable
class LatencyModel(Protocol):
    """What search, space bounds, NetAdapt and the pipeline need of a latency source.

    A prediction is ``overhead.apply(sum of op_ms over the config's ops)`` with an overhead monotone in
    the sum: the exact space bounds (dynamic programming over ops) rely on costs adding up per op.
    Pass any object with these members (a model of your own device, say) where a table is accepted.
    """

    metadata: dict[str, Any]
    overhead: Overhead
    source: str

    @property
    def target(self) -> str: ...

    @property
    def measured(self) -> bool: ...

    def notice(self, ops: Iterable[Op] = ()) -> str | None:
        """One line for outputs that use it when its numbers are not measurements, else None; ``ops`` (of the
        space or config at hand) lets it name the ones it prices beyond its data."""

    def op_ms(self, op: Op) -> OpLatency:
        """One op's cost; raises UnpricedOpError when it cannot be priced."""

    def explain(self, config: ArchConfig) -> Explanation: ...

    def predict(self, config: ArchConfig) -> float: ...

    def check_space(self, space: SearchSpace) -> None:
        """Raise NasError (with the fix) unless every config of ``space`` can be priced."""


@dataclass
class LatencyTable(abc.ABC):
    """A latency model stored as a file: per-op latencies (ms) with where and how they were obtained.

    ``LatencyTable.load`` gives a MeasuredTable (ops timed on a device) or an EstimatedTable (a model
    fitted to published measurements, which prices any op).
    """

    metadata: dict[str, Any]
    entries: dict[str, tuple[float, float, float, int]]  # key -> (latency_ms, p50_ms, p90_ms, runs)
    overhead: Overhead = field(default_factory=Overhead)
    source: str = ""
    _priced: dict[Op, OpLatency] = field(default_factory=dict, init=False, repr=False, compare=False)

    # ---- files ---------------------------------------------------------------------------------
    @staticmethod
    def load(target_or_path: str | os.PathLike[str]) -> LatencyTable:
        """A table by target name (user tables first, then shipped ones) or by path."""
        path = resolve_table(target_or_path)
        data = read_mapping(path)
        keys = Field(str(path), "", data).mapping(["metadata", "ops"], ["overhead", "format_version"])
        if "format_version" in keys:
            version = keys["format_version"].integer(minimum=1)
            if version > FORMAT_VERSION:
                raise keys["format_version"].error(
                    f"format {version} is newer than this nas reads ({FORMAT_VERSION}); upgrade nas"
                )
        metadata = keys["metadata"].mapping(["target", "measured"], extra=True)
        metadata["target"].text()
        metadata["measured"].boolean()
        if "space" in metadata:
            metadata["space"].mapping([], extra=True)
        entries: dict[str, tuple[float, float, float, int]] = {}
        if not isinstance(keys["ops"].value, dict) or not keys["ops"].value:
            raise keys["ops"].error("expected a non-empty mapping of op key -> [latency_ms, p50_ms, p90_ms, runs]")
        for key, row in keys["ops"].value.items():
            if not _valid_row(row):
                raise SpecError(
                    str(path), f"ops.{key}", "expected [latency_ms, p50_ms, p90_ms, runs], finite, with latency_ms > 0"
                )
            try:
                Op.parse(str(key))
            except ValueError as exc:
                raise SpecError(str(path), f"ops.{key}", f"{exc}; the table is corrupt, rebuild it") from None
            entries[str(key)] = (float(row[0]), float(row[1]), float(row[2]), int(row[3]))
        overhead = Overhead()
        if "overhead" in keys:
            o = keys["overhead"].mapping(list(Overhead.__dataclass_fields__)[:-1], ["kinds"])
            kinds = {}
            if "kinds" in o:
                factors = o["kinds"].mapping([], extra=True)
                kinds = {str(k): _factor(f) for k, f in factors.items()}
            overhead = Overhead(
                scale=o["scale"].number(minimum=0, positive=True),
                offset_ms=o["offset_ms"].number(minimum=-math.inf),
                models=o["models"].integer(minimum=0),
                mean_abs_error_pct=o["mean_abs_error_pct"].number(minimum=0),
                max_abs_error_pct=o["max_abs_error_pct"].number(minimum=0),
                kinds=kinds,
            )
        kind = EstimatedTable if "model" in data["metadata"] else MeasuredTable
        return kind(metadata=dict(data["metadata"]), entries=entries, overhead=overhead, source=str(path))

    def save(self, path: str | os.PathLike[str]) -> None:
        write_yaml(
            path,
            {
                "format_version": FORMAT_VERSION if self.overhead.kinds else 1,  # readable by older nas if it can
                "metadata": self.metadata,
                "overhead": FlowMap(self.overhead.to_dict()),
                "ops": {
                    key: FlowList([*(round(v, 5) for v in row[:3]), row[3]])
                    for key, row in sorted(self.entries.items())
                },
            },
        )

    @property
    def target(self) -> str:
        return str(self.metadata["target"])

    @property
    def measured(self) -> bool:
        return bool(self.metadata["measured"])

    def notice(self, ops: Iterable[Op] = ()) -> str | None:
        """One line for every output that uses a table not measured on the device; it names the kinds of
        ``ops`` the estimate extrapolates to (its transfer data has only MobileNetV3 ops)."""
        if self.measured:
            return None
        line = (
            f"note: latency table '{self.target}' is an ESTIMATE, not measured on the device; build a measured one"
            f" there with: python -m nas.latency build --target {self.target} --bundle DIR (see README)"
        )
        if kinds := sorted({op.kind for op in ops if op.extrapolated}):
            line += (
                f"; its {', '.join(kinds)} ops are EXTRAPOLATED (the data it was fitted on has no group convs,"
                " shuffles, Fire modules or SqueezeNet/ShuffleNet stems and heads)"
            )
        return line

    def covers(self, space: SearchSpace) -> bool:
        """Whether every op of ``space`` can be priced."""
        built_for = self.metadata.get("space", {})
        return built_for.get("hash") == space.hash or all(op.key in self.entries for op in space.ops())

    def check_space(self, space: SearchSpace) -> None:
        """Refuse a space the table was not built for, unless it can price all its ops."""
        if self.covers(space):
            return
        built_for = self.metadata.get("space", {})
        missing = sum(op.key not in self.entries for op in space.ops())
        others = [f"--target {name}" for name in targets_for(space.hash)]
        raise NasError(
            f"latency table {self.source or self.target} was built for space {built_for.get('name')!r}"
            f" (hash {built_for.get('hash')}), not for {space.name!r} (hash {space.hash}), and lacks"
            f" {missing} of its ops; {'use ' + ' or '.join(others) + ', or ' if others else ''}on the table's"
            f" device add them with: python -m nas.latency extend --target {self.target} --space {space.source},"
            f" or build one with: python -m nas.latency build --space {space.source} --target NAME"
        )

    def add(self, entries: dict[str, tuple[float, float, float, int]]) -> None:
        self.entries.update(entries)
        self._priced.clear()

    # ---- prediction ----------------------------------------------------------------------------
    @abc.abstractmethod
    def op_ms(self, op: Op) -> OpLatency:
        """One op's latency; raises UnpricedOpError when the table cannot price it."""

    def explain(self, config: ArchConfig) -> Explanation:
        """Each op's price (remembered per op: a search prices thousands of configs made of the same few
        hundred ops) and the whole model's."""
        rows, missing = [], []
        for op in ops(config):
            row = self._priced.get(op)
            if row is None:
                try:
                    row = self._priced[op] = self.op_ms(op)
                except UnpricedOpError:
                    missing.append(op)
                    continue
            rows.append(row)
        if missing:
            raise self.missing_error(missing)
        op_sum = sum(row.ms for row in rows)
        return Explanation(tuple(rows), op_sum, self.overhead, self.overhead.apply(op_sum))

    def predict(self, config: ArchConfig) -> float:
        """Predicted whole-model latency in ms."""
        return self.explain(config).total_ms

    def missing_error(self, missing: Sequence[Op]) -> UnpricedOpError:
        keys = ", ".join(op.key for op in missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        return UnpricedOpError(
            f"latency table {self.source or self.target} has no entry for {keys} and no measured op of that kind"
            f" to price it from; measure them with: python -m nas.latency extend --target {self.target}"
            " --config CONFIG",
            missing,
        )


@dataclass
class MeasuredTable(LatencyTable):
    """Ops timed on a device; an op it lacks is interpolated over channel counts from measured
    neighbours (flagged), else priced by an op model fitted on its own measurements (flagged; see
    nas/latency/_opmodel.py); only an op of a kind it never measured cannot be priced."""

    _groups: dict[tuple[Any, ...], dict[tuple[int, ...], float]] | None = field(
        default=None, init=False, repr=False, compare=False
    )
    _model: OpModel | None = field(default=None, init=False, repr=False, compare=False)

    def add(self, entries: dict[str, tuple[float, float, float, int]]) -> None:
        super().add(entries)
        self._groups, self._model = None, None

    @property
    def op_model(self) -> OpModel:
        if self._model is None:
            self._model = fit_op_model(self.entries)
        return self._model

    def op_ms(self, op: Op) -> OpLatency:
        factor = self.overhead.factor(op.kind)
        row = self.entries.get(op.key)
        if row is not None:
            return OpLatency(op, row[0] * factor, False)
        ms = self._interpolate(op)
        if ms is not None:
            return OpLatency(op, ms * factor, True)
        ms = self.op_model.price(op)
        if ms is None:
            raise self.missing_error([op])
        return OpLatency(op, ms * factor, False, modelled=True)

    def _interpolate(self, op: Op) -> float | None:
        """Multilinear interpolation over the channel axes on which ``op`` falls between measured ops."""
        grid = self._grid(op)
        if not grid:
            return None
        point = list(op.axes().values())
        brackets = []
        for i, value in enumerate(point):
            coords = sorted({corner[i] for corner in grid})
            if value in coords:
                brackets.append([(value, 1.0)])
                continue
            lower = [c for c in coords if c < value]
            upper = [c for c in coords if c > value]
            if not lower or not upper:
                return None
            lo, hi = lower[-1], upper[0]
            t = (value - lo) / (hi - lo)
            brackets.append([(lo, 1 - t), (hi, t)])
        total = 0.0
        for corner in itertools.product(*brackets):
            coords = tuple(c for c, _ in corner)
            if coords not in grid:
                return None
            total += float(np.prod([w for _, w in corner])) * grid[coords]
        return total

    def _grid(self, op: Op) -> dict[tuple[int, ...], float]:
        """Measured ops that differ from ``op`` only in channel counts, keyed by their channel coordinates."""
        if self._groups is None:
            self._groups = {}
            for key, row in self.entries.items():
                entry = Op.parse(key)
                self._groups.setdefault(entry.shape(), {})[tuple(entry.axes().values())] = row[0]
        return self._groups.get(op.shape(), {})


@dataclass
class EstimatedTable(LatencyTable):
    """A model fitted to published measurements (metadata ``model``): its rows are the model's prices
    of a space's ops, and it prices any other op the same way (flagged). Always labelled ESTIMATE."""

    def __post_init__(self) -> None:
        from nas.latency._estimate import DeviceModel

        self.model = DeviceModel.from_field(Field(self.source, "metadata.model", self.metadata["model"]))

    @property
    def measured(self) -> bool:
        return False

    def covers(self, space: SearchSpace) -> bool:
        return True

    def op_ms(self, op: Op) -> OpLatency:
        row = self.entries.get(op.key)
        if row is not None:
            return OpLatency(op, row[0], False, op.extrapolated)
        return OpLatency(op, self.model.op_ms(op), True, op.extrapolated)

    def price(self, op_list: Sequence[Op]) -> dict[str, tuple[float, float, float, int]]:
        """Rows for ``op_list`` priced by the model (0 runs: nothing was timed)."""
        return {op.key: (round(self.model.op_ms(op), 6),) * 3 + (0,) for op in op_list}


def _factor(field: Field) -> float:
    """A per-kind overhead factor. nas before 16fa353 could write 0 on a noisy machine (a kind every network
    has once rode with the offset); such a table is refused with the way out."""
    if field.value == 0 and not isinstance(field.value, bool):
        raise field.error(
            "0 is out of range; use a number > 0 (an older nas priced a kind at 0 on a noisy machine: rebuild"
            " the table with python -m nas.latency build or measure)"
        )
    return field.number(minimum=0, positive=True)


def _valid_row(row: Any) -> bool:
    return (
        isinstance(row, list)
        and len(row) == 4
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in row)
        and row[0] > 0
    )


def table_folders() -> list[Path]:
    """Where target names are looked up, first match wins: tables built here, then shipped ones."""
    return [user_tables_dir(), TABLES_DIR]


def latency_basis(latency: LatencyModel) -> str:
    """What a latency a result shows is: a prediction, by which table, from timings on which device (outputs
    that show a latency say so once, next to it)."""
    device = latency.metadata.get("device") or "a device it does not name"
    if latency.measured:
        return f"the {latency.target} table (ops measured on {device})"
    return f"the {latency.target} table (an ESTIMATE, not measured on {device})"


def available_targets() -> list[str]:
    return sorted({path.stem for folder in table_folders() for path in folder.glob("*.yaml")})


def targets_for(space_hash: str) -> list[str]:
    """Targets whose table was built for the space with this hash: what to suggest when a table lacks ops."""
    found = set()
    for folder in table_folders():
        for path in folder.glob("*.yaml"):
            try:
                metadata = read_mapping(path).get("metadata", {})
            except NasError:
                continue
            if (
                isinstance(metadata, dict)
                and isinstance(space := metadata.get("space"), dict)
                and space.get("hash") == space_hash
            ):
                found.add(path.stem)
    return sorted(found)


def resolve_table(target_or_path: str | os.PathLike[str]) -> Path:
    text = str(target_or_path)
    path = Path(text)
    if path.suffix in (".yaml", ".yml") or os.sep in text or path.exists():
        found = path if path.exists() else shipped(path)
        if found is None:
            raise NasError(f"{path}: no such latency table file")
        return found
    for folder in table_folders():
        if (named := folder / f"{text}.yaml").exists():
            return named
    available = ", ".join(available_targets()) or "none yet"
    raise NasError(
        f"unknown target {text!r}; available tables: {available} (shipped in {TABLES_DIR}, built here in"
        f" {user_tables_dir()}), or give a table file path"
    )


def load_latency(latency: LatencyModel | str | os.PathLike[str]) -> LatencyModel:
    """A latency model as given, or the table a target name or path names: what every stage accepts."""
    if isinstance(latency, (str, os.PathLike)):
        return LatencyTable.load(latency)
    if not isinstance(latency, LatencyModel):
        raise NasError(f"latency {latency!r}: not a latency model; give a target name, a table path or a LatencyModel")
    return latency
