"""Torch side of nas: the block vocabulary, the network built from an ArchConfig, ONNX export."""

from nas.model._export import export_onnx
from nas.model._layers import ConvBNAct, GlobalPool, InvertedResidual, SqueezeExcite
from nas.model._network import Network, build_model
from nas.model._op_module import (
    CONTEXT_CHANNELS,
    context_input_shape,
    context_module,
    op_input_shape,
    op_module,
    shape_module,
)
from nas.model._supernet import (
    SUPERNET_FORMAT,
    Supernet,
    SupernetParts,
    largest_config,
    load_supernet,
    read_supernet,
    skippable_stages,
)
from nas.model._weights import load_weights, save_weights

__all__ = [
    "CONTEXT_CHANNELS",
    "SUPERNET_FORMAT",
    "ConvBNAct",
    "GlobalPool",
    "InvertedResidual",
    "Network",
    "SqueezeExcite",
    "Supernet",
    "SupernetParts",
    "build_model",
    "context_input_shape",
    "context_module",
    "export_onnx",
    "largest_config",
    "load_supernet",
    "load_weights",
    "op_input_shape",
    "op_module",
    "read_supernet",
    "save_weights",
    "shape_module",
    "skippable_stages",
]
