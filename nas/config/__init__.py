"""One network as data: ArchConfig and its parts."""

from nas.config._arch import (
    ACTIVATIONS,
    KERNELS,
    STRIDES,
    ArchConfig,
    HeadConfig,
    LayerConfig,
    StemConfig,
    Unit,
    conv_out,
    make_divisible,
    se_channels,
)
from nas.config._compare import Agreement, agreement, stages
from nas.config._describe import describe_config
from nas.config._ops import Op, head_ops, layer_op, ops, stem_op

__all__ = [
    "ACTIVATIONS",
    "KERNELS",
    "STRIDES",
    "Agreement",
    "ArchConfig",
    "HeadConfig",
    "LayerConfig",
    "Op",
    "StemConfig",
    "Unit",
    "agreement",
    "conv_out",
    "describe_config",
    "head_ops",
    "layer_op",
    "make_divisible",
    "ops",
    "se_channels",
    "stages",
    "stem_op",
]
