"""Dense piecewise-affine warp over a triangle mesh: the one warp implementation of pattnet.

Registration uses it to bring a photo's face into the canonical 512x512 frame; the synthetic AU
set uses it to carry deformed faces back into photos. Keeping a single implementation means the
two can never disagree about pixel centres, borders or masking.

How it stays fast: the backward map (output pixel -> source pixel) of a piecewise-affine warp
is continuous, so it is evaluated on a coarse grid (every ``grid_step`` pixels, inside the
bounding box of the destination mesh only), vectorised over (triangle, grid cell) pairs,
upsampled with ``cv2.resize`` (bilinear, exactly aligned with the grid) and applied with one
``cv2.remap``. The error of the upsampled map is
second order in ``grid_step`` where triangles meet at an angle and zero inside a triangle;
``grid_step=1`` evaluates every pixel exactly. Coverage (outside the mesh, and triangles the
caller masks) is rasterised at full resolution with ``cv2.fillPoly``, so edges stay sharp.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal, overload

import cv2
import numpy as np

__all__ = ["piecewise_affine_warp", "mesh_boundary", "triangle_areas"]


def triangle_areas(pts: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Signed areas of the triangles (positive = counter-clockwise on screen, y down)."""
    p = np.ascontiguousarray(np.asarray(pts, dtype=np.float64)[:, :2])
    tri = np.asarray(triangles)
    a, b, c = (p.take(tri[:, k], axis=0) for k in range(3))
    b -= a
    c -= a
    cross = b[:, 0] * c[:, 1] - b[:, 1] * c[:, 0]
    return -0.5 * cross


_last_key: tuple[np.ndarray, bytes] | None = None


def _tri_key(tri: np.ndarray) -> bytes:
    """``tri.tobytes()``, the caches' key; the same bytes object again for the same read-only
    array (Registrar's), so that its hash (over the whole array's bytes) is computed once, not
    per frame."""
    global _last_key
    last = _last_key
    if last is not None and last[0] is tri and not tri.flags.writeable:
        return last[1]
    key = tri.tobytes()
    if not tri.flags.writeable and tri.base is None:
        _last_key = (tri, key)
    return key


@lru_cache(maxsize=8)
def _boundary_cached(key: bytes, n: int) -> tuple[int, ...]:
    tri = np.frombuffer(key, dtype=np.int64).reshape(n, 3)
    edges = np.concatenate([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [2, 0]]])
    und = np.sort(edges, axis=1)
    _, inv, counts = np.unique(und, axis=0, return_inverse=True, return_counts=True)
    outer = edges[counts[inv.ravel()] == 1]
    nxt = {int(a): int(b) for a, b in outer}
    if not nxt:
        return ()
    # follow the longest loop of boundary edges (a mesh with holes has several)
    best: list[int] = []
    seen: set[int] = set()
    for start in nxt:
        if start in seen:
            continue
        loop = [start]
        seen.add(start)
        cur = nxt[start]
        while cur != start and cur in nxt and cur not in seen:
            loop.append(cur)
            seen.add(cur)
            cur = nxt[cur]
        if len(loop) > len(best):
            best = loop
    return tuple(best)


def mesh_boundary(triangles: np.ndarray) -> np.ndarray:
    """Vertex indices of the mesh's outer boundary, in order (cached per triangle array)."""
    tri = np.ascontiguousarray(triangles, dtype=np.int64)
    return _boundary_array(tri.tobytes(), len(tri))


@lru_cache(maxsize=8)
def _boundary_array(key: bytes, n: int) -> np.ndarray:
    out = np.array(_boundary_cached(key, n), dtype=np.int64)
    out.setflags(write=False)
    return out


@lru_cache(maxsize=8)
def _boundary_tris_cached(key: bytes, n: int) -> np.ndarray:
    tri = np.frombuffer(key, dtype=np.int64).reshape(n, 3)
    edges = np.sort(np.concatenate([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [2, 0]]]), axis=1)
    _, inv, counts = np.unique(edges, axis=0, return_inverse=True, return_counts=True)
    on_edge = (counts[inv.ravel()] == 1).reshape(3, n).any(axis=0)
    on_edge.setflags(write=False)
    return on_edge


def _affine_coefs(
    src: np.ndarray, dst: np.ndarray, tri: np.ndarray, x0: float, y0: float, step: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[np.ndarray, ...]]:
    """Per-triangle affine maps over grid cell indices, and the triangles' corners.

    Grid cell (i, j) sits at output pixel (x0 + step * i, y0 + step * j). Returns ``bary``
    (T, 6) float32: the barycentrics l1, l2 of that point are ``r[0] * i + r[1] * j + r[2]``
    and ``r[3] * i + r[4] * j + r[5]``; ``srcmap`` (T, 6) float32, the same for the source x, y
    (computed in float64, rounded once); ``ok`` (T,) the triangles that are not flat; and the
    three corners (T, 4) as destination x, y and source x, y.
    """
    n = len(dst)
    pts = np.empty((n, 4))
    pts[:, :2] = dst
    pts[:, 2:] = src
    # three row gathers: much faster than pts[tri] and reductions over its small axes
    a, b, cc = (pts.take(tri[:, k], axis=0) for k in range(3))
    e1 = b - a
    e2 = cc - a
    e1x, e1y, f1x, f1y = e1.T
    e2x, e2y, f2x, f2y = e2.T
    det = e1x * e2y - e1y * e2x
    ok = np.abs(det) > 1e-9
    ox = x0 - a[:, 0]
    oy = y0 - a[:, 1]
    c = np.empty((12, len(tri)))
    c[0] = e2y * step
    c[1] = e2x * -step
    c[2] = ox * e2y - oy * e2x
    c[3] = e1y * -step
    c[4] = e1x * step
    c[5] = e1x * oy - e1y * ox
    c[:6] /= np.where(ok, det, 1.0)
    c[6:9] = f1x * c[0:3] + f2x * c[3:6]
    c[8] += a[:, 2]
    c[9:12] = f1y * c[0:3] + f2y * c[3:6]
    c[11] += a[:, 3]
    ct = c.T.astype(np.float32)  # (T, 12): a row gather per (triangle, cell) pair is fast
    return ct[:, :6].copy(), ct[:, 6:].copy(), ok, (a, b, cc)


def _coarse_map(
    src: np.ndarray, dst: np.ndarray, tri: np.ndarray, x_lo: int, y_lo: int, gw: int, gh: int,
    step: int, tri_key: bytes,
) -> np.ndarray:
    """Backward map (gh, gw, 2) float32 sampled at the grid cell centres of the output block.

    Interior cells come from each triangle's tight bounding box (every cell centre inside the
    mesh is inside some triangle's box). Boundary triangles get their box grown by one cell, and
    cells outside the mesh there receive that triangle's affine map extrapolated, so bilinear
    upsampling stays right up to the mesh edge; cells inside a triangle overwrite them. Where
    triangles overlap (a fold: closed eyelids, pressed lips) the highest-numbered one wins.
    """
    c = (step - 1) / 2.0
    bary, srcmap, ok, corners = _affine_coefs(src, dst, tri, x_lo + c, y_lo + c, step)
    # every (triangle, cell) pair of the triangles' boxes, as 1-D arrays (reductions over small
    # axes and 2-D fancy indexing are slow in numpy)
    u0, u1, u2 = ((p[:, 0] - (x_lo + c)) / step for p in corners)
    v0, v1, v2 = ((p[:, 1] - (y_lo + c)) / step for p in corners)
    umin = np.minimum(np.minimum(u0, u1), u2)
    umax = np.maximum(np.maximum(u0, u1), u2)
    vmin = np.minimum(np.minimum(v0, v1), v2)
    vmax = np.maximum(np.maximum(v0, v1), v2)
    bnd = _boundary_tris_cached(tri_key, len(tri))
    i0 = np.where(bnd, np.floor(umin) - 1, np.ceil(umin)).clip(0, gw - 1).astype(np.int32)
    i1 = np.where(bnd, np.ceil(umax) + 1, np.floor(umax)).clip(-1, gw - 1).astype(np.int32)
    j0 = np.where(bnd, np.floor(vmin) - 1, np.ceil(vmin)).clip(0, gh - 1).astype(np.int32)
    j1 = np.where(bnd, np.ceil(vmax) + 1, np.floor(vmax)).clip(-1, gh - 1).astype(np.int32)
    bw = np.maximum(i1 - i0 + 1, 0)
    n = np.where(ok, bw * np.maximum(j1 - j0 + 1, 0), 0)  # flat triangles contain no cell
    t = np.repeat(np.arange(len(tri), dtype=np.int32), n)
    k = np.arange(len(t), dtype=np.int32) - np.repeat(np.cumsum(n, dtype=np.int32) - n, n)
    bwt = bw.take(t)
    # k // bw in float32 (exact for box sizes below 2**22 cells; integer division is slow)
    small = len(t) == 0 or int(n.max()) < 1 << 22
    dj = ((k.astype(np.float32) + 0.5) / bwt).astype(np.int32) if small else k // bwt
    ci = i0.take(t) + (k - dj * bwt)
    cj = j0.take(t) + dj
    fi = ci.astype(np.float32)
    fj = cj.astype(np.float32)
    cf = bary.take(t, axis=0)
    b1 = cf[:, 0] * fi + cf[:, 1] * fj + cf[:, 2]
    b2 = cf[:, 3] * fi + cf[:, 4] * fj + cf[:, 5]
    inside = (b1 >= -1e-5) & (b2 >= -1e-5) & (b1 + b2 <= 1.0 + 1e-5)
    cell = cj * gw + ci
    # per cell, the triangle whose map it takes: the last containing triangle, else the last
    # boundary triangle whose grown box covers it (extrapolated); pairs come in triangle order,
    # and numpy's fancy assignment keeps the last write
    owner = np.full(gh * gw, -1, dtype=np.int32)
    ext = np.flatnonzero(bnd.take(t) & ~inside)
    owner[cell.take(ext)] = t.take(ext)
    inn = np.flatnonzero(inside)
    owner[cell.take(inn)] = t.take(inn)
    return _map_from_owners(owner, srcmap, gw, gh)


def _map_from_owners(owner: np.ndarray, srcmap: np.ndarray, gw: int, gh: int) -> np.ndarray:
    """Each grid cell's source x, y from its owning triangle's map; far outside where unowned."""
    cells = np.flatnonzero(owner >= 0)
    cf = srcmap.take(owner.take(cells), axis=0)
    fi = (cells % gw).astype(np.float32)
    fj = (cells // gw).astype(np.float32)
    mx = np.full(gh * gw, -1e5, dtype=np.float32)
    my = np.full(gh * gw, -1e5, dtype=np.float32)
    mx[cells] = cf[:, 0] * fi + cf[:, 1] * fj + cf[:, 2]
    my[cells] = cf[:, 3] * fi + cf[:, 4] * fj + cf[:, 5]
    return cv2.merge([mx.reshape(gh, gw), my.reshape(gh, gw)])


@overload
def piecewise_affine_warp(
    image: np.ndarray, src_pts: np.ndarray, dst_pts: np.ndarray, triangles: np.ndarray,
    out_shape: tuple[int, int], *, tri_mask: np.ndarray | None = ..., grid_step: int = ...,
    interpolation: int = ..., fill: int | float = ..., return_mask: Literal[False] = ...,
) -> np.ndarray: ...


@overload
def piecewise_affine_warp(
    image: np.ndarray, src_pts: np.ndarray, dst_pts: np.ndarray, triangles: np.ndarray,
    out_shape: tuple[int, int], *, tri_mask: np.ndarray | None = ..., grid_step: int = ...,
    interpolation: int = ..., fill: int | float = ..., return_mask: Literal[True],
) -> tuple[np.ndarray, np.ndarray]: ...


def piecewise_affine_warp(
    image: np.ndarray,
    src_pts: np.ndarray,
    dst_pts: np.ndarray,
    triangles: np.ndarray,
    out_shape: tuple[int, int],
    *,
    tri_mask: np.ndarray | None = None,
    grid_step: int = 4,
    interpolation: int = cv2.INTER_LINEAR,
    fill: int | float = 0,
    return_mask: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Warp ``image`` so that each triangle ``src_pts[tri]`` lands on ``dst_pts[tri]``.

    Args:
        image: (H, W) or (H, W, C) array in any dtype ``cv2.remap`` takes (uint8, float32...).
        src_pts: (N, 2+) vertex positions in ``image`` pixels (x, y; extra columns ignored).
        dst_pts: (N, 2+) vertex positions in the output, pixels.
        triangles: (T, 3) vertex indices. Orientation does not matter.
        out_shape: (height, width) of the output.
        tri_mask: optional (T,) bool; triangles that are False are left at ``fill`` (used for
            triangles hidden in the source, e.g. the far side of the nose on a turned head).
            They still shape the map, so their neighbours are warped exactly as without it.
        grid_step: spacing of the coarse map grid in output pixels (1 = exact per pixel).
        interpolation: ``cv2.remap`` interpolation for sampling the source.
        fill: value outside the mesh and in masked triangles (black by default).
        return_mask: also return the (H, W) uint8 coverage mask (255 where warped).

    Pixel convention: integer coordinates are pixel centres (OpenCV's), for source and output.
    """
    h_out, w_out = int(out_shape[0]), int(out_shape[1])
    img = np.asarray(image)
    shape = (h_out, w_out, *img.shape[2:])
    out = np.zeros(shape, dtype=img.dtype) if fill == 0 else np.full(shape, fill, dtype=img.dtype)
    mask = np.zeros((h_out, w_out) if return_mask else (0, 0), dtype=np.uint8)
    tri = np.ascontiguousarray(triangles, dtype=np.int64)
    src = np.asarray(src_pts, dtype=np.float64)[:, :2]
    dst = np.asarray(dst_pts, dtype=np.float64)[:, :2]
    x_lo, y_lo, x_hi, y_hi = _output_block(dst, h_out, w_out)
    if x_hi <= x_lo or y_hi <= y_lo or len(tri) == 0:
        return (out, mask) if return_mask else out
    tri_key = _tri_key(tri)
    # (only the block's coverage is needed unless the caller wants the whole mask)
    sub = mask[y_lo:y_hi, x_lo:x_hi] if return_mask else np.zeros((y_hi - y_lo, x_hi - x_lo),
                                                                   dtype=np.uint8)
    _fill_coverage(sub, dst, tri, tri_key, tri_mask, np.array([x_lo, y_lo], dtype=np.float64))
    maps = _block_map(src, dst, tri, (x_lo, y_lo, x_hi, y_hi), max(1, int(grid_step)), tri_key)
    # map2=None (one two-channel map) is OpenCV's documented form; its stubs only allow arrays
    warped = cv2.remap(img, maps, None, interpolation,  # type: ignore[call-overload]
                       borderMode=cv2.BORDER_CONSTANT, borderValue=(float(fill),) * 4)
    _paste(warped, sub, out[y_lo:y_hi, x_lo:x_hi])
    return (out, mask) if return_mask else out


def _block_map(src: np.ndarray, dst: np.ndarray, tri: np.ndarray,
               block: tuple[int, int, int, int], step: int, tri_key: bytes) -> np.ndarray:
    """The dense backward map of the output block: coarse grid, upsampled bilinearly."""
    x_lo, y_lo, x_hi, y_hi = block
    gw = -(-(x_hi - x_lo) // step)
    gh = -(-(y_hi - y_lo) // step)
    grid = _coarse_map(src, dst, tri, x_lo, y_lo, gw, gh, step, tri_key)
    if step > 1:
        grid = cv2.resize(grid, (gw * step, gh * step), interpolation=cv2.INTER_LINEAR)
    return grid[:y_hi - y_lo, :x_hi - x_lo]


def _output_block(dst: np.ndarray, h_out: int, w_out: int) -> tuple[int, int, int, int]:
    """The part of the output the mesh can cover: its bounding box, with a margin for rounding."""
    x_lo = max(0, int(np.floor(dst[:, 0].min())) - 1)
    y_lo = max(0, int(np.floor(dst[:, 1].min())) - 1)
    x_hi = min(w_out, int(np.ceil(dst[:, 0].max())) + 2)
    y_hi = min(h_out, int(np.ceil(dst[:, 1].max())) + 2)
    return x_lo, y_lo, x_hi, y_hi


def _fill_coverage(sub: np.ndarray, dst: np.ndarray, tri: np.ndarray, tri_key: bytes,
                   tri_mask: np.ndarray | None, offset: np.ndarray) -> None:
    """Coverage of the output block at full resolution: the mesh outline minus masked triangles.

    Rasterised apart from the coarse map so that the face's edges stay sharp.
    """
    boundary = _boundary_array(tri_key, len(tri))
    shift = 4  # sub-pixel vertex positions for fillPoly (1/16 px)
    if len(boundary) >= 3:
        poly = np.round((dst[boundary] - offset) * (1 << shift)).astype(np.int32)
        cv2.fillPoly(sub, [poly], (255,), lineType=cv2.LINE_8, shift=shift)
    if tri_mask is not None:
        hidden = tri[~np.asarray(tri_mask, dtype=bool)]
        if len(hidden):
            polys = np.round((dst[hidden] - offset) * (1 << shift)).astype(np.int32)
            cv2.fillPoly(sub, list(polys), (0,), lineType=cv2.LINE_8, shift=shift)


def _paste(warped: np.ndarray, sub: np.ndarray, block: np.ndarray) -> None:
    """Copy the warped pixels into ``block`` (a view of the output) where ``sub`` covers them."""
    # OpenCV's masked copy is far cheaper than numpy's at this size
    res = cv2.copyTo(warped, sub, block)
    if not np.may_share_memory(res, block):  # OpenCV could not write in place (an odd layout)
        keep = sub.astype(bool)
        if warped.ndim == 3:
            keep = keep[:, :, None]
        np.copyto(block, warped, where=keep)
