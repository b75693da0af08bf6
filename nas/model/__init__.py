"""Torch side of nas: the block vocabulary, the network built from an ArchConfig, ONNX export."""

from nas.model._export import export_onnx
from nas.model._layers import ConvBNAct, GlobalPool, InvertedResidual, SqueezeExcite
from nas.model._network import Network, build_model
from nas.model._op_module import context_module, op_input_shape, op_module, shape_module
from nas.model._weights import load_weights, save_weights

__all__ = [
    "ConvBNAct",
    "GlobalPool",
    "InvertedResidual",
    "Network",
    "SqueezeExcite",
    "build_model",
    "context_module",
    "export_onnx",
    "load_weights",
    "op_input_shape",
    "op_module",
    "save_weights",
    "shape_module",
]
