"""The depthwise convolution's tap-by-tap weight gradient: the same gradient as torch's convolution, taken
only where it is meant to be (training on CPU, small maps)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nas import ArchConfig, build_model
from nas._paths import REFERENCE_DIR
from nas.model._depthwise import TAPS_AT_MOST, DepthwiseConv2d, tap_gradient


def _torch_weight_gradient(x: torch.Tensor, weight: torch.Tensor, grad: torch.Tensor, stride: int) -> torch.Tensor:
    padding = (weight.shape[-1] - 1) // 2
    return torch.ops.aten.convolution_backward(
        grad, x, weight, None, [stride] * 2, [padding] * 2, [1, 1], False, [0, 0], weight.shape[0], [False, True, False]
    )[1]


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize(
    ("size", "kernel", "stride"), [(1, 5, 1), (2, 5, 1), (3, 3, 2), (4, 5, 1), (7, 7, 2), (8, 3, 1)]
)
def test_tap_gradient_equals_torchs(size: int, kernel: int, stride: int, channels_last: bool) -> None:
    generator = torch.Generator().manual_seed(size * 100 + kernel * 10 + stride)
    x = torch.randn(6, 12, size, size, generator=generator)
    weight = torch.randn(12, 1, kernel, kernel, generator=generator)
    if channels_last:
        x, weight = (t.contiguous(memory_format=torch.channels_last) for t in (x, weight))
    padding = (kernel - 1) // 2
    out = F.conv2d(x, weight, None, stride, padding, 1, 12)
    grad = torch.randn(out.shape, generator=generator)
    expected = _torch_weight_gradient(x, weight, grad, stride)
    taps = tap_gradient(x, grad, weight.shape[2:], (stride, stride), (padding, padding))
    assert taps.shape == expected.shape
    torch.testing.assert_close(taps, expected, rtol=1e-5, atol=1e-5)
    if size == 1:  # a 1x1 map: only the centre tap sees the input
        assert int(torch.count_nonzero(taps.sum(0))) == 1


def _pair(channels: int, kernel: int, stride: int) -> tuple[DepthwiseConv2d, nn.Conv2d]:
    taps = DepthwiseConv2d(channels, kernel, stride)
    plain = nn.Conv2d(channels, channels, kernel, stride, (kernel - 1) // 2, groups=channels, bias=False)
    plain.load_state_dict(taps.state_dict())  # the same parameters by the same names
    return taps, plain


@pytest.mark.parametrize(("size", "stride"), [(4, 1), (4, 2), (2, 1)])
def test_the_module_trains_as_torchs_convolution(size: int, stride: int) -> None:
    taps, plain = _pair(16, 5, stride)
    x = torch.randn(4, 16, size, size).contiguous(memory_format=torch.channels_last)
    grads = []
    for module in (taps, plain):
        module.zero_grad()
        inp = x.clone().requires_grad_()
        out = module(inp)
        (out * torch.arange(out.numel()).reshape(out.shape).sin()).sum().backward()
        grads.append((out.detach(), inp.grad, module.weight.grad))
        if module is taps:
            assert type(out.grad_fn).__name__ == "_TapGradientBackward"
    for mine, theirs in zip(*grads, strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-5)


def test_the_taps_are_taken_only_in_cpu_training_on_small_maps() -> None:
    module = DepthwiseConv2d(8, 3)
    side = int(TAPS_AT_MOST**0.5)
    small, large = torch.randn(2, 8, side, side), torch.randn(2, 8, side * 2, side * 2)

    def took_taps(x: torch.Tensor) -> bool:
        out = module(x)
        return out.grad_fn is not None and type(out.grad_fn).__name__ == "_TapGradientBackward"

    assert took_taps(small)
    assert not took_taps(large)
    with torch.no_grad():
        assert not took_taps(small)
    module.eval()
    assert not took_taps(small)
    module.train()
    module.weight.requires_grad_(False)
    assert not took_taps(small)


@pytest.mark.parametrize("reference", ["mobilenetv3_small", "mobilenetv2_100", "mobilenetv1_025", "shufflenet_v2_x0_5"])
def test_every_depthwise_conv_of_the_vocabulary_takes_the_taps(reference: str) -> None:
    network = build_model(ArchConfig.load(REFERENCE_DIR / f"{reference}.yaml"))
    depthwise = [m for m in network.modules() if isinstance(m, nn.Conv2d) and m.groups == m.in_channels > 1]
    assert depthwise
    assert all(isinstance(m, DepthwiseConv2d) for m in depthwise)
