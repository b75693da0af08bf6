"""The Optuna study of a search: storage, sampler, objective under a hard latency budget."""

from __future__ import annotations

import bisect
import inspect
import json
import math
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.storages import RetryFailedTrialCallback
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from nas._errors import ArgumentError, NasError
from nas._files import process_alive
from nas.config import ArchConfig
from nas.evaluate import Evaluator, Score, TrainEvaluator
from nas.latency import LatencyModel
from nas.search._nsga import GenerationIndex, IndexedNSGAII
from nas.search._trials import FinishedTrials
from nas.space import SearchSpace

_RDB_PARAMETERS = inspect.signature(optuna.storages.RDBStorage.__init__).parameters
SAMPLERS = ("nsga2", "tpe", "gp", "random", "surrogate")
OBJECTIVES = ("pareto", "mnas")
INFEASIBLE = float("-inf")  # score recorded for a config over budget: it is never evaluated
RESULT = "nas"  # the user attribute holding config, latency, MACs, params, feasibility and score
WARM = "warm_start"  # the study's user attribute naming the searches it began from (see ``_warm``)


@dataclass(frozen=True)
class Setup:
    """What defines a study: rerunning with another setup must not mix results into it."""

    space_hash: str
    target: str
    budget_ms: float
    objective: str
    evaluator: str
    evaluator_settings: dict[str, Any] = field(default_factory=dict)  # its describe(): other steps score otherwise

    def as_attrs(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self), default=str))  # as the storage gives it back (JSON)


def make_storage(url: str) -> optuna.storages.BaseStorage:
    """An Optuna storage; RDB storages get heartbeats so trials of a killed process are failed and retried."""
    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        path = Path(url.removeprefix("journal:"))
        if not path.parent.is_dir():
            raise ArgumentError("storage", url, f"the folder {path.parent} does not exist; create it first")
        return JournalStorage(JournalFileBackend(str(path)))
    engine: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("sqlite"):
        engine["connect_args"] = {"timeout": 60}  # several workers on one file wait instead of failing
    # Optuna >= 4.9 renamed the retry hook and its callback; older versions have the first names only
    if "heartbeat_stale_trial_callback" in _RDB_PARAMETERS:
        hook, retry = "heartbeat_stale_trial_callback", optuna.storages.RetryHeartbeatStaleTrialCallback
    else:
        hook, retry = "failed_trial_callback", RetryFailedTrialCallback
    try:
        _connect_once(url, engine)  # a server that cannot be reached fails at once, not after the retries
        storage = _create_schema_tolerantly(
            lambda: optuna.storages.RDBStorage(
                url,
                engine_kwargs=engine,
                heartbeat_interval=5,
                grace_period=15,
                **{hook: retry(max_retry=2)},
            )
        )
    except ImportError as exc:
        missing = getattr(exc.__cause__, "name", None) or "its driver"
        raise ArgumentError(
            "storage",
            url,
            f"the database driver ({missing}) is not installed; PostgreSQL: pip install"
            " 'psycopg[binary]', MySQL: pip install pymysql",
        ) from None
    except (SQLAlchemyError, ValueError, OSError) as exc:  # bad URL, unreachable server, unwritable file
        first_line = str(exc).splitlines()[0][:160]
        raise ArgumentError("storage", url, f"cannot open it ({type(exc).__name__}: {first_line})") from None
    if url.startswith("sqlite"):
        _fast_sqlite(storage)
    return storage


def _connect_once(url: str, engine: dict[str, Any]) -> None:
    from sqlalchemy import create_engine

    probe = create_engine(url, **engine)
    try:
        with probe.connect():
            pass
    finally:
        probe.dispose()


def _create_schema_tolerantly(
    create: Callable[[], optuna.storages.RDBStorage], attempts: int = 3, pause: float = 1.0
) -> optuna.storages.RDBStorage:
    """Workers started together on a fresh database all create Optuna's tables; the losers of that race
    get "table already exists" or a lock error once, and succeed when they try again."""
    for attempt in range(1, attempts):
        try:
            return create()
        except (OperationalError, IntegrityError):
            time.sleep(pause * attempt)
    return create()


def _fast_sqlite(storage: optuna.storages.RDBStorage) -> None:
    """WAL journal + synchronous=NORMAL: a search commits once per sampled parameter (dozens per trial),
    and without this each commit waits for the disk. The database stays consistent after a crash."""
    from sqlalchemy import event

    def pragmas(connection: Any, _: Any) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    event.listen(storage.engine, "connect", pragmas)
    storage.engine.dispose()  # connections opened before the listener reconnect with it


HAS_SET_CONSTRAINT = hasattr(optuna.Trial, "set_constraint")  # Optuna >= 5
CONSTRAINT = "latency_over_budget_ms"


def _constraints(trial: optuna.trial.FrozenTrial) -> list[float]:
    """Older Optuna: the budget constraint read back from the trial's recorded result."""
    return [trial.user_attrs.get(RESULT, {}).get("over_budget_ms", 0.0)]


def set_budget_constraint(trial: optuna.Trial, over_budget_ms: float) -> None:
    if HAS_SET_CONSTRAINT:
        trial.set_constraint(CONSTRAINT, over_budget_ms)


def constraint_attrs(over_budget_ms: float) -> dict[str, float]:
    """The system attribute ``set_budget_constraint`` sets, for a trial written whole (see ``_warm``)."""
    if not HAS_SET_CONSTRAINT:
        return {}
    from optuna.study._constrained_optimization import _CONSTRAINTS_KEY

    return {f"{_CONSTRAINTS_KEY}:{CONSTRAINT}": over_budget_ms}


def make_sampler(
    name: str,
    seed: int,
    *,
    space: SearchSpace,
    latency: LatencyModel,
    budget_ms: float,
    levels: Sequence[float] = (),
) -> optuna.samplers.BaseSampler:
    """A sampler by name (see SAMPLERS): Optuna's are made afresh for every trial (see ``TrialSeeded``);
    ``surrogate`` also prices from ``latency``, seeds itself from the study and works toward ``levels``
    (further budgets of interest); Optuna's samplers do not know them."""
    if name == "surrogate":
        from nas.search._surrogate import SurrogateSampler

        return SurrogateSampler(space=space, latency=latency, budget_ms=budget_ms, seed=seed, levels=levels)
    index = GenerationIndex(optuna.samplers.NSGAIISampler._get_generation_key())  # one per run: see _nsga
    return TrialSeeded(lambda trial_seed: _optuna_sampler(name, trial_seed, index), seed)


def _optuna_sampler(name: str, seed: int, index: GenerationIndex) -> optuna.samplers.BaseSampler:
    extra = {} if HAS_SET_CONSTRAINT else {"constraints_func": _constraints}
    if name == "nsga2":
        return IndexedNSGAII(index=index, seed=seed, **extra)
    if name == "tpe":  # multivariate: multi-objective TPE's default independent mode is ~10x slower
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, **extra)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed, **extra)
    return optuna.samplers.RandomSampler(seed=seed)


def trial_seed(seed: int, number: int) -> int:
    """The seed of one trial: distinct per trial number, the same in every run of the study."""
    return int(np.random.SeedSequence((seed, number)).generate_state(1)[0])


class TrialSeeded(optuna.samplers.BaseSampler):
    """An Optuna sampler made afresh for each trial and seeded with the run's seed and the trial's number.

    Seeded once per run, a sampler replays its draws when the run is resumed, and several processes on
    one seed draw the same configs. Trial numbers are unique in a study, and every other state of
    Optuna's samplers lives in the study, so a resumed run samples what an uninterrupted one would and
    processes do not repeat each other (a config drawn twice anyway is not evaluated twice: see
    ``make_objective``)."""

    def __init__(self, make: Callable[[int], optuna.samplers.BaseSampler], seed: int) -> None:
        self._make, self._seed = make, seed
        self._inner = make(seed)
        self._spaces = make(seed)  # kept for the run: its search-space inference is incremental and cached
        self._finished, self._failed = FinishedTrials(), []  # numbers of failed trials, sorted

    def reseed_rng(self) -> None:
        self._seed = int(np.random.SeedSequence().generate_state(1)[0])

    def before_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        claim(study, trial)
        # failed trials (a killed run's) are not counted: the resumed run's trials get the seeds an
        # uninterrupted run's would
        for done in self._finished.new(study):
            if done.state == optuna.trial.TrialState.FAIL:
                bisect.insort(self._failed, done.number)
        number = trial.number - bisect.bisect_left(self._failed, trial.number)
        self._inner = self._make(trial_seed(self._seed, number))
        self._inner.before_trial(study, trial)

    def infer_relative_search_space(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
        return self._spaces.infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: optuna.Study, trial: optuna.trial.FrozenTrial, search_space: dict[str, Any]
    ) -> dict[str, Any]:
        return self._inner.sample_relative(study, trial, search_space)

    def sample_independent(
        self, study: optuna.Study, trial: optuna.trial.FrozenTrial, param_name: str, param_distribution: Any
    ) -> Any:
        return self._inner.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self,
        study: optuna.Study,
        trial: optuna.trial.FrozenTrial,
        state: optuna.trial.TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self._inner.after_trial(study, trial, state, values)


def open_study(
    *, storage: optuna.storages.BaseStorage, name: str, setup: Setup, sampler: optuna.samplers.BaseSampler
) -> optuna.Study:
    """Create or load the study; a study made with another setup is refused, never mixed into."""
    directions = ["maximize", "minimize"] if setup.objective == "pareto" else ["maximize"]
    pruner = optuna.pruners.SuccessiveHalvingPruner() if setup.objective == "mnas" else None
    study = optuna.create_study(
        pruner=pruner, storage=storage, study_name=name, directions=directions, sampler=sampler, load_if_exists=True
    )
    existing, now = study.user_attrs.get("setup"), setup.as_attrs()
    if existing is None:
        study.set_user_attr("setup", now)
    else:  # a field the study was made without (an older nas) is taken as now: that part was never recorded
        differ = ", ".join(
            f"{name} {was!r} (now {is_!r})"
            for k, v in now.items()
            if k in existing
            for name, was, is_ in differences(k, existing[k], v)
        )
        if differ:
            raise NasError(f"study {name!r} already holds a search with {differ}; use another study name or folder")
    return study


def differences(name: str, was: Any, now: Any) -> list[tuple[str, Any, Any]]:
    """Where two recorded values differ, by dotted name down through dicts (the evaluator's settings): the
    refusal names the seed that changed, not the whole record."""
    if isinstance(was, dict) and isinstance(now, dict):
        return [
            d for key in sorted(set(was) | set(now)) for d in differences(f"{name}.{key}", was.get(key), now.get(key))
        ]
    return [] if json.dumps(was, sort_keys=True) == json.dumps(now, sort_keys=True) else [(name, was, now)]


def trial_config(trial: optuna.trial.FrozenTrial) -> ArchConfig:
    return ArchConfig.from_dict(result(trial)["config"], source=f"trial {trial.number}")


OWNER = "owner"  # the user attribute naming the process that runs a trial: host and pid
ABANDONED_AFTER_S = 60.0  # a running trial that never named its process is abandoned after this long
_PROCESS = "process "  # study user attributes "process HOST PID": every process that worked on it


def claim(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """Name this process as the trial's runner, right after Optuna creates it (samplers' ``before_trial``),
    so a kill at any later moment leaves a trial ``fail_abandoned`` recognises."""
    # through the storage: an optuna.Trial made here would call before_trial again
    study._storage.set_trial_user_attr(trial._trial_id, OWNER, _owner())


def _owner() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid()}


def register(study: optuna.Study) -> None:
    """Record this process in the study, so a later run can tell whether any process that worked on it
    may still be alive."""
    study.set_user_attr(f"{_PROCESS}{socket.gethostname()} {os.getpid()}", time.time())


def others_alive(study: optuna.Study) -> bool:
    """Whether a process other than this one has registered on the study and may still run (one on
    another machine always may)."""
    host = socket.gethostname()
    for key in study.user_attrs:
        if key.startswith(_PROCESS):
            other_host, pid = key.removeprefix(_PROCESS).split(" ")
            if other_host != host or (int(pid) != os.getpid() and process_alive(int(pid))):
                return True
    return False


def taken_before(study: optuna.Study, number: int, *, live_from: int) -> int:
    """Trials numbered before ``number`` that are complete, or running and of this run (numbered from
    ``live_from``: a trial left running by a killed run never ends): what a trial that must not go past
    a total counts, in the storage's order, when several processes share the study."""
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.RUNNING)
    return sum(
        t.number < number and (t.state == optuna.trial.TrialState.COMPLETE or t.number >= live_from)
        for t in study.get_trials(deepcopy=False, states=states)
    )


def fail_abandoned(study: optuna.Study) -> list[int]:
    """Fail the running trials whose process is gone, so no trial stays RUNNING forever. A trial names
    its process as soon as it is created (see ``claim``); one killed before that is failed at once when
    every other process that worked on the study ran on this machine and is gone, else after
    ``ABANDONED_AFTER_S`` (another machine's live trial is never failed). Returns the failed numbers."""
    host, now, failed = socket.gethostname(), time.time(), []
    alone = not others_alive(study)
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        owner = trial.user_attrs.get(OWNER)
        if owner is None:
            started = trial.datetime_start.timestamp() if trial.datetime_start else now
            gone = alone or now - started > ABANDONED_AFTER_S
        else:
            gone = owner.get("host") == host and not process_alive(int(owner.get("pid", 0)))
        if gone:
            study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
            failed.append(trial.number)
    return failed


def price_trial(
    trial: optuna.Trial, space: SearchSpace, latency: LatencyModel, budget_ms: float
) -> tuple[ArchConfig, float, dict[str, Any]]:
    """Sample a config, price it from the table and set the budget constraint, before any evaluation."""
    if OWNER not in trial.user_attrs:  # a user's sampler does not claim its trials
        trial.set_user_attr(OWNER, _owner())
    config = space.sample(trial)
    latency_ms = latency.predict(config)
    set_budget_constraint(trial, latency_ms - budget_ms)
    return config, latency_ms, priced_record(config, latency_ms, budget_ms)


def priced_record(config: ArchConfig, latency_ms: float, budget_ms: float) -> dict[str, Any]:
    """A trial's result before any evaluation: the config, its price and whether it is within budget."""
    return {
        "over_budget_ms": latency_ms - budget_ms,
        "config": config.to_dict(),
        "latency_ms": latency_ms,
        "macs": config.macs(),
        "params": config.params(),
        "feasible": latency_ms <= budget_ms,
    }


def objective_values(
    record: dict[str, Any], *, objective: str, budget_ms: float, w: float, scorer: str
) -> tuple[float, float] | float:
    """What a trial tells Optuna: (score, latency) for the Pareto objective, MnasNet's reward
    score·(latency/budget)^w for ``mnas``; a config over budget is INFEASIBLE. ``scorer`` names where the
    score came from, for the error a non-positive reward score gets."""
    latency_ms = record["latency_ms"]
    if not record["feasible"]:
        return (INFEASIBLE, latency_ms) if objective == "pareto" else INFEASIBLE
    value = record["score"]
    if objective == "pareto":
        return value, latency_ms
    if value <= 0:
        raise NasError(f"objective mnas needs positive scores; {scorer} gave {value}")
    return value * (latency_ms / budget_ms) ** w  # MnasNet's reward ACC * (LAT / T)^w


def make_objective(
    *,
    space: SearchSpace,
    latency: LatencyModel,
    evaluator: Evaluator,
    budget_ms: float,
    objective: str,
    w: float,
    checkpoints: Path,
) -> Callable[[optuna.Trial], Any]:
    """Latency is priced from the table first; a config over budget is recorded infeasible unevaluated."""

    scored = ScoredConfigs()

    def run(trial: optuna.Trial) -> Any:
        config, latency_ms, record = price_trial(trial, space, latency, budget_ms)
        if record["feasible"]:
            earlier = scored.find(trial)
            if earlier is not None:  # a config the study already scored (a resumed or parallel run drew it again)
                record = reused_record(record, earlier)
            else:
                if objective == "mnas" and isinstance(evaluator, TrainEvaluator):
                    score = _pruned_training(trial, evaluator, config, latency_ms, budget_ms, w, checkpoints)
                else:
                    score = evaluator.score(config)
                record.update(score=score.value, fidelity=score.fidelity, eval_seconds=score.seconds)
        record_result(trial, record)
        return objective_values(record, objective=objective, budget_ms=budget_ms, w=w,
                                scorer=f"evaluator {evaluator.name}")  # fmt: skip

    return run


class ScoredConfigs:
    """The study's complete trials with a finite score, by their choices. A search looks a config up
    once per trial: kept up to date from the trials finished since it last looked."""

    def __init__(self) -> None:
        self._by_params: dict[tuple[tuple[str, Any], ...], optuna.trial.FrozenTrial] = {}
        self._finished = FinishedTrials()

    def find(self, trial: optuna.Trial) -> optuna.trial.FrozenTrial | None:
        """The complete trial of the study with this trial's choices and a finite score, if any."""
        for earlier in self._finished.new(trial.study):
            complete = earlier.state == optuna.trial.TrialState.COMPLETE
            if complete and math.isfinite(result(earlier).get("score", math.nan)):
                self._by_params.setdefault(params_key(earlier.params), earlier)
        return self._by_params.get(params_key(trial.params))


def params_key(params: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    """A trial's choices as a hashable key: the same config, whatever order they were asked in."""
    return tuple(sorted(params.items()))


def reused_record(record: dict[str, Any], earlier: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """``record`` (a priced trial) with the score of ``earlier``, the trial that evaluated the same config."""
    found = result(earlier)
    return {
        **record,
        "score": found["score"],
        "fidelity": found["fidelity"],
        "eval_seconds": 0.0,
        "reused_from": earlier.number,
    }


def _pruned_training(
    trial: optuna.Trial,
    evaluator: TrainEvaluator,
    config: ArchConfig,
    latency: float,
    budget_ms: float,
    w: float,
    checkpoints: Path,
) -> Score:
    """Train in rungs, reporting the MnasNet reward after each so Optuna's pruner can stop the trial."""
    from nas.search._halving import rung_checkpoint, rung_steps

    for until in rung_steps(evaluator.steps, 3, 3):
        score = evaluator.score(config, steps=until, checkpoint=rung_checkpoint(checkpoints, trial.params, until))
        trial.report(score.value * (latency / budget_ms) ** w, step=until)
        if until < evaluator.steps and trial.should_prune():
            raise optuna.TrialPruned()
    return score


def record_result(trial: optuna.Trial, values: dict[str, Any]) -> None:
    """A trial's results as one user attribute: one database commit instead of one per value."""
    trial.set_user_attr(RESULT, values)


def result(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    return trial.user_attrs.get(RESULT, {})


def feasible_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return [
        t
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if result(t).get("feasible") and math.isfinite(result(t).get("score", math.nan))
    ]


def default_storage(out: Path) -> str:
    return f"sqlite:///{(out / 'study.db').resolve()}"
