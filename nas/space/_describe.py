"""A space as text: its stages and choices, its exact size, the reference networks it contains."""

from __future__ import annotations

from collections.abc import Sequence

from nas._paths import reference_configs
from nas._table import format_table
from nas.config import ArchConfig
from nas.space._space import SearchSpace
from nas.space._spec import TypeSpec


def _choices(values: Sequence[object]) -> str:
    return "|".join(
        str(v).lower() if isinstance(v, bool) else f"{v:g}" if isinstance(v, float) else str(v) for v in values
    )


def _options(types: TypeSpec) -> str:
    return ", ".join(f"{name} {_choices(values)}" for name, values in types.options)


def _magnitude(n: int) -> str:
    """``1.23e+45``, exactly for any size (a float overflows past 1e308)."""
    digits = str(n)
    return f"{digits[0]}.{digits[1:3].ljust(2, '0')}e+{len(digits) - 1:02d}" if n >= 1000 else str(n)


def describe_space(space: SearchSpace) -> str:
    spec = space.spec
    headers = ("stage", "stride", "depth", "width", "type", "choices", "shared per stage")
    rows = [
        [i, _choices(s.stride), _choices(s.depth), _choices(s.width), t.type, _options(t), ", ".join(t.shared) or "-"]
        for i, s in enumerate(spec.stages)
        for t in s.types
    ]
    stem, head = spec.stem.choices, spec.head.choices
    size = space.size()
    contained = [
        f"{name} ({'yes' if space.contains(ArchConfig.load(path)) else 'no'})"
        for name, path in reference_configs().items()
    ]
    parts = [part.name.removeprefix(space.name) for part in space.downsampling_parts()]
    return "\n".join(
        [
            f"space {space.name} ({space.source}), hash {space.hash}",
            f"resolution: {_choices(spec.resolution)}   classes: {spec.num_classes}",
            f"stem ({stem.type}): {_options(stem)}",
            format_table(headers, rows),
            f"head ({head.type}): {_options(head)}",
            f"size: {size:,} distinct configs ({_magnitude(size)})",
            f"references in this space: {', '.join(contained) or 'none shipped'}",
            f"few-shot supernet parts (by downsampling): {len(parts)} {' '.join(parts)}".rstrip(),
        ]
    )
