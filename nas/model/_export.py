"""ONNX export of a config or module, written atomically."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from nas._errors import NasError
from nas._files import give_usual_permissions, temp_beside
from nas._yaml import dump
from nas.config import ArchConfig
from nas.model._network import Network, build_model

OPSET = 17


def export_onnx(
    config_or_model: ArchConfig | nn.Module,
    path: str | os.PathLike[str],
    *,
    input_shape: tuple[int, ...] | None = None,
    seed: int = 0,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Export in eval mode with batch 1 and opset 17; a config is built with seeded random weights.

    A Network's file (or any given ``metadata``) is described in its metadata, which onnxruntime reads
    with ``get_modelmeta().custom_metadata_map``: the input shape, the nas config, and ``metadata``, so
    a deployed file says what it expects.

    Uses the TorchScript exporter: it folds BN, needs no onnxscript and is ~10x faster than the
    dynamo exporter with the same onnxruntime speed (see MEASURED.md), which matters when a latency
    table exports thousands of ops.
    """
    if isinstance(config_or_model, ArchConfig):
        torch.manual_seed(seed)
        model: nn.Module = build_model(config_or_model)
    else:
        model = config_or_model
    if input_shape is None:
        if not isinstance(model, Network):
            raise NasError("export_onnx: pass input_shape=(1, 3, H, W) for a module that is not a nas Network")
        input_shape = (1, 3, model.config.resolution, model.config.resolution)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()
    fd, tmp = temp_beside(path)
    os.close(fd)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                (torch.zeros(input_shape),),
                tmp,
                dynamo=False,
                opset_version=OPSET,
                input_names=["input"],
                output_names=["output"],
                do_constant_folding=True,
            )
        if isinstance(model, Network) or metadata:
            _describe(tmp, {"input_shape": json.dumps(list(input_shape)), **_config_of(model), **(metadata or {})})
        give_usual_permissions(tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
        model.train(was_training)
    return path


def _config_of(model: nn.Module) -> dict[str, str]:
    return {"nas_config": dump(model.config.to_dict())} if isinstance(model, Network) else {}


def _describe(path: str, metadata: Mapping[str, str]) -> None:
    """Add ``metadata`` to the ONNX file's metadata_props (ops timed for tables are left bare: speed)."""
    import onnx  # here, not at the top: it adds most of a second to every command's start

    proto = onnx.load(path)
    for key, value in metadata.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, path)
