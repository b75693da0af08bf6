"""Once-for-All's published specialised networks (``net.config`` + ``run.config``, JSON, from
han-cai/files ``ofa/ofa_specialized/<name>/``) as configs: the anchor's own results, comparable in
nas's terms. MobileNetV3-space networks only (the ProxylessNAS ones are another space)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from nas._errors import NasError, OutsideSpaceError
from nas.blocks import HeadConfig, LayerConfig, StemConfig
from nas.config._arch import OFA_NET, ArchConfig

_ACT = {"relu": "relu", "h_swish": "hswish"}


def load_ofa_net(folder: str | os.PathLike[str]) -> ArchConfig:
    """The config of one published OFA network folder, named after it."""
    folder = Path(folder)
    net, run = _json(folder / OFA_NET), _json(folder / "run.config")
    if net.get("name") != "MobileNetV3":
        raise OutsideSpaceError(f"{folder}: a {net.get('name')} network, not of OFA's MobileNetV3 space")
    try:
        first = net["first_conv"]
        layers = [_layer(block["mobile_inverted_conv"]) for block in net["blocks"]]
        last, mix = net["final_expand_layer"], net["feature_mix_layer"]
        return ArchConfig(
            resolution=int(run["image_size"]),
            num_classes=int(net["classifier"]["out_features"]),
            stem=StemConfig(int(first["out_channels"]), int(first["kernel_size"]), int(first["stride"]),
                            _ACT[first["act_func"]]),
            layers=tuple(layers),
            head=HeadConfig(int(last["out_channels"]), int(mix["out_channels"]), _ACT[mix["act_func"]],
                            float(net["classifier"].get("dropout_rate", 0))),
            name=folder.name,
        )  # fmt: skip
    except (KeyError, TypeError, ValueError) as exc:
        raise NasError(f"{folder}: not an OFA MobileNetV3 network ({type(exc).__name__}: {exc})") from None


def _layer(conv: dict[str, Any]) -> LayerConfig:
    cin = int(conv["in_channels"])
    expanded = int(conv["mid_channels"]) if conv.get("mid_channels") else cin * int(conv["expand_ratio"])
    return LayerConfig(
        int(conv["kernel_size"]), expanded, int(conv["out_channels"]), int(conv["stride"]), bool(conv["use_se"]),
        _ACT[conv["act_func"]],
    )  # fmt: skip


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise NasError(f"{path}: no such file; give a folder of OFA's ofa_specialized networks") from None
    except (OSError, ValueError) as exc:
        raise NasError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise NasError(f"{path}: holds a {type(data).__name__}, expected a JSON object")
    return data
