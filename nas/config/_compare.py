"""How alike two networks are in structure, stage by stage: does a search land where the hand design did?"""

from __future__ import annotations

from dataclasses import dataclass

from nas.blocks import Part
from nas.config._arch import ArchConfig

ATTRIBUTES = ("kernel", "se", "act")


def stages(config: ArchConfig) -> dict[int, list[Part]]:
    """Blocks grouped by the feature-map size they output (a stage of the paper's tables), keyed by the
    total downsampling factor, so networks of different resolutions and stage strides line up."""
    grouped: dict[int, list[Part]] = {}
    for unit in config.units():
        if unit.kind == "block":
            factor = round(config.resolution / unit.out_size)
            grouped.setdefault(factor, []).append(config.layers[unit.index])
    return grouped


@dataclass(frozen=True)
class Agreement:
    """Shares of aligned blocks (same stage, same position) that agree, per attribute, and of stages
    with the same depth; ``aligned`` counts the block pairs compared."""

    kernel: float
    se: float
    act: float
    depth: float
    aligned: int

    def __str__(self) -> str:
        return (
            f"kernel {self.kernel:.0%}, SE {self.se:.0%}, act {self.act:.0%}, stage depth {self.depth:.0%}"
            f" ({self.aligned} aligned blocks)"
        )


def agreement(config: ArchConfig, reference: ArchConfig) -> Agreement:
    """Compare ``config`` with ``reference`` stage by stage, block by block in order within a stage."""
    mine, theirs = stages(config), stages(reference)
    pairs = [(a, b) for factor in theirs for a, b in zip(mine.get(factor, []), theirs[factor], strict=False)]
    same = {name: sum(getattr(a, name, None) == getattr(b, name, None) for a, b in pairs) for name in ATTRIBUTES}
    factors = set(mine) | set(theirs)
    depth = sum(len(mine.get(f, [])) == len(theirs.get(f, [])) for f in factors) / len(factors)
    share = {name: same[name] / len(pairs) if pairs else 0.0 for name in ATTRIBUTES}
    return Agreement(**share, depth=depth, aligned=len(pairs))
