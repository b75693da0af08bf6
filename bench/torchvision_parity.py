"""Check build_model against torchvision's own source: same state-dict keys in the same order, same shapes,
same outputs with the same weights, for every reference network torchvision has (MobileNetV3-Large/-Small,
MobileNetV2, SqueezeNet 1.0/1.1, ShuffleNetV2 0.5x-2.0x).

torchvision has no CPU build here and cannot be imported, so this reads the pure-Python files that define
those models (models/*.py, ops/misc.py) straight out of the wheel and stubs the rest of the package
(weights metadata, presets, logging). No weights are downloaded. Exits 1 if any network differs.

    python bench/torchvision_parity.py [--wheel torchvision-0.28.0-...whl]

Without --wheel it runs ``pip download --no-deps torchvision==0.28.0`` into a temporary folder.
"""

from __future__ import annotations

import argparse
import collections.abc
import itertools
import subprocess
import sys
import tempfile
import types
import zipfile
from pathlib import Path

import torch

from nas import ArchConfig, build_model
from nas._paths import REFERENCE_DIR
from nas.config import make_divisible


def _stub_package() -> None:
    def module(name: str, **attrs: object) -> types.ModuleType:
        mod = types.ModuleType(name)
        mod.__dict__.update(attrs)
        sys.modules[name] = mod
        return mod

    def ntuple(x: object, n: int) -> tuple[object, ...]:
        return tuple(x) if isinstance(x, collections.abc.Iterable) else tuple(itertools.repeat(x, n))

    def ignore(*args: object, **kwargs: object) -> None:
        return None

    module("torchvision", __path__=[])
    module("torchvision.utils", _log_api_usage_once=ignore, _make_ntuple=ntuple)
    module("torchvision.transforms")
    module("torchvision.transforms._presets", ImageClassification=ignore)
    module("torchvision.models", __path__=[])
    module("torchvision.ops", __path__=[])
    module(
        "torchvision.models._api",
        register_model=lambda *a, **k: lambda f: f,
        Weights=ignore,
        WeightsEnum=type("WeightsEnum", (), {}),
    )
    module("torchvision.models._meta", _IMAGENET_CATEGORIES=[])
    module(
        "torchvision.models._utils",
        _make_divisible=lambda v, d, m=None: make_divisible(v, d),
        _ovewrite_named_param=ignore,
        handle_legacy_interface=lambda **k: lambda f: f,
    )


MODULES = ("mobilenetv3", "mobilenetv2", "squeezenet", "shufflenetv2")


def _load_from_wheel(wheel: Path) -> dict[str, types.ModuleType]:
    _stub_package()
    with zipfile.ZipFile(wheel) as archive:
        for name in ("torchvision.ops.misc", *(f"torchvision.models.{m}" for m in MODULES)):
            source = archive.read(name.replace(".", "/") + ".py").decode()
            mod = types.ModuleType(name)
            mod.__package__ = name.rsplit(".", 1)[0]
            sys.modules[name] = mod
            exec(compile(source, name, "exec"), mod.__dict__)
    return {m: sys.modules[f"torchvision.models.{m}"] for m in MODULES}


def _networks(tv: dict[str, types.ModuleType]) -> dict[str, torch.nn.Module]:
    """torchvision's builders (no weights), keyed by our reference config's name."""
    v3 = tv["mobilenetv3"]
    nets = {}
    for arch in ("large", "small"):
        setting, last_channel = v3._mobilenet_v3_conf(f"mobilenet_v3_{arch}")
        nets[f"mobilenetv3_{arch}"] = v3.MobileNetV3(setting, last_channel)
    nets["mobilenetv2_100"] = tv["mobilenetv2"].MobileNetV2()
    for version in ("1_0", "1_1"):
        nets[f"squeezenet{version}"] = tv["squeezenet"].SqueezeNet(version)
    shuffle = tv["shufflenetv2"]
    for tag, outs in (
        ("x0_5", [24, 48, 96, 192, 1024]),
        ("x1_0", [24, 116, 232, 464, 1024]),
        ("x1_5", [24, 176, 352, 704, 1024]),
        ("x2_0", [24, 244, 488, 976, 2048]),
    ):
        nets[f"shufflenet_v2_{tag}"] = shuffle.ShuffleNetV2([4, 8, 4], outs)
    return nets


def compare(name: str, reference: torch.nn.Module) -> bool:
    """Print and return whether our build of reference config ``name`` is torchvision's network."""
    reference = reference.eval()
    ours = build_model(ArchConfig.load(REFERENCE_DIR / f"{name}.yaml")).eval()
    theirs, mine = reference.state_dict(), ours.state_dict()
    same_keys = list(theirs) == list(mine)
    same_shapes = [v.shape for v in theirs.values()] == [v.shape for v in mine.values()]
    params = sum(p.numel() for p in reference.parameters()), sum(p.numel() for p in ours.parameters())
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for value in theirs.values():
            if value.dtype.is_floating_point:
                noise = torch.randn(value.shape, generator=generator)
                value.copy_(noise.abs() * 0.5 if value.ndim == 1 else noise * 0.2)
        if same_shapes:
            ours.load_state_dict(dict(zip(mine, theirs.values(), strict=True)))
        x = torch.randn(2, 3, 224, 224, generator=generator)
        expected = reference(x)
        diff = (expected - ours(x)).abs().max().item() if same_shapes else float("nan")
        scale = expected.abs().max().item()
    ok = same_keys and same_shapes and params[0] == params[1] and diff <= 1e-5 * max(scale, 1.0)
    print(
        f"{name}: {len(theirs)} state-dict entries, {params[0]:,} parameters (ours {params[1]:,}), same keys in"
        f" order: {same_keys}, same shapes: {same_shapes}, max |output difference| with torchvision's weights:"
        f" {diff:.3g} (outputs up to {scale:.3g}) -> {'OK' if ok else 'DIFFERENT'}"
    )
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wheel", type=Path, help="a torchvision wheel (default: pip download 0.28.0)")
    args = parser.parse_args()
    wheel = args.wheel
    if wheel is None:
        folder = Path(tempfile.mkdtemp())
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "torchvision==0.28.0", "-d", str(folder)],
            check=True,
        )
        wheel = next(folder.glob("torchvision-*.whl"))
    results = [compare(name, net) for name, net in _networks(_load_from_wheel(wheel)).items()]
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
