"""Multi-objective architecture search with Optuna under a hard latency budget (``python -m nas.search``)."""

from nas.search._budget import parse_budget
from nas.search._results import Point, pareto_front
from nas.search._study import OBJECTIVES, SAMPLERS

__all__ = ["OBJECTIVES", "SAMPLERS", "Point", "pareto_front", "parse_budget"]
