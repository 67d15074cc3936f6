"""Wrinkles and furrows drawn on the warped photo: the part of an AU's appearance that moving
skin cannot make (glabella lines, crow's feet, the nasolabial furrow, chin wrinkling, ...)."""

from __future__ import annotations

import math
from functools import cache

import cv2
import numpy as np

from pattnet.registration.template import load_template
from pattnet.synth.deformations import DEFORMATIONS, INNER_LIPS
from pattnet.synth.face_frame import template_face

__all__ = ["shade_furrows", "shade_mouth"]

#: A stroke located on the template: (triangle index (M,), barycentric weights (M, 3), depth, width).
Anchor = tuple[np.ndarray, np.ndarray, float, float]
#: A stroke in image pixels: (points (M, 2), darkening at the centre line, Gaussian sigma in px).
Stroke = tuple[np.ndarray, float, float]


def _densify(poly: np.ndarray, step: float = 0.01) -> np.ndarray:
    """The polyline resampled every ``step`` IOD, so the stroke follows the skin between mesh
    points instead of cutting straight across a deformed triangle."""
    dense = [poly[0]]
    for p0, p1 in zip(poly[:-1], poly[1:], strict=True):
        n = max(1, int(math.ceil(np.linalg.norm(p1 - p0) / step)))
        dense += [p0 + (p1 - p0) * (i / n) for i in range(1, n + 1)]
    return np.asarray(dense)


def _locate(q: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray, det: np.ndarray,
            ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Containing triangle and barycentric weights of each point of ``q`` (points off the mesh
    are dropped): these carry the stroke onto any face's own deformed mesh."""
    # barycentric coordinates of every point in every triangle; keep the containing one
    l1 = ((q[:, None, 0] - a[None, :, 0]) * (c[None, :, 1] - a[None, :, 1])
          - (c[None, :, 0] - a[None, :, 0]) * (q[:, None, 1] - a[None, :, 1]))
    l2 = ((b[None, :, 0] - a[None, :, 0]) * (q[:, None, 1] - a[None, :, 1])
          - (q[:, None, 0] - a[None, :, 0]) * (b[None, :, 1] - a[None, :, 1]))
    with np.errstate(divide="ignore", invalid="ignore"):
        l1, l2 = l1 / det, l2 / det
    inside = ok & (l1 >= -1e-9) & (l2 >= -1e-9) & (l1 + l2 <= 1 + 1e-9)
    has = inside.any(axis=1)
    t = inside.argmax(axis=1)[has]
    r = np.arange(len(q))[has]
    w = np.stack([1 - l1[r, t] - l2[r, t], l1[r, t], l2[r, t]], axis=1)
    return t, w


@cache
def _furrow_anchors(au: int) -> tuple[Anchor, ...]:
    """Each furrow stroke of ``au`` (mirrored ones included), densified to 0.01 IOD steps and
    located in the template's triangles: (triangle index (M,), barycentric weights (M, 3), depth,
    width). Points off the template mesh are dropped."""
    tf = template_face()[:, :2]
    tri = load_template().triangles.astype(np.int64)
    a, b, c = tf[tri[:, 0]], tf[tri[:, 1]], tf[tri[:, 2]]
    det = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (b[:, 1] - a[:, 1])
    ok = np.abs(det) > 1e-12
    out = []
    for f in DEFORMATIONS[au].furrows:
        base = np.asarray(f.points, dtype=np.float64)
        sides = [base] + ([base * [-1.0, 1.0]] if f.mirror else [])
        for poly in sides:
            t, w = _locate(_densify(poly), a, b, c, det, ok)
            if len(t) >= 2:
                out.append((t, w, float(f.depth), float(f.width)))
    return tuple(out)


def _strokes(points: np.ndarray, effective: dict[int, float], iod: float,
             visible: np.ndarray | None) -> list[Stroke]:
    """The furrows of the AUs in ``effective`` placed on the mesh ``points`` (image pixels)."""
    tri = load_template().triangles.astype(np.int64)
    pts = np.asarray(points, dtype=np.float64)[:, :2]
    strokes = []
    for au, k in sorted(effective.items()):
        if k <= 0 or au not in DEFORMATIONS:
            continue
        for t, w, depth, width in _furrow_anchors(au):
            if visible is not None:
                keep = visible[t]
                t, w = t[keep], w[keep]
                if len(t) < 2:
                    continue
            xy = np.einsum("mk,mkd->md", w, pts[tri[t]])
            strokes.append((xy, depth * k, max(0.6, width * iod)))
    return strokes


def _draw(image: np.ndarray, strokes: list[Stroke]) -> np.ndarray:
    """Multiply the pixels under the strokes by ``1 - shade``; only the strokes' bounding box is
    touched, so the cost follows the furrows, not the image size."""
    h, wd = image.shape[:2]
    allxy = np.concatenate([s[0] for s in strokes])
    pad = 4.0 * max(s[2] for s in strokes) + 2
    x0, y0 = max(0, int(allxy[:, 0].min() - pad)), max(0, int(allxy[:, 1].min() - pad))
    x1, y1 = min(wd, int(allxy[:, 0].max() + pad) + 1), min(h, int(allxy[:, 1].max() + pad) + 1)
    if x1 <= x0 or y1 <= y0:
        return image
    shade = np.zeros((y1 - y0, x1 - x0), np.float32)
    for xy, amount, sigma in strokes:
        canvas: np.ndarray = np.zeros_like(shade)
        line = np.round((xy - [x0, y0]) * 16).astype(np.int32)  # 4 fractional bits
        # a 1 px line blurred by sigma peaks at 1 / (sqrt(2 pi) sigma): scale so it peaks at 1
        cv2.polylines(canvas, [line], False, (math.sqrt(2 * math.pi) * sigma,), 1, cv2.LINE_8, 4)
        canvas = cv2.GaussianBlur(canvas, (0, 0), sigma)
        shade = np.maximum(shade, np.minimum(canvas, 1.0) * amount)
    out = image.copy()
    roi = out[y0:y1, x0:x1].astype(np.float32)
    roi *= (1.0 - np.clip(shade, 0.0, 0.8))[:, :, None]
    out[y0:y1, x0:x1] = np.clip(np.rint(roi), 0, 255).astype(image.dtype)
    return out


def shade_furrows(image: np.ndarray, points: np.ndarray, effective: dict[int, float],
                  iod: float, visible: np.ndarray | None = None) -> np.ndarray:
    """Darken the furrows of the AUs in ``effective`` (intensity > 0) along the face mesh
    ``points`` (478, 2+) in ``image`` pixels; ``iod`` in those pixels sets the line width.
    Strokes through triangles not in ``visible`` (hidden in the source) are left out."""
    strokes = _strokes(points, effective, iod, visible)
    if not strokes:
        return image
    return _draw(image, strokes)


def shade_mouth(image: np.ndarray, points: np.ndarray, iod: float) -> np.ndarray:
    """Draw the mouth opening between the inner lips of ``points`` (478, 2+) dark, as the mouth
    cavity looks, with edges softened over about 2 % of the IOD; a closed mouth is unchanged.

    Why: the warp can part the lips but has no pixels for the cavity between them, so it would
    stretch lip colour across the opening.
    """
    poly = np.asarray(points, dtype=np.float64)[list(INNER_LIPS), :2]
    x0, y0 = np.floor(poly.min(axis=0)).astype(int) - 4
    x1, y1 = np.ceil(poly.max(axis=0)).astype(int) + 5
    h, w = image.shape[:2]
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x1 <= x0 or y1 <= y0:
        return image
    mask: np.ndarray = np.zeros((y1 - y0, x1 - x0), np.float32)
    cv2.fillPoly(mask, [np.round((poly - [x0, y0]) * 16).astype(np.int32)], (1.0,), cv2.LINE_AA, 4)
    if mask.sum() < 4:  # the lips touch: nothing to draw
        return image
    mask = cv2.GaussianBlur(mask, (0, 0), max(0.5, 0.02 * iod))[:, :, None]
    out = image.copy()
    roi = out[y0:y1, x0:x1].astype(np.float32)
    cavity = np.array(_CAVITY, np.float32) * (roi.mean() / 128.0)  # as lit as the face around it
    out[y0:y1, x0:x1] = np.clip(np.rint(roi * (1 - mask) + cavity * mask), 0, 255).astype(image.dtype)
    return out


#: The colour of the mouth cavity (RGB) at the mid-grey exposure of a face.
_CAVITY = (52.0, 22.0, 24.0)
