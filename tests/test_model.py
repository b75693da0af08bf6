"""build_model and export_onnx: exact sizes, torchvision layout, residuals, ONNX parity."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from nas import ArchConfig, NasError, SearchSpace, build_model, export_onnx
from nas._paths import REFERENCE_DIR
from nas.model import load_weights
from nas.model._network import Network
from tests.conftest import ROOT


def _conv_linear_macs(model: nn.Module, resolution: int) -> int:
    total = 0

    def conv_hook(m: nn.Conv2d, _: object, out: torch.Tensor) -> None:
        nonlocal total
        total += out.numel() * m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]

    def linear_hook(m: nn.Linear, _: object, out: torch.Tensor) -> None:
        nonlocal total
        total += m.in_features * m.out_features

    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            m.register_forward_hook(conv_hook)
        elif isinstance(m, nn.Linear):
            m.register_forward_hook(linear_hook)
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, resolution, resolution))
    return total


@pytest.mark.parametrize(
    ("arch", "params", "macs"), [("large", 5_483_032, 216_589_760), ("small", 2_542_856, 56_510_400)]
)
def test_built_references_have_exact_size(arch: str, params: int, macs: int, request: pytest.FixtureRequest) -> None:
    config: ArchConfig = request.getfixturevalue(arch)
    model = build_model(config)
    assert sum(p.numel() for p in model.parameters()) == params
    assert _conv_linear_macs(model, config.resolution) == macs


@pytest.mark.parametrize("seed", range(6))
def test_analytic_costs_equal_the_built_module(default_space: SearchSpace, seed: int) -> None:
    config = default_space.random_config(seed)
    model = build_model(config)
    assert sum(p.numel() for p in model.parameters()) == config.params()
    assert _conv_linear_macs(model, config.resolution) == config.macs()


def test_state_dict_follows_torchvision_layout(large: ArchConfig) -> None:
    # torchvision.models.mobilenet_v3_large(): same 312 keys in this order (bench/torchvision_parity.py checks
    # the whole state dict and the outputs against torchvision's own source)
    keys = list(build_model(large).state_dict())
    assert len(keys) == 312
    assert keys[:7] == [
        "features.0.0.weight",
        "features.0.1.weight",
        "features.0.1.bias",
        "features.0.1.running_mean",
        "features.0.1.running_var",
        "features.0.1.num_batches_tracked",
        "features.1.block.0.0.weight",
    ]
    assert "features.4.block.2.fc1.weight" in keys  # SE sits after the depthwise conv of block 4
    assert "features.1.block.2.0.weight" not in keys  # no expand 1x1 when expanded == in
    assert keys[-4:] == ["classifier.0.weight", "classifier.0.bias", "classifier.3.weight", "classifier.3.bias"]


def test_residual_only_where_shapes_allow(large: ArchConfig) -> None:
    model = build_model(large)
    blocks = list(model.features)[1:-1]
    expected = [layer.stride == 1 and large.in_channels(i) == layer.out for i, layer in enumerate(large.layers)]
    assert [b.use_res_connect for b in blocks] == expected
    assert sum(expected) == 10


def _randomize(model: Network, seed: int) -> None:
    """Weights away from their initial values, with BN statistics taken from a real forward pass so the
    signal survives every layer (randomized running statistics would drown it in per-channel constants)."""
    g = torch.Generator().manual_seed(seed)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.normal_(0, 0.1, generator=g)
                m.momentum = 1.0
            elif isinstance(m, nn.Linear):
                m.weight.normal_(0, m.in_features**-0.5, generator=g)
        resolution = model.config.resolution
        model.train()(torch.randn(8, 3, resolution, resolution, generator=g))
    for m in bns:
        m.momentum = 0.01
    model.train()


def _responds_to_input(outputs: torch.Tensor) -> bool:
    """Two different images give clearly different outputs (else an equality check proves little)."""
    return float((outputs[0] - outputs[1]).abs().max()) > 0.05 * float(outputs.abs().max())


@pytest.mark.parametrize("arch", ["large", "small"])
def test_onnx_output_equals_torch(arch: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    config: ArchConfig = request.getfixturevalue(arch)
    torch.manual_seed(0)
    model = build_model(config)
    _randomize(model, 1)
    path = export_onnx(model, tmp_path / "model.onnx")
    assert model.training  # export leaves the module as it found it
    assert max(op.version for op in onnx.load(str(path)).opset_import if op.domain in ("", "ai.onnx")) >= 17
    x = torch.randn(2, 3, config.resolution, config.resolution, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        outputs = model.eval()(x)
    assert _responds_to_input(outputs)
    expected = outputs[:1].numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": x[:1].numpy()})[0]
    assert float(np.abs(expected).max()) > 0.1  # outputs are not vanishingly small
    assert float(np.abs(got - expected).max()) < 1e-4


def test_export_of_a_config_is_seeded(tiny_space: SearchSpace, tmp_path: Path) -> None:
    config = tiny_space.random_config(0)
    a = export_onnx(config, tmp_path / "a.onnx", seed=3).read_bytes()
    b = export_onnx(config, tmp_path / "b.onnx", seed=3).read_bytes()
    assert a == b
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_killed_export_leaves_no_temp_file_after_the_next_one(tmp_path: Path) -> None:
    """The temp file of an export killed mid-write is removed by the next export to the same path (the
    dead writer's process is named in it); a live writer's temp file is left alone."""
    out = tmp_path / "m.onnx"
    command = [sys.executable, "-m", "nas.export", str(REFERENCE_DIR / "mobilenetv3_large.yaml"), "--out", str(out)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while process.poll() is None and not list(tmp_path.glob(".m.onnx.*.tmp")):
        time.sleep(0.01)
    process.kill()
    process.wait()
    left = list(tmp_path.glob(".m.onnx.*.tmp"))
    assert not out.exists(), "the export finished before it could be killed"
    assert left
    live = tmp_path / left[0].name.replace(f"-{process.pid}.", f"-{os.getpid()}.")
    live.write_bytes(b"")  # as if this process were writing it now
    export_onnx(ArchConfig.load(REFERENCE_DIR / "mobilenetv3_small.yaml"), out)
    assert onnx.load(str(out)).graph.input
    assert list(tmp_path.glob(".m.onnx.*.tmp")) == [live]


def test_weights_round_trip_and_mismatch(small: ArchConfig, large: ArchConfig, tmp_path: Path) -> None:
    model = build_model(small)
    torch.save(model.state_dict(), tmp_path / "w.pt")
    other: Network = build_model(small)
    load_weights(other, tmp_path / "w.pt")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), other.state_dict().values(), strict=True))
    with pytest.raises(NasError, match=r"tensor 'features\.1\.block\.1\.0\.weight' is missing"):
        load_weights(build_model(large), tmp_path / "w.pt")
    torch.save(build_model(replace(small, num_classes=10)).state_dict(), tmp_path / "w10.pt")
    with pytest.raises(NasError, match=r"tensor 'classifier\.3\.weight' has shape \(10, 1024\), the config needs"):
        load_weights(other, tmp_path / "w10.pt")
