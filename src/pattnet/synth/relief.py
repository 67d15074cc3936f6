"""Shading from the deformed 3D surface: where an AU moves the mesh, skin turns towards or away
from the light, so it brightens or darkens (the cheek lifted by a smile, the bunched brow).

Why: a warp alone moves texture but keeps every pixel's brightness, while a real expression also
changes how the light falls on the face. The ratio of Lambertian shading after and before the
deformation, under one light drawn per image, multiplies the warped photo in linear light.
Where the mesh did not move the ratio is exactly 1, so the photo's own lighting, texture and
shadows stay as they were; only the change is drawn.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["AMBIENT", "GAMMA", "Light", "from_linear", "sample_light", "shade_relief",
           "shading_ratio", "to_linear"]

#: Share of light that reaches every surface whatever its orientation (sky, walls, skin scatter).
AMBIENT = 0.35
#: The display gamma between 8-bit pixel values and linear light, where light adds and scales.
GAMMA = 2.2
#: Pixels per interpolated ratio sample; the ratio is smooth, so a coarse grid is enough.
_STEP = 4


def to_linear(rgb: np.ndarray) -> np.ndarray:
    """8-bit pixel values -> linear light in [0, 1] (float32)."""
    return (rgb.astype(np.float32) / 255.0) ** GAMMA


def from_linear(lin: np.ndarray) -> np.ndarray:
    """Linear light -> pixel values on the 0-255 scale (float, clipped to the displayable)."""
    return np.clip(lin, 0.0, 1.0) ** (1 / GAMMA) * 255.0


@dataclass(frozen=True)
class Light:
    """A distant light in the source photo's axes (x right, y down, z away from the camera),
    as the unit vector towards it; ``strength`` scales the shading change (0 = none)."""

    direction: tuple[float, float, float] = (0.0, 0.0, -1.0)
    strength: float = 0.0


def sample_light(rng: np.random.Generator) -> Light:
    """From the camera's side, up to about 35 degrees off axis, above the face more often than
    below (ceiling lights, the sun), at half to full strength."""
    lx = float(rng.uniform(-0.7, 0.7))
    ly = float(rng.uniform(-0.7, 0.3))
    v = np.array([lx, ly, -1.0])
    v /= np.linalg.norm(v)
    return Light((float(v[0]), float(v[1]), float(v[2])), float(rng.uniform(0.5, 1.0)))


def _vertex_normals(pts: np.ndarray, tri: np.ndarray, sign: np.ndarray) -> np.ndarray:
    p = pts[tri]
    n = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]) * sign[:, None]
    out = np.zeros_like(pts)
    for k in range(3):
        np.add.at(out, tri[:, k], n)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def shading_ratio(old_pts: np.ndarray, new_pts: np.ndarray, tri: np.ndarray,
                  light: Light) -> np.ndarray:
    """(N,) shading after / before per mesh vertex; exactly 1 where nothing moved nearby."""
    old = np.asarray(old_pts, dtype=np.float64)[:, :3]
    new = np.asarray(new_pts, dtype=np.float64)[:, :3]
    p = old[tri]
    # one orientation per triangle, taken from the face before the change: towards the camera
    sign = np.where(np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])[:, 2] <= 0, 1.0, -1.0)
    lvec = np.asarray(light.direction, dtype=np.float64)

    def shade(pts: np.ndarray) -> np.ndarray:
        return AMBIENT + (1 - AMBIENT) * np.maximum(_vertex_normals(pts, tri, sign) @ lvec, 0.0)

    ratio = shade(new) / shade(old)
    ratio = 1.0 + light.strength * (ratio - 1.0)
    moved = np.zeros(len(old), dtype=bool)
    moved[tri[np.abs(new[tri] - old[tri]).max(axis=(1, 2)) > 1e-3].ravel()] = True  # pixels
    return np.where(moved, np.clip(ratio, 0.5, 2.0), 1.0)


def shade_relief(image: np.ndarray, old_pts: np.ndarray, new_pts: np.ndarray, tri: np.ndarray,
                 light: Light) -> np.ndarray:
    """``image`` (RGB uint8, already warped to ``new_pts``) with the shading change drawn in.

    The per-vertex ratio is interpolated linearly over the moved mesh's triangles on a coarse
    grid, then resized to pixels; outside the face it is 1.
    """
    from scipy.interpolate import LinearNDInterpolator

    if light.strength <= 0:
        return image
    ratio = shading_ratio(old_pts, new_pts, tri, light)
    if np.all(ratio == 1.0):
        return image
    h, w = image.shape[:2]
    xy = np.asarray(new_pts, dtype=np.float64)[:, :2]
    x0, y0 = max(0, int(xy[:, 0].min())), max(0, int(xy[:, 1].min()))
    x1, y1 = min(w, int(np.ceil(xy[:, 0].max())) + 1), min(h, int(np.ceil(xy[:, 1].max())) + 1)
    if x1 <= x0 or y1 <= y0:
        return image
    gx = np.arange(x0, x1 + _STEP, _STEP, dtype=np.float64)
    gy = np.arange(y0, y1 + _STEP, _STEP, dtype=np.float64)
    grid = LinearNDInterpolator(xy, ratio, fill_value=1.0)(*np.meshgrid(gx, gy))
    field = cv2.resize(grid.astype(np.float32), (len(gx) * _STEP, len(gy) * _STEP),
                       interpolation=cv2.INTER_LINEAR)[: y1 - y0, : x1 - x0]
    out = image.copy()
    roi = to_linear(out[y0:y1, x0:x1]) * field[:, :, None]
    out[y0:y1, x0:x1] = np.clip(from_linear(roi) + 0.5, 0, 255).astype(np.uint8)
    return out
