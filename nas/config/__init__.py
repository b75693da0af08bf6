"""One network as data: ArchConfig and its parts (the part types themselves live in nas.blocks)."""

from nas.blocks import (
    ACTIVATIONS,
    STRIDES,
    HeadConfig,
    LayerConfig,
    Norm,
    Op,
    StemConfig,
    conv_out,
    make_divisible,
    se_channels,
)
from nas.config._arch import LAYOUTS, OFA_NET, ArchConfig, Unit
from nas.config._compare import Agreement, agreement, stages
from nas.config._describe import describe_config
from nas.config._ofa import load_ofa_net
from nas.config._ops import ops

__all__ = [
    "ACTIVATIONS",
    "LAYOUTS",
    "OFA_NET",
    "STRIDES",
    "Agreement",
    "ArchConfig",
    "HeadConfig",
    "LayerConfig",
    "Norm",
    "Op",
    "StemConfig",
    "Unit",
    "agreement",
    "conv_out",
    "describe_config",
    "load_ofa_net",
    "make_divisible",
    "ops",
    "se_channels",
    "stages",
]
