"""Many patch encoders as one computation: the per-AU networks (and the 9 encoders of one
network) run layer by layer as grouped convolutions, one kernel per layer for all of them.

Why: the paper trains 12 independent networks of 9 encoders each. Run one encoder after another
a GPU launches 300+ small kernels per forward and waits on each; as one grouped convolution per
layer (groups = encoders), one batched matmul for the 108 ``Linear(5184, 60)`` layers and one
einsum each for the attentions and heads, it launches a handful of large ones.

Same model: this is an execution strategy, not a layer. The weights are each encoder's own
parameters, gathered per forward (``torch.cat`` is cheap next to the convolutions), so gradients
land in each network's own parameters, the optimiser and the checkpoint layout are unchanged,
and a model switches between this path and the module-by-module one at any time
(:func:`set_batched`). Batch norm is each encoder's own: per-channel statistics of its own
channels, its own running statistics (written back after each training forward). Under DDP
(:func:`sync_batch_stats`) the batch statistics are those of the global batch, so that
processes together train exactly as one process with the whole batch would.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

#: Batch-norm statistics over all processes of a DDP run (set by the trainer).
_SYNC = {"on": False}


def sync_batch_stats(on: bool) -> None:
    """Compute batch-norm statistics over the global batch of a DDP run (all processes)."""
    _SYNC["on"] = bool(on)


def set_batched(module: nn.Module, on: bool) -> None:
    """Run every per-AU model and PAttNet in ``module`` through the grouped path (or not)."""
    for m in module.modules():
        if hasattr(m, "batched"):
            setattr(m, "batched", bool(on))  # noqa: B010 - a class attribute, set per instance


def use_batched(setting: bool | str, device: torch.device) -> bool:
    """True, False, or ``auto``: on a GPU (one grouped kernel per layer beats hundreds of small
    ones), off on a CPU (the networks side by side on threads are faster there, and one grouped
    graph of all networks needs several times the memory)."""
    return setting is True or (setting == "auto" and device.type == "cuda")


def _layers(enc: Any) -> list[tuple[Any, Any]]:
    feats = list(enc.features)
    return [(feats[i], next(m for m in feats[i:i + 4] if isinstance(m, nn.BatchNorm2d)))
            for i in range(0, len(feats), 4)]


def _batch_norm(y: torch.Tensor, bns: Sequence[Any]) -> torch.Tensor:
    """Each BN of ``bns`` on its own channels of ``y`` (concatenated in ``bns`` order), with the
    running-statistics update BatchNorm2d makes, written back to each module."""
    w = torch.cat([bn.weight for bn in bns])
    b = torch.cat([bn.bias for bn in bns])
    rm = torch.cat([bn.running_mean for bn in bns])
    rv = torch.cat([bn.running_var for bn in bns])
    first = bns[0]
    if not first.training:
        return F.batch_norm(y, rm, rv, w, b, False, 0.0, first.eps)
    momentum = _momentum(bns)
    if _SYNC["on"] and torch.distributed.is_available() and torch.distributed.is_initialized():
        out, mean, var = _global_stats_norm(y, w, b, first.eps)
        with torch.no_grad():
            rm.mul_(1 - momentum).add_(mean.detach().to(rm.dtype), alpha=momentum)
            rv.mul_(1 - momentum).add_(var.detach().to(rv.dtype), alpha=momentum)
    else:
        out = F.batch_norm(y, rm, rv, w, b, True, momentum, first.eps)  # updates rm, rv
    _write_back(bns, rm, rv)
    return out


@torch.no_grad()
def _momentum(bns: Sequence[Any]) -> float:
    """BatchNorm2d's update factor, after counting this batch in each module."""
    for bn in bns:
        assert bn.num_batches_tracked is not None
        bn.num_batches_tracked.add_(1)
    m = bns[0].momentum
    return float(m) if m is not None else 1.0 / float(bns[0].num_batches_tracked)


def _global_stats_norm(y: torch.Tensor, w: torch.Tensor, b: torch.Tensor, eps: float
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Batch norm with the statistics of the global batch (sums all-reduced, differentiably)."""
    import warnings

    from torch.distributed.nn.functional import all_reduce

    dims = (0, 2, 3)
    count = torch.tensor([float(y.numel() // y.shape[1])], dtype=y.dtype, device=y.device)
    stats = torch.cat([y.sum(dims), (y * y).sum(dims), count])
    with warnings.catch_warnings():  # deprecated for a variant without autograd, which we need
        warnings.simplefilter("ignore", FutureWarning)
        stats = all_reduce(stats)
    c = y.shape[1]
    n = stats[-1]
    mean = stats[:c] / n
    var = stats[c:2 * c] / n - mean * mean
    shape = (1, c, 1, 1)
    out = (y - mean.view(shape)) * torch.rsqrt(var.view(shape) + eps) * w.view(shape) \
        + b.view(shape)
    return out, mean, var * (n / torch.clamp(n - 1, min=1))  # running var is unbiased


@torch.no_grad()
def _write_back(bns: Sequence[Any], rm: torch.Tensor, rv: torch.Tensor) -> None:
    k = 0
    for bn in bns:
        c = bn.num_features
        assert bn.running_mean is not None and bn.running_var is not None
        bn.running_mean.copy_(rm[k:k + c])
        bn.running_var.copy_(rv[k:k + c])
        k += c


def grouped_encode(encoders: Sequence[Any], x: torch.Tensor, views: int) -> torch.Tensor:
    """Encodings (B, G, D) of G encoders, encoder ``g`` on view ``g % views`` of ``x``.

    ``x``: (B, views, 3, S, S); the encoders are ordered view-major within each of the
    ``G // views`` networks: ``encoders[n * views + v]`` is network n's encoder of view v (the
    9 patches of PAttNet, or the one input of a single-patch or holistic network). All encoders
    must have the same architecture.
    """
    g_total = len(encoders)
    nets = g_total // views
    order = encoders[0].order
    # the first layer's input is shared by the networks: one grouped conv over the views, whose
    # out-channels are ordered (view, network); later layers are grouped per encoder in that order
    grid = [encoders[n * views + v] for v in range(views) for n in range(nets)]
    b, s = x.shape[0], x.shape[-1]
    h = x.reshape(b, views * 3, s, s)
    if grid[0].features[0].weight.is_contiguous(memory_format=torch.channels_last):
        h = h.contiguous(memory_format=torch.channels_last)
    layers = [_layers(e) for e in grid]
    for depth in range(len(layers[0])):
        convs = [ls[depth][0] for ls in layers]
        bns = [ls[depth][1] for ls in layers]
        weight = torch.cat([c.weight for c in convs]).to(h.dtype)
        bias = torch.cat([c.bias for c in convs]).to(h.dtype)
        h = F.conv2d(h, weight, bias, groups=views if depth == 0 else g_total)
        h = _batch_norm(torch.relu(h), bns) if order == "relu-bn" else torch.relu(_batch_norm(h, bns))
        h = F.max_pool2d(h, 2)
    feats = h.reshape(b, g_total, -1)  # each encoder's flatten, as PatchEncoder's
    fc_w = torch.stack([e.fc.weight for e in grid]).to(feats.dtype)  # (G, D, K)
    fc_b = torch.stack([e.fc.bias for e in grid]).to(feats.dtype)  # (G, D)
    e = torch.einsum("bgk,gdk->bgd", feats, fc_w) + fc_b
    # back from (view, network) to the caller's (network, view) order
    return e.reshape(b, views, nets, -1).transpose(1, 2).reshape(b, g_total, -1)


def batched_attention(attns: Sequence[Any], e: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """N single-query patch attentions at once: e (B, N, P, D) -> v (B, N, D), a (B, N, P)."""
    w = torch.stack([a.proj.weight for a in attns]).to(e.dtype)  # (N, D, D)
    pre = torch.einsum("bnpd,ned->bnpe", e, w)
    if attns[0].proj.bias is not None:
        pre = pre + torch.stack([a.proj.bias for a in attns]).to(e.dtype)[None, :, None]
    h = torch.tanh(pre)
    ctx = torch.cat([a.context for a in attns]).to(e.dtype)  # (N, D): one query each
    scores = torch.einsum("bnpe,ne->bnp", h, ctx)
    a = torch.sigmoid(scores) if attns[0].kind == "sigmoid" else torch.softmax(scores, dim=-1)
    return torch.einsum("bnp,bnpd->bnd", a, e), a


__all__ = ["batched_attention", "grouped_encode", "set_batched", "sync_batch_stats", "use_batched"]
