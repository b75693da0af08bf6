"""Zero-cost proxies: training-free scores computed on the network at initialization.

Each runs at a proxy resolution (default 32 px) with the dataset's classes, on one real training batch
when data is given, or on seeded random input when there is none (Zen-score is data-free by design).
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nas.config import ArchConfig
from nas.data import Dataset, load_dataset
from nas.evaluate._base import Evaluator, Score, adapt
from nas.model import build_model


class ProxyEvaluator(Evaluator):
    kind = "proxy"
    unit = "proxy score"
    uses_data = True

    def __init__(
        self,
        *,
        data: str | Dataset | None = None,
        resolution: int = 32,
        batch_size: int = 64,
        seed: int = 0,
        num_classes: int = 10,
    ) -> None:
        self.data = load_dataset(data) if isinstance(data, str) else data
        self.resolution = resolution
        self.batch_size = batch_size
        self.seed = seed
        self.num_classes = self.data.num_classes if self.data is not None else num_classes

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "resolution": self.resolution,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "data": self.data.name if self.data is not None and self.uses_data else None,
        }

    def _batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        generator = torch.Generator().manual_seed(self.seed)
        if self.data is not None and self.uses_data:
            index = self.data.indices("train")
            index = index[torch.randperm(len(index), generator=generator)[: self.batch_size]]
            return self.data.batch(index, self.resolution)
        x = torch.randn(self.batch_size, 3, self.resolution, self.resolution, generator=generator)
        return x, torch.randint(0, self.num_classes, (self.batch_size,), generator=generator)

    def score(self, config: ArchConfig) -> Score:
        start = time.perf_counter()
        torch.manual_seed(self.seed)
        model = build_model(adapt(config, resolution=self.resolution, num_classes=self.num_classes))
        value = float(self._compute(model, *self._batch()))
        where = self.data.name if self.data is not None and self.uses_data else "random input"
        return Score(
            value,
            self.kind,
            f"zero-cost at {self.resolution}px on {where}",
            time.perf_counter() - start,
            self.describe(),
        )

    def _compute(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
        raise NotImplementedError


def _weights(model: nn.Module) -> list[nn.Parameter]:
    return [m.weight for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


class GradNormEvaluator(ProxyEvaluator):
    """Sum of the L2 norms of the weight gradients of one cross-entropy step.

    Abdelfattah et al. 2021, "Zero-Cost Proxies for Lightweight NAS", ICLR.
    """

    name = "grad_norm"

    def _compute(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
        model.train()
        F.cross_entropy(model(x), y).backward()
        return sum(float(w.grad.norm()) for w in _weights(model) if w.grad is not None)


class SynflowEvaluator(ProxyEvaluator):
    """log10 of the synaptic flow: sum |theta * dR/dtheta| with R the output sum of the all-positive
    network on an all-ones input (data-free).

    Tanaka et al. 2020, "Pruning neural networks without any data by iteratively conserving synaptic
    flow", NeurIPS; used for NAS by Abdelfattah et al. 2021, "Zero-Cost Proxies for Lightweight NAS".
    """

    name = "synflow"
    uses_data = False

    def _compute(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
        model = model.double().eval()
        with torch.no_grad():
            for p in model.parameters():
                p.abs_()
        model(torch.ones(1, *x.shape[1:], dtype=torch.float64)).sum().backward()
        with torch.no_grad():
            total = sum(float((w * w.grad).abs().sum()) for w in _weights(model) if w.grad is not None)
        return math.log10(total) if total > 0 and math.isfinite(total) else float("-inf")


class NaswotEvaluator(ProxyEvaluator):
    """log-determinant of the kernel of binary activation codes over a batch (how differently the
    untrained network's ReLU/h-swish units switch for different images).

    Mellor et al. 2021, "Neural Architecture Search without Training", ICML.
    """

    name = "naswot"

    def _compute(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
        kernel = torch.zeros(len(x), len(x), dtype=torch.float64)

        def hook(_: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
            codes = (inputs[0].detach().flatten(1) > 0).double()
            kernel.add_(codes @ codes.T + (1 - codes) @ (1 - codes).T)

        handles = [m.register_forward_pre_hook(hook) for m in model.modules() if isinstance(m, (nn.ReLU, nn.Hardswish))]
        with torch.no_grad():
            model.eval()(x)
        for handle in handles:
            handle.remove()
        return float(torch.linalg.slogdet(kernel)[1])


class ZenEvaluator(ProxyEvaluator):
    """Zen-score: log of the pre-pooling feature change under a small input perturbation, plus the
    log of the BN scaling factors, on a Gaussian-initialized network (data-free).

    Lin et al. 2021, "Zen-NAS: A Zero-Shot NAS for High-Performance Image Recognition", ICCV.
    """

    name = "zen"
    uses_data = False
    mixup = 0.01

    def _compute(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
        generator = torch.Generator().manual_seed(self.seed + 1)
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    m.weight.normal_(generator=generator)
                    if m.bias is not None:
                        m.bias.zero_()
                elif isinstance(m, nn.BatchNorm2d):
                    m.momentum = 1.0  # running_var becomes this batch's variance (Zen's BN scaling term)
            model.train()
            noise = torch.randn(x.shape, generator=generator)
            features = model.features  # type: ignore[union-attr]
            delta = (features(x) - features(x + self.mixup * noise)).abs().sum(dim=(1, 2, 3)).mean()
            bn = sum(
                math.log(float(m.running_var.mean().sqrt())) for m in model.modules() if isinstance(m, nn.BatchNorm2d)
            )
        return math.log(float(delta)) + bn
