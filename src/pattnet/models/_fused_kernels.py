"""numba kernels behind ``pattnet.models.fused`` (see there for what and why).

Maps are channels_last, passed as (N, H, W, C) int16 arrays of bf16 bits: a bf16 value is the top
half of a float32, so loading is a shift and a bit cast, and storing rounds to nearest-even as
PyTorch does. The innermost loops run over contiguous channels and vectorise. Per-channel sums
are taken per image row in float32 and added up in float64. Every kernel releases the GIL so the
trainer's network threads run them side by side.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

_opts = {"nogil": True, "cache": True}


@intrinsic
def _as_f32(typingctx, u):
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.uint32), codegen


@intrinsic
def _as_u32(typingctx, f):
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return types.uint32(types.float32), codegen


@njit(inline="always", **_opts)
def _load(x):
    return _as_f32(np.uint32(np.uint16(x)) << 16)


@njit(inline="always", **_opts)
def _store(f):
    u = _as_u32(f)
    return np.int16(np.uint16((u + np.uint32(0x7FFF) + ((u >> 16) & np.uint32(1))) >> 16))


@njit(**_opts)
def forward_stats(c, s1, s2):
    """s1 += sum of relu(c), s2 += sum of relu(c)^2, per channel."""
    n_, h_, w_, ch_ = c.shape
    a1 = np.zeros(ch_, np.float32)
    a2 = np.zeros(ch_, np.float32)
    zero = np.float32(0)
    for n in range(n_):
        for h in range(h_):
            a1[:] = 0
            a2[:] = 0
            for w in range(w_):
                for k in range(ch_):
                    v = max(_load(c[n, h, w, k]), zero)
                    a1[k] += v
                    a2[k] += v * v
            for k in range(ch_):
                s1[k] += a1[k]
                s2[k] += a2[k]


@njit(**_opts)
def forward_pool(c, scale, shift, sign, y, idx, rmax):
    """Per 2x2 window and channel: best = max (sign > 0) or min (sign < 0) of relu(c), the first
    in scan order on ties (as max_pool2d); y = bf16(scale * best + shift); idx = its position
    0..3; rmax = best (exact: a bf16 value)."""
    n_, ph_, pw_, ch_ = y.shape
    zero = np.float32(0)
    for n in range(n_):
        for ph in range(ph_):
            h = 2 * ph
            for pw in range(pw_):
                w = 2 * pw
                for k in range(ch_):
                    s = sign[k]
                    best = max(_load(c[n, h, w, k]), zero) * s
                    j = np.uint8(0)
                    v = max(_load(c[n, h, w + 1, k]), zero) * s
                    if v > best:
                        best = v
                        j = np.uint8(1)
                    v = max(_load(c[n, h + 1, w, k]), zero) * s
                    if v > best:
                        best = v
                        j = np.uint8(2)
                    v = max(_load(c[n, h + 1, w + 1, k]), zero) * s
                    if v > best:
                        best = v
                        j = np.uint8(3)
                    best *= s
                    idx[n, ph, pw, k] = j
                    rmax[n, ph, pw, k] = _store(best)
                    y[n, ph, pw, k] = _store(scale[k] * best + shift[k])


@njit(**_opts)
def backward_sums(g, rmax, mean, invstd, s1, s2):
    """s1 += sum of g, s2 += sum of g * xhat over the pooled map, xhat = (rmax - mean) * invstd."""
    n_, ph_, pw_, ch_ = g.shape
    a1 = np.zeros(ch_, np.float32)
    a2 = np.zeros(ch_, np.float32)
    for n in range(n_):
        for ph in range(ph_):
            a1[:] = 0
            a2[:] = 0
            for pw in range(pw_):
                for k in range(ch_):
                    v = _load(g[n, ph, pw, k])
                    a1[k] += v
                    a2[k] += v * (_load(rmax[n, ph, pw, k]) - mean[k])
            for k in range(ch_):
                s1[k] += a1[k]
                s2[k] += a2[k] * invstd[k]


@njit(**_opts)
def backward_dense(c, g, idx, k1, a, b, out):
    """out = dL/dc = [c > 0] * (a + b * c + k1 * g at the pooled position, 0 elsewhere)."""
    n_, h_, w_, ch_ = c.shape
    ph_, pw_ = g.shape[1], g.shape[2]
    zero = np.float32(0)
    for n in range(n_):
        for h in range(h_):
            ph = h // 2
            for w in range(w_):
                pw = w // 2
                if ph < ph_ and pw < pw_:
                    mine = np.uint8((h & 1) * 2 + (w & 1))
                    for k in range(ch_):
                        v = _load(c[n, h, w, k])
                        gv = k1[k] * _load(g[n, ph, pw, k]) if idx[n, ph, pw, k] == mine else zero
                        out[n, h, w, k] = _store(a[k] + b[k] * v + gv if v > zero else zero)
                else:  # an odd last row or column that pooling drops: only the batch-norm terms
                    for k in range(ch_):
                        v = _load(c[n, h, w, k])
                        out[n, h, w, k] = _store(a[k] + b[k] * v if v > zero else zero)
