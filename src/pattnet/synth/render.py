"""One synthetic image: AUs applied to a source face, then a random nuisance transform, so that
registration has real work to undo (in-plane rotation, scale, shift and brightness change)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from pattnet.registration.template import IRIS_LEFT, IRIS_RIGHT, load_template
from pattnet.registration.warp import piecewise_affine_warp
from pattnet.synth.deformations import deform_mesh
from pattnet.synth.furrows import shade_furrows
from pattnet.synth.labels import AUS, MIN_VISIBLE
from pattnet.synth.sources import SourceFace

__all__ = ["ImageParams", "SynthImage", "apply_aus", "render", "sample_image_params"]


@dataclass(frozen=True)
class ImageParams:
    """The nuisance transform of one image: in-plane rotation (deg, positive = clockwise on
    screen), scale (1 = face IOD ``target_iod`` px), shift (fraction of the image side) and
    brightness (gain, offset)."""

    rotation: float = 0.0
    scale: float = 1.0
    shift: tuple[float, float] = (0.0, 0.0)
    gain: float = 1.0
    offset: float = 0.0


def sample_image_params(rng: np.random.Generator) -> ImageParams:
    """Rotation +-15 deg, scale 0.85-1.15, shift +-6 % of the side, gain 0.7-1.3, offset +-20."""
    return ImageParams(
        rotation=float(rng.uniform(-15, 15)),
        scale=float(rng.uniform(0.85, 1.15)),
        shift=(float(rng.uniform(-0.06, 0.06)), float(rng.uniform(-0.06, 0.06))),
        gain=float(rng.uniform(0.7, 1.3)),
        offset=float(rng.uniform(-20, 20)),
    )


@dataclass
class SynthImage:
    """A rendered image with its ground truth: ``labels`` in :data:`AUS` order (1/0),
    ``intensities`` requested and ``effective`` (after the fold guard), ``landmarks`` (478, 2)
    of the deformed face in output pixels."""

    rgb: np.ndarray
    labels: tuple[int, ...]
    intensities: dict[int, float]
    effective: dict[int, float]
    landmarks: np.ndarray
    params: ImageParams


def apply_aus(
    source: SourceFace, intensities: dict[int, float], *, grid_step: int = 2
) -> tuple[np.ndarray, np.ndarray, dict[int, float]]:
    """Deform the source photo: (image, displaced source landmarks (478, 3), effective
    intensities). Pixels outside the face mesh (and triangles hidden in the source) are the
    photo's own; inside, the photo is warped from the original mesh to the displaced one with
    the project's single piecewise-affine warp."""
    ff = source.frame
    face = ff.to_face(source.points)
    moved, eff = deform_mesh(face, {a: k for a, k in intensities.items() if k > 0})
    new_pts = ff.from_face(moved)
    if not any(v > 0 for v in eff.values()):
        return source.rgb.copy(), new_pts, eff
    tri = load_template().triangles
    warped, mask = piecewise_affine_warp(
        source.rgb, source.points, new_pts, tri, source.rgb.shape[:2], tri_mask=source.visible,
        grid_step=grid_step, return_mask=True,
    )
    out = source.rgb.copy()
    np.copyto(out, warped, where=mask.astype(bool)[:, :, None])
    out = shade_furrows(out, new_pts, eff, ff.source_iod, source.visible)
    return out, new_pts, eff


def _output_affine(source: SourceFace, pts: np.ndarray, params: ImageParams, size: int,
                   target_iod: float) -> np.ndarray:
    """2x3 matrix: source crop -> output image (face centred, IOD = target_iod * scale)."""
    eyes = 0.5 * (pts[IRIS_LEFT, :2] + pts[IRIS_RIGHT, :2])
    mouth = 0.5 * (pts[13, :2] + pts[14, :2])
    c = 0.5 * (eyes + mouth)
    f = target_iod * params.scale / source.frame.source_iod
    a = math.radians(params.rotation)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]]) * f
    dst_c = np.array([size / 2 - 0.5 + params.shift[0] * size, size / 2 - 0.5 + params.shift[1] * size])
    t = dst_c - rot @ c
    return np.hstack([rot, t[:, None]])


def render(
    source: SourceFace,
    intensities: dict[int, float],
    params: ImageParams = ImageParams(),
    *,
    size: int = 384,
    target_iod: float = 85.0,
    grid_step: int = 2,
) -> SynthImage:
    """One synthetic image: AUs applied at ``intensities`` (0..1 each), then the nuisance
    transform ``params``; output ``size`` x ``size`` RGB uint8."""
    img, pts, eff = apply_aus(source, intensities, grid_step=grid_step)
    m = _output_affine(source, source.points, params, size, target_iod)
    out = cv2.warpAffine(img, m, (size, size), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REFLECT_101)
    if params.gain != 1.0 or params.offset != 0.0:
        out = cv2.convertScaleAbs(out, alpha=params.gain, beta=params.offset)
    lm = pts[:, :2] @ m[:, :2].T + m[:, 2]
    labels = tuple(int(eff.get(a, 0.0) >= MIN_VISIBLE) for a in AUS)
    return SynthImage(out, labels, {a: float(intensities.get(a, 0.0)) for a in AUS},
                      {a: float(eff.get(a, 0.0)) for a in AUS}, lm.astype(np.float32), params)
