"""The block vocabulary: every stem, block and head type, each declared whole in one module, and the
registry that finds them (timm's idea: one place decodes, one place dispatches)."""

from nas.blocks import mbv3
from nas.blocks._base import (
    ACT_CODES,
    ACTIVATIONS,
    DEFAULT_TYPE,
    STRIDES,
    Choice,
    Norm,
    Op,
    OpPart,
    Part,
    Row,
    conv_out,
    make_divisible,
    parse_part,
    part_type,
    part_types,
    register,
    walk,
)
from nas.blocks.mbv3 import Classifier, HeadConfig, LastConv, LayerConfig, StemConfig, expanded_channels, se_channels

__all__ = [
    "ACTIVATIONS",
    "ACT_CODES",
    "DEFAULT_TYPE",
    "STRIDES",
    "Choice",
    "Classifier",
    "HeadConfig",
    "LastConv",
    "LayerConfig",
    "Norm",
    "Op",
    "OpPart",
    "Part",
    "Row",
    "StemConfig",
    "conv_out",
    "expanded_channels",
    "make_divisible",
    "mbv3",
    "parse_part",
    "part_type",
    "part_types",
    "register",
    "se_channels",
    "walk",
]
