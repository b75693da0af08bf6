"""Warm start: a new search begins with the scores of earlier searches, not from nothing.

A score does not depend on the device or the budget, only on the config, the evaluator and its settings
(data, steps, seed). So the networks one search trained are worth as much to a search for another phone
or another budget: each is copied into the new study with its score, priced on the new table and judged
against the new budget, and is not evaluated again. The samplers learn from the copies (the surrogate
fits on them and starts choosing at once), the front includes them, and ``trials`` counts only new ones.
"""

from __future__ import annotations

import copy
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna

from nas._errors import ArgumentError
from nas.latency import LatencyModel
from nas.search._mirror import insert_trials
from nas.search._results import open_finished, top_rung
from nas.search._study import (
    RESULT,
    WARM,
    Setup,
    constraint_attrs,
    differences,
    objective_values,
    params_key,
    priced_record,
    result,
    trial_config,
)
from nas.space import SearchSpace

logger = logging.getLogger(__name__)
GENERATION = optuna.samplers.NSGAIISampler._get_generation_key()


def warm_trials(
    sources: Sequence[str | os.PathLike[str]],
    *,
    setup: Setup,
    space: SearchSpace,
    latency: LatencyModel,
    budget_ms: float,
    objective: str,
    w: float,
    rung: int | None,
) -> dict[str, list[optuna.trial.FrozenTrial]]:
    """The top-rung scored trials of the searches in ``sources`` (output folders), by folder, as this search
    records them: priced on ``latency``, judged against ``budget_ms``, with this ``objective``'s values and
    successive-halving ``rung`` (None: it does not halve). Before the study is opened: a source that cannot
    be copied is refused with nothing written."""
    copies: dict[str, list[optuna.trial.FrozenTrial]] = {}
    seen: set[tuple[tuple[str, Any], ...]] = set()  # a config scored twice (drawn again, or in two sources): once
    for folder in sorted({str(Path(source).resolve()) for source in sources}):
        copies[folder] = []
        for template in _copies(Path(folder), setup, space, latency, budget_ms):
            if (key := params_key(template.params)) in seen:
                continue
            seen.add(key)
            copies[folder].append(template)
            record = result(template)
            template.values = _as_list(
                objective_values(record, objective=objective, budget_ms=budget_ms, w=w, scorer=record["copied_from"])
            )
            if rung is not None:
                template.user_attrs = {RESULT: {**record, "rung": rung}}
    return copies


def copy_scored(study: optuna.Study, copies: dict[str, list[optuna.trial.FrozenTrial]]) -> int:
    """Write ``copies`` (see ``warm_trials``) into ``study`` once, when it has no trials yet, or finish a copy
    a killed run began; returns how many trials the study holds from a warm start (0 without one)."""
    folders = sorted(copies)
    done = study.user_attrs.get(WARM)
    if done is None and study.get_trials(deepcopy=False):
        if folders:
            raise ArgumentError("warm_start", ", ".join(folders), "this study began without one; use another folder")
        return 0
    if done is not None:
        if folders and done["from"] != folders:
            raise ArgumentError(
                "warm_start", ", ".join(folders), f"this study began from {', '.join(done['from'])}; use another folder"
            )
        if done["complete"]:
            return int(done["copied"])
        if not folders:
            raise ArgumentError(
                "warm_start", "none", f"this study's copy from {', '.join(done['from'])} was cut short; give it again"
            )
    if not folders:
        return 0
    templates = [template for folder in folders for template in copies[folder]]
    study.set_user_attr(WARM, {"from": folders, "copied": len(templates), "complete": False})
    have = {result(t).get("copied_from") for t in study.get_trials(deepcopy=False)}
    new = [template for template in templates if result(template)["copied_from"] not in have]
    sources = ", ".join(folders)
    logger.info("copying %d scored trials from %s: priced on this table, not evaluated again", len(new), sources)
    insert_trials(study, new)
    study.set_user_attr(WARM, {"from": folders, "copied": len(templates), "complete": True})
    return len(templates)


def _copies(
    folder: Path, setup: Setup, space: SearchSpace, latency: LatencyModel, budget_ms: float
) -> list[optuna.trial.FrozenTrial]:
    """The scored trials of the search in ``folder``, repriced for this search (values still to set)."""
    source, _ = open_finished(folder)
    theirs, ours = source.user_attrs.get("setup", {}), setup.as_attrs()
    for key in ("space_hash", "evaluator_settings"):
        if differ := differences(key, theirs.get(key), ours[key]):
            name, was, now = differ[0]
            raise ArgumentError(
                "warm_start",
                str(folder),
                f"its {name} is {was!r}, this search's {now!r}: scores carry over only within one space and"
                " one evaluator setting",
            )
    scored = [
        t
        for t in source.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if math.isfinite(result(t).get("score", math.nan))
    ]
    copies = []
    for trial in top_rung(scored):
        config = trial_config(trial)
        if not space.contains(config):  # cannot happen with equal hashes, unless the study was edited
            raise ArgumentError("warm_start", str(folder), f"trial {trial.number} is not in space {space.name}")
        latency_ms = latency.predict(config)
        found = result(trial)
        record = priced_record(config, latency_ms, budget_ms) | {
            "score": found["score"],
            "fidelity": found.get("fidelity", ""),
            "eval_seconds": 0.0,
            "copied_from": f"{folder} trial {trial.number}",
        }
        template = copy.copy(trial)
        template.user_attrs = {RESULT: record}
        # NSGA-II's first generation: its next trials are bred from the copies, as from a population it drew
        template.system_attrs = constraint_attrs(latency_ms - budget_ms) | {GENERATION: 0}
        copies.append(template)
    return copies


def _as_list(values: tuple[float, float] | float) -> list[float]:
    return list(values) if isinstance(values, tuple) else [values]
