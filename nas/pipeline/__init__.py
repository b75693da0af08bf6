"""Search to deployable model in one resumable call: ``run_pipeline(latency="arm64", budget_ms=15.8)``
from Python, ``python -m nas.pipeline`` from a shell."""

from nas.pipeline._report import Entry
from nas.pipeline._run import PipelineResult, run_pipeline
from nas.pipeline._train import Recipe, train_seed, trained_network

__all__ = ["Entry", "PipelineResult", "Recipe", "run_pipeline", "train_seed", "trained_network"]
