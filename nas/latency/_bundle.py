"""A bundle: ONNX files of ops and calibration models plus a manifest, measurable on any device.

Torch-free: the device reads it with numpy + onnxruntime + yaml only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas._errors import NasError
from nas._fields import Field
from nas._yaml import read_mapping, write_yaml

FORMAT = "nas-latency-bundle/2"
MANIFEST = "manifest.yaml"


@dataclass(frozen=True)
class BundleModel:
    """A whole network timed at build time to fit the per-model overhead of the table."""

    name: str
    file: str
    ops: tuple[str, ...]


@dataclass(frozen=True)
class Manifest:
    target: str
    space: dict[str, str]  # name, hash, file of the space the ops were enumerated from
    ops: dict[str, str]  # op key -> ONNX file of the op in its context, relative to the bundle
    shapes: dict[str, str]  # shape key -> ONNX file of the context baseline at that activation shape
    models: tuple[BundleModel, ...]
    context: int | None = None  # channels the context convs lead from and to; None: the op's widths (older bundles)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "target": self.target,
            "space": self.space,
            "batch": 1,
            "dtype": "float32",
            **({"context_channels": self.context} if self.context is not None else {}),
            "ops": self.ops,
            "shapes": self.shapes,
            "models": [{"name": m.name, "file": m.file, "ops": list(m.ops)} for m in self.models],
        }

    def save(self, bundle: Path) -> None:
        write_yaml(bundle / MANIFEST, self.to_dict())


def read_manifest(bundle: str | os.PathLike[str]) -> Manifest:
    bundle = Path(bundle)
    path = bundle / MANIFEST
    if not bundle.is_dir():
        raise NasError(f"{bundle}: no such bundle folder; create one with: python -m nas.latency build --bundle DIR")
    if not path.exists():
        raise NasError(
            f"{bundle}: no {MANIFEST} in this folder, so it is not a bundle (or its export was interrupted);"
            " create it with: python -m nas.latency build --bundle DIR"
        )
    keys = Field(str(path), "", read_mapping(path)).mapping(
        ["format", "target", "space", "batch", "dtype", "ops", "shapes", "models"], ["context_channels"]
    )
    keys["format"].text(allowed=[FORMAT])
    ops, shapes = keys["ops"].value, keys["shapes"].value
    if not isinstance(ops, dict) or not ops:
        raise keys["ops"].error("expected a non-empty mapping of op key -> ONNX file")
    if not isinstance(shapes, dict) or not shapes:
        raise keys["shapes"].error("expected a non-empty mapping of shape key -> ONNX file")
    files = [str(file) for file in [*ops.values(), *shapes.values()]]
    models = []
    if keys["models"].value:
        for item in keys["models"].items():
            m = item.mapping(["name", "file", "ops"])
            models.append(BundleModel(m["name"].text(), m["file"].text(), tuple(o.text() for o in m["ops"].items())))
            files.append(models[-1].file)
    root = bundle.resolve()
    outside = [file for file in files if Path(file).is_absolute() or root not in (root / file).resolve().parents]
    if outside:  # a manifest is input from another machine: it may only name files of its own bundle
        raise NasError(
            f"{path}: names {len(outside)} files outside the bundle, e.g. {outside[0][:80]!r}; the manifest is"
            " corrupt or hostile, rebuild the bundle"
        )
    missing = [file for file in files if not (bundle / file).exists()]
    if missing:
        raise NasError(f"{bundle}: {len(missing)} ONNX files named in {MANIFEST} are missing, e.g. {missing[0]}")
    return Manifest(
        target=keys["target"].text(),
        space={name: f.text() for name, f in keys["space"].mapping(["name", "hash", "file"]).items()},
        ops={str(k): str(v) for k, v in ops.items()},
        shapes={str(k): str(v) for k, v in shapes.items()},
        models=tuple(models),
        context=keys["context_channels"].integer() if "context_channels" in keys else None,
    )


def shape_key(shape: tuple[int, int]) -> str:
    """``c24s112``: an activation of 24 channels, 112x112."""
    return f"c{shape[0]}s{shape[1]}"


def key_shape(key: str) -> tuple[int, int]:
    """The (channels, size) a ``shape_key`` names."""
    channels, size = key[1:].split("s")
    return int(channels), int(size)
