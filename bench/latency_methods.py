"""How should one op be timed so that per-op latencies add up to a whole network's?

For N random networks of the default space, times every op (a) alone and (b) in context (between two
1x1 convs, minus half a two-conv chain per side; what nas.latency.measure does) and each network
whole, then fits whole = a * sum(ops) + b and reports leave-one-out errors for the median, p10 and
minimum of single-inference times.

    python bench/latency_methods.py [--networks 40] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from nas import SearchSpace, export_onnx
from nas._paths import DEFAULT_SPACE
from nas.config import Op, ops
from nas.model import context_input_shape, context_module, op_input_shape, op_module, shape_module

STATS = ("median", "p10", "min")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--networks", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    space = SearchSpace.load(DEFAULT_SPACE)
    rng = random.Random(f"latency-methods-{args.seed}")
    configs = [space.random_config(rng) for _ in range(args.networks)]
    tmp = Path(tempfile.mkdtemp())
    cache: dict[tuple[str, object], np.ndarray] = {}

    def timed(name: tuple[str, object], module: torch.nn.Module, shape: tuple[int, ...], runs: int) -> np.ndarray:
        if name not in cache:
            torch.manual_seed(0)
            cache[name] = _times(export_onnx(module, tmp / "m.onnx", input_shape=shape), runs)
        return cache[name]

    def alone(op: Op) -> np.ndarray:
        return timed(("alone", op), op_module(op), op_input_shape(op), 100)

    def in_context(op: Op) -> np.ndarray:
        total = timed(("context", op), context_module(op), context_input_shape(op.cin, op.size), 100)
        for side in op.context_shapes():
            if side is not None:
                c, s = side
                total = total - timed(("shape", side), shape_module(c), context_input_shape(c, s), 200) / 2
        return total

    wholes = np.array([_times(export_onnx(c, tmp / "w.onnx"), 100) for c in configs])
    print(f"{args.networks} random networks of {DEFAULT_SPACE.name}, leave-one-out fit whole = a * sum + b")
    for label, price in (("alone", alone), ("in context", in_context)):
        sums = np.array([sum(price(op) for op in ops(c)) for c in configs])
        for j, stat in enumerate(STATS):
            errors = _loo(sums[:, j], wholes[:, j])
            print(
                f"  {label:10s} {stat:6s}: MAPE {errors.mean():.2f} %, within ±5 % {(errors <= 5).mean():.0%},"
                f" within ±10 % {(errors <= 10).mean():.0%}, worst {errors.max():.1f} %"
            )


def _times(path: Path, runs: int) -> np.ndarray:
    """Median, p10 and minimum of ``runs`` single inferences after warm-up."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed_input = session.get_inputs()[0]
    feed = {feed_input.name: np.random.default_rng(0).standard_normal(feed_input.shape, dtype=np.float32)}
    for _ in range(10):
        session.run(None, feed)
    times = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        session.run(None, feed)
        times.append((time.perf_counter_ns() - start) / 1e6)
    return np.array([np.median(times), np.percentile(times, 10), min(times)])


def _loo(sums: np.ndarray, wholes: np.ndarray) -> np.ndarray:
    errors = []
    for k in range(len(sums)):
        keep = np.arange(len(sums)) != k
        a, b = np.polyfit(sums[keep], wholes[keep], 1)
        errors.append(abs(a * sums[k] + b - wholes[k]) / wholes[k] * 100)
    return np.array(errors)


if __name__ == "__main__":
    main()
