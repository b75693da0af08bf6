"""A space as text: its stages and choices, its exact size, the reference networks it contains."""

from __future__ import annotations

from collections.abc import Sequence

from nas._paths import reference_configs
from nas._table import format_table
from nas.config import ArchConfig
from nas.space._space import SearchSpace


def _choices(values: Sequence[object]) -> str:
    return "|".join(
        str(v).lower() if isinstance(v, bool) else f"{v:g}" if isinstance(v, float) else str(v) for v in values
    )


def describe_space(space: SearchSpace) -> str:
    spec = space.spec
    headers = ("stage", "stride", "depth", "width", "kernel", "expansion", "SE", "act", "shared per stage")
    rows = [
        [
            i,
            _choices(s.stride),
            _choices(s.depth),
            _choices(s.width),
            _choices(s.kernel),
            _choices(s.expansion),
            _choices(s.se),
            _choices(s.act),
            ", ".join(s.shared) or "-",
        ]
        for i, s in enumerate(spec.stages)
    ]
    stem, head = spec.stem, spec.head
    size = space.size()
    contained = [
        f"{name} ({'yes' if space.contains(ArchConfig.load(path)) else 'no'})"
        for name, path in reference_configs().items()
    ]
    return "\n".join(
        [
            f"space {space.name} ({space.source}), hash {space.hash}",
            f"resolution: {_choices(spec.resolution)}   classes: {spec.num_classes}",
            f"stem: channels {_choices(stem.channels)}, kernel {_choices(stem.kernel)}, stride {_choices(stem.stride)},"
            f" act {_choices(stem.act)}",
            format_table(headers, rows),
            f"head: last conv {_choices(head.last_channels)}, hidden {_choices(head.hidden_channels)},"
            f" act {_choices(head.act)}, dropout {_choices(head.dropout)}",
            f"size: {size:,} distinct configs ({size:.3g})",
            f"references in this space: {', '.join(contained) or 'none shipped'}",
        ]
    )
