"""Optuna's NSGA-II with its generation bookkeeping kept incrementally.

Optuna's GA base recomputes, for every trial, the latest generation by scanning every complete trial,
and filters every trial again to find a generation's population and cached parents: per-trial work
that grows with the study (a 10,000-trial search spent most of its time there). Here one index per
study holds the complete trials by generation and by id, brought up to date from where it last
looked; the sampler draws exactly what Optuna's does (tested).
"""

from __future__ import annotations

import bisect
from typing import Any

import optuna
from optuna.samplers import NSGAIISampler
from optuna.trial import FrozenTrial, TrialState

from nas.search._trials import FinishedTrials


class GenerationIndex:
    """A study's complete trials by the generation a GA sampler gave them (``key``), and by id."""

    def __init__(self, key: str) -> None:
        self.key = key
        self._finished = FinishedTrials()
        self._study: optuna.Study | None = None

    def update(self, study: optuna.Study) -> None:
        if study is not self._study:
            self.by_generation: dict[int, list[FrozenTrial]] = {}
            self.by_id: dict[int, FrozenTrial] = {}
            self._study = study
        for trial in self._finished.new(study):
            if trial.state == TrialState.COMPLETE:
                population = self.by_generation.setdefault(trial.system_attrs.get(self.key, -1), [])
                bisect.insort(population, trial, key=lambda t: t.number)
                self.by_id[trial._trial_id] = trial

    def latest(self) -> tuple[int, int]:
        """(latest generation, its complete trials): what Optuna's scan finds (generation 0 at first)."""
        generation = max((g for g in self.by_generation if g >= 0), default=0)
        return generation, len(self.by_generation.get(generation, ()))


class IndexedNSGAII(NSGAIISampler):
    """NSGAIISampler reading generations from ``index`` (shared across the fresh samplers of one run)."""

    def __init__(self, *, index: GenerationIndex, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._index = index

    def get_trial_generation(self, study: optuna.Study, trial: FrozenTrial) -> int:
        generation = trial.system_attrs.get(self._get_generation_key())
        if generation is not None:
            return generation
        self._index.update(study)
        latest, count = self._index.latest()
        assert self._population_size is not None, "Population size must be set."
        generation = latest if count < self._population_size else latest + 1
        study._storage.set_trial_system_attr(trial._trial_id, self._get_generation_key(), generation)
        return generation

    def get_population(self, study: optuna.Study, generation: int) -> list[FrozenTrial]:
        self._index.update(study)
        return list(self._index.by_generation.get(generation, ()))

    def get_parent_population(self, study: optuna.Study, generation: int) -> list[FrozenTrial]:
        if generation == 0:
            return []
        cached = study._storage.get_study_system_attrs(study._study_id).get(
            self._get_parent_cache_key_prefix() + str(generation)
        )
        if cached is None:  # computed once per generation (select_parent), cached by Optuna's method
            return super().get_parent_population(study, generation)
        self._index.update(study)
        return sorted((self._index.by_id[i] for i in cached if i in self._index.by_id), key=lambda t: t.number)


# Optuna names its keys after the class (``__init_subclass__``): keep NSGAIISampler's, so studies stay
# readable by either sampler
IndexedNSGAII._GENERATION_KEY = NSGAIISampler._get_generation_key()
IndexedNSGAII._PARENT_CACHE_KEY_PREFIX = NSGAIISampler._get_parent_cache_key_prefix()
