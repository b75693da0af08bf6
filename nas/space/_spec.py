"""The parsed form of a search-space YAML file: choice lists for stem, stages and head."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nas._fields import Field
from nas.config import ACTIVATIONS, KERNELS, STRIDES, make_divisible

LAYER_CHOICES = ("kernel", "expansion", "se", "act")


def expanded_channels(in_channels: int, ratio: float) -> int:
    """Expansion ratio -> expanded channels; ratio 1 keeps the input width (no expand 1x1)."""
    return in_channels if ratio == 1 else make_divisible(in_channels * ratio)


@dataclass(frozen=True)
class StemSpec:
    channels: tuple[int, ...]
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    act: tuple[str, ...]


@dataclass(frozen=True)
class StageSpec:
    """Blocks of one width; the first may downsample. ``shared`` names the per-layer choices made once
    per stage (MnasNet's factorized hierarchical space); the others are free per layer."""

    stride: tuple[int, ...]
    depth: tuple[int, ...]
    width: tuple[int, ...]
    kernel: tuple[int, ...]
    expansion: tuple[float, ...]
    se: tuple[bool, ...]
    act: tuple[str, ...]
    shared: tuple[str, ...]

    def layer_options(self, name: str) -> tuple[Any, ...]:
        return getattr(self, name)


@dataclass(frozen=True)
class HeadSpec:
    last_channels: tuple[int, ...]
    hidden_channels: tuple[int, ...]
    act: tuple[str, ...]
    dropout: tuple[float, ...]


@dataclass(frozen=True)
class SpaceSpec:
    name: str
    resolution: tuple[int, ...]
    num_classes: int
    stem: StemSpec
    stages: tuple[StageSpec, ...]
    head: HeadSpec

    def to_dict(self) -> dict[str, Any]:
        """Canonical content (no comments, no defaults left implicit): what the space hash covers."""
        return {
            "name": self.name,
            "resolution": list(self.resolution),
            "num_classes": self.num_classes,
            "stem": {k: list(v) for k, v in vars(self.stem).items()},
            "stages": [{k: list(v) for k, v in vars(stage).items()} for stage in self.stages],
            "head": {k: list(v) for k, v in vars(self.head).items()},
        }


def _kernel(f: Field) -> int:
    return f.integer(allowed=KERNELS)


def _stride(f: Field) -> int:
    return f.integer(allowed=STRIDES)


def _act(f: Field) -> str:
    return f.text(allowed=ACTIVATIONS)


def _channels(f: Field) -> int:
    return f.integer(minimum=1)


def _depth(f: Field) -> int:
    return f.integer(minimum=0)


def _expansion(f: Field) -> float:
    return f.number(minimum=1.0)


def _shared(f: Field) -> tuple[str, ...]:
    if isinstance(f.value, bool):
        return LAYER_CHOICES if f.value else ()
    return f.choices(lambda item: item.text(allowed=LAYER_CHOICES))


def _optional(keys: dict[str, Field], name: str, read: Any, default: tuple[Any, ...]) -> tuple[Any, ...]:
    return keys[name].choices(read) if name in keys else default


def parse_space(root: Field) -> SpaceSpec:
    keys = root.mapping(["resolution", "num_classes", "stem", "stages", "head"], ["name", "description"])
    stem = keys["stem"].mapping(["channels"], ["kernel", "stride", "act"])
    head = keys["head"].mapping(["last_channels", "hidden_channels"], ["act", "dropout"])
    stages = []
    for item in keys["stages"].items():
        s = item.mapping(["depth", "width", "expansion"], ["stride", "kernel", "se", "act", "shared"])
        stages.append(
            StageSpec(
                stride=_optional(s, "stride", _stride, (1,)),
                depth=s["depth"].choices(_depth),
                width=s["width"].choices(_channels),
                kernel=_optional(s, "kernel", _kernel, (3,)),
                expansion=s["expansion"].choices(_expansion),
                se=_optional(s, "se", lambda f: f.boolean(), (False,)),
                act=_optional(s, "act", _act, ("relu",)),
                shared=_shared(s["shared"]) if "shared" in s else LAYER_CHOICES,
            )
        )
    return SpaceSpec(
        name=keys["name"].text() if "name" in keys else "",
        resolution=keys["resolution"].choices(lambda f: f.integer(minimum=8)),
        num_classes=keys["num_classes"].integer(minimum=2),
        stem=StemSpec(
            channels=stem["channels"].choices(_channels),
            kernel=_optional(stem, "kernel", _kernel, (3,)),
            stride=_optional(stem, "stride", _stride, (2,)),
            act=_optional(stem, "act", _act, ("hswish",)),
        ),
        stages=tuple(stages),
        head=HeadSpec(
            last_channels=head["last_channels"].choices(_channels),
            hidden_channels=head["hidden_channels"].choices(_channels),
            act=_optional(head, "act", _act, ("hswish",)),
            dropout=_optional(head, "dropout", lambda f: f.number(minimum=0.0, below=1.0), (0.2,)),
        ),
    )
