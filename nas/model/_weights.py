"""Loading saved weights safely (weights_only) with errors that name the first mismatching tensor."""

from __future__ import annotations

import io
import os
from pathlib import Path

import torch
from torch import nn

from nas._errors import NasError
from nas._files import write_bytes_atomic


def load_weights(model: nn.Module, path: str | os.PathLike[str]) -> None:
    """Load a state dict saved with ``torch.save``; never unpickles arbitrary objects."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise NasError(f"{path}: no such weights file") from None
    except Exception as exc:  # torch raises many types for corrupt or non-tensor files
        raise NasError(f"{path}: not a state dict saved with torch.save ({type(exc).__name__})") from None
    if not isinstance(state, dict):
        raise NasError(f"{path}: holds a {type(state).__name__}, expected a state dict")
    expected = model.state_dict()
    for key, tensor in expected.items():
        if key not in state:
            raise NasError(f"{path}: tensor {key!r} is missing; were these weights saved for another config?")
        got = state[key]
        if not isinstance(got, torch.Tensor) or got.shape != tensor.shape:
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            raise NasError(
                f"{path}: tensor {key!r} has shape {shape}, the config needs {tuple(tensor.shape)};"
                " these weights belong to another config"
            )
    extra = [key for key in state if key not in expected]
    if extra:
        raise NasError(f"{path}: unexpected tensor {extra[0]!r}; these weights belong to another config")
    model.load_state_dict(state)


def save_weights(model: nn.Module, path: str | os.PathLike[str]) -> Path:
    """The model's state dict, written whole or not at all (temp file, then rename)."""
    path = Path(path)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    write_bytes_atomic(path, buffer.getvalue())  # a temp name of its own: never a fixed, guessable one
    return path
