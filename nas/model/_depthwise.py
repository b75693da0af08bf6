"""A depthwise convolution whose weight gradient on CPU is computed tap by tap on small maps.

oneDNN, torch's CPU convolution, computes a depthwise kernel's gradient slowly when the map is small:
19-33 ms for 576-960 channels on 4x4 to 1x1 maps at batch 64, where the same gradient summed one kernel
tap at a time takes 0.3-7 ms (bench/RESULTS.md, "Training on CPU: depthwise gradients"). Networks
trained at 32 px run most of their layers on such maps, so this gradient was the largest single cost of
a training step. The forward pass and the input's gradient stay oneDNN's; the module is an
``nn.Conv2d`` (same parameters, same state dict, same ONNX export).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

TAPS_AT_MOST = 16  # input positions (height x width) up to which the tap-by-tap gradient is used: measured
# faster on 4x4 maps and below, and slower on 8x8 (at stride 2 too), on a 2 vCPU AMD EPYC (AVX2)


class _TapGradient(torch.autograd.Function):
    """``F.conv2d`` of a depthwise kernel (groups = channels, dilation 1), with the weight's gradient summed
    per kernel tap over the batch and the map."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, stride: tuple[int, int], padding: tuple[int, int]) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.stride, ctx.padding = stride, padding
        return F.conv2d(x, weight, None, stride, padding, 1, weight.shape[0])

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None, None]:
        x, weight = ctx.saved_tensors
        stride, padding = ctx.stride, ctx.padding
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.ops.aten.convolution_backward(
                grad, x, weight, None, stride, padding, [1, 1], False, [0, 0], weight.shape[0], [True, False, False]
            )[0]
        if ctx.needs_input_grad[1]:
            grad_w = tap_gradient(x, grad, weight.shape[2:], stride, padding)
        return grad_x, grad_w, None, None


def tap_gradient(
    x: Tensor, grad: Tensor, kernel: tuple[int, ...] | torch.Size, stride: tuple[int, int], padding: tuple[int, int]
) -> Tensor:
    """The depthwise kernel's gradient, (channels, 1, kh, kw), from the input ``x`` and the output's gradient:
    one product and sum per tap; taps that see only padding get zero."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    height, width = x.shape[2:]
    out_h, out_w = grad.shape[2:]
    padded = F.pad(x, (pw, pw, ph, ph))
    result = x.new_zeros(x.shape[1], 1, kh, kw)
    for i in range(kh):
        last_row = i + sh * (out_h - 1)
        if last_row < ph or i >= ph + height:
            continue
        for j in range(kw):
            last_col = j + sw * (out_w - 1)
            if last_col < pw or j >= pw + width:
                continue
            window = padded[:, :, i : last_row + 1 : sh, j : last_col + 1 : sw]
            result[:, 0, i, j] = (window * grad).sum((0, 2, 3))
    return result


class DepthwiseConv2d(nn.Conv2d):
    """``nn.Conv2d(channels, channels, kernel, stride, padding, groups=channels, bias=False)``; in training on
    CPU on a small input map, its weight gradient is computed by ``tap_gradient``."""

    def __init__(self, channels: int, kernel: int, stride: int = 1) -> None:
        super().__init__(channels, channels, kernel, stride, (kernel - 1) // 2, groups=channels, bias=False)

    def _conv_forward(self, input: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        if self._taps(input, weight):
            return _TapGradient.apply(input, weight, self.stride, self.padding)
        return super()._conv_forward(input, weight, bias)

    def _taps(self, input: Tensor, weight: Tensor) -> bool:
        if not (self.training and weight.requires_grad and torch.is_grad_enabled() and input.device.type == "cpu"):
            return False
        if torch.jit.is_tracing() or torch.jit.is_scripting() or torch.compiler.is_compiling():
            return False
        return input.shape[-2] * input.shape[-1] <= TAPS_AT_MOST
