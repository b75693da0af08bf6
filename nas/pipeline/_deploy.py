"""The deployable files of a pipeline run, made to agree: ``config.yaml`` has the trained classes and
the priced resolution, so ``nas.export config.yaml --weights weights.pt`` rebuilds ``model.onnx``; the
ONNX metadata says what the network expects and what its numbers are (classes, input, normalisation,
training, latency at the exported resolution)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nas.latency import LatencyModel, UnpricedOpError, measure_here
from nas.model import Network, export_onnx, save_weights
from nas.pipeline._train import Recipe


def write_deployable(
    *, folder: Path, model: Network, recipe: Recipe, latency: LatencyModel, seed: int, accuracy: float
) -> dict[str, Any]:
    """Write config.yaml, weights.pt and model.onnx for ``model`` (trained with ``recipe`` and ``seed``);
    returns the facts recorded in the ONNX metadata."""
    config = model.config
    mean, std = recipe.dataset.normalization()
    try:
        predicted: float | None = latency.predict(config)
    except UnpricedOpError:
        predicted = None
    measured = measure_here([config], latency)
    facts: dict[str, Any] = {
        "classes": list(recipe.dataset.classes),
        "normalization": {
            "formula": "(pixel / 255 - mean) / std per channel, bilinear resize to the input size",
            "mean": [round(float(v), 6) for v in mean],
            "std": [round(float(v), 6) for v in std],
            "grey": "one-channel images are repeated to 3 channels" if len(mean) == 1 else "",
        },
        "trained": {
            "data": recipe.data,
            "resolution": recipe.resolution,
            "epochs": recipe.epochs,
            "seed": seed,
            "test_top1": accuracy,
            "test": recipe.dataset.describe("test"),
        },
        "latency": {
            "target": latency.target,
            "table": "measured" if latency.measured else "ESTIMATED",
            "resolution": config.resolution,
            "predicted_ms": predicted,
            "measured_here_ms": measured[0] if measured else None,
        },
    }
    price = "not priced by the table" if predicted is None else f"{predicted:.3f} ms predicted"
    here = f", {measured[0]:.3f} ms measured here" if measured else ""
    kind = "" if latency.measured else " (ESTIMATED table)"
    config.save(
        folder / "config.yaml",
        comment=(
            f"Final network of pipeline run {folder.name}: {len(facts['classes'])} classes of {recipe.data}"
            " (weights.pt, model.onnx).\n"
            f"Input {config.resolution} px, the resolution it was searched and priced at:"
            f" {price} by {latency.target}{kind}{here}, with these classes.\n"
            f"Its weights were trained at {recipe.resolution} px ({recipe.epochs:g} epochs, seed {seed}, test"
            f" top-1 {100 * accuracy:.2f} % on the {recipe.dataset.describe('test')} at {recipe.resolution} px);"
            " train it on your data at the input size to deploy."
        ),
    )
    save_weights(model, folder / "weights.pt")
    export_onnx(model, folder / "model.onnx", metadata={key: json.dumps(value) for key, value in facts.items()})
    return facts
