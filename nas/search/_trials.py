"""Looking at a study's trials once each: the search's per-trial bookkeeping must not grow with the study."""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial


class FinishedTrials:
    """Hands out each trial of a study once, when it has finished (trials finish in any order when
    several processes share a study): what per-trial bookkeeping indexes, instead of rescanning every
    trial of the study for every trial."""

    def __init__(self) -> None:
        self._start(None)

    def _start(self, study: optuna.Study | None) -> None:
        self._study = study
        self._seen = 0  # trials numbered below were looked at
        self._unfinished: set[int] = set()  # of those, the ones still to finish

    def new(self, study: optuna.Study) -> list[FrozenTrial]:
        """The trials of ``study`` that finished since the last call (all finished ones at the first)."""
        if study is not self._study:
            self._start(study)
        trials = study.get_trials(deepcopy=False)  # in number order: trial k at index k
        found = []
        for number in [*sorted(self._unfinished), *range(self._seen, len(trials))]:
            trial = trials[number]
            if trial.state.is_finished():
                self._unfinished.discard(number)
                found.append(trial)
            else:
                self._unfinished.add(number)
        self._seen = len(trials)
        return found
