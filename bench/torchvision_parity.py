"""Check build_model against torchvision's own MobileNetV3 source: same state-dict keys, same outputs.

torchvision has no CPU build here and cannot be imported, so this reads the two pure-Python files that
define MobileNetV3 (models/mobilenetv3.py, ops/misc.py) straight out of the wheel and stubs the rest
of the package (weights metadata, presets, logging). No weights are downloaded.

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


def _load_from_wheel(wheel: Path) -> types.ModuleType:
    _stub_package()
    with zipfile.ZipFile(wheel) as archive:
        for name in ("torchvision.ops.misc", "torchvision.models.mobilenetv3"):
            source = archive.read(name.replace(".", "/") + ".py").decode()
            mod = types.ModuleType(name)
            mod.__package__ = name.rsplit(".", 1)[0]
            sys.modules[name] = mod
            exec(compile(source, name, "exec"), mod.__dict__)
    return sys.modules["torchvision.models.mobilenetv3"]


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
    tv = _load_from_wheel(wheel)
    for arch in ("large", "small"):
        setting, last_channel = tv._mobilenet_v3_conf(f"mobilenet_v3_{arch}")
        reference = tv.MobileNetV3(setting, last_channel).eval()
        ours = build_model(ArchConfig.load(REFERENCE_DIR / f"mobilenetv3_{arch}.yaml")).eval()
        theirs, mine = reference.state_dict(), ours.state_dict()
        same_keys = list(theirs) == list(mine)
        same_shapes = [v.shape for v in theirs.values()] == [v.shape for v in mine.values()]
        generator = torch.Generator().manual_seed(1)
        with torch.no_grad():
            for value in theirs.values():
                if value.dtype.is_floating_point:
                    noise = torch.randn(value.shape, generator=generator)
                    value.copy_(noise.abs() * 0.5 if value.ndim == 1 else noise * 0.2)
            ours.load_state_dict(dict(zip(mine, theirs.values(), strict=True)))
            x = torch.randn(2, 3, 224, 224, generator=generator)
            diff = (reference(x) - ours(x)).abs().max().item()
        print(
            f"mobilenet_v3_{arch}: {len(theirs)} state-dict entries, same keys in order: {same_keys},"
            f" same shapes: {same_shapes}, max |output difference| with torchvision's weights: {diff:.3g}"
        )


if __name__ == "__main__":
    main()
