"""Validate a table here: time whole networks with onnxruntime and compare with the prediction."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nas._files import pyplot, save_figure, write_csv, write_text_atomic
from nas._progress import progress
from nas.config import ArchConfig
from nas.latency._table import LatencyTable
from nas.latency.measure import time_alternated
from nas.space import SearchSpace


@dataclass(frozen=True)
class Sample:
    name: str
    predicted_ms: float
    measured_ms: float  # p10 of single-inference times, the statistic the table predicts
    median_ms: float
    p90_ms: float
    interpolated_ops: int
    macs: int
    reference_ms: float  # p10 of the reference network, timed run by run in turn with this one
    reference_predicted_ms: float

    @property
    def error_pct(self) -> float:
        return (self.predicted_ms - self.measured_ms) / self.measured_ms * 100

    @property
    def ratio_error_pct(self) -> float:
        """The error of the predicted ratio to the reference network: on a machine whose speed drifts, this
        still says whether the table's shape is right."""
        predicted, measured = self.predicted_ms / self.reference_predicted_ms, self.measured_ms / self.reference_ms
        return (predicted - measured) / measured * 100


@dataclass(frozen=True)
class Summary:
    count: int
    mape: float
    within5: float
    within10: float
    spearman: float

    def line(self, label: str) -> str:
        return (
            f"{label}: {self.count} networks, MAPE {self.mape:.2f} %, within ±5 % {self.within5:.0f} %,"
            f" within ±10 % {self.within10:.0f} %, Spearman {self.spearman:.3f}"
        )


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Rank correlation (no ties in measured floats), without scipy."""
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def summarize(samples: list[Sample], *, ratio: bool = False) -> Summary:
    """Absolute errors, or with ``ratio`` the errors of each network's ratio to the reference."""
    errors = np.abs([s.ratio_error_pct if ratio else s.error_pct for s in samples])
    predicted = np.array([s.predicted_ms for s in samples])
    measured = np.array([s.measured_ms for s in samples])
    return Summary(
        count=len(samples),
        mape=float(errors.mean()),
        within5=float((errors <= 5).mean() * 100),
        within10=float((errors <= 10).mean() * 100),
        spearman=spearman(predicted, measured) if len(samples) > 2 else float("nan"),
    )


def validation_configs(space: SearchSpace, samples: int, seed: int) -> dict[str, ArchConfig]:
    """The shipped references the space contains plus ``samples`` random configs (own seed stream)."""
    from nas.latency._build import references_and_samples

    return references_and_samples(space, samples, stream=f"validate-{seed}", prefix="sample", digits=3)


def validate(table: LatencyTable, configs: dict[str, ArchConfig], out: Path) -> list[Sample]:
    """Measure each network whole under the table's settings; write CSV, plot and summary into ``out``.

    The first config is the reference: each network is timed run by run in turn with it, so each network also
    has its ratio to the reference at the same moments (see ``Sample.ratio_error_pct``), which holds still
    while the machine's speed moves."""
    from nas.model import export_onnx

    threads = int(table.metadata.get("threads", 1))
    (first, reference), *_ = configs.items()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        reference_path = export_onnx(reference, Path(tmp) / "reference.onnx")
        reference_predicted = table.predict(reference)
        for name, config in progress(configs.items(), total=len(configs), desc="validating"):
            explanation = table.explain(config)
            path = reference_path if name == first else export_onnx(config, Path(tmp) / "model.onnx")
            timing, around = time_alternated([path, reference_path], threads=threads)
            results.append(
                Sample(
                    name,
                    explanation.total_ms,
                    timing.ms,
                    timing.median_ms,
                    timing.p90_ms,
                    explanation.interpolated,
                    config.macs(),
                    reference_ms=around.ms,
                    reference_predicted_ms=reference_predicted,
                )
            )
    out.mkdir(parents=True, exist_ok=True)
    _write_csv(out / "validation.csv", results)
    _plot(out / "validation.png", results, table)
    return results


COLUMNS = (
    "name", "predicted_ms", "measured_ms", "error_pct", "median_ms", "p90_ms", "interpolated_ops", "macs",
    "reference_ms", "ratio_error_pct",
)  # fmt: skip


def _write_csv(path: Path, samples: list[Sample]) -> None:
    write_csv(
        path,
        COLUMNS,
        [
            [
                s.name,
                f"{s.predicted_ms:.4f}",
                f"{s.measured_ms:.4f}",
                f"{s.error_pct:.2f}",
                f"{s.median_ms:.4f}",
                f"{s.p90_ms:.4f}",
                s.interpolated_ops,
                s.macs,
                f"{s.reference_ms:.4f}",
                f"{s.ratio_error_pct:.2f}",
            ]
            for s in samples
        ],
    )


def _plot(path: Path, samples: list[Sample], table: LatencyTable) -> None:
    plt = pyplot()

    measured = np.array([s.measured_ms for s in samples])
    predicted = np.array([s.predicted_ms for s in samples])
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.scatter(measured, predicted, s=14, alpha=0.7, label="networks")
    for s in samples:
        if not s.name.startswith("sample"):
            ax.annotate(s.name, (s.measured_ms, s.predicted_ms), fontsize=7)
    top = float(max(measured.max(), predicted.max())) * 1.05
    line = np.array([0, top])
    ax.plot(line, line, "k-", lw=0.8, label="exact")
    ax.fill_between(line, line * 0.9, line * 1.1, color="grey", alpha=0.15, label="±10 %")
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_xlabel("measured latency (ms, onnxruntime, p10 of runs)")
    ax.set_ylabel("predicted latency (ms, table)")
    ax.set_title(f"{table.target}: {summarize(samples).line('all')[5:]}", fontsize=7)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def summary_text(table: LatencyTable, samples: list[Sample]) -> str:
    cpu, threads = table.metadata.get("cpu"), table.metadata.get("threads")
    lines = [f"validation of {table.source} ({cpu}, {threads} thread(s))", summarize(samples).line("all")]
    randoms = [s for s in samples if s.name.startswith("sample")]
    if 2 < len(randoms) < len(samples):
        lines.append(summarize(randoms).line("random configs only"))
    levels = [s.reference_ms for s in samples]
    lines += [
        summarize(samples, ratio=True).line(f"ratio to {samples[0].name} timed run by run in turn (drift-free)"),
        f"level: {samples[0].name} measured {min(levels):.3f} to {max(levels):.3f} ms during the run"
        f" ({(max(levels) / min(levels) - 1) * 100:.1f} % apart), predicted {samples[0].reference_predicted_ms:.3f} ms",
    ]
    lines += [
        f"{s.name}: predicted {s.predicted_ms:.3f} ms, measured {s.measured_ms:.3f} ms ({s.error_pct:+.1f} %)"
        for s in samples
        if not s.name.startswith("sample")
    ]
    return "\n".join(lines)


def write_summary(out: Path, text: str) -> None:
    write_text_atomic(out / "summary.txt", text + "\n")
