"""ReLU -> batch norm -> 2x2 max-pool of a patch encoder in one pass, for bf16 training on a CPU.

Why: on a CPU the encoder's convolutions already run at the bf16 GEMM rate, and what remains is
PyTorch's separate ReLU, batch-norm and max-pool kernels and their backward: about eight passes
over each 50x32x96x96 map, plus int64 pooling indices, all waiting on memory. Here the forward
is two passes (statistics, then pool + normalise) and the backward two (per-channel sums over the
pooled gradient, then one dense pass), with 1-byte indices.

Pooling before normalising is exact because training-mode batch norm is, per channel, the map
r -> gamma (r - mean) / std + beta: increasing for gamma >= 0 (the window maximum of r is the
maximum of the output) and decreasing for gamma < 0 (its minimum is). The statistics still come
from the whole map. It is also more exact than PyTorch's bf16 path: PyTorch rounds the
normalised map to bf16 before pooling, so nearly equal values tie and the first wins the
gradient; here the comparison is on the ReLU output itself and the sums are kept in float64
(tests/test_fused.py measures both against a float64 reference).

Kernels are compiled by numba (pure pip wheels, no compiler needed; cached after the first
run). Without numba, or for anything but a bf16 channels_last CPU tensor in training mode,
``relu_bn_pool`` runs the module's own layers instead.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import numpy as np
import torch
from torch import nn

log = logging.getLogger(__name__)


@functools.cache
def _kernels() -> Any:
    """The compiled kernels, or None where numba is missing (logged once)."""
    try:
        from pattnet.models import _fused_kernels
    except Exception as e:  # pragma: no cover - numba missing or unable to set up its cache
        log.warning("fused CPU kernels unavailable (%s: %s); using PyTorch's ReLU/BN/max-pool",
                    type(e).__name__, e)
        return None
    return _fused_kernels


def available() -> bool:
    return _kernels() is not None


def applies(c: torch.Tensor, bn: nn.BatchNorm2d) -> bool:
    """Whether the fused path computes exactly what ``pool(bn(relu(c)))`` would (up to rounding)."""
    return (c.device.type == "cpu" and c.dtype == torch.bfloat16 and c.dim() == 4
            and c.shape[2] >= 2 and c.shape[3] >= 2
            and c.is_contiguous(memory_format=torch.channels_last)
            and bn.training and bn.affine and bn.track_running_stats
            and bn.momentum is not None and bn.running_mean is not None
            and bn.running_var is not None and available())


def relu_bn_pool(c: torch.Tensor, bn: nn.BatchNorm2d) -> torch.Tensor:
    """max_pool2d(bn(relu(c)), 2) in training mode, updating ``bn``'s running statistics."""
    out = _ReluBnPool.apply(c, bn.weight, bn.bias, bn.running_mean, bn.running_var,
                            float(bn.momentum or 0.0), float(bn.eps))
    if bn.num_batches_tracked is not None:
        bn.num_batches_tracked.add_(1)
    return out


def _nhwc(t: torch.Tensor) -> np.ndarray:
    """A channels_last bf16 (N, C, H, W) tensor as an (N, H, W, C) int16 array of its bits (no copy)."""
    return t.permute(0, 2, 3, 1).view(torch.int16).numpy()


def _chunks(n: int) -> list[tuple[int, int]]:
    """Split the batch across torch's intra-op threads (one chunk on one thread)."""
    t = max(1, min(torch.get_num_threads(), n))
    bounds = np.linspace(0, n, t + 1).astype(int)
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]


@functools.cache
def _pool() -> Any:
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(thread_name_prefix="pattnet-fused")


def _each(job: Any, parts: list[tuple[int, int]]) -> list[Any]:
    """Run ``job(a, b)`` for each batch range; the kernels release the GIL, so threads overlap."""
    if len(parts) == 1:
        return [job(*parts[0])]
    return list(_pool().map(lambda ab: job(*ab), parts))


class _ReluBnPool(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, c: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                running_mean: torch.Tensor, running_var: torch.Tensor, momentum: float,
                eps: float) -> torch.Tensor:
        k = _kernels()
        n, ch, h, w = c.shape
        m = n * h * w
        cn = _nhwc(c)
        parts = _chunks(n)

        def stats(a: int, b: int) -> np.ndarray:
            s = np.zeros((2, ch))
            k.forward_stats(cn[a:b], s[0], s[1])
            return s

        s1, s2 = sum(_each(stats, parts))
        mean = s1 / m
        var = np.maximum(s2 / m - mean * mean, 0.0)
        invstd = 1.0 / np.sqrt(var + eps)
        gamma = weight.detach().double().numpy()
        beta = bias.detach().double().numpy()
        scale = (gamma * invstd).astype(np.float32)
        shift = (beta - mean * gamma * invstd).astype(np.float32)
        sign = np.where(gamma < 0, -1.0, 1.0).astype(np.float32)

        y = torch.empty((n, h // 2, w // 2, ch), dtype=torch.bfloat16)
        rmax = torch.empty_like(y)
        idx = np.empty(y.shape, np.uint8)
        yn, rn = y.view(torch.int16).numpy(), rmax.view(torch.int16).numpy()
        _each(lambda a, b: k.forward_pool(cn[a:b], scale, shift, sign, yn[a:b], idx[a:b], rn[a:b]),
              parts)
        with torch.no_grad():
            running_mean.mul_(1 - momentum).add_(
                torch.from_numpy(mean).to(running_mean.dtype), alpha=momentum)
            running_var.mul_(1 - momentum).add_(
                torch.from_numpy(var * m / max(m - 1, 1)).to(running_var.dtype), alpha=momentum)
        ctx.save_for_backward(c, rmax, weight)
        ctx.stats = (idx, mean, invstd)
        return y.permute(0, 3, 1, 2)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        k = _kernels()
        c, rmax, weight = ctx.saved_tensors
        idx, mean, invstd = ctx.stats
        n, ch, h, w = c.shape
        m = n * h * w
        g = _nhwc(grad.to(torch.bfloat16).contiguous(memory_format=torch.channels_last))
        rn, cn = rmax.view(torch.int16).numpy(), _nhwc(c)
        parts = _chunks(n)
        mean32, invstd32 = mean.astype(np.float32), invstd.astype(np.float32)

        def sums(a: int, b: int) -> np.ndarray:
            s = np.zeros((2, ch))
            k.backward_sums(g[a:b], rn[a:b], mean32, invstd32, s[0], s[1])
            return s

        s1, s2 = sum(_each(sums, parts))  # dL/dbeta, dL/dgamma
        # dL/dr = k1 (g_scattered - s1/m - xhat s2/m), xhat = (r - mean) invstd, as A + B r + k1 g
        k1 = weight.detach().double().numpy() * invstd
        a_ = (k1 * (mean * invstd * s2 - s1) / m).astype(np.float32)
        b_ = (-k1 * invstd * s2 / m).astype(np.float32)
        k1 = k1.astype(np.float32)
        out = torch.empty((n, h, w, ch), dtype=torch.bfloat16)
        on = out.view(torch.int16).numpy()
        _each(lambda a, b: k.backward_dense(cn[a:b], g[a:b], idx[a:b], k1, a_, b_, on[a:b]), parts)
        gw = torch.from_numpy(s2).to(weight.dtype) if ctx.needs_input_grad[1] else None
        gb = torch.from_numpy(s1).to(weight.dtype) if ctx.needs_input_grad[2] else None
        return out.permute(0, 3, 1, 2), gw, gb, None, None, None, None
