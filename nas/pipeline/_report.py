"""OUT/report.md and OUT/run.json of a pipeline run: every stage's outcome, the final network against the
references (same table, same training), and what the numbers mean."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas._files import write_text_atomic
from nas._provenance import table_record, versions
from nas._table import format_table
from nas.config import ArchConfig, agreement
from nas.latency import LatencyModel, measure_here
from nas.netadapt import NetAdaptResult
from nas.pipeline._train import Recipe
from nas.search import SearchResult


@dataclass(frozen=True)
class Entry:
    """A network of the comparison and its held-out accuracies, one per seed (empty: not trained)."""

    config: ArchConfig
    accuracies: list[float]

    @property
    def accuracy(self) -> str:
        """mean ± std (n), the form every table shows."""
        if not self.accuracies:
            return "not trained"
        mean = statistics.fmean(self.accuracies)
        spread = statistics.stdev(self.accuracies) if len(self.accuracies) > 1 else 0.0
        return f"{100 * mean:.2f} ± {100 * spread:.2f} % (n={len(self.accuracies)})"


def rows(entries: list[Entry], table: LatencyModel) -> list[dict[str, Any]]:
    """Per network: predicted and (on this machine's table) measured latency, MACs, params, accuracy."""
    measured = measure_here([e.config for e in entries], table) or [None] * len(entries)
    return [
        {
            "name": e.config.name,
            "predicted_ms": table.predict(e.config),
            "measured_ms": ms,
            "macs": e.config.macs(),
            "params": e.config.params(),
            "accuracy": e.accuracy,
            "accuracies": e.accuracies,
        }
        for e, ms in zip(entries, measured, strict=True)
    ]


def _verdicts(table_rows: list[dict[str, Any]]) -> list[str]:
    """One line per trained reference: latency and mean accuracy of the final network against it."""
    final, lines = table_rows[0], []
    for ref in table_rows[1:]:
        if ref["accuracies"] and final["accuracies"]:
            points = 100 * (statistics.fmean(final["accuracies"]) - statistics.fmean(ref["accuracies"]))
            ratio = final["predicted_ms"] / ref["predicted_ms"]
            lines.append(
                f"- against {ref['name']}: {ratio:.2f}x its predicted latency, {points:+.2f} points of mean accuracy"
            )
    return [*lines, ""] if lines else []


def _structure(final: ArchConfig, references: list[Entry], target: str) -> list[str]:
    if not references:
        return [f"No reference is compared: the `{target}` table cannot price MobileNetV3-Large/-Small.", ""]
    lines = [f"- {e.config.name}: {agreement(final, e.config)}" for e in references]
    return ["Structure against each reference (blocks aligned by stage and position):", "", *lines, ""]


def write_report(
    *,
    out: Path,
    entries: list[Entry],
    search: SearchResult,
    netadapt: NetAdaptResult,
    settings: dict[str, Any],
    recipe: Recipe,
) -> list[dict[str, Any]]:
    """Write report.md and run.json from the stages' results; returns the rows (final network first)."""
    table, budget_ms = netadapt.latency, netadapt.budget_ms
    table_rows = rows(entries, table)
    final = entries[0].config
    history = netadapt.history
    best = search.best
    assert best is not None  # the pipeline stops before NetAdapt when the search found nothing
    kind = "measured" if table.measured else "ESTIMATED"
    lines = [f"# Pipeline {out.name}", ""]
    if notice := table.notice(final.ops()):
        lines += [f"> {notice}", ""]
    lines += [
        f"Target `{table.target}` ({kind} table, {table.metadata.get('device')}), budget **{budget_ms:g} ms**,"
        f" space `{search.space.source}`, search evaluator `{search.evaluator.name}`, seed {settings['seed']}.",
        "",
        "## 1. Search",
        "",
        f"{search.trials} trials ({search.feasible} within the search budget of"
        f" {search.budget_ms:g} ms = budget x {1 + settings['slack']:g}); picked the best:"
        f" {best.name}, score {best.score:.4g}, {best.latency_ms:.3f} ms.",
        "",
        "![Pareto front](search/pareto.png)",
        "",
        "## 2. NetAdapt",
        "",
    ]
    if netadapt.model is not None:
        kept = ", ".join(f"{h['unit']} {h['channels_before']}→{h['channels_after']}" for h in history)
        lines += [
            f"{len(history)} iteration{'s' if len(history) != 1 else ''}, {netadapt.start_ms:.3f} →"
            f" {netadapt.final_ms:.3f} ms predicted: {kept}.",
            "",
            "![NetAdapt](netadapt/netadapt.png)",
            "",
        ]
    else:
        lines += ["Nothing to trim: the picked config is already within budget.", ""]
    lines += [
        "## 3. Final network" + (" against MobileNetV3" if len(entries) > 1 else ""),
        "",
        f"Trained from scratch: {recipe.epochs:g} epochs on {recipe.data} at {recipe.resolution} px, SGD +"
        " Nesterov, cosine, label smoothing; held-out top-1, mean ± std over seeds. References show an accuracy"
        " only when trained the same way (`--train-references`).",
        "",
        format_table(
            ["network", "predicted ms", "measured here ms", "MMACs", "params (M)", "held-out top-1"],
            [
                [
                    r["name"],
                    f"{r['predicted_ms']:.3f}",
                    "-" if r["measured_ms"] is None else f"{r['measured_ms']:.3f}",
                    f"{r['macs'] / 1e6:.1f}",
                    f"{r['params'] / 1e6:.2f}",
                    r["accuracy"],
                ]
                for r in table_rows
            ],
            markdown=True,
        ),
        "",
        *_verdicts(table_rows),
        *_structure(final, entries[1:], table.target),
        "## What the numbers mean",
        "",
        f"- Latency: predicted by the `{table.target}` table ({kind}"
        + ("; an estimate, not a measurement on the device" if not table.measured else "")
        + "). 'Measured here' is onnxruntime on this machine, only when the table was measured on it.",
        f"- Accuracy: a proxy task ({recipe.data} at {recipe.resolution} px), not ImageNet. It ranks networks"
        " of one run; it is not a published accuracy.",
        "",
        "## Files",
        "",
        "`config.yaml` (the final network), `weights.pt` and `model.onnx` (seed"
        f" {settings['seeds'][0]}, input {final.resolution} px, {recipe.data}'s classes),"
        " `search/` (study, front, summary), `netadapt/` (history, plot), `final/` and `references/` (per-seed"
        " results and checkpoints), `run.json` (arguments, versions, table metadata).",
        "",
    ]
    write_text_atomic(out / "report.md", "\n".join(lines))
    record = {
        "settings": {**settings, "out": str(out)},
        "versions": versions(),
        "space_hash": search.space.hash,
        "table": table_record(table),
        "recipe": {"data": recipe.data, "resolution": recipe.resolution, "epochs": recipe.epochs},
        "netadapt_iterations": len(history),
        "final": table_rows[0],
        "references": table_rows[1:],
        "agreement": {e.config.name: vars(agreement(final, e.config)) for e in entries[1:]},
    }
    write_text_atomic(out / "run.json", json.dumps(record, indent=2, default=str) + "\n")
    return table_rows
