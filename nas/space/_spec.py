"""The parsed form of a search-space YAML file: choice lists for stem, stages and head.

Each part type declares its own choices (``Part.CHOICES``). A stage lists its type's choices inline
(``type: fire`` with ``squeeze: [...]``; no ``type`` means ``mbv3``), or chooses among several types
(``type: [mbv3, fire]``), each type's choices then under its own key (``fire: {squeeze: [...]}``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from nas._fields import Field
from nas.blocks import DEFAULT_TYPE, Part, part_type, part_types
from nas.blocks._base import channels, resolution

MAX_DEPTH = 64  # layers per stage; ResNet-152's longest stage has 36


@dataclass(frozen=True)
class TypeSpec:
    """One part type's options in a stem, stage or head; ``shared`` names the choices made once per stage
    (MnasNet's factorized hierarchical space); the others are free per layer."""

    role: str
    type: str
    options: tuple[tuple[str, tuple[Any, ...]], ...]
    shared: tuple[str, ...] = ()

    @property
    def cls(self) -> type[Part]:
        return part_types(self.role)[self.type]

    @functools.cached_property
    def names(self) -> tuple[str, ...]:  # cached, as below: decoding a config asks them per layer
        return tuple(name for name, _ in self.options)

    @functools.cached_property
    def _by_name(self) -> dict[str, tuple[Any, ...]]:
        return dict(self.options)

    def layer_options(self, name: str) -> tuple[Any, ...]:
        return self._by_name[name]

    def to_dict(self) -> dict[str, Any]:
        return {name: list(values) for name, values in self.options}


@dataclass(frozen=True)
class StemSpec:
    choices: TypeSpec


@dataclass(frozen=True)
class StageSpec:
    """Blocks of one width; the first may downsample; each stage uses one of ``types``."""

    stride: tuple[int, ...]
    depth: tuple[int, ...]
    width: tuple[int, ...]
    types: tuple[TypeSpec, ...]

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"stride": list(self.stride), "depth": list(self.depth), "width": list(self.width)}
        if len(self.types) == 1:
            (spec,) = self.types
            if spec.type != DEFAULT_TYPE["block"]:
                data["type"] = spec.type
            data.update(spec.to_dict(), shared=list(spec.shared))
        else:
            data["type"] = [spec.type for spec in self.types]
            data.update({spec.type: {**spec.to_dict(), "shared": list(spec.shared)} for spec in self.types})
        return data


@dataclass(frozen=True)
class HeadSpec:
    choices: TypeSpec


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
            "stem": _part_dict(self.stem.choices, "stem"),
            "stages": [stage.to_dict() for stage in self.stages],
            "head": _part_dict(self.head.choices, "head"),
        }


def _part_dict(spec: TypeSpec, role: str) -> dict[str, Any]:
    data = spec.to_dict()
    return data if spec.type == DEFAULT_TYPE[role] else {"type": spec.type, **data}


def _depth(f: Field) -> int:
    return f.integer(minimum=0, maximum=MAX_DEPTH, why="deeper than any published CNN stage")


def _stride(f: Field) -> int:
    return f.integer(allowed=(1, 2))


def _options(cls: type[Part], f: Field, keys: dict[str, Field]) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    options = []
    for choice in cls.CHOICES:
        if choice.name in keys:
            options.append((choice.name, keys[choice.name].choices(choice.read)))
        elif choice.default is None:
            raise f.error(f"missing key {choice.name!r} for type {cls.TYPE!r}; list its options")
        else:
            options.append((choice.name, choice.default))
    return tuple(options)


def _type_spec(cls: type[Part], f: Field, outer: tuple[str, ...] = ()) -> TypeSpec:
    """A type's options from mapping ``f`` (``outer``: keys of the enclosing stage, read elsewhere)."""
    names = [choice.name for choice in cls.CHOICES]
    shared_ok = cls.ROLE == "block"
    keys = f.mapping([], [*outer, *names, *(["shared"] if shared_ok else [])])
    options = _options(cls, f, keys)
    shared: tuple[str, ...] = ()
    if shared_ok:
        shared = tuple(names)
        if "shared" in keys:
            value = keys["shared"]
            if isinstance(value.value, bool):
                shared = tuple(names) if value.value else ()
            else:
                shared = value.choices(lambda item: item.text(allowed=names))
    return TypeSpec(cls.ROLE, cls.TYPE, options, shared)


def _part_spec(role: str, f: Field) -> TypeSpec:
    cls = part_type(role, f)
    return _type_spec(cls, f, ("type",))


def _stage(item: Field) -> StageSpec:
    outer = ("stride", "depth", "width", "type")
    blocks = part_types("block")
    raw = item.value.get("type") if isinstance(item.value, dict) else None
    if isinstance(raw, list):
        keys = item.mapping(["depth", "width"], [*outer[:1], "type", *blocks])
        names = keys["type"].choices(lambda f: f.text(allowed=list(blocks)))
        types = tuple(
            _type_spec(blocks[name], keys[name] if name in keys else Field(item.source, f"{item.path}.{name}", {}))
            for name in names
        )
        for key in keys:
            if key in blocks and key not in names:
                raise keys[key].error(f"type {key!r} is not in this stage's type list; add it there or remove this key")
    else:
        cls = part_type("block", item)
        keys = item.mapping(["depth", "width"], [*outer[:1], "type", *(c.name for c in cls.CHOICES), "shared"])
        types = (_type_spec(cls, item, outer),)
    stage = StageSpec(
        stride=keys["stride"].choices(_stride) if "stride" in keys else (1,),
        depth=keys["depth"].choices(_depth),
        width=keys["width"].choices(channels),
        types=types,
    )
    for spec in types:
        for width in stage.width:
            check = getattr(spec.cls, "check_width", None)
            if check is not None and (problem := check(width)):
                raise keys["width"].error(f"{width} does not suit type {spec.type!r}: {problem}")
    return stage


def parse_space(root: Field) -> SpaceSpec:
    keys = root.mapping(["resolution", "num_classes", "stem", "stages", "head"], ["name", "description"])
    stages = tuple(_stage(item) for item in keys["stages"].items())
    if all(0 in stage.depth for stage in stages):  # a config of no layers: stem straight into the head
        raise keys["stages"].error(
            "every stage allows depth 0, so a network could have no layers; give at least one stage depths >= 1"
        )
    return SpaceSpec(
        name=keys["name"].text() if "name" in keys else "",
        resolution=keys["resolution"].choices(resolution),
        num_classes=keys["num_classes"].integer(minimum=2),
        stem=StemSpec(_part_spec("stem", keys["stem"])),
        stages=stages,
        head=HeadSpec(_part_spec("head", keys["head"])),
    )
