"""Once-for-All's published ImageNet accuracy predictor (Cai et al. 2020; mit-han-lab/once-for-all,
``ofa/tutorial/accuracy_predictor.py``, MIT) for its MobileNetV3 width-1.2 space, as an evaluator.

The predictor is an MLP 128 -> 400 -> 400 -> 400 -> 1 (ReLU) on OFA's encoding of a subnet: 20 block
slots (5 stages x 4), one-hot kernel {3, 5, 7} and expansion {3, 4, 6} per slot (slots past a stage's
depth all zero), and one-hot resolution bucket (r - 112) // 16 over 112..239. Its output is top-1 as a
fraction on OFA's 10K-image ImageNet *holdout*, before fine-tuning: about 3.5 points above the published,
fine-tuned validation accuracy of the same networks. Its weights carry no licence, so nas never ships
them: the evaluator reads them from a path, as OFA's ``.pth`` (``weights_only``) or a plain ``.npz``.
"""

from __future__ import annotations

import os
import pickle
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nas._errors import NasError, OutsideSpaceError
from nas.blocks import HeadConfig, LayerConfig, StemConfig
from nas.blocks.mbv3 import expanded_channels
from nas.config import ArchConfig
from nas.evaluate._base import Evaluator, Score

KERNELS = (3, 5, 7)
RATIOS = (3, 4, 6)
DEPTHS = (2, 3, 4)
SLOTS = 4  # block slots per stage
FIRST = LayerConfig(3, 24, 24, 1, False, "relu")  # the fixed first block (24 -> 24, no expansion)
STEM = StemConfig(24, 3, 2, "hswish")
HEAD = (1152, 1536, "hswish")  # last conv, hidden 1x1 conv, activation
# (width, stride, se, act) of the five searchable stages: OFAMobileNetV3 at width 1.2
STAGES = (
    (32, 2, False, "relu"),
    (48, 2, True, "relu"),
    (96, 2, False, "hswish"),
    (136, 1, True, "hswish"),
    (192, 2, True, "hswish"),
)
RESOLUTIONS = range(112, 240)  # the predictor's eight resolution buckets
# the MLP's tensors as OFA's state dict names them (nn.Sequential indices of the Linear layers)
LAYERS = ((0, 128, 400), (2, 400, 400), (4, 400, 400), (6, 400, 1))
UNIT = "OFA-predicted ImageNet top-1 as a fraction (OFA's 10K holdout, before fine-tuning)"


@dataclass(frozen=True)
class OFAArch:
    """A subnet in OFA's own terms: kernel and expansion per slot (0 past a stage's depth), depth per
    stage, input resolution."""

    ks: tuple[int, ...]
    e: tuple[int, ...]
    d: tuple[int, ...]
    r: int

    def config(self) -> ArchConfig:
        """The config of this subnet (inverse of ``ofa_arch``), head dropout as the OFA space file's."""
        layers, cin = [FIRST], FIRST.out
        for stage, (width, stride, se, act) in enumerate(STAGES):
            for slot in range(stage * SLOTS, stage * SLOTS + self.d[stage]):
                expanded = expanded_channels(cin, self.e[slot])
                layers.append(LayerConfig(self.ks[slot], expanded, width, stride if cin != width else 1, se, act))
                cin = width
        return ArchConfig(
            resolution=self.r, num_classes=1000, stem=STEM, layers=tuple(layers), head=HeadConfig(*HEAD, dropout=0.1)
        )

    def features(self) -> np.ndarray:
        """OFA's 128-d encoding (``spec2feats``)."""
        x = np.zeros(128, np.float32)
        for slot, (k, e) in enumerate(zip(self.ks, self.e, strict=True)):
            if k:
                x[3 * slot + KERNELS.index(k)] = 1
                x[60 + 3 * slot + RATIOS.index(e)] = 1
        x[120 + (self.r - 112) // 16] = 1
        return x


def ofa_arch(config: ArchConfig, source: str = "config") -> OFAArch:
    """The OFA subnet a config is, or one line naming the first way it is not one of OFA's w1.2 space."""

    def refuse(where: str, problem: str) -> OutsideSpaceError:
        return OutsideSpaceError(
            f"{source}: {where}: {problem}; the OFA predictor scores only configs of"
            " search_spaces/ofa_mbv3_w1.2.yaml (OFA's MobileNetV3 width 1.2)"
        )

    if config.num_classes != 1000:
        raise refuse("num_classes", f"{config.num_classes} is not ImageNet's 1000")
    if config.resolution not in RESOLUTIONS:
        raise refuse("resolution", f"{config.resolution} is outside the predictor's 112-239")
    if config.stem != STEM:
        raise refuse("stem", f"{config.stem} is not OFA's {STEM}")
    head = config.head
    if not isinstance(head, HeadConfig) or (head.last_channels, head.hidden_channels, head.act) != HEAD:
        raise refuse("head", f"{head} is not OFA's 1152/1536 h-swish head")
    if not config.layers or config.layers[0] != FIRST:
        raise refuse("layers[0]", f"is not OFA's fixed first block {FIRST}")
    ks, es, depths = [0] * (SLOTS * len(STAGES)), [0] * (SLOTS * len(STAGES)), []
    index, cin = 1, FIRST.out
    for stage, (width, stride, se, act) in enumerate(STAGES):
        depth = 0
        while index < len(config.layers) and getattr(config.layers[index], "out", None) == width:
            layer, where = config.layers[index], f"layers[{index}]"
            if not isinstance(layer, LayerConfig):
                raise refuse(where, f"a {type(layer).__name__} is not an inverted residual")
            expected = (stride if depth == 0 else 1, se, act)
            if (layer.stride, layer.se, layer.act) != expected:
                raise refuse(where, f"stride/se/act {layer.stride}/{layer.se}/{layer.act} should be {expected}")
            if layer.kernel not in KERNELS:
                raise refuse(f"{where}.kernel", f"{layer.kernel} is not one of {KERNELS}")
            ratio = next((r for r in RATIOS if expanded_channels(cin, r) == layer.expanded), None)
            if ratio is None:
                widths = [expanded_channels(cin, r) for r in RATIOS]
                raise refuse(f"{where}.expanded", f"{layer.expanded} is not {cin} x 3/4/6 = {widths}")
            ks[stage * SLOTS + depth], es[stage * SLOTS + depth] = layer.kernel, ratio
            depth, cin, index = depth + 1, width, index + 1
        if depth not in DEPTHS:
            raise refuse(f"stage {stage + 1} (width {width})", f"depth {depth} is not one of {DEPTHS}")
        depths.append(depth)
    if index != len(config.layers):
        raise refuse(f"layers[{index}]", "is past OFA's five stages")
    return OFAArch(tuple(ks), tuple(es), tuple(depths), config.resolution)


def is_ofa(config: ArchConfig) -> bool:
    """Whether a config is a subnet of OFA's w1.2 space (whatever its head's dropout)."""
    try:
        ofa_arch(config)
    except OutsideSpaceError:
        return False
    return True


class OFAPredictor:
    """The MLP's weights, checked, and its forward pass in numpy (no torch needed to score)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        tensors = _read(self.path)
        self.layers: list[tuple[np.ndarray, np.ndarray]] = []
        for index, fan_in, fan_out in LAYERS:
            weight, bias = tensors.get(f"{index}_weight"), tensors.get(f"{index}_bias")
            if weight is None or bias is None or weight.shape != (fan_out, fan_in) or bias.shape != (fan_out,):
                raise NasError(
                    f"{self.path}: layer {index} is missing or has the wrong shape (expected {fan_out}x{fan_in});"
                    " give OFA's acc_predictor.pth for ofa_mbv3_d234_e346_k357_w1.2 or its .npz conversion"
                )
            if not (np.isfinite(weight).all() and np.isfinite(bias).all()):
                raise NasError(f"{self.path}: layer {index} holds NaN or inf; the file is corrupt")
            self.layers.append((weight.astype(np.float64), bias.astype(np.float64)))

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Top-1 (fraction) for a batch of encodings (N x 128)."""
        x = np.atleast_2d(features).astype(np.float64)
        for i, (weight, bias) in enumerate(self.layers):
            x = x @ weight.T + bias
            if i < len(self.layers) - 1:
                x = np.maximum(x, 0)
        return x[:, 0]


def _read(path: Path) -> dict[str, np.ndarray]:
    """``0_weight``... from an ``.npz`` (no pickles) or OFA's ``.pth`` state dict (``0.weight``...,
    loaded with ``weights_only``: tensors, never code)."""
    if not path.is_file():
        raise NasError(f"{path}: no such predictor file; give OFA's acc_predictor.pth or its .npz conversion")
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                return {key: np.asarray(data[key]) for key in data.files}
        import torch

        with warnings.catch_warnings():  # torch warns about pickle protocols before refusing: one line is ours
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise NasError(f"{path}: holds objects other than tensors, refused unread (weights_only)") from None
    except Exception as exc:  # numpy and torch raise many types for corrupt files
        raise NasError(f"{path}: not a readable predictor file ({type(exc).__name__})") from None
    if not isinstance(state, dict):
        raise NasError(f"{path}: holds a {type(state).__name__}, expected a state dict of tensors")
    return {key.replace(".", "_"): value.numpy() for key, value in state.items() if hasattr(value, "numpy")}


class OFAPredictorEvaluator(Evaluator):
    """OFA's predicted ImageNet top-1 for configs of its w1.2 space (`--predictor PATH`)."""

    name = "ofa-predictor"
    kind = "predictor"
    unit = UNIT

    def __init__(self, *, predictor: str | os.PathLike[str]) -> None:
        self.model = OFAPredictor(predictor)

    def score(self, config: ArchConfig) -> Score:
        start = time.perf_counter()
        arch = ofa_arch(config, config.name or "config")
        value = float(self.model.predict(arch.features())[0])
        fidelity = "OFA's published MLP"
        return Score(value, self.kind, fidelity, time.perf_counter() - start, self.describe())

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "predictor": str(self.model.path.resolve())}
