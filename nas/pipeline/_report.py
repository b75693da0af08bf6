"""OUT/report.md and OUT/run.json of a pipeline run: every stage's outcome, the final network against the
references (same table, same training), and what the numbers mean."""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas._files import write_text_atomic
from nas._paths import reference_configs
from nas._provenance import table_record, versions
from nas._table import format_table
from nas.config import ArchConfig, agreement
from nas.latency import LatencyModel, UnpricedOpError, measure_here
from nas.netadapt import NetAdaptResult
from nas.pipeline._train import Recipe
from nas.search import SearchResult


@dataclass(frozen=True)
class Entry:
    """A network of the comparison and its test accuracies, one per seed (empty: not trained)."""

    config: ArchConfig
    accuracies: list[float]

    @property
    def accuracy(self) -> str:
        """mean ± standard error (n), the form every table shows; one seed has no error to show."""
        if not self.accuracies:
            return "not trained"
        mean, se = mean_se(self.accuracies)
        spread = "" if se is None else f" ± {100 * se:.2f}"
        return f"{100 * mean:.2f}{spread} % (n={len(self.accuracies)})"


def mean_se(values: list[float]) -> tuple[float, float | None]:
    """Mean and its standard error (None below two values: no estimate of the noise)."""
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else None)


def verdict(final: dict[str, Any], reference: dict[str, Any]) -> str:
    """The comparison as a decision: which network to ship, and whether the accuracy gap is beyond the
    seeds' noise (more than twice the standard error of the difference of the means)."""
    (mean_f, se_f), (mean_r, se_r) = mean_se(final["accuracies"]), mean_se(reference["accuracies"])
    points = 100 * (mean_f - mean_r)
    if se_f is None or se_r is None:
        gap, beyond = f"{points:+.2f} points (noise unknown with one seed: use --seeds 0,1,2)", points > 0
        worse = points < 0
    else:
        se = 100 * math.hypot(se_f, se_r)
        beyond = abs(points) > 2 * se
        noise = "beyond noise" if beyond else "within noise"
        gap = f"{'better' if points >= 0 else 'worse'} by {abs(points):.2f} ± {se:.2f} points ({noise})"
        worse, beyond = points < 0 and beyond, points > 0 and beyond
    ratio = final["predicted_ms"] / reference["predicted_ms"]
    speed = f"{ratio:.2f}x its predicted latency"
    name, ref = final["name"], reference["name"]
    if ratio >= 1 and not beyond:
        return f"- {ref} dominates: ship it. {name} is {gap} at {speed}."
    if ratio <= 1 and beyond:
        return f"- {name} dominates {ref}: {gap} at {speed}."
    if ratio <= 1 and not worse:
        return f"- {name} is faster than {ref} with accuracy within noise: {gap} at {speed}."
    return f"- against {ref}: a trade-off, {gap} at {speed}."


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
    """One decision per trained reference."""
    final = table_rows[0]
    lines = [verdict(final, ref) for ref in table_rows[1:] if ref["accuracies"] and final["accuracies"]]
    return ["Verdict (test-split accuracy on the proxy task, latency by the table):", "", *lines, ""] if lines else []


def _files(deployed: dict[str, Any], seed: int) -> list[str]:
    """What the deployable files are: they agree with each other, and say where they differ from the search."""
    trained, latency = deployed["trained"], deployed["latency"]
    price = (
        "not priced by the table" if latency["predicted_ms"] is None else f"{latency['predicted_ms']:.3f} ms predicted"
    )
    here = "" if latency["measured_here_ms"] is None else f", {latency['measured_here_ms']:.3f} ms measured here"
    return [
        f"`config.yaml`, `weights.pt` and `model.onnx` are one network: {len(deployed['classes'])} classes of"
        f" {trained['data']}, input {latency['resolution']} px ({price}{here} with these classes; the table above"
        f" prices the searched head), weights of seed {seed} trained at"
        f" {trained['resolution']} px. `python -m nas.export config.yaml --weights weights.pt --out model.onnx`"
        " rebuilds the ONNX file, whose metadata holds the class names, input shape, normalisation, training and"
        " latency (onnxruntime: `session.get_modelmeta().custom_metadata_map`).",
        "",
        "`search/` (study, front, summary), `netadapt/` (history, plot, its latency table copy when ops were"
        " timed), `final/` and `references/` (per-seed results and checkpoints), `run.json` (arguments,"
        " versions, table metadata).",
        "",
    ]


def _copied(search: SearchResult) -> str:
    """Where a warm start's trials came from: their scores were not computed by this run."""
    if not search.copied:
        return ""
    return f"; {search.copied} copied with their scores from {', '.join(f'`{f}`' for f in search.warm_start)}"


def evaluator_caveat(evaluator: str, budget_ms: float, table: LatencyModel) -> str | None:
    """The project's own benchmark (bench/RESULTS.md, "search vs references") found the MACs score weak at
    small budgets: searches scored by ``flops`` fell 0.8-1.0 points short of MobileNetV3-Small at its
    latency, while they beat MobileNetV3-Large at its. Said when a run is in that regime."""
    if evaluator != "flops" or (small := reference_configs().get("mobilenetv3_small")) is None:
        return None
    try:
        small_ms = table.predict(ArchConfig.load(small))
    except UnpricedOpError:
        return None
    if budget_ms > 1.5 * small_ms:
        return None
    return (
        f"warning: at {budget_ms:g} ms (MobileNetV3-Small takes {small_ms:.3f} ms on {table.target}) the flops"
        " evaluator picked networks 0.8-1.0 points short of MobileNetV3-Small in bench/RESULTS.md; for accuracy"
        " use --evaluator train"
    )


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
    deployed: dict[str, Any],
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
    if caveat := evaluator_caveat(search.evaluator.name, budget_ms, table):
        lines += [f"> {caveat}", ""]
    lines += [
        f"Target `{table.target}` ({kind} table, {table.metadata.get('device')}), budget **{budget_ms:g} ms**,"
        f" space `{search.space.source}`, search evaluator `{search.evaluator.name}`, seed {settings['seed']}.",
        "",
        "## 1. Search",
        "",
        f"{search.trials} trials ({search.feasible} within the search budget of"
        f" {search.budget_ms:g} ms = budget x {1 + settings['slack']:g}{_copied(search)}); picked the best:"
        f" {best.name}, score {best.score:.4g} ({search.evaluator.unit}), {best.latency_ms:.3f} ms.",
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
        f"Trained {recipe.start}: {recipe.epochs:g} epochs on {recipe.data} at {recipe.resolution} px, SGD +"
        f" Nesterov, cosine, label smoothing; top-1 on the {recipe.dataset.describe('test')}, which nothing"
        " selected on, mean ± standard error over seeds. The references"
        " are trained the same way (unless `--no-train-references`); latencies are at the searched resolution"
        " and classes.",
        "",
        format_table(
            ["network", "predicted ms", "measured here ms", "MMACs", "params (M)", "test top-1"],
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
        *_files(deployed, settings["seeds"][0]),
    ]
    write_text_atomic(out / "report.md", "\n".join(lines))
    record = {
        "settings": {**settings, "out": str(out)},
        "versions": versions(),
        "space_hash": search.space.hash,
        "table": table_record(table),
        "recipe": {
            "data": recipe.data,
            "resolution": recipe.resolution,
            "epochs": recipe.epochs,
            "start": recipe.start,
        },
        "netadapt_iterations": len(history),
        "final": table_rows[0],
        "references": table_rows[1:],
        "agreement": {e.config.name: vars(agreement(final, e.config)) for e in entries[1:]},
    }
    write_text_atomic(out / "run.json", json.dumps(record, indent=2, default=str) + "\n")
    return table_rows
