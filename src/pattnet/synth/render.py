"""One synthetic image: AUs applied to a source face, then a random nuisance transform, so that
registration has real work to undo (in-plane rotation, scale, shift and brightness change), and
optionally what a real camera and a real file do to a picture (:class:`Sensor`: blur, noise,
white balance, exposure, JPEG), so that a model cannot lean on the clean pixels of a render."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from pattnet.registration.template import IRIS_LEFT, IRIS_RIGHT, load_template
from pattnet.registration.warp import piecewise_affine_warp
from pattnet.synth.deformations import deform_mesh
from pattnet.synth.furrows import shade_furrows, shade_mouth
from pattnet.synth.labels import AUS, MIN_VISIBLE
from pattnet.synth.relief import Light, from_linear, shade_relief, to_linear
from pattnet.synth.sources import SourceFace

#: The jaw drop (AU26), drawn with a dark mouth opening; synth applies it unlabelled.
JAW_DROP = 26

__all__ = ["JAW_DROP", "ImageParams", "Sensor", "SynthImage", "apply_aus", "apply_sensor",
           "render", "sample_image_params", "sample_jaw_drop", "sample_sensor"]


@dataclass(frozen=True)
class Sensor:
    """Camera and file degradations of one image, applied last, in the order a camera does:
    exposure and white balance on linear light (gamma 2.2), lens blur (Gaussian sigma, output
    pixels), sensor noise (std, 0-255 scale; its pattern drawn with ``seed``), JPEG (quality,
    0 = none). The defaults change nothing."""

    exposure: float = 1.0
    white_balance: tuple[float, float, float] = (1.0, 1.0, 1.0)
    blur: float = 0.0
    noise: float = 0.0
    jpeg: int = 0
    seed: int = 0


def sample_sensor(rng: np.random.Generator) -> Sensor:
    """Exposure 0.35-1.3 (a third of the images dim), white balance +-15 % per channel, blur
    sigma 0-1.6 px, noise 0-10, JPEG quality 25-95 (one image in five left uncompressed)."""
    dim = rng.random() < 0.33
    exposure = float(rng.uniform(0.35, 0.7) if dim else rng.uniform(0.8, 1.3))
    wb = rng.uniform(0.85, 1.15, 3)
    return Sensor(
        exposure=exposure, white_balance=(float(wb[0]), float(wb[1]), float(wb[2])),
        blur=float(rng.uniform(0.0, 1.6)),
        noise=float(rng.uniform(0.0, 10.0)),
        jpeg=0 if rng.random() < 0.2 else int(rng.integers(25, 96)),
        seed=int(rng.integers(0, 2**31)),
    )


def sample_jaw_drop(rng: np.random.Generator, share: float, labels: np.ndarray
                    ) -> dict[int, float]:
    """An open mouth for a ``share`` of the images, at intensity 0.3-1, never with the lips
    pressed or tightened (AU23, AU24: a closed mouth is what they are)."""
    on = rng.random() < share
    k = float(rng.uniform(0.3, 1.0))
    closed = any(labels[AUS.index(a)] for a in (23, 24))
    return {JAW_DROP: k} if on and not closed else {}


def apply_sensor(rgb: np.ndarray, s: Sensor) -> np.ndarray:
    """``rgb`` (uint8) as the camera and file of ``s`` would have recorded it."""
    if s == Sensor():
        return rgb
    lin = to_linear(rgb) * (s.exposure * np.asarray(s.white_balance, dtype=np.float32))
    x = from_linear(lin)
    if s.blur > 0.05:
        x = cv2.GaussianBlur(x, (0, 0), s.blur)
    if s.noise > 0:
        x = x + np.random.default_rng(s.seed).normal(0.0, s.noise, x.shape).astype(np.float32)
    out: np.ndarray = np.clip(x + 0.5, 0, 255).astype(np.uint8)
    if s.jpeg > 0:
        ok, buf = cv2.imencode(".jpg", out[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(s.jpeg)])
        if ok:
            out = cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1].copy()
    return out


@dataclass(frozen=True)
class ImageParams:
    """The nuisance transform of one image: in-plane rotation (deg, positive = clockwise on
    screen), scale (1 = face IOD ``target_iod`` px), shift (fraction of the image side),
    brightness (gain, offset), the camera's degradations (``sensor``) and the light that shades
    the deformed surface (``light``; strength 0 = no relief shading)."""

    rotation: float = 0.0
    scale: float = 1.0
    shift: tuple[float, float] = (0.0, 0.0)
    gain: float = 1.0
    offset: float = 0.0
    sensor: Sensor = Sensor()
    light: Light = Light()


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
    jaw_drop: float = 0.0  # effective intensity of the unlabelled open mouth


def apply_aus(
    source: SourceFace, intensities: dict[int, float], *, grid_step: int = 2,
    light: Light | None = None,
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
        source.rgb, source.points, new_pts, tri, (source.rgb.shape[0], source.rgb.shape[1]),
        tri_mask=source.visible,
        grid_step=grid_step, return_mask=True,
    )
    out = source.rgb.copy()
    np.copyto(out, warped, where=mask.astype(bool)[:, :, None])
    if light is not None:
        out = shade_relief(out, source.points, new_pts,
                           tri[np.asarray(source.visible, dtype=bool)], light)
    out = shade_furrows(out, new_pts, eff, ff.source_iod, source.visible)
    if eff.get(JAW_DROP, 0.0) > 0:
        out = shade_mouth(out, new_pts, ff.source_iod)
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
    img, pts, eff = apply_aus(source, intensities, grid_step=grid_step, light=params.light)
    m = _output_affine(source, source.points, params, size, target_iod)
    out = cv2.warpAffine(img, m, (size, size), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REFLECT_101)
    if params.gain != 1.0 or params.offset != 0.0:
        out = cv2.convertScaleAbs(out, alpha=params.gain, beta=params.offset)
    out = apply_sensor(out, params.sensor)
    lm = pts[:, :2] @ m[:, :2].T + m[:, 2]
    labels = tuple(int(eff.get(a, 0.0) >= MIN_VISIBLE) for a in AUS)
    return SynthImage(out, labels, {a: float(intensities.get(a, 0.0)) for a in AUS},
                      {a: float(eff.get(a, 0.0)) for a in AUS}, lm.astype(np.float32), params,
                      float(eff.get(JAW_DROP, 0.0)))
