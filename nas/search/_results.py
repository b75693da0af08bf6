"""A finished search as files a person can act on: front, best config and ONNX, plot, summary, run record."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import optuna

from nas._files import pyplot, save_figure, write_csv, write_text_atomic
from nas._paths import reference_configs
from nas._provenance import table_record, versions
from nas._table import format_table
from nas.config import ArchConfig
from nas.evaluate import Evaluator
from nas.latency import LatencyModel, UnpricedOpError
from nas.search._study import feasible_trials, result, trial_config
from nas.space import SearchSpace


@dataclass(frozen=True)
class Point:
    name: str
    config: ArchConfig
    score: float
    latency_ms: float
    rung: int = 0  # successive halving: the fidelity rung the score was measured at


def pareto_front(points: list[Point]) -> list[Point]:
    """Points no other point beats on both score (higher) and latency (lower), by latency."""
    front = [
        p
        for p in points
        if not any(
            q.score >= p.score and q.latency_ms <= p.latency_ms and (q.score, q.latency_ms) != (p.score, p.latency_ms)
            for q in points
        )
    ]
    unique = {(p.score, p.latency_ms): p for p in sorted(front, key=lambda p: p.name)}
    return sorted(unique.values(), key=lambda p: p.latency_ms)


def references(space: SearchSpace, latency: LatencyModel, evaluator: Evaluator) -> list[Point]:
    """MobileNetV3-Large/-Small priced by the same table and scored by the same evaluator."""
    points = []
    for name in ("mobilenetv3_large", "mobilenetv3_small"):
        path = reference_configs().get(name)
        if path is None:
            continue
        config = replace(ArchConfig.load(path), num_classes=space.spec.num_classes)
        try:
            latency_ms = latency.predict(config)
        except UnpricedOpError:
            continue  # a table of another space (e.g. note10) cannot price the references
        points.append(Point(name, config, evaluator.score(config).value, latency_ms))
    return points


def write_results(
    *,
    out: Path,
    study: optuna.Study,
    space: SearchSpace,
    latency: LatencyModel,
    evaluator: Evaluator,
    budget_ms: float,
    settings: dict[str, Any],
    wall_seconds: float,
) -> tuple[Point | None, list[Point], list[Point]]:
    """Write the run folder; returns the best config within budget, the Pareto front and the references."""
    from nas.model import export_onnx

    trials = feasible_trials(study)
    points = [
        Point(
            f"trial_{t.number:05d}",
            trial_config(t),
            result(t)["score"],
            result(t)["latency_ms"],
            result(t).get("rung", 0),
        )
        for t in trials
    ]
    front = pareto_front(points)
    top = max((p.rung for p in points), default=0)  # scores of lower rungs are less trained: not comparable
    best = max((p for p in points if p.rung == top), key=lambda p: (p.score, -p.latency_ms), default=None)
    refs = references(space, latency, evaluator)
    all_trials = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    (out / "pareto").mkdir(parents=True, exist_ok=True)
    for point in front:
        replace(point.config, name=point.name).save(out / "pareto" / f"{point.name}.yaml")
    _write_csv(out / "pareto.csv", front)
    if best is not None:
        replace(best.config, name=best.name).save(out / "best.yaml")
        export_onnx(best.config, out / "best.onnx")
    record = {
        "settings": settings,
        "seed": settings.get("seed"),
        "versions": versions(),
        "space": {"file": space.source, "name": space.name, "hash": space.hash, "size": str(space.size())},
        "table": table_record(latency),
        "evaluator": evaluator.describe(),
        "budget_ms": budget_ms,
        "trials": {"complete": len(all_trials), "feasible": len(trials), "pareto": len(front)},
        "wall_seconds": round(wall_seconds, 1),
        "best": None if best is None else {"trial": best.name, "score": best.score, "latency_ms": best.latency_ms},
    }
    write_text_atomic(out / "run.json", json.dumps(record, indent=2, default=str) + "\n")
    _plot(out / "pareto.png", all_trials, front, refs, budget_ms, latency, evaluator)
    write_text_atomic(out / "summary.md", _summary(record, front, best, refs, latency, evaluator, out))
    return best, front, refs


def _write_csv(path: Path, front: list[Point]) -> None:
    write_csv(
        path,
        ["config", "score", "rung", "latency_ms", "macs", "params", "file"],
        [
            [
                p.name,
                f"{p.score:.6g}",
                p.rung,
                f"{p.latency_ms:.4f}",
                p.config.macs(),
                p.config.params(),
                f"pareto/{p.name}.yaml",
            ]
            for p in front
        ],
    )


def _latency_label(table: LatencyModel) -> str:
    kind = "measured" if table.measured else "ESTIMATED"
    return f"latency on {table.target} (ms, {kind} table)"


def _plot(
    path: Path,
    trials: list[optuna.trial.FrozenTrial],
    front: list[Point],
    refs: list[Point],
    budget_ms: float,
    table: LatencyModel,
    evaluator: Evaluator,
) -> None:
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(7, 4.8))
    feasible = [t for t in trials if result(t).get("feasible")]
    over = [t for t in trials if result(t) and not result(t).get("feasible")]
    ax.scatter(
        [result(t)["latency_ms"] for t in feasible],
        [result(t)["score"] for t in feasible],
        s=8,
        color="tab:blue",
        alpha=0.35,
        label=f"trials within budget ({len(feasible)})",
    )
    if over:
        low = min((result(t)["score"] for t in feasible), default=0.0)
        ax.scatter(
            [result(t)["latency_ms"] for t in over],
            [low] * len(over),
            s=8,
            marker="x",
            color="tab:red",
            alpha=0.3,
            label=f"over budget, not evaluated ({len(over)})",
        )
    if front:
        ax.plot(
            [p.latency_ms for p in front], [p.score for p in front], "-o", color="black", ms=4, label="Pareto front"
        )
    for ref in refs:
        ax.scatter([ref.latency_ms], [ref.score], marker="*", s=160, color="tab:orange", zorder=5)
        ax.annotate(
            {"mobilenetv3_large": "MobileNetV3-Large", "mobilenetv3_small": "MobileNetV3-Small"}[ref.name],
            (ref.latency_ms, ref.score),
            textcoords="offset points",
            xytext=(6, -10),
            fontsize=8,
        )
    ax.axvline(budget_ms, color="tab:red", ls="--", lw=1, label=f"budget {budget_ms:g} ms")
    ax.set_xlabel(_latency_label(table))
    ax.set_ylabel(f"score: {evaluator.name} ({evaluator.kind})")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)


def _summary(
    record: dict[str, Any],
    front: list[Point],
    best: Point | None,
    refs: list[Point],
    table: LatencyModel,
    evaluator: Evaluator,
    out: Path,
) -> str:
    settings, trials = record["settings"], record["trials"]
    lines = [f"# Search {out.name}", ""]
    if not table.measured:
        lines += [
            f"> **Latencies are ESTIMATES**: table `{table.target}` was not measured on the device"
            f" ({table.metadata.get('device')}). Build a measured one there: `python -m nas.latency build"
            f" --target {table.target} --bundle DIR` (see README).",
            "",
        ]
    lines += [
        f"Searched `{record['space']['file']}` ({record['space']['size']} configs) for the best `{evaluator.name}`"
        f" score ({evaluator.kind}) within **{record['budget_ms']:g} ms** on `{table.target}`, with the"
        f" {settings.get('sampler')} sampler, objective `{settings.get('objective')}`, seed {settings.get('seed')}.",
        f"{trials['complete']} trials ({trials['feasible']} within budget) in {record['wall_seconds']:.0f} s"
        f" (this run).",
        "",
        "## Pareto front",
        "",
        "`rung` is the successive-halving fidelity a score was measured at (0: the fewest training steps;"
        " with one rung, always 0); scores of different rungs are not equally trained. The best is taken"
        " from the highest rung.",
        "",
        format_table(
            ["config", "score", "rung", "latency ms", "MMACs", "params (M)"],
            [
                [
                    p.name,
                    round(p.score, 4),
                    p.rung,
                    round(p.latency_ms, 3),
                    round(p.config.macs() / 1e6, 1),
                    round(p.config.params() / 1e6, 2),
                ]
                for p in front
            ],
            markdown=True,
        ),
        "",
    ]
    if best is not None:
        lines += [
            "## Best within budget",
            "",
            f"`best.yaml` ({best.name}): score {best.score:.4g}, {best.latency_ms:.3f} ms,"
            f" {best.config.macs() / 1e6:.1f} MMACs, {best.config.params() / 1e6:.2f} M params;"
            " ONNX in `best.onnx`.",
            "",
        ]
        for ref in refs:
            verdict = "beats" if best.score >= ref.score and best.latency_ms <= ref.latency_ms else "vs"
            lines.append(
                f"- {verdict} {ref.name}: score {ref.score:.4g} at {ref.latency_ms:.3f} ms (same table, same evaluator)"
            )
        lines.append("")
    else:
        lines += ["No config within budget was found; raise the budget or the number of trials.", ""]
    lines += [
        "## Files",
        "",
        "`pareto.png`, `pareto.csv`, `pareto/*.yaml`, `best.yaml`, `best.onnx`, `run.json`"
        " (arguments, seed, versions, space hash, table metadata).",
        "",
        f"Open the study: `optuna-dashboard {settings.get('storage')}` (pip install optuna-dashboard).",
        "",
    ]
    return "\n".join(lines)
