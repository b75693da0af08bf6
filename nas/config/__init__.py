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
from nas.config._describe import describe_config

__all__ = [
    "ACTIVATIONS",
    "KERNELS",
    "STRIDES",
    "ArchConfig",
    "HeadConfig",
    "LayerConfig",
    "StemConfig",
    "Unit",
    "conv_out",
    "describe_config",
    "make_divisible",
    "se_channels",
]
