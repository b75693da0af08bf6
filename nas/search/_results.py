"""A finished search as files a person can act on: front, best config and ONNX, plot, summary, run record."""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import optuna

from nas._errors import NasError, OutsideSpaceError
from nas._files import pyplot, save_figure, write_csv, write_text_atomic
from nas._paths import ofa_nets_folder, reference_configs
from nas._provenance import table_record, versions
from nas._table import format_table
from nas.config import OFA_NET, ArchConfig, load_ofa_net
from nas.evaluate import EVALUATORS, Evaluator, TrainEvaluator, is_ofa
from nas.latency import LatencyModel, UnpricedOpError, latency_basis
from nas.search._study import feasible_trials, make_storage, result, trial_config
from nas.space import SearchSpace

logger = logging.getLogger(__name__)
MOBILENETV3 = {"mobilenetv3_large": "MobileNetV3-Large", "mobilenetv3_small": "MobileNetV3-Small"}
OFA_SPACE = "ofa_mbv3_w1.2"


@dataclass(frozen=True)
class Point:
    name: str
    config: ArchConfig
    score: float
    latency_ms: float
    rung: int = 0  # successive halving: the fidelity rung the score was measured at
    fidelity: str = ""  # what the score is and on which data (``Score.fidelity``), as the trial recorded it


def pareto_front(points: list[Point]) -> list[Point]:
    """Points no other point beats on both score (higher) and latency (lower), by latency; of points equal
    on both, the last by name. One sweep by latency (a search's front is drawn from many thousands)."""
    front: list[Point] = []
    for _, group in itertools.groupby(sorted(points, key=lambda p: p.latency_ms), key=lambda p: p.latency_ms):
        fastest = list(group)
        top = max(p.score for p in fastest)
        if not front or top > front[-1].score:
            front.append(max((p for p in fastest if p.score == top), key=lambda p: p.name))
    return front


def default_references(space: SearchSpace) -> list[ArchConfig]:
    """The networks a search is compared with: MobileNetV3-Large/-Small, and in OFA's space OFA's published
    networks of that space where a folder of them is found (``$NAS_OFA_NETS``, else ../shared/data)."""
    found = [ArchConfig.load(path) for name, path in reference_configs().items() if name in MOBILENETV3]
    if space.name == OFA_SPACE and (folder := ofa_nets_folder()) is not None:
        for path in sorted(folder.glob(f"*/{OFA_NET}")):
            with contextlib.suppress(OutsideSpaceError):  # ProxylessNAS networks: another space
                if is_ofa(config := load_ofa_net(path.parent)):
                    found.append(config)
    return found


def references(
    configs: Sequence[ArchConfig],
    space: SearchSpace,
    latency: LatencyModel,
    evaluator: Evaluator,
    *,
    progress: bool = False,
) -> list[Point]:
    """Reference networks priced by the same table and scored by the same evaluator (a training evaluator
    trains them as it trained each trial: minutes, so it says so and shows its bar). A network the table
    cannot price from its measurements, or the evaluator cannot score (a predictor of another space), is
    left out."""
    if isinstance(evaluator, TrainEvaluator) and progress:
        evaluator = copy.copy(evaluator)
        evaluator.progress = True
    points = []
    for reference in configs:
        config = replace(reference, num_classes=space.spec.num_classes)
        try:
            explanation = latency.explain(config)
        except UnpricedOpError:
            continue  # a table of another space (e.g. note10) cannot price the references
        if explanation.modelled:
            continue  # priced partly by a measured table's op model: not a like-for-like reference point
        if evaluator.kind == "accuracy":
            logger.info(
                "scoring %s for the comparison: %s trains it as it trained each trial", config.name, evaluator.name
            )
        try:
            score = evaluator.score(config).value
        except OutsideSpaceError:
            continue
        points.append(Point(config.name, config, score, explanation.total_ms))
    return points


def scored_configs(folder: str | os.PathLike[str]) -> tuple[list[ArchConfig], list[float], SearchSpace, str]:
    """A finished search's scored configs (the top successive-halving rung: lower rungs are less trained),
    its space and what its scores are: what ``fit_predictor`` learns from."""
    study, settings = open_finished(folder)
    trials = top_rung(feasible_trials(study))
    evaluator = EVALUATORS.get(settings["evaluator"]["name"])
    unit = evaluator.unit if evaluator is not None else "score"
    space = SearchSpace.load(settings["space"])
    return [trial_config(t) for t in trials], [result(t)["score"] for t in trials], space, unit


def top_rung(trials: list[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
    """The trials scored at the highest successive-halving rung among them (lower rungs are less trained)."""
    top = max((result(t).get("rung", 0) for t in trials), default=0)
    return [t for t in trials if result(t).get("rung", 0) == top]


def open_finished(folder: str | os.PathLike[str]) -> tuple[optuna.Study, dict[str, Any]]:
    """The study of a search's output folder and the settings its run.json records."""
    folder = Path(folder)
    try:
        record = json.loads((folder / "run.json").read_text())
        settings = record["settings"]
        storage, name, space_file = settings["storage"], settings["study"], settings["space"]
        if not all(isinstance(value, str) for value in (storage, name, space_file)):
            raise TypeError("storage, study and space are not all text")
    except (OSError, ValueError, KeyError, TypeError):
        raise NasError(f"{folder}: not a finished search folder (no readable run.json); run nas.search first") from None

    database = Path(storage.removeprefix("sqlite:///"))
    if storage.startswith("sqlite:///") and not database.is_file():
        raise NasError(f"{folder}: its study database {database} is missing; give the folder the search wrote")
    opened = make_storage(storage)
    try:
        study = optuna.load_study(study_name=name, storage=opened)
    except KeyError:
        if isinstance(opened, optuna.storages.RDBStorage):
            opened.engine.dispose()  # SQLite removes its -wal and -shm files when the last connection closes
        raise NasError(f"{folder}: its storage {storage} holds no study {name!r}; run nas.search first") from None
    return study, settings


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
    final_budget_ms: float | None = None,
    progress: bool = False,
    reference_networks: Sequence[ArchConfig] = (),
    levels: Sequence[float] = (),
) -> tuple[Point | None, list[Point], list[Point]]:
    """Write the run folder; returns the best config within budget, the Pareto front and the references.
    ``levels``: smaller budgets of interest, whose best configs the summary and run.json name too."""
    from nas.model import export_onnx

    trials = feasible_trials(study)
    points = [
        Point(
            f"trial_{t.number:05d}",
            trial_config(t),
            result(t)["score"],
            result(t)["latency_ms"],
            result(t).get("rung", 0),
            result(t).get("fidelity", ""),
        )
        for t in trials
    ]
    front = pareto_front(points)
    top = max((p.rung for p in points), default=0)  # scores of lower rungs are less trained: not comparable
    best = max((p for p in points if p.rung == top), key=lambda p: (p.score, -p.latency_ms), default=None)
    refs = references(reference_networks, space, latency, evaluator, progress=progress)
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
        "trials": {
            "complete": len(all_trials),
            "feasible": len(trials),
            "pareto": len(front),
            "copied": sum("copied_from" in result(t) for t in all_trials),
        },
        "wall_seconds": round(wall_seconds, 1),
        "best": None if best is None else {"trial": best.name, "score": best.score, "latency_ms": best.latency_ms},
        "best_within": [
            {"budget_ms": ms, **({} if p is None else {"trial": p.name, "score": p.score, "latency_ms": p.latency_ms})}
            for ms, p in ((ms, best_within(front, ms)) for ms in [*levels, budget_ms])
        ],
    }
    write_text_atomic(out / "run.json", json.dumps(record, indent=2, default=str) + "\n")
    _plot(out / "pareto.png", all_trials, front, refs, (budget_ms, final_budget_ms), latency, evaluator, levels)
    write_text_atomic(out / "summary.md", _summary(record, front, best, refs, latency, evaluator, out, halving=top > 0))
    return best, front, refs


def best_within(front: list[Point], budget_ms: float) -> Point | None:
    """The front's best point within ``budget_ms`` (None if none is)."""
    return max((p for p in front if p.latency_ms <= budget_ms), key=lambda p: p.score, default=None)


def _ms(budgets: Sequence[float]) -> str:
    return ", ".join(f"{ms:g}" for ms in budgets) + " ms"


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
    return f"predicted latency on {table.target} (ms, {kind} table)"


def _plot(
    path: Path,
    trials: list[optuna.trial.FrozenTrial],
    front: list[Point],
    refs: list[Point],
    budgets: tuple[float, float | None],
    table: LatencyModel,
    evaluator: Evaluator,
    levels: Sequence[float] = (),
) -> None:
    """Trials within budget and the front, zoomed to where they are; over-budget trials have no score,
    so they are a rug of latencies along the bottom edge, not points at a made-up score."""
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(7, 4.8))
    feasible = [t for t in trials if result(t).get("feasible")]
    over = [result(t)["latency_ms"] for t in trials if result(t) and not result(t).get("feasible")]
    ax.scatter(
        [result(t)["latency_ms"] for t in feasible],
        [result(t)["score"] for t in feasible],
        s=8,
        color="tab:blue",
        alpha=0.35,
        label=f"trials within budget ({len(feasible)})",
    )
    if front:
        ax.plot(
            [p.latency_ms for p in front], [p.score for p in front], "-o", color="black", ms=4, label="Pareto front"
        )
    for ref in refs:
        ax.scatter([ref.latency_ms], [ref.score], marker="*", s=160, color="tab:orange", zorder=5)
        ax.annotate(
            MOBILENETV3.get(ref.name, ref.name.split("_top1")[0]),
            (ref.latency_ms, ref.score),
            textcoords="offset points",
            xytext=(6, -10),
            fontsize=8,
        )
    search_ms, final_ms = budgets
    ax.axvline(search_ms, color="tab:red", ls="--", lw=1, label=f"search budget {search_ms:g} ms")
    if final_ms is not None and final_ms != search_ms:
        ax.axvline(final_ms, color="tab:red", lw=1.5, label=f"your budget {final_ms:g} ms (NetAdapt trims to it)")
    for k, ms in enumerate(levels):
        ax.axvline(ms, color="tab:red", ls=":", lw=1, label=None if k else f"also budgets {_ms(levels)}")
    _zoom(ax, feasible, refs, max(search_ms, final_ms or 0))
    if over:
        ax.scatter(
            over, [0.01] * len(over), transform=ax.get_xaxis_transform(), s=10, marker="|", color="tab:red",
            alpha=0.3, label=f"over budget: latency only, not scored ({len(over)})",
        )  # fmt: skip
    ax.set_xlabel(_latency_label(table))
    ax.set_ylabel(f"{evaluator.unit} ({evaluator.name} evaluator)")
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)


def _zoom(ax: Any, feasible: list[optuna.trial.FrozenTrial], refs: list[Point], budget_ms: float) -> None:
    """Latency from the fastest trial to a little past the budget; scores from the 5th percentile of the
    trials within budget up (a few degenerate networks would otherwise squash the front)."""
    if not feasible:
        return
    shown = [r for r in refs if r.latency_ms <= 1.08 * budget_ms]  # a reference far past the budget is off the plot
    latencies = [result(t)["latency_ms"] for t in feasible] + [r.latency_ms for r in shown]
    scores = sorted(result(t)["score"] for t in feasible)
    low, high = scores[len(scores) // 20], max([scores[-1], *(r.score for r in shown)])
    pad = 0.05 * (high - low) or 0.05 * abs(high) or 1.0
    ax.set_ylim(low - pad, high + pad)
    ax.set_xlim(0.95 * min(latencies), 1.08 * budget_ms)


def _summary(
    record: dict[str, Any],
    front: list[Point],
    best: Point | None,
    refs: list[Point],
    table: LatencyModel,
    evaluator: Evaluator,
    out: Path,
    *,
    halving: bool,
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
        f" score ({evaluator.kind}: {evaluator.unit}) within **{record['budget_ms']:g} ms** as predicted by"
        f" {latency_basis(table)},"
        f" with the {settings.get('sampler')} sampler, objective `{settings.get('objective')}`,"
        f" seed {settings.get('seed')}.",
        f"{trials['complete']} trials ({trials['feasible']} within budget) in {record['wall_seconds']:.0f} s"
        f" (this run).",
        *(
            [
                f"{trials['copied']} of them were copied with their scores from earlier searches"
                f" ({', '.join(f'`{f}`' for f in settings['warm_start'])}), priced on this table; a config's"
                " `copied_from` in the study names its trial there."
            ]
            if trials["copied"]
            else []
        ),
        "",
        "## Pareto front",
        "",
    ]
    if halving:
        lines += [
            "`rung` is the successive-halving fidelity a score was measured at (0: the fewest training steps);"
            " scores of different rungs are not equally trained. The best is taken from the highest rung.",
            "",
        ]
    latency = "predicted latency ms"
    columns = ["config", f"score ({evaluator.unit})", *(["rung"] * halving), latency, "MMACs", "params (M)"]
    lines += [
        format_table(
            columns,
            [
                [
                    p.name,
                    round(p.score, 4),
                    *([p.rung] * halving),
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
            f"`best.yaml` ({best.name}): score {best.score:.4g} ({evaluator.unit}), {best.latency_ms:.3f} ms"
            " predicted,"
            f" {best.config.macs() / 1e6:.1f} MMACs, {best.config.params() / 1e6:.2f} M params. `best.onnx` is"
            f" its architecture with random weights and {best.config.num_classes} classes, for latency checks"
            " and to train, not a trained model." + (f" Its score: {best.fidelity}." if best.fidelity else ""),
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
    if len(record["best_within"]) > 1:
        keys = ("score", "latency_ms")
        lines += [
            "## Best within each budget",
            "",
            format_table(
                ["budget ms", "config", f"score ({evaluator.unit})", latency],
                [
                    [f"{b['budget_ms']:g}", b.get("trial", "none"), *(round(b[k], 4) if k in b else "-" for k in keys)]
                    for b in record["best_within"]
                ],
                markdown=True,
            ),
            "",
            "Each is the front's best within that budget; its config is `pareto/<config>.yaml`.",
            "",
        ]
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
