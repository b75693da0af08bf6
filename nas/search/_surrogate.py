"""A model-based sampler for a hard-budget search where each evaluation is dear.

Optuna's samplers see neither the latency table nor the budget: they spend trials on configs the table
would have refused for free, and they learn the accuracy landscape only through their own generic
models. This one prices every candidate from the table before proposing it and steers by a surrogate of
the evaluator (a small ensemble of MLPs on the choices one-hot, plus each ordered choice's rank,
refitted on the study's results): per batch it picks latency targets spread over the budget and, for
each, evolves the best evaluated configs within that target *on the surrogate* (free), then proposes the
candidate with the highest upper confidence bound. For half the targets (``local``) the candidates are
instead the configs one or two choices away from one of the best evaluated ones within the target (a
trust region): near the top of the front the surrogate's errors exceed the differences left to find, and
a step around the incumbent still pays. Two-choice steps matter under a hard target: an incumbent near
its target can take no single upgrade, but it can trade one choice up for another down. The centre is
the best config within the target most of the time and one of the next best otherwise (rank r with
probability e^-r (1 - e^-1)), so the steps do not all stall in the best config's basin. Three longer
jumps join those candidates: climbs on the surrogate back within the target, each holding an input
resolution other than the centre's, two from the centre, one from a random config (each resolution has
its own basin).
Given ``levels`` (latencies below the budget that the user also ships at), each batch also aims ``focus``
targets at each of them and at the budget itself: spread targets alone give a point of the front under
one proposal per batch. (Leaping from a runner-up input resolution's best config instead, for one of the
two, was tried on OFA's benchmark and lost on average: bench/RESULTS.md.) Every trial is a new config
within budget.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution

from nas._errors import ArgumentError
from nas.latency import LatencyModel
from nas.search._study import claim, params_key, result, trial_seed
from nas.space import SearchSpace

KICK, CLIMB_STEPS, CLIMB_MOVES = 3, 30, 40  # a climb on the surrogate (see SurrogateSampler._climbs)
BATCH, FOCUS = 16, 2  # proposals per surrogate refit, and per budget of interest in each batch
DECODED = 50_000  # genomes remembered with their params and latency (on OFA's space ~4 KB each: up to 200 MB)

Genome = dict[str, Any]  # every choice of the space (see SearchSpace.choices), used or not
Params = dict[str, Any]  # the choices a config actually asks: what a trial records


class SurrogateSampler(optuna.samplers.BaseSampler):
    """Proposes configs within ``budget_ms`` by ``latency``: ``initial`` random ones, then batches of
    ``batch`` chosen by a surrogate fitted on every scored trial of the study, a share ``local`` of them
    among the neighbours (one choice away, and ``pairs`` drawn two choices away) of one of the best configs
    within their target (see the module). ``levels``: further budgets of interest below ``budget_ms``, each
    (and the budget) the target of ``focus`` proposals per batch."""

    def __init__(
        self,
        *,
        space: SearchSpace,
        latency: LatencyModel,
        budget_ms: float,
        seed: int | None = None,
        initial: int = 100,
        batch: int = BATCH,
        generations: int = 5,
        kappa: float = 1.0,
        local: float = 0.5,
        pairs: int = 300,
        climbs: int = 3,
        levels: Sequence[float] = (),
        focus: int = FOCUS,
    ) -> None:
        self.space, self.latency, self.budget_ms = space, latency, budget_ms
        self.initial, self.batch, self.generations, self.kappa = initial, batch, generations, kappa
        self.local, self.pairs, self.climbs = local, pairs, climbs
        self.levels = sorted({*levels, budget_ms}) if levels else []
        if (count := len(set(levels) - {budget_ms})) > (most := most_levels(batch=batch, focus=focus)):
            raise ArgumentError(
                "levels", f"({count} budgets)", f"give at most {most} besides the budget at focus {focus}"
            )
        self.focus = focus
        self.genes = space.choices()
        columns = [(name, option) for name, options in self.genes.items() for option in options]
        self._slot: dict[tuple[str, Any], int] = {}  # (choice, option) -> its one-hot column: _features is hot
        for k, column in enumerate(columns):
            self._slot.setdefault(column, k)  # an option equal to an earlier one (1 and 1.0) shares its column
        # and a column per ordered choice (numbers, more than two): its option's rank, so what the model learns
        # of kernels 3 and 5 says something of 7 (a few hundred trials ranked better, bench/RESULTS.md)
        ordered = [name for name, options in self.genes.items() if _ordered(options)]
        self._rank: dict[tuple[str, Any], tuple[int, float]] = {  # (choice, option) -> its rank column, rank
            (name, option): (len(columns) + k, rank)
            for k, name in enumerate(ordered)
            for option, rank in _ranks(self.genes[name]).items()
        }
        self._width = len(columns) + len(ordered)
        self._seed = random.randrange(2**32) if seed is None else seed
        self._random = random.Random(self._seed)
        self._queue: list[Params] = []
        self._proposed: dict[int, Params] = {}  # trial id -> the params it is being given
        self._surrogate: _Ensemble | None = None
        self._decoded: dict[tuple[Any, ...], tuple[Params, float]] = {}

    # ---- Optuna's sampler interface ------------------------------------------------------------
    def reseed_rng(self) -> None:
        self._seed = random.Random().randrange(2**32)

    def infer_relative_search_space(
        self, study: optuna.Study, trial: optuna.trial.FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(
        self, study: optuna.Study, trial: optuna.trial.FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return {}

    def sample_independent(
        self,
        study: optuna.Study,
        trial: optuna.trial.FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        params = self._proposed.get(trial._trial_id)
        if params is None:
            params = self._proposed[trial._trial_id] = self._next(study, trial.number)
        value = params.get(param_name)
        if isinstance(param_distribution, CategoricalDistribution) and value in param_distribution.choices:
            return value
        # a choice the space does not have (another space's study): Optuna's random draw
        return optuna.samplers.RandomSampler(seed=self._random.randrange(2**32)).sample_independent(
            study, trial, param_name, param_distribution
        )

    def before_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        claim(study, trial)

    def after_trial(
        self,
        study: optuna.Study,
        trial: optuna.trial.FrozenTrial,
        state: optuna.trial.TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self._proposed.pop(trial._trial_id, None)

    # ---- proposals -----------------------------------------------------------------------------
    def _next(self, study: optuna.Study, number: int) -> Params:
        if not self._queue:  # seeded by the trial's number: resumed runs and other processes draw anew
            self._random = random.Random(trial_seed(self._seed, number))
            self._queue = self._propose(study)
        return self._queue.pop(0)

    def _propose(self, study: optuna.Study) -> list[Params]:
        """A batch of new configs within budget: random until ``initial`` are scored, then chosen."""
        trials = study.get_trials(deepcopy=False)
        seen = {params_key(t.params) for t in trials} | {params_key(p) for p in self._proposed.values()}
        scored = [
            (t.params, result(t)["latency_ms"], result(t)["score"])
            for t in trials
            if t.state == optuna.trial.TrialState.COMPLETE and math.isfinite(result(t).get("score", math.nan))
        ]
        if len(scored) < self.initial:
            return self._random_batch(seen, min(self.batch, self.initial - len(scored)))
        x = np.stack([self._features(params) for params, _, _ in scored])
        y = np.array([score for _, _, score in scored])
        if self._surrogate is None:
            self._surrogate = _Ensemble(inputs=x.shape[1], seed=self._random.randrange(2**31))
        self._surrogate.fit(x, y)
        chosen: list[Params] = []
        for target in self._targets(min(ms for _, ms, _ in scored)):
            best = self._best_within(target, scored, seen)
            if best is not None:
                chosen.append(best)
                seen.add(params_key(best))
        return chosen or self._random_batch(seen, self.batch)

    def _targets(self, lowest_ms: float) -> Iterator[float]:
        """One latency target per proposal of a batch: ``focus`` at each budget of interest (none without
        ``levels``), the rest stratified from the fastest scored config to the budget, so every latency level
        gets its turn."""
        for level in self.levels:
            yield from [level] * self.focus
        spread = self.batch - self.focus * len(self.levels)
        for k in range(spread):
            yield lowest_ms + (self.budget_ms - lowest_ms) * (k + self._random.random()) / spread

    def _best_within(
        self,
        target_ms: float,
        scored: list[tuple[Params, float, float]],
        seen: set[tuple[Any, ...]],
    ) -> Params | None:
        """The best unseen candidate by the surrogate: a neighbour of one of the best scored configs within
        ``target_ms`` (a share ``local`` of the calls), else the result of evolving the best scored configs on
        the surrogate."""
        assert self._surrogate is not None
        parents = sorted((s for s in scored if s[1] <= target_ms), key=lambda s: -s[2])[: self.batch + 9]
        if not parents:
            return None
        centre = parents[min(int(self._random.expovariate(1.0)), len(parents) - 1)][0]
        if self._random.random() < self.local and (
            near := self._neighbours(centre, target_ms, seen) + self._climbs(centre, target_ms)
        ):
            population = near
        else:
            population = self._evolve([(self._genome(params), self._features(params)) for params, _, _ in parents],
                                      target_ms)  # fmt: skip
        gain = self._surrogate.upper(np.stack([f for _, f in population]), self.kappa)
        for i in np.argsort(-gain):
            params = self._decode(population[i][0])[0]
            if params_key(params) not in seen:
                return params
        return None

    def _evolve(self, population: list[tuple[Genome, Any]], target_ms: float) -> list[tuple[Genome, Any]]:
        """``generations`` of OFA-style mutation and crossover within ``target_ms``, selected on the surrogate."""
        assert self._surrogate is not None
        for _ in range(self.generations):
            children = []
            for _ in range(40 * len(population)):  # attempts: most children of a tight target are over it
                one = self._random.choice(population)[0]
                child = (
                    self._mutate(one)
                    if self._random.random() < 0.5
                    else self._crossover(one, self._random.choice(population)[0])
                )
                params, ms = self._decode(child)
                if ms <= target_ms:
                    children.append((child, self._features(params)))
                if len(children) == 4 * len(population):
                    break
            everyone = population + children
            gain = self._surrogate.upper(np.stack([f for _, f in everyone]), self.kappa)
            population = [everyone[i] for i in np.argsort(-gain)[: len(population)]]
        return population

    def _neighbours(self, params: Params, target_ms: float, seen: set[tuple[Any, ...]]) -> list[tuple[Genome, Any]]:
        """The new configs within ``target_ms`` that differ from ``params`` in one choice it asked, and up to
        ``pairs`` drawn among those that differ in two."""
        genome, names = self._genome(params), list(params)
        steps = [{name: option} for name in names for option in self.genes[name]]
        if len(names) > 1:
            for _ in range(self.pairs):
                one, two = self._random.sample(names, 2)
                steps.append({one: self._random.choice(self.genes[one]), two: self._random.choice(self.genes[two])})
        found, keys = [], {params_key(params)} | seen
        for step in steps:
            moved = {**genome, **step}
            child, ms = self._decode(moved)
            if params_key(child) not in keys and ms <= target_ms:
                keys.add(params_key(child))
                found.append((moved, self._features(child)))
        return found

    def _climbs(self, params: Params, target_ms: float) -> list[tuple[Genome, Any]]:
        """Up to ``climbs`` configs within ``target_ms`` reached on the surrogate, each at an input resolution
        other than ``params``'s: it starts from ``params`` (the last from a random genome) with the resolution
        redrawn and ``KICK`` - 1 other choices too, then, holding that resolution, takes up to ``CLIMB_STEPS``
        times the best of ``CLIMB_MOVES`` drawn one-choice steps while it gains, any config over the target
        ranking below all within it. The resolution sets every layer's cost, so each resolution has its own
        best depths and widths at a latency, and no one- or two-choice step crosses from one such basin to
        another within the target (on OFA's space at 40 ms, runs stayed at 192 px with every stage 4 deep
        while 208 and 224 px with a shallower stage score higher). A climb free to move the resolution would
        first undo the jump: it is the largest cut in latency."""
        held = [SearchSpace.RESOLUTION] if len(self.genes.get(SearchSpace.RESOLUTION, ())) > 1 else []
        found = []
        for k in range(self.climbs):
            genome = self._genome(params) if k < self.climbs - 1 else self._random_genome()
            if held:
                others = [r for r in self.genes[SearchSpace.RESOLUTION] if r != params.get(SearchSpace.RESOLUTION)]
                genome[SearchSpace.RESOLUTION] = self._random.choice(others)
            free = [name for name in params if name not in held]
            for name in self._random.sample(free, min(KICK - len(held), len(free))):
                genome[name] = self._random.choice(self.genes[name])
            here = self._rate([genome], target_ms)[0]
            for _ in range(CLIMB_STEPS):
                names = [name for name in here[1] if name not in held]
                if not names:
                    break
                moves = [{**here[0], name: self._random.choice(self.genes[name])}
                         for name in self._random.choices(names, k=CLIMB_MOVES)]  # fmt: skip
                step = max(self._rate(moves, target_ms), key=lambda rated: rated[2])
                if step[2] > here[2]:
                    here = step
                elif here[2][0]:  # within the target and no step gains: a summit
                    break
            if here[2][0]:
                found.append((here[0], self._features(here[1])))
        return found

    def _rate(self, genomes: list[Genome], target_ms: float) -> list[tuple[Genome, Params, tuple[bool, float]]]:
        """Each genome with its params and a rank: within the target, then the surrogate's mean if it is,
        else how little it is over."""
        assert self._surrogate is not None
        decoded = [self._decode(genome) for genome in genomes]
        means = self._surrogate.upper(np.stack([self._features(params) for params, _ in decoded]), 0.0)
        rated = []
        for genome, (params, ms), mean in zip(genomes, decoded, means, strict=True):
            over = ms - target_ms
            rated.append((genome, params, (over <= 0, float(mean) if over <= 0 else -over)))
        return rated

    def _random_batch(self, seen: set[tuple[Any, ...]], size: int) -> list[Params]:
        """Uniform draws within budget (a bounded number of tries: a tight budget falls back to any)."""
        batch: list[Params] = []
        for _ in range(1000 * size):
            params, ms = self._decode(self._random_genome())
            if params_key(params) not in seen and ms <= self.budget_ms:
                batch.append(params)
                seen.add(params_key(params))
                if len(batch) == size:
                    break
        return batch or [self._decode(self._random_genome())[0]]

    # ---- genomes -------------------------------------------------------------------------------
    def _random_genome(self) -> Genome:
        return {name: self._random.choice(options) for name, options in self.genes.items()}

    def _genome(self, params: Params) -> Genome:
        """A trial's params with the choices its config did not ask drawn at random."""
        return {name: params[name] if name in params else self._random.choice(options) for name, options in
                self.genes.items()}  # fmt: skip

    def _mutate(self, genome: Genome) -> Genome:
        """OFA's mutation: each choice redrawn with probability 0.1."""
        return {
            name: self._random.choice(self.genes[name]) if self._random.random() < 0.1 else value
            for name, value in genome.items()
        }

    def _crossover(self, one: Genome, two: Genome) -> Genome:
        return {name: one[name] if self._random.random() < 0.5 else two[name] for name in one}

    def _decode(self, genome: Genome) -> tuple[Params, float]:
        """The choices a genome's config asks (its trial params) and the config's latency by the table. Both
        are remembered (up to ``DECODED`` genomes; the params dict is shared, so nothing may change it):
        climbs and neighbourhoods meet the same genomes again, a third of the calls, and decoding and
        pricing are most of a proposal's cost."""
        key = tuple(genome[name] for name in self.genes)
        if (known := self._decoded.get(key)) is not None:
            return known
        params: Params = {}

        def choose(name: str, options: Sequence[Any]) -> Any:
            if len(options) == 1:
                return options[0]
            params[name] = genome[name] if genome.get(name) in options else options[0]
            return params[name]

        if len(self._decoded) >= DECODED:
            self._decoded.clear()
        decoded = self._decoded[key] = (params, self.latency.predict(self.space.build(choose)))
        return decoded

    def _features(self, params: Params) -> np.ndarray:
        """One-hot of the choices asked, and each ordered one's rank; choices not asked (layers past a depth)
        stay zero, as in OFA's encoding."""
        x = np.zeros(self._width, np.float32)
        x[[slot for item in params.items() if (slot := self._slot.get(item)) is not None]] = 1
        for item in params.items():
            if (ranked := self._rank.get(item)) is not None:
                x[ranked[0]] = ranked[1]
        return x


def _ordered(options: Sequence[Any]) -> bool:
    """Numbers with an order a one-hot column does not tell: more than two of them (bools aside)."""
    return len(set(options)) > 2 and all(isinstance(o, int | float) and not isinstance(o, bool) for o in options)


def _ranks(options: Sequence[Any]) -> dict[Any, float]:
    """Each option's rank among the distinct options, scaled to (0, 1]: 0 is left for a choice not asked."""
    distinct = sorted(set(options))
    return {option: (r + 1) / len(distinct) for r, option in enumerate(distinct)}


def most_levels(*, batch: int = BATCH, focus: int = FOCUS) -> int:
    """Budgets of interest (besides the budget) a batch can aim ``focus`` proposals at, keeping one spread."""
    return (batch - 1) // focus - 1


@contextmanager
def _one_thread() -> Iterator[None]:
    """Tiny matrices: torch's second thread only contends with the evaluator (3x slower on 2 cores)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class _Ensemble:
    """Small MLPs on standardized scores, each from its own initialization and its own minibatches, trained
    as one batched network; their spread is the surrogate's uncertainty. Refits continue from the previous
    weights, so each costs a few hundred cheap steps."""

    def __init__(self, *, inputs: int, seed: int, members: int = 3, hidden: int = 128) -> None:
        import torch

        self.generator = torch.Generator().manual_seed(seed)
        self.weights = []
        for fan_in, fan_out in ((inputs, hidden), (hidden, hidden), (hidden, 1)):
            bound = fan_in**-0.5  # nn.Linear's initialization
            for shape in ((members, fan_in, fan_out), (members, 1, fan_out)):
                tensor = (torch.rand(shape, generator=self.generator) * 2 - 1) * bound
                self.weights.append(tensor.requires_grad_())
        self.optimizer = torch.optim.Adam(self.weights, lr=1e-3, weight_decay=1e-4)
        self.members = members
        self.fitted = False
        self.mean = self.std = 0.0

    def forward(self, x: Any) -> Any:
        """(members, rows, inputs) -> (members, rows)."""
        import torch

        w1, b1, w2, b2, w3, b3 = self.weights
        h = torch.relu(torch.bmm(x, w1) + b1)
        h = torch.relu(torch.bmm(h, w2) + b2)
        return (torch.bmm(h, w3) + b3)[..., 0]

    def fit(self, x: np.ndarray, y: np.ndarray) -> None:
        import torch

        self.mean, self.std = float(y.mean()), float(y.std()) + 1e-9
        inputs, targets = torch.from_numpy(x), torch.from_numpy((y - self.mean) / self.std).float()
        with _one_thread():
            self._train(inputs, targets, 300 if self.fitted else 2000)
        self.fitted = True

    def _train(self, inputs: Any, targets: Any, steps: int) -> None:
        import torch

        for _ in range(steps):
            rows = torch.randint(len(inputs), (self.members, min(len(inputs), 128)), generator=self.generator)
            loss = ((self.forward(inputs[rows]) - targets[rows]) ** 2).mean()
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()

    def upper(self, x: np.ndarray, kappa: float) -> np.ndarray:
        """Mean plus ``kappa`` spreads of the members' predictions (in standardized units)."""
        import torch

        with torch.no_grad(), _one_thread():
            inputs = torch.from_numpy(x).expand(self.members, *x.shape)
            predictions = self.forward(inputs).numpy()
        return predictions.mean(0) + kappa * predictions.std(0)
