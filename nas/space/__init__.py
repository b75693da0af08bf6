"""Search spaces: YAML-declared sets of ArchConfigs."""

from nas.space._space import SearchSpace
from nas.space._spec import HeadSpec, SpaceSpec, StageSpec, StemSpec, TypeSpec

__all__ = ["HeadSpec", "SearchSpace", "SpaceSpec", "StageSpec", "StemSpec", "TypeSpec"]
