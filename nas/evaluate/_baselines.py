"""Size baselines: published work finds plain parameter and FLOP counts rank architectures about as well
as most zero-cost proxies (Abdelfattah et al. 2021, "Zero-Cost Proxies for Lightweight NAS"; Ning et al.
2021, "Evaluating Efficient Performance Estimators of Neural Architectures"), so every proxy must beat them.
"""

from __future__ import annotations

import math
import time

from nas.config import ArchConfig
from nas.evaluate._base import Evaluator, Score


class ParamsEvaluator(Evaluator):
    """log10 of the parameter count (the network as configured, classes included)."""

    name = "params"
    kind = "baseline"

    def score(self, config: ArchConfig) -> Score:
        start = time.perf_counter()
        params = config.params()
        return Score(math.log10(params), self.kind, "analytic", time.perf_counter() - start, {"params": params})


class FlopsEvaluator(Evaluator):
    """log10 of the multiply-accumulates of convolutions and linear layers at the config's resolution."""

    name = "flops"
    kind = "baseline"

    def score(self, config: ArchConfig) -> Score:
        start = time.perf_counter()
        macs = config.macs()
        return Score(math.log10(macs), self.kind, "analytic", time.perf_counter() - start, {"macs": macs})
