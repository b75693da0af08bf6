"""Training on CPU: what the depthwise tap gradient (nas/model/_depthwise.py) and channels_last buy.

Times, in one run and alternating (this VM's speed drifts, so only ratios within a run are compared):

1. the weight gradient of one depthwise conv, torch's (oneDNN) against ``tap_gradient``, on the shapes a
   32 px MobileNetV3 meets (batch 64);
2. one training step (forward and backward, batch 64, 32 px, channels_last as ``TrainEvaluator`` trains)
   of MobileNetV3-Large and -Small, MobileNetV2 and ShuffleNetV2, with the taps off (``TAPS_AT_MOST = 0``) and on;
3. one supernet step's four passes (the largest config and three random ones of the default space, as
   the sandwich rule runs them), NCHW as the supernet trained before and channels_last, taps off and on.

Each figure is the best of ``--repeats`` timings after one warm-up; the taps' results equal torch's to
float rounding (tests/test_depthwise.py).

    python bench/training_speed.py [--threads 2] [--repeats 5]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import replace

import torch
import torch.nn.functional as F

from nas import ArchConfig, SearchSpace, build_model
from nas._paths import DEFAULT_SPACE, REFERENCE_DIR
from nas.model import Supernet, _depthwise, largest_config

SHAPES = [
    (96, 16, 3, 1),
    (240, 8, 5, 1),
    (240, 8, 5, 2),
    (576, 4, 5, 1),
    (576, 2, 5, 1),
    (960, 2, 5, 1),
    (960, 1, 5, 1),
]
NETWORKS = ("mobilenetv3_large", "mobilenetv3_small", "mobilenetv2_100", "shufflenet_v2_x1_0")
CL = torch.channels_last


def best(run: Callable[[], object], repeats: int) -> float:
    """The least of ``repeats`` timings of ``run`` in ms, after one warm-up call."""
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times) * 1e3


def with_taps(on: bool, run: Callable[[], object]) -> Callable[[], object]:
    def call() -> object:
        _depthwise.TAPS_AT_MOST = 16 if on else 0
        return run()

    return call


def gradients(repeats: int) -> None:
    print("| channels | map | kernel | stride | torch (oneDNN), ms | taps, ms | ratio |")
    print("|---|---|---|---|---|---|---|")
    for channels, size, kernel, stride in SHAPES:
        x = torch.randn(64, channels, size, size).contiguous(memory_format=CL)
        weight = torch.randn(channels, 1, kernel, kernel).contiguous(memory_format=CL)
        pad = (kernel - 1) // 2
        grad = torch.randn_like(F.conv2d(x, weight, None, stride, pad, 1, channels)).contiguous(memory_format=CL)
        args = ([stride] * 2, [pad] * 2, [1, 1], False, [0, 0], channels, [False, True, False])
        theirs = best(lambda: torch.ops.aten.convolution_backward(grad, x, weight, None, *args), repeats)  # noqa: B023
        mine = best(lambda: _depthwise.tap_gradient(x, grad, (kernel, kernel), (stride,) * 2, (pad,) * 2), repeats)  # noqa: B023
        print(
            f"| {channels} | {size}x{size} | {kernel} | {stride} | {theirs:.2f} | {mine:.2f} | {theirs / mine:.1f}x |"
        )


def step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, configs: list[ArchConfig] | None) -> None:
    model.zero_grad(set_to_none=True)
    for config in configs or [None]:
        out = model(x) if config is None else model(x, config)
        F.cross_entropy(out, y).backward()


def networks(repeats: int) -> None:
    x, y = torch.randn(64, 3, 32, 32).contiguous(memory_format=CL), torch.randint(0, 10, (64,))
    print("\n| network (one step, batch 64, 32 px, channels_last) | taps off, ms | taps on, ms | ratio |")
    print("|---|---|---|---|")
    for name in NETWORKS:
        config = replace(ArchConfig.load(REFERENCE_DIR / f"{name}.yaml"), resolution=32, num_classes=10)
        torch.manual_seed(0)
        model = build_model(config).to(memory_format=CL).train()
        off, on = (best(with_taps(t, lambda: step(model, x, y, None)), repeats) for t in (False, True))  # noqa: B023
        print(f"| {name} | {off:.0f} | {on:.0f} | {off / on:.2f}x |")
    space = SearchSpace.load(DEFAULT_SPACE)
    configs = [largest_config(space)] + [space.random_config(k) for k in range(3)]
    print("\n| supernet step (largest + 3 random configs of the default space) | ms | against NCHW, taps off |")
    print("|---|---|---|")
    base = None
    for layout in ("NCHW", "channels_last"):
        supernet = Supernet(space, num_classes=10, resolution=32, seed=0).train()
        inputs = x.contiguous()
        if layout == "channels_last":
            supernet, inputs = supernet.to(memory_format=CL), x
        for taps in (False, True):
            ms = best(with_taps(taps, lambda: step(supernet, inputs, y, configs)), repeats)  # noqa: B023
            base = base or ms
            print(f"| {layout}, taps {'on' if taps else 'off'} | {ms:.0f} | {base / ms:.2f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--repeats", type=int, default=5, help="timings per figure (default: %(default)s)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    gradients(args.repeats)
    networks(args.repeats)


if __name__ == "__main__":
    main()
