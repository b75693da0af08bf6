"""run_pipeline: search -> NetAdapt -> training -> export -> report, composed from the stages' own calls
and results (the CLI parses flags and calls it). On a supernet the route is search on inherited scores ->
extract the pick's weights -> NetAdapt from them -> fine-tune -> export."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from nas._errors import ArgumentError, NasError, OutsideSpaceError, check_seed
from nas._paths import reference_configs, result_folder
from nas.config import ArchConfig
from nas.evaluate import Evaluator, SupernetEvaluator, get_evaluator, options_for
from nas.latency import LatencyModel, LatencyTable, UnpricedOpError, load_latency, measures_here
from nas.model import Network, save_weights
from nas.netadapt import NetAdaptResult, check_options, run_netadapt
from nas.pipeline._deploy import write_deployable
from nas.pipeline._report import Entry, evaluator_caveat, write_report
from nas.pipeline._train import Recipe, train_seed, trained_network
from nas.search import SearchResult, parse_budget, run_search
from nas.search._run import DEFAULT_SPACE
from nas.space import SearchSpace

logger = logging.getLogger(__name__)
REFERENCES = ("mobilenetv3_large", "mobilenetv3_small")


@dataclass(frozen=True)
class PipelineResult:
    """Every stage's result, the final network and where its files are."""

    search: SearchResult
    netadapt: NetAdaptResult
    config: ArchConfig  # the final network as searched and priced (the space's classes; a supernet's own)
    model: Network  # trained with the first seed, the data's classes (config.yaml, weights.pt, model.onnx)
    final: dict[str, Any]  # its report row: predicted/measured ms, MACs, params, accuracies
    references: list[dict[str, Any]]  # MobileNetV3-Large/-Small rows (accuracies only when trained)
    out: Path

    @property
    def report(self) -> Path:
        return self.out / "report.md"


def run_pipeline(
    *,
    latency: LatencyModel | str | os.PathLike[str],
    budget_ms: float | str,
    space: SearchSpace | str | os.PathLike[str] = DEFAULT_SPACE,
    evaluator: Evaluator | str = "flops",
    trials: int = 1000,
    warm_start: Sequence[str | os.PathLike[str]] = (),
    slack: float = 0.1,
    data: str | None = None,
    resolution: int | None = None,
    short_steps: int = 20,
    init_cut: float = 0.05,
    netadapt_epochs: float = 2,
    select: str = "acc",
    epochs: float = 10,
    seeds: Sequence[int] = (0, 1, 2),
    train_references: bool = True,
    seed: int = 0,
    out: str | os.PathLike[str] | None = None,
    show_progress_bar: bool = False,
) -> PipelineResult:
    """From a latency budget to a deployable model: search at ``budget_ms`` x (1 + ``slack``) and pick the
    best, NetAdapt it to ``budget_ms``, train it per seed (and MobileNetV3-Large/-Small the
    same way with ``train_references``), export ONNX, time it here when the table is this machine's, and
    write ``out``/report.md. Calling again with the same arguments resumes every stage. ``data`` and
    ``resolution`` default to digits at 32 px.

    With the supernet evaluator the route is the supernet's: NetAdapt starts from the pick's inherited
    weights (no initial training), every network of stage 3 starts from weights inherited from the
    supernet (the final one from NetAdapt's result) with the same recipe, the classes, data and
    resolution are the supernet's, and a reference outside its space is left out of the comparison.

    ``warm_start``: earlier searches' output folders whose scored configs the search begins with, not
    evaluated again (``trials`` counts new ones; see ``run_search``).

    Three seeds and trained references by default: with fewer, the verdict against MobileNetV3 flips
    with the seed (bench/RESULTS.md); they cost (1 + 2 references) x seeds trainings in stage 3."""
    budget = parse_budget(budget_ms)
    seeds = list(seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ArgumentError("seeds", repr(seeds), "give distinct integers, e.g. 0,1,2")
    if not slack >= 0:
        raise ArgumentError("slack", f"{slack}", "use 0 (search at the budget) or more")
    if not epochs > 0:
        raise ArgumentError("epochs", f"{epochs:g}", "use a positive number of epochs")
    if trials < 1:
        raise ArgumentError("trials", str(trials), "use 1 or more")
    for value in {seed, *seeds}:
        check_seed(value)
    supernet = evaluator if isinstance(evaluator, SupernetEvaluator) else None
    data, resolution = _training_data(supernet, data, resolution)
    try:  # every stage's settings before the first stage runs
        check_options(
            short_steps=short_steps, resolution=resolution, init_cut=init_cut, long_epochs=netadapt_epochs,
            select=select,
        )  # fmt: skip
    except ArgumentError as exc:
        raise ArgumentError({"long_epochs": "netadapt_epochs"}.get(exc.parameter, exc.parameter), exc.shown,
                            exc.problem) from None  # fmt: skip
    latency = load_latency(latency)
    folder = result_folder(out, f"pipeline-{Path(latency.target).stem}-{budget:g}ms")
    recipe = Recipe(
        data=data, resolution=resolution, epochs=epochs, supernet=None if supernet is None else str(supernet.path)
    )
    if isinstance(evaluator, str):
        evaluator = get_evaluator(evaluator, **options_for(evaluator, data=recipe.dataset, seed=seed))
    search_budget = budget * (1 + slack)
    if caveat := evaluator_caveat(evaluator.name, budget, latency):
        logger.warning(caveat)

    _stage(1, f"search within {search_budget:g} ms ({trials} trials, {evaluator.name})")
    try:
        search = run_search(
            latency=latency,
            budget_ms=search_budget,
            space=space,
            evaluator=evaluator,
            trials=trials,
            seed=seed,
            out=folder / "search",
            final_budget_ms=budget,
            warm_start=warm_start,
            show_progress_bar=show_progress_bar,
        )
    except ArgumentError as exc:
        if exc.parameter != "budget_ms":
            raise
        raise ArgumentError("budget_ms", f"{budget:g} ms", f"searched at x{1 + slack:g}: {exc.problem}") from None
    if search.best is None:
        raise NasError(f"the search found no config within {search_budget:g} ms; raise the trials or the slack")
    picked, inherited = search.best.config, None
    if supernet is not None:  # the network that is run has the supernet's classes
        inherited = save_weights(supernet.supernet.extract(picked), folder / "inherited" / "picked.pt")
        picked = replace(picked, num_classes=supernet.supernet.num_classes)
    _forget_other_pick(folder, picked)

    _stage(
        2,
        f"NetAdapt {search.best.name} to {budget:g} ms" + ("" if supernet is None else ", from its inherited weights"),
    )
    netadapt = run_netadapt(
        config=picked,
        weights=inherited,
        latency=latency,
        budget_ms=budget,
        data=recipe.dataset,
        out=folder / "netadapt",
        resolution=resolution,
        short_steps=short_steps,
        long_epochs=netadapt_epochs,
        init_cut=init_cut,
        select=select,
        measure_missing=isinstance(latency, LatencyTable) and measures_here(latency),
        seed=seed,
        show_progress_bar=show_progress_bar,
    )

    final = replace(netadapt.config, name="final")
    runs = len(seeds) * (1 + len(REFERENCES) * train_references)
    _stage(
        3,
        f"training {recipe.start}, {epochs:g} epochs on {data}: {runs} runs (the final network"
        + (" and the references" if train_references else "")
        + f" x seeds {seeds}); each shows its ETA",
    )
    if supernet is not None and netadapt.model is not None:
        inherited = save_weights(netadapt.model, folder / "inherited" / "final.pt")
    entries = [Entry(final, [train_seed(final, recipe, s, folder / "final", init=inherited) for s in seeds])]
    for name in REFERENCES:
        if name in reference_configs():
            searched = ArchConfig.load(reference_configs()[name])
            reference = replace(searched, num_classes=final.num_classes)
            try:
                netadapt.latency.predict(reference)
            except UnpricedOpError:
                logger.info("reference %s: %s cannot price it; left out of the comparison", name, latency.target)
                continue
            start = None
            if supernet is not None and train_references:
                try:
                    start = save_weights(supernet.supernet.extract(searched), folder / "inherited" / f"{name}.pt")
                except OutsideSpaceError:
                    logger.info(
                        "reference %s is not a config of the supernet's space; left out of the comparison", name
                    )
                    continue
            trained = (
                [train_seed(reference, recipe, s, folder / "references" / name, init=start) for s in seeds]
                if train_references
                else []
            )
            entries.append(Entry(reference, trained))

    _stage(4, "export, measure and report")
    model = trained_network(final, recipe, seeds[0], folder / "final")
    deployed = write_deployable(
        folder=folder, model=model, recipe=recipe, latency=netadapt.latency, seed=seeds[0],
        accuracy=entries[0].accuracies[0],
    )  # fmt: skip
    settings = {
        "target": latency.target,
        "budget_ms": budget,
        "slack": slack,
        "trials": trials,
        "warm_start": list(search.warm_start),
        "seed": seed,
        "seeds": seeds,
        "data": data,
        "resolution": resolution,
        "supernet": recipe.supernet,
        "short_steps": short_steps,
        "init_cut": init_cut,
        "netadapt_epochs": netadapt_epochs,
        "select": select,
        "epochs": epochs,
        "train_references": train_references,
    }
    table_rows = write_report(
        out=folder, entries=entries, search=search, netadapt=netadapt, settings=settings, recipe=recipe,
        deployed=deployed,
    )  # fmt: skip
    return PipelineResult(
        search=search,
        netadapt=netadapt,
        config=final,
        model=model,
        final=table_rows[0],
        references=table_rows[1:],
        out=folder,
    )


def _training_data(supernet: SupernetEvaluator | None, data: str | None, resolution: int | None) -> tuple[str, int]:
    """The data and resolution of NetAdapt and stage 3: given, or digits at 32 px; a supernet's own
    (its classifier and BN statistics are for them), where another one given is refused."""
    if supernet is None:
        return data or "digits", 32 if resolution is None else resolution
    own = {"data": supernet.data_name, "resolution": supernet.supernet.resolution}
    for parameter, given in (("data", data), ("resolution", resolution)):
        if given is not None and given != own[parameter]:
            raise ArgumentError(
                parameter,
                str(given),
                f"supernet {supernet.path} was trained on {own['data']} at {own['resolution']} px; leave it out"
                " or train a supernet for it",
            )
    return supernet.data_name, supernet.supernet.resolution


def _forget_other_pick(out: Path, picked: ArchConfig) -> None:
    """A rerun whose search now picks another config (e.g. after more trials) trims and trains that one:
    the NetAdapt run and final training of the previous pick are removed, not mixed in."""
    started_from = out / "netadapt" / "start.yaml"
    if started_from.exists() and ArchConfig.load(started_from) != picked:
        logger.warning("note: the search picked another config than last time; NetAdapt and training restart")
        shutil.rmtree(out / "netadapt")
        shutil.rmtree(out / "final", ignore_errors=True)


def _stage(number: int, text: str) -> None:
    logger.info("[%d/4] %s", number, text)
