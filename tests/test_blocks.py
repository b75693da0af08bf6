"""The block registry: every type's analytic costs, YAML round trip, latency key and ONNX export agree with
the torch module it builds; the reference zoo matches torchvision's and the papers' counts; bad part
fields fail with one line naming the file, the field and the fix."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import torch
import yaml

from nas import ArchConfig, build_model, export_onnx
from nas._paths import REFERENCE_DIR
from nas.blocks import Op, part_types
from tests.conftest import run_main
from tests.test_model import _conv_linear_macs

TINY: dict[str, dict[str, Any]] = {
    "mbv2": {
        "stem": {"channels": 16, "act": "relu6"},
        "layers": [
            {"type": "mbv2", "expanded": 16, "out": 16, "stride": 1},
            {"type": "mbv2", "expanded": 96, "out": 24, "stride": 2},
            {"type": "mbv2", "expanded": 144, "out": 24, "stride": 1, "kernel": 5},
        ],
        "head": {"type": "fc", "last_channels": 64, "act": "relu6", "dropout": 0.2},
    },
    "dsconv": {
        "stem": {"channels": 8, "act": "relu"},
        "layers": [
            {"type": "dsconv", "out": 16, "stride": 1},
            {"type": "dsconv", "out": 32, "stride": 2, "kernel": 5, "act": "hswish"},
        ],
        "head": {"type": "fc"},
    },
    "fire": {
        "stem": {"type": "squeezenet", "channels": 16},
        "layers": [
            {"type": "fire", "squeeze": 4, "expand1x1": 8, "expand3x3": 8},
            {"type": "fire", "squeeze": 6, "expand1x1": 12, "expand3x3": 20, "stride": 2},
        ],
        "head": {"type": "squeezenet"},
    },
    "maxpool": {
        "stem": {"channels": 16},
        "layers": [
            {"type": "maxpool", "kernel": 3, "stride": 2, "ceil": True},
            {"kernel": 3, "expanded": 32, "out": 16, "stride": 1, "se": True, "act": "hswish"},
            {"type": "maxpool", "kernel": 3, "stride": 2, "ceil": False},
        ],
        "head": {"last_channels": 32, "hidden_channels": 64},
    },
    "shufflenet": {
        "stem": {"type": "conv_pool", "channels": 24},
        "layers": [
            {"type": "shufflenet", "out": 48, "mid": 12, "groups": 3, "stride": 2, "group_first": False},
            {"type": "shufflenet", "out": 48, "mid": 12, "groups": 3, "stride": 1},
            {"type": "shufflenet", "out": 96, "mid": 24, "groups": 2, "stride": 2},
        ],
        "head": {"type": "fc"},
        "layout": "stages",
    },
    "shufflenetv2": {
        "stem": {"type": "conv_pool", "channels": 24},
        "layers": [
            {"type": "shufflenetv2", "out": 48, "stride": 2},
            {"type": "shufflenetv2", "out": 48, "stride": 1},
            {"type": "shufflenetv2", "out": 96, "stride": 2, "kernel": 5},
        ],
        "head": {"type": "fc", "last_channels": 64},
        "layout": "stages",
        "norm": {"eps": 1.0e-5, "momentum": 0.1},
    },
}


def tiny(name: str) -> ArchConfig:
    return ArchConfig.from_dict({"resolution": 32, "num_classes": 10, **TINY[name]}, source=name)


def test_every_registered_block_type_has_a_tiny_config() -> None:
    assert set(part_types("block")) == {"mbv3", *TINY}


@pytest.mark.parametrize("name", sorted(TINY))
def test_analytic_costs_equal_the_built_module(name: str) -> None:
    config = tiny(name)
    model = build_model(config)
    assert sum(p.numel() for p in model.parameters()) == config.params()
    assert _conv_linear_macs(model, config.resolution) == config.macs()


@pytest.mark.parametrize("name", sorted(TINY))
def test_yaml_round_trip(name: str, tmp_path: Path) -> None:
    config = tiny(name)
    config.save(tmp_path / "c.yaml")
    again = ArchConfig.load(tmp_path / "c.yaml")
    assert again == config
    assert again.to_dict() == config.to_dict()
    assert [op.key for op in again.ops()] == [op.key for op in config.ops()]


@pytest.mark.parametrize("name", sorted(TINY))
def test_op_keys_round_trip_and_ops_chain(name: str) -> None:
    config = tiny(name)
    ops = config.ops()
    assert [Op.parse(op.key) for op in ops] == ops
    for before, after in itertools.pairwise(ops):
        assert (after.cin, after.size) == (before.out, before.out_size)
    assert ops[-1].out == config.num_classes


@pytest.mark.parametrize("name", sorted(TINY))
def test_onnx_output_equals_torch(name: str, tmp_path: Path) -> None:
    config = tiny(name)
    torch.manual_seed(0)
    model = build_model(config).eval()
    with torch.no_grad():  # BN statistics away from identity, so a wrong fusion would show
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    path = export_onnx(model, tmp_path / "m.onnx")
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        expected = model(x).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


# ---- the reference zoo -------------------------------------------------------------------------------
# name -> (parameters, MACs) as built (torchvision's num_params where it has the network), and the
# published (MACs, parameters) the file header cites, which the analytic counts must round to.
ZOO = {
    "squeezenet1_0": (1_248_424, 818_924_576, None),
    "squeezenet1_1": (1_235_496, None, None),
    "mobilenetv2_100": (3_504_872, None, (300e6, 3.4e6)),
    "mobilenetv1_100": (None, None, (569e6, 4.2e6)),
    "mobilenetv1_075": (None, None, (325e6, 2.6e6)),
    "mobilenetv1_050": (None, None, (149e6, 1.3e6)),
    "mobilenetv1_025": (None, None, (41e6, 0.5e6)),
    "shufflenet_g3": (None, None, (137e6, 1.9e6)),
    "shufflenet_g8": (None, None, (137e6, 2.4e6)),
    "shufflenet_v2_x0_5": (1_366_792, None, (41e6, 1.4e6)),
    "shufflenet_v2_x1_0": (2_278_604, None, (146e6, 2.3e6)),
    "shufflenet_v2_x1_5": (3_503_624, None, (299e6, 3.5e6)),
    "shufflenet_v2_x2_0": (7_393_996, None, (591e6, 7.4e6)),
}


@pytest.mark.parametrize("name", sorted(ZOO))
def test_reference_zoo_counts(name: str) -> None:
    config = ArchConfig.load(REFERENCE_DIR / f"{name}.yaml")
    params, macs, published = ZOO[name]
    model = build_model(config)
    assert sum(p.numel() for p in model.parameters()) == config.params()
    assert _conv_linear_macs(model, config.resolution) == config.macs()
    if params is not None:
        assert config.params() == params
    if macs is not None:
        assert config.macs() == macs
    if published is not None:
        paper_macs, paper_params = published
        assert config.macs() == pytest.approx(paper_macs, rel=0.02)  # the papers round to 1M and count a bit more
        assert config.params() == pytest.approx(paper_params, rel=0.06)  # published to 0.1M


def test_torchvision_layouts(tmp_path: Path) -> None:
    keys = {
        "squeezenet1_1": ["features.0.weight", "features.3.squeeze.weight", "classifier.1.weight"],
        "mobilenetv2_100": ["features.1.conv.0.0.weight", "features.2.conv.3.running_var", "classifier.1.weight"],
        "shufflenet_v2_x1_0": [
            "conv1.0.weight",
            "stage2.0.branch1.2.weight",
            "stage4.3.branch2.6.running_var",
            "conv5.1.bias",
        ],
    }
    for name, expected in keys.items():
        state = build_model(ArchConfig.load(REFERENCE_DIR / f"{name}.yaml")).state_dict()
        for key in expected:
            assert any(k.startswith(key) for k in state), (name, key)
    state = build_model(ArchConfig.load(REFERENCE_DIR / "shufflenet_v2_x1_0.yaml")).state_dict()
    assert list(state)[-2:] == ["fc.weight", "fc.bias"]


# ---- bad input ---------------------------------------------------------------------------------------
def _config(layer: dict[str, Any], **top: Any) -> str:
    data = {"resolution": 32, "num_classes": 10, **TINY["shufflenet"], **top}
    data["layers"] = [*data["layers"][:1], layer]
    return yaml.safe_dump(data)


BAD = {
    "unknown_type.yaml": (
        _config({"type": "resnet", "out": 48}),
        "layers[1].type: 'resnet' is not allowed; use one of 'mbv3', ",
    ),
    "other_field.yaml": (
        _config({"type": "shufflenetv2", "out": 48, "stride": 1, "expanded": 96}),
        "layers[1]: unknown key 'expanded'; allowed keys: out, stride, type, kernel",
    ),
    "groups.yaml": (
        _config({"type": "shufflenet", "out": 48, "mid": 12, "groups": 5, "stride": 1}),
        "layers[1]: the input width 48 is not divisible by groups 5; use a multiple of 5",
    ),
    "odd_v2.yaml": (
        _config({"type": "shufflenetv2", "out": 47, "stride": 2}),
        "layers[1]: out 47: a ShuffleNetV2 width must be even (two halves); use an even width",
    ),
    "stride1_width.yaml": (
        _config({"type": "shufflenetv2", "out": 96, "stride": 1}),
        "layers[1]: a stride-1 unit keeps half its input, so out (96) must equal the input width (48)",
    ),
    "unknown_stem.yaml": (
        _config({"type": "shufflenetv2", "out": 48, "stride": 1}, stem={"type": "resnet", "channels": 8}),
        "stem.type: 'resnet' is not allowed; use one of 'conv', ",
    ),
    "act.yaml": (
        _config({"type": "dsconv", "out": 48, "stride": 1, "act": "gelu"}),
        "layers[1].act: 'gelu' is not allowed; use one of 'relu', 'hswish', 'relu6'",
    ),
    "layout.yaml": (
        _config({"type": "shufflenetv2", "out": 48, "stride": 1}, layout="resnet"),
        "layout: 'resnet' is not allowed; use one of 'features', 'stages'",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_parts_give_one_line_and_exit_2(name: str, tmp_path: Path) -> None:
    text, fragment = BAD[name]
    path = tmp_path / name
    path.write_text(text)
    result = run_main("nas.space", "show", str(path))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"error: {path}")
    assert fragment in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


# ---- NetAdapt on every type ----------------------------------------------------------------------------
UNITS = {
    "mbv2": {"layer1.expanded", "layer2.expanded", "layers1-2.width"},
    "dsconv": {"layers0-0.width", "layers1-1.width"},
    "fire": {"layer0.squeeze", "layer1.squeeze"},
    "maxpool": {"layer1.expanded"},
    "shufflenet": set(),
    "shufflenetv2": set(),
}


@pytest.mark.parametrize("name", sorted(TINY))
def test_netadapt_slicing_equals_silencing(name: str) -> None:
    from nas.netadapt import fixed_widths, prunable_units, prune
    from nas.netadapt._units import keeps_structure
    from tests.test_model import _randomize, _responds_to_input
    from tests.test_netadapt import _silence

    config = tiny(name)
    units = prunable_units(config)
    assert {u.name for u in units} == UNITS[name]
    if name in ("fire", "shufflenet", "shufflenetv2"):
        assert any(line.startswith(name + ":") for line in fixed_widths(config))
    torch.manual_seed(0)
    model = build_model(config)
    _randomize(model, 3)
    model.eval()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    for unit in units:
        channels = next(c for c in range(unit.channels // 2, 0, -1) if keeps_structure(config, unit, c))
        pruned = prune(model, unit, channels).eval()
        assert pruned.config.params() == sum(p.numel() for p in pruned.parameters())
        with torch.no_grad():
            expected, got = _silence(model, config, unit, channels)(x), pruned(x)
        assert _responds_to_input(expected), unit.name
        assert torch.allclose(got, expected, atol=1e-4, rtol=1e-4), unit.name
