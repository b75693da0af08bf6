"""Where MACs mislead on this device: ShuffleNetV2's four guidelines measured here, and the reference zoo's
latency against its MACs.

Part 1 (Ma et al. 2018, "ShuffleNet V2", arXiv:1807.11164, section 2, Tables 1-4: batch 1, 56x56 input,
a stack of 10 identical blocks, FLOPs held fixed within each table by the channel counts; one thread):
  G1  two 1x1 convs c1 -> c2 -> c1 per block, c1:c2 = 1:1, 1:2, 1:6, 1:12 at (64,64) (45,90) (26,156) (18,216)
  G2  one 1x1 group conv per block, g = 1, 2, 4, 8 at c = 128, 180, 256, 360
  G3  1x1 convs as 1 fragment, 2 / 4 in series, 2 / 4 in parallel (FLOPs kept by narrowing the fragments)
  G4  a ResNet bottleneck (1x1, 3x3, 1x1) with and without ReLU and shortcut, c = 32, 64, 128, 256
Each network is exported to ONNX and timed whole with onnxruntime (nas.latency.measure.time_onnx: p10 of
single-inference times, one thread, batch 1). Rows print images per second, as the paper's tables do;
the paper's own ARM figures are not stored with nas (see bench/RESULTS.md).

Part 2: every reference config in search_spaces/reference/, timed whole the same way, against its MACs
(a table, and docs/zoo_latency.png).

    python bench/guidelines.py [--out runs/guidelines] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

from nas import ArchConfig, build_model, export_onnx
from nas._paths import REFERENCE_DIR
from nas._table import format_table
from nas.latency.measure import time_onnx

SIZE = 56
BLOCKS = 10


class Parallel(nn.Module):
    """Branches reading the same input, outputs concatenated (a multi-path block)."""

    def __init__(self, branches: list[nn.Module]) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([branch(x) for branch in self.branches], 1)


class Bottleneck(nn.Module):
    """ResNet's bottleneck: 1x1 (c -> c/4), 3x3, 1x1 (-> c), BN after each; ReLU and shortcut optional."""

    def __init__(self, c: int, *, relu: bool, shortcut: bool) -> None:
        super().__init__()
        mid = c // 4
        act: Callable[[], nn.Module] = (lambda: nn.ReLU(inplace=False)) if relu else nn.Identity
        self.body = nn.Sequential(
            nn.Conv2d(c, mid, 1, bias=False), nn.BatchNorm2d(mid), act(),
            nn.Conv2d(mid, mid, 3, padding=1, bias=False), nn.BatchNorm2d(mid), act(),
            nn.Conv2d(mid, c, 1, bias=False), nn.BatchNorm2d(c),
        )  # fmt: skip
        self.shortcut, self.out = shortcut, act()

    def forward(self, x: Tensor) -> Tensor:
        y = self.body(x)
        return self.out(y + x if self.shortcut else y)


def conv1x1(cin: int, cout: int, groups: int = 1) -> nn.Module:
    return nn.Sequential(nn.Conv2d(cin, cout, 1, groups=groups, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


def pair(c1: int, c2: int) -> nn.Module:
    return nn.Sequential(conv1x1(c1, c2), conv1x1(c2, c1))


def stack(make: Callable[[], nn.Module]) -> nn.Module:
    return nn.Sequential(*(make() for _ in range(BLOCKS)))


def experiments() -> dict[str, list[tuple[str, int, nn.Module]]]:
    """Per guideline: (setting, input channels, network)."""
    g1 = [
        (
            f"c1:c2 = 1:{ratio} ({c1}, {c2})",
            c1,
            stack(lambda c1=c1, c2=c2: nn.Sequential(conv1x1(c1, c2), conv1x1(c2, c1))),
        )
        for ratio, c1, c2 in ((1, 64, 64), (2, 45, 90), (6, 26, 156), (12, 18, 216))
    ]
    g2 = [
        (f"g = {g}, c = {c}", c, stack(lambda c=c, g=g: conv1x1(c, c, g)))
        for g, c in ((1, 128), (2, 180), (4, 256), (8, 360))
    ]
    c = 64
    g3 = [("1-fragment", c, stack(lambda: conv1x1(c, c)))]
    for k in (2, 4):
        g3.append((f"{k}-fragment-series", c, stack(lambda k=k: series(c, k))))
        g3.append((f"{k}-fragment-parallel", c, stack(lambda k=k: Parallel([conv1x1(c, c // k) for _ in range(k)]))))
    g4 = [
        (f"c = {c}, ReLU {'on' if relu else 'off'}, shortcut {'on' if short else 'off'}", c,
         stack(lambda c=c, relu=relu, short=short: Bottleneck(c, relu=relu, shortcut=short)))
        for c in (32, 64, 128, 256) for relu in (True, False) for short in (True, False)
    ]  # fmt: skip
    return {"G1 equal channel width": g1, "G2 group convolution": g2, "G3 fragmentation": g3, "G4 element-wise": g4}


def series(c: int, k: int) -> nn.Module:
    """``k`` 1x1 convs in a row, c -> w -> ... -> w -> c, with w chosen so the FLOPs equal one c -> c conv."""
    w = min(range(1, c + 1), key=lambda w: abs(2 * c * w + (k - 2) * w * w - c * c))
    return nn.Sequential(conv1x1(c, w), *(conv1x1(w, w) for _ in range(k - 2)), conv1x1(w, c))


def macs(model: nn.Module, shape: tuple[int, ...]) -> int:
    total = 0

    def hook(m: nn.Module, _: object, out: Tensor) -> None:
        nonlocal total
        if isinstance(m, nn.Conv2d):
            total += out.numel() * m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, nn.Linear):
            total += m.in_features * m.out_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model.eval()(torch.zeros(shape))
    for handle in handles:
        handle.remove()
    return total


def timed(model: nn.Module, shape: tuple[int, ...], path: Path, repeats: int) -> float:
    """Median over ``repeats`` of the p10 single-inference time (ms)."""
    torch.manual_seed(0)
    export_onnx(model, path, input_shape=shape)
    return statistics.median(time_onnx(path).ms for _ in range(repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/guidelines"))
    parser.add_argument("--repeats", type=int, default=3, help="timings per network; the median is kept")
    parser.add_argument("--plot", type=Path, default=Path("docs/zoo_latency.png"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for title, rows in experiments().items():
        table = []
        for setting, channels, model in rows:
            shape = (1, channels, SIZE, SIZE)
            ms = timed(model, shape, args.out / "model.onnx", args.repeats)
            table.append([setting, f"{macs(model, shape) / 1e6:.1f}", f"{ms:.3f}", f"{1000 / ms:.0f}"])
        print(f"\n{title} (measured here, 1 thread, batch 1, {SIZE}x{SIZE})")
        print(format_table(["setting", "MMACs", "ms", "images/s"], table, markdown=True))

    zoo = []
    for path in sorted(REFERENCE_DIR.glob("*.yaml")):
        config = ArchConfig.load(path)
        ms = timed(
            build_model(config), (1, 3, config.resolution, config.resolution), args.out / "zoo.onnx", args.repeats
        )
        zoo.append((config.name, config.macs(), config.params(), ms, config.layers[-1].TYPE))
    zoo.sort(key=lambda row: row[1])
    print("\nreference zoo (measured whole here, 1 thread, batch 1, 224x224), by MACs")
    rows = [[n, f"{m / 1e6:.0f}", f"{p / 1e6:.2f}", f"{ms:.2f}", f"{ms / (m / 1e9):.1f}"] for n, m, p, ms, _ in zoo]
    headers = ["network", "MMACs", "M params", "ms", "ms per GMAC"]
    print(format_table(headers, rows, markdown=True))
    (args.out / "zoo.csv").write_text("\n".join(",".join(map(str, row)) for row in [headers, *rows]) + "\n")
    _plot(zoo, args.plot)
    print(f"\nwrote {args.plot}")


def _plot(zoo: list[tuple[str, int, int, float, str]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    families = sorted({family for *_, family in zoo})
    colors = dict(zip(families, plt.get_cmap("tab10").colors, strict=False))
    for family in families:
        points = [(m / 1e6, ms) for _, m, _, ms, f in zoo if f == family]
        ax.scatter(*zip(*points, strict=True), color=colors[family], label=f"{family} blocks", zorder=3)
    for i, (name, m, _, ms, family) in enumerate(zoo):
        offset = (4, 4) if i % 2 else (4, -9)  # alternate sides: neighbours at equal MACs stay readable
        ax.annotate(name, (m / 1e6, ms), fontsize=6.5, xytext=offset, textcoords="offset points", color=colors[family])
    ax.legend(fontsize=8, loc="upper left")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("MACs (millions, analytic)")
    ax.set_ylabel("latency (ms, measured: onnxruntime, 1 thread, batch 1)")
    ax.set_title("Reference networks on this x86_64 machine: latency vs MACs")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
