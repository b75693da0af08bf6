"""Accuracy evaluators behind one interface: size baselines, zero-cost proxies, predictors, a supernet's
inherited weights, short training.

``get_evaluator(name, **options).score(config) -> Score`` (higher is better, deterministic for a seed).
"""

from __future__ import annotations

import inspect
from collections.abc import Collection
from typing import Any

from nas._errors import ArgumentError, NasError
from nas.evaluate._base import Evaluator, Score
from nas.evaluate._baselines import FlopsEvaluator, ParamsEvaluator
from nas.evaluate._fitted import FittedPredictor, PredictorEvaluator, fit_predictor
from nas.evaluate._ofa import OFAPredictorEvaluator, is_ofa
from nas.evaluate._proxies import GradNormEvaluator, NaswotEvaluator, SynflowEvaluator, ZenEvaluator
from nas.evaluate._supernet import SupernetEvaluator
from nas.evaluate._train import TrainEvaluator

EVALUATORS: dict[str, type[Evaluator]] = {
    cls.name: cls
    for cls in (
        ParamsEvaluator,
        FlopsEvaluator,
        SynflowEvaluator,
        NaswotEvaluator,
        GradNormEvaluator,
        ZenEvaluator,
        TrainEvaluator,
        OFAPredictorEvaluator,
        PredictorEvaluator,
        SupernetEvaluator,
    )
}


def _accepted(cls: type[Evaluator]) -> list[str]:
    """An evaluator's options: its keyword constructor arguments."""
    keyword = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [n for n, p in inspect.signature(cls).parameters.items() if p.kind in keyword]


def options_for(name: str, *, strict: Collection[str] = (), **candidates: Any) -> dict[str, Any]:
    """The candidate options (a CLI's --data, --seed, --steps...) that evaluator ``name`` takes; None means
    not given. A ``strict`` candidate given to an evaluator that ignores it is refused: the user meant
    it to change something."""
    accepted = _accepted(EVALUATORS[name]) if name in EVALUATORS else []
    for key in strict:
        if candidates.get(key) is not None and key not in accepted and name in EVALUATORS:
            users = ", ".join(n for n, cls in EVALUATORS.items() if key in _accepted(cls))
            raise ArgumentError(key, str(candidates[key]), f"evaluator {name} does not use it (only {users} do)")
    return {key: value for key, value in candidates.items() if key in accepted and value is not None}


def get_evaluator(name: str, **options: Any) -> Evaluator:
    """An evaluator by name; options are its keyword arguments (e.g. ``data="digits"``, ``seed=1``)."""
    if name not in EVALUATORS:
        raise NasError(f"unknown evaluator {name!r}; available: {', '.join(EVALUATORS)}")
    cls = EVALUATORS[name]
    accepted = _accepted(cls)
    for option in options:
        if option not in accepted:  # an evaluator's options are its keyword-only constructor arguments
            listing = ", ".join(accepted) or "none"
            raise NasError(f"evaluator {name!r} has no option {option!r}; its options: {listing}")
    parameters = inspect.signature(cls).parameters.items()
    needed = [n for n, p in parameters if p.default is inspect.Parameter.empty and p.kind == p.KEYWORD_ONLY]
    if missing := [n for n in needed if options.get(n) is None]:
        raise NasError(f"evaluator {name!r} needs --{missing[0].replace('_', '-')} (option {missing[0]!r})")
    return cls(**options)


__all__ = [
    "EVALUATORS",
    "Evaluator",
    "FittedPredictor",
    "Score",
    "SupernetEvaluator",
    "TrainEvaluator",
    "fit_predictor",
    "get_evaluator",
    "is_ofa",
    "options_for",
]
