"""Size baselines: published work finds plain parameter and FLOP counts rank architectures about as well
as most zero-cost proxies (Abdelfattah et al. 2021, "Zero-Cost Proxies for Lightweight NAS"; Ning et al.
2021, "Evaluating Efficient Performance Estimators of Neural Architectures"), so every proxy must beat them.
"""

from __future__ import annotations

import math
import time

from nas.config import ArchConfig
from nas.evaluate._base import Evaluator, Score


class _SizeEvaluator(Evaluator):
    """log10 of a size count of the network as configured (its own resolution and classes)."""

    kind = "baseline"

    def count(self, config: ArchConfig) -> int:
        raise NotImplementedError

    def score(self, config: ArchConfig) -> Score:
        start = time.perf_counter()
        value = self.count(config)
        return Score(math.log10(value), self.kind, "analytic", time.perf_counter() - start, {self.name: value})


class ParamsEvaluator(_SizeEvaluator):
    """log10 of the parameter count (classes included)."""

    name = "params"
    unit = "log10 params"

    def count(self, config: ArchConfig) -> int:
        return config.params()


class FlopsEvaluator(_SizeEvaluator):
    """log10 of the multiply-accumulates of convolutions and linear layers at the config's resolution."""

    name = "flops"
    unit = "log10 MACs"

    def count(self, config: ArchConfig) -> int:
        return config.macs()
