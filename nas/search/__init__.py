"""Multi-objective architecture search with Optuna under a hard latency budget.

``run_search(latency="arm64", budget_ms=60)`` from Python, ``python -m nas.search`` from a shell.
"""

from nas.search._budget import parse_budget
from nas.search._results import Point, pareto_front, scored_configs
from nas.search._run import SearchResult, run_search
from nas.search._study import OBJECTIVES, SAMPLERS
from nas.search._surrogate import SurrogateSampler

__all__ = [
    "OBJECTIVES",
    "SAMPLERS",
    "Point",
    "SearchResult",
    "SurrogateSampler",
    "pareto_front",
    "parse_budget",
    "run_search",
    "scored_configs",
]
