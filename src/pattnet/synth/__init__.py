"""A controlled AU set from real faces: FACS-based mesh deformations warped back into photos.

Why: with no licensed AU dataset at hand, pattnet still needs labelled data whose ground truth is
known exactly, to show end to end that registration, patches, training and detection work. Each
image here is a real photo of a real person in which chosen AUs have been *applied*: the face
mesh is displaced the way FACS describes the AU's appearance change, and the photo is warped
from the old mesh to the new one with :func:`pattnet.registration.piecewise_affine_warp`, the
same dense piecewise-affine warp registration uses (one warp implementation in the project).

How a face is deformed (see docs/synth.md for the table per AU):

1. the face is registered; the similarity ``canonical = s R p + t`` that registration found
   maps the source landmarks ``p`` into the canonical frame, where pose is removed;
2. the canonical mesh is expressed in a *face frame*: origin between the iris centres, units of
   the face's interocular distance (IOD), x to the image's right, y down, z away;
3. each AU is a registered :class:`AUDeformation`: smooth, compactly supported "pulls" anchored
   on the template's landmarks (the same landmarks in every face), gated by the AU's own
   region, so landmarks outside the region do not move at all; the displacement is linear in
   the intensity;
4. the displaced mesh goes back through the inverse similarity (re-rotate, re-scale, drop z),
   so a turned head gets its AU turned with it, and the photo is warped inside the face only.

On top, every image gets a random in-plane rotation, scale, shift and brightness change, so
that registration has real work to undo. Identities are the people in the source photos and
videos; nothing here invents a person (a mirrored face is the same person).
"""

from __future__ import annotations

import logging
import math
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

import cv2
import numpy as np

from pattnet.constants import BP4D_AUS, au_name
from pattnet.errors import PattnetError
from pattnet.io.atomic import write_png_atomic
from pattnet.registration.pose import similarity_fit
from pattnet.registration.template import IRIS_LEFT, IRIS_RIGHT, load_template
from pattnet.registration.warp import mesh_boundary, piecewise_affine_warp, triangle_areas

log = logging.getLogger(__name__)

__all__ = [
    "AUS",
    "DEFORMATIONS",
    "LABEL_RULES",
    "MIN_VISIBLE",
    "AUDeformation",
    "FaceFrame",
    "Furrow",
    "ImageParams",
    "Pull",
    "SourceFace",
    "SynthImage",
    "apply_aus",
    "bundled_faces",
    "deform_mesh",
    "label_rates",
    "load_sources",
    "region_indices",
    "render",
    "sample_intensities",
    "schedule_motion",
    "shade_furrows",
    "synthesize",
    "write_schedule_video",
    "sample_image_params",
    "sample_labels",
    "schedule_segments",
    "schedule_table",
]

#: The AUs synthesised: the paper's 12 BP4D AUs.
AUS: tuple[int, ...] = BP4D_AUS
#: An AU whose effective intensity (after the fold guard) is below this is labelled absent.
MIN_VISIBLE = 0.2
#: Intensity of an active AU in a sampled image: uniform in this range (1 = the table's maximum).
INTENSITY_RANGE = (0.4, 1.0)
N_MESH = 468  # mesh points; the 10 iris points are not part of the triangulation


# --------------------------------------------------------------------------------------------
# face frame
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FaceFrame:
    """Source pixels <-> the face-normalised frame (pose removed, IOD units).

    ``canonical = s * R @ p + t`` (registration's similarity), then
    ``face = (canonical - centre) / iod`` with ``centre`` the midpoint of the iris centres.
    """

    s: float
    r: np.ndarray
    t: np.ndarray
    centre: np.ndarray
    iod: float

    @classmethod
    def fit(cls, source_points: np.ndarray, canonical_points: np.ndarray) -> FaceFrame:
        """From registration's source and canonical landmarks (both (478, 3)).

        The canonical mesh is an exact similarity image of the source mesh, so refitting on all
        points recovers registration's ``s, R, t`` (also after the source was cropped/scaled).
        """
        src = np.asarray(source_points, dtype=np.float64)
        can = np.asarray(canonical_points, dtype=np.float64)
        s, r, t = similarity_fit(src, can)
        centre = 0.5 * (can[IRIS_LEFT] + can[IRIS_RIGHT])
        iod = float(np.linalg.norm(can[IRIS_LEFT, :2] - can[IRIS_RIGHT, :2]))
        if not (s > 0 and iod > 1e-6 and np.isfinite(r).all()):
            raise PattnetError("degenerate face mesh (no interocular distance)")
        return cls(s, r, t, centre, iod)

    def to_face(self, pts: np.ndarray) -> np.ndarray:
        can = self.s * (np.asarray(pts, dtype=np.float64) @ self.r.T) + self.t
        return (can - self.centre) / self.iod

    def from_face(self, f: np.ndarray) -> np.ndarray:
        can = np.asarray(f, dtype=np.float64) * self.iod + self.centre
        return ((can - self.t) @ self.r) / self.s

    @property
    def source_iod(self) -> float:
        """Interocular distance in source pixels (the unit of displacement, in the photo)."""
        return self.iod / self.s


@lru_cache(maxsize=1)
def template_face() -> np.ndarray:
    """The template mesh in the face frame: where regions and pull anchors are defined, so that
    the same landmarks move in every face whatever its shape or expression."""
    t = load_template()
    p = t.points.astype(np.float64)
    centre = 0.5 * (p[IRIS_LEFT] + p[IRIS_RIGHT])
    out = (p - centre) / t.interocular
    out.setflags(write=False)
    return out


@lru_cache(maxsize=1)
def _boundary_distance() -> np.ndarray:
    """Distance (IOD) of each landmark to the mesh outline: pulls fade to zero at the outline,
    so the warped face meets the untouched photo without a seam."""
    tf = template_face()
    b = mesh_boundary(load_template().triangles)
    d = np.linalg.norm(tf[:, None, :2] - tf[None, b, :2], axis=2).min(axis=1)
    d.setflags(write=False)
    return d


def _smoothstep(x: np.ndarray, a: float, b: float) -> np.ndarray:
    """0 at ``a``, 1 at ``b`` (either order), C1 in between."""
    s = np.clip((x - a) / (b - a), 0.0, 1.0)
    return s * s * (3 - 2 * s)


# --------------------------------------------------------------------------------------------
# regions and deformations
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Region:
    """Where an AU may move the face: a soft box in the template's face frame.

    ``v`` = (outer, inner) edges of the vertical range limits, as ((lo0, lo1), (hi1, hi0)):
    weight 0 beyond lo0/hi0, 1 between lo1 and hi1. ``u_abs`` the same for the distance from
    the midline. Points within ``outline`` IOD of the mesh outline fade out; irises never move.
    """

    name: str
    v: tuple[tuple[float, float], tuple[float, float]]
    u_abs: tuple[tuple[float, float], tuple[float, float]] = ((-2.0, -1.0), (8.0, 9.0))
    outline: float = 0.12

    def weights(self) -> np.ndarray:
        tf = template_face()
        u, v = np.abs(tf[:, 0]), tf[:, 1]
        (v0, v1), (v2, v3) = self.v
        (u0, u1), (u2, u3) = self.u_abs
        w = _smoothstep(v, v0, v1) * _smoothstep(v, v3, v2)
        w = w * _smoothstep(u, u0, u1) * _smoothstep(u, u3, u2)
        w = w * _smoothstep(_boundary_distance(), 0.0, self.outline)
        w[N_MESH:] = 0.0
        return w


REGIONS: dict[str, Region] = {
    # forehead, brows and the upper-lid skin below them (eye line at v = 0)
    "brows": Region("brows", v=((-9.0, -8.0), (-0.12, 0.0))),
    # lids, eye corners and the infraorbital cheek, not the nose bridge
    "eyes": Region("eyes", v=((-0.16, -0.06), (0.45, 0.6)), u_abs=((0.12, 0.22), (8.0, 9.0))),
    # lips, mouth corners, nasolabial area and chin, below the nose tip
    "mouth": Region("mouth", v=((0.62, 0.75), (8.0, 9.0))),
}


def region_indices(name: str) -> np.ndarray:
    """Landmarks an AU of region ``name`` may move (all others stay exactly in place)."""
    return np.flatnonzero(REGIONS[name].weights() > 0)


@dataclass(frozen=True)
class Pull:
    """A smooth, compactly supported displacement around an anchor.

    ``centre`` (u, v) and ``radius`` (ru, rv) in IOD, in the template's face frame; ``vector``
    (dx, dy, dz) in IOD at intensity 1, for the subject's right side (image left, u < 0).
    ``mirror`` adds the left-right mirrored pull (dx negated). Weight ``(1 - r^2)^2`` for the
    elliptic distance r < 1, so the displacement is continuous with a continuous gradient.
    """

    centre: tuple[float, float]
    radius: tuple[float, float]
    vector: tuple[float, float, float]
    mirror: bool = True

    def field(self) -> np.ndarray:
        tf = template_face()
        out = np.zeros((len(tf), 3))
        sides = [(self.centre[0], 1.0)]
        if self.mirror and self.centre[0] != 0:
            sides.append((-self.centre[0], -1.0))
        for cu, sx in sides:
            r2 = ((tf[:, 0] - cu) / self.radius[0]) ** 2 + ((tf[:, 1] - self.centre[1]) / self.radius[1]) ** 2
            w = np.clip(1.0 - r2, 0.0, None) ** 2
            vec = np.array([self.vector[0] * sx, self.vector[1], self.vector[2]])
            out += w[:, None] * vec
        return out


@dataclass(frozen=True)
class Furrow:
    """A wrinkle or furrow the AU deepens: the part of FACS's appearance change that moving skin
    cannot make (AU4's glabella lines, AU6's crow's feet, AU12's nasolabial furrow, AU17's chin
    wrinkling, ...).

    ``points`` is a polyline (u, v) in IOD in the template's face frame, for the subject's right
    side (``mirror`` adds the left one). It is carried onto each face through that face's own
    deformed mesh (barycentric coordinates in the template's triangles), so it lies on the same
    anatomy in every face and moves with the skin. It is drawn as a soft dark line: the pixel
    value is multiplied by ``1 - depth * intensity`` on the centre line, with a Gaussian profile
    of standard deviation ``width`` (IOD) across it.
    """

    points: tuple[tuple[float, float], ...]
    depth: float = 0.3
    width: float = 0.02
    mirror: bool = True


# inner lip contour pairs (upper, lower), image left to right: AU24 presses them together
_INNER_LIP_PAIRS = ((191, 95), (80, 88), (81, 178), (82, 87), (13, 14), (312, 317), (311, 402),
                    (310, 318), (415, 324))


def _press_lips(face: np.ndarray) -> np.ndarray:
    """AU24's mesh-dependent part: close an open mouth by up to 40 % of each lip gap.

    Why mesh-dependent: a fixed closing displacement would push the lips through each other on
    a face whose mouth is already closed.
    """
    out = np.zeros_like(face)
    for up, lo in _INNER_LIP_PAIRS:
        gap = max(0.0, float(face[lo, 1] - face[up, 1]))
        out[up, 1] += 0.2 * gap
        out[lo, 1] -= 0.2 * gap
    return out


@dataclass(frozen=True)
class AUDeformation:
    """One AU: its FACS appearance change as a displacement of the face mesh.

    ``__call__(face, intensity)`` takes a (478, 3) mesh in the face frame and returns the
    displaced mesh; the displacement is ``intensity`` times :meth:`displacement` (linear), and
    zero outside the AU's region.
    """

    au: int
    name: str
    facs: str
    region: str
    pulls: tuple[Pull, ...]
    extra: Callable[[np.ndarray], np.ndarray] | None = None
    furrows: tuple[Furrow, ...] = ()

    @property
    def _static(self) -> np.ndarray:
        return _static_field(self.au)

    def displacement(self, face: np.ndarray) -> np.ndarray:
        """Displacement at intensity 1 (IOD units) for this face's mesh."""
        d = self._static.copy()
        if self.extra is not None:
            d += self.extra(face) * REGIONS[self.region].weights()[:, None]
        return d

    def __call__(self, face: np.ndarray, intensity: float) -> np.ndarray:
        return np.asarray(face, dtype=np.float64) + float(intensity) * self.displacement(face)


def _up(d: float) -> float:
    return -d  # y points down in the face frame


# The table (see docs/synth.md for the FACS basis of each row). Vectors in IOD at intensity 1,
# for the subject's right side; all are mirrored to the left side.
DEFORMATIONS: dict[int, AUDeformation] = {
    d.au: d for d in (
        AUDeformation(1, "inner brow raiser", "inner part of the brows pulled up, forehead skin "
                      "above it bunched up", "brows",
                      (Pull((-0.24, -0.30), (0.38, 0.34), (0.0, _up(0.13), 0.0)),),
                      furrows=(Furrow(((-0.32, -0.50), (-0.15, -0.53), (0.0, -0.54), (0.15, -0.53),
                                       (0.32, -0.50)), mirror=False),
                        Furrow(((-0.28, -0.62), (0.0, -0.65), (0.28, -0.62)), 0.25, mirror=False))),
        AUDeformation(2, "outer brow raiser", "lateral part of the brows pulled up (arched)",
                      "brows",
                      (Pull((-0.72, -0.28), (0.36, 0.34), (-0.01, _up(0.11), 0.0)),),
                      furrows=(Furrow(((-0.85, -0.45), (-0.65, -0.52), (-0.42, -0.53))),
                        Furrow(((-0.78, -0.58), (-0.58, -0.63), (-0.42, -0.64)), 0.25))),
        AUDeformation(4, "brow lowerer", "brows lowered and drawn together, glabella pushed down",
                      "brows",
                      (Pull((-0.20, -0.28), (0.32, 0.32), (0.05, 0.07, 0.0)),
                       Pull((-0.52, -0.32), (0.32, 0.30), (0.02, 0.05, 0.0))),
                      furrows=(Furrow(((-0.08, -0.18), (-0.09, -0.30), (-0.08, -0.42)), 0.4, 0.018),
                        Furrow(((-0.17, -0.21), (-0.13, -0.33)), 0.3, 0.015),
                        Furrow(((-0.08, -0.08), (0.0, -0.09), (0.08, -0.08)), 0.25, mirror=False))),
        AUDeformation(6, "cheek raiser", "infraorbital cheek lifted, lower lid pushed up, eye "
                      "narrowed from below, crow's feet at the outer corner", "eyes",
                      (Pull((-0.52, 0.32), (0.36, 0.30), (0.0, _up(0.06), -0.01)),
                       Pull((-0.50, 0.10), (0.24, 0.16), (0.0, _up(0.025), 0.0)),
                       Pull((-0.82, 0.05), (0.18, 0.18), (0.01, _up(0.02), 0.0))),
                      furrows=(Furrow(((-0.80, 0.00), (-0.95, -0.06)), 0.35, 0.015),
                        Furrow(((-0.81, 0.05), (-0.98, 0.06)), 0.35, 0.015),
                        Furrow(((-0.80, 0.10), (-0.94, 0.18)), 0.35, 0.015),
                        Furrow(((-0.68, 0.22), (-0.50, 0.28), (-0.33, 0.24))))),
        AUDeformation(7, "lid tightener", "lids tightened: lower lid raised and straightened, "
                      "upper lid slightly lowered, eye narrowed", "eyes",
                      (Pull((-0.50, 0.08), (0.26, 0.13), (0.0, _up(0.04), 0.0)),
                       Pull((-0.50, -0.08), (0.24, 0.10), (0.0, 0.012, 0.0))),
                      furrows=(Furrow(((-0.64, 0.10), (-0.50, 0.15), (-0.36, 0.11)), 0.45, 0.018),)),
        AUDeformation(10, "upper lip raiser", "upper lip raised (centre and sides), nasolabial "
                      "area and nostril wings lifted", "mouth",
                      (Pull((-0.15, 1.05), (0.34, 0.20), (0.0, _up(0.07), -0.01)),
                       Pull((-0.22, 0.82), (0.22, 0.16), (0.0, _up(0.03), 0.0))),
                      furrows=(Furrow(((-0.31, 0.64), (-0.36, 0.74), (-0.40, 0.88), (-0.42, 0.98)),
                                      0.35, 0.022),)),
        AUDeformation(12, "lip corner puller", "lip corners pulled obliquely up and out toward "
                      "the cheekbones, cheeks bulge", "mouth",
                      (Pull((-0.33, 1.23), (0.30, 0.30), (-0.06, _up(0.09), 0.01)),
                       Pull((-0.45, 0.92), (0.28, 0.24), (-0.01, _up(0.035), -0.01))),
                      furrows=(Furrow(((-0.33, 0.72), (-0.42, 0.90), (-0.48, 1.08), (-0.50, 1.25),
                                       (-0.48, 1.38)), 0.4, 0.025),)),
        AUDeformation(14, "dimpler", "lip corners tightened and drawn inward and back, dimple "
                      "lateral to the corner", "mouth",
                      (Pull((-0.33, 1.23), (0.26, 0.24), (0.05, _up(0.01), 0.03)),
                       Pull((-0.47, 1.23), (0.14, 0.14), (0.02, 0.0, 0.03))),
                      furrows=(Furrow(((-0.43, 1.12), (-0.45, 1.22), (-0.44, 1.33)), 0.6, 0.03),)),
        AUDeformation(15, "lip corner depressor", "lip corners pulled down, lower lip stretched "
                      "down at the sides", "mouth",
                      (Pull((-0.33, 1.23), (0.28, 0.28), (-0.01, 0.08, 0.0)),
                       Pull((-0.22, 1.42), (0.20, 0.18), (0.0, 0.02, 0.0))),
                      furrows=(Furrow(((-0.36, 1.30), (-0.40, 1.40), (-0.44, 1.52)), 0.45, 0.022),)),
        AUDeformation(17, "chin raiser", "chin boss pushed up, lower lip pushed up and out",
                      "mouth",
                      (Pull((0.0, 1.62), (0.42, 0.30), (0.0, _up(0.06), -0.02), mirror=False),
                       Pull((0.0, 1.38), (0.36, 0.14), (0.0, _up(0.035), -0.02), mirror=False)),
                      furrows=(Furrow(((-0.24, 1.52), (-0.12, 1.57), (0.0, 1.58), (0.12, 1.57), (0.24, 1.52)),
                               0.4, 0.025, mirror=False),
                        Furrow(((-0.10, 1.70), (-0.04, 1.74)), 0.3, 0.015),
                        Furrow(((-0.06, 1.80), (0.06, 1.80)), 0.3, 0.015, mirror=False))),
        AUDeformation(23, "lip tightener", "lips tightened and narrowed: red parts thinned, "
                      "corners drawn in", "mouth",
                      (Pull((-0.33, 1.23), (0.20, 0.20), (0.045, 0.0, 0.0)),
                       Pull((-0.12, 1.03), (0.26, 0.07), (0.0, 0.02, 0.0)),
                       Pull((-0.12, 1.42), (0.26, 0.07), (0.0, _up(0.02), 0.0))),
                      furrows=(Furrow(((-0.22, 0.98), (-0.21, 1.04)), 0.5, 0.015),
                        Furrow(((-0.13, 0.97), (-0.12, 1.03)), 0.5, 0.015),
                        Furrow(((-0.05, 0.96), (-0.05, 1.02)), 0.5, 0.015),
                        Furrow(((-0.15, 1.46), (-0.14, 1.52)), 0.5, 0.015),
                        Furrow(((-0.05, 1.47), (-0.05, 1.53)), 0.5, 0.015))),
        AUDeformation(24, "lip presser", "lips pressed together: red parts flattened, an open "
                      "mouth closed, skin above and below bulged", "mouth",
                      (Pull((-0.12, 1.06), (0.30, 0.09), (0.0, 0.025, 0.0)),
                       Pull((-0.12, 1.40), (0.30, 0.09), (0.0, _up(0.025), 0.0))),
                      extra=_press_lips,
                      furrows=(Furrow(((-0.26, 1.00), (-0.12, 0.97), (0.0, 0.97), (0.12, 0.97), (0.26, 1.00)),
                               0.55, mirror=False),
                        Furrow(((-0.24, 1.47), (0.0, 1.51), (0.24, 1.47)), 0.55, mirror=False))),
    )
}


@cache
def _static_field(au: int) -> np.ndarray:
    d = DEFORMATIONS[au]
    f = sum((p.field() for p in d.pulls), np.zeros((len(template_face()), 3)))
    f = f * REGIONS[d.region].weights()[:, None]
    f.setflags(write=False)
    return f


@lru_cache(maxsize=1)
def _front_triangles() -> tuple[np.ndarray, np.ndarray]:
    tri = load_template().triangles.astype(np.int64)
    a = triangle_areas(template_face() * 96.0, tri)
    return tri, a


def _folds(before: np.ndarray, after: np.ndarray, tri: np.ndarray) -> bool:
    """True when a triangle that faces the viewer in ``before`` collapses (below 5 % of its area)
    or flips in ``after`` (face frame, x-y): the warp would then fold the photo over itself.
    Strong compression short of that is allowed: skin does bunch up (nasolabial furrow)."""
    a0 = triangle_areas(before, tri)
    a1 = triangle_areas(after, tri)
    ok = a0 > 1e-6
    return bool(np.any(a1[ok] < 0.05 * a0[ok]))


def deform_mesh(face: np.ndarray, intensities: dict[int, float]) -> tuple[np.ndarray, dict[int, float]]:
    """Apply several AUs (additively, in AU order) to a face-frame mesh.

    Returns the displaced mesh and the *effective* intensities: an AU whose displacement would
    fold a triangle of this particular face (e.g. lids pushed through an eye that is already
    nearly closed) is scaled down until it does not; the caller labels it absent when that
    leaves less than :data:`MIN_VISIBLE`.
    """
    tri, _ = _front_triangles()
    cur = np.asarray(face, dtype=np.float64).copy()
    eff: dict[int, float] = {}
    for au in sorted(intensities):
        k = float(intensities[au])
        if k <= 0:
            eff[au] = 0.0
            continue
        if au not in DEFORMATIONS:
            raise PattnetError(f"AU {au} has no deformation; synth knows AU "
                               f"{', '.join(map(str, sorted(DEFORMATIONS)))}")
        d = DEFORMATIONS[au].displacement(cur)
        for factor in (1.0, 0.75, 0.5, 0.3, 0.15, 0.0):
            nxt = cur + (k * factor) * d
            if factor == 0.0 or not _folds(cur, nxt, tri):
                break
        cur = nxt
        eff[au] = k * factor
    return cur, eff


# --------------------------------------------------------------------------------------------
# label sampling: co-occurrence as an ordered rule list
# --------------------------------------------------------------------------------------------
#: (AU, probability when no listed parent is on, ((parent AU, probability if that parent is on),
#: ...)). Rules are evaluated in order; the first listed parent that is on decides. Positive
#: couplings follow the prototypes of FACS/EMFACS (6+12 happiness, 1+2 surprise, 1+4+15
#: sadness, 4+7 and 4+7+23/24 anger, 17 with 15 and 24); negative ones keep antagonists apart
#: (12 against 15, 23, 24).
LABEL_RULES: tuple[tuple[int, float, tuple[tuple[int, float], ...]], ...] = (
    (12, 0.40, ()),
    (6, 0.10, ((12, 0.70),)),
    (1, 0.30, ()),
    (2, 0.06, ((1, 0.70),)),
    (4, 0.30, ((1, 0.15), (12, 0.08))),
    (7, 0.20, ((4, 0.60), (6, 0.50))),
    (10, 0.15, ((12, 0.45), (4, 0.35))),
    (15, 0.20, ((12, 0.03), (1, 0.35))),
    (14, 0.22, ((12, 0.20), (15, 0.10))),
    (23, 0.15, ((12, 0.05), (4, 0.40))),
    (24, 0.12, ((12, 0.05), (23, 0.45))),
    (17, 0.18, ((12, 0.08), (15, 0.60), (24, 0.60), (23, 0.45))),
)


def sample_labels(rng: np.random.Generator, n: int = 1) -> np.ndarray:
    """(n, 12) int8 occurrence labels in :data:`AUS` order, drawn from :data:`LABEL_RULES`."""
    on: dict[int, np.ndarray] = {}
    for au, base, parents in LABEL_RULES:
        p = np.full(n, base)
        decided = np.zeros(n, dtype=bool)
        for parent, q in parents:
            hit = on[parent] & ~decided
            p[hit] = q
            decided |= hit
        on[au] = rng.random(n) < p
    return np.stack([on[a] for a in AUS], axis=1).astype(np.int8)


def label_rates(n: int = 200_000, seed: int = 12345) -> dict[str, object]:
    """Rates the sampler produces (measured on ``n`` draws): marginals, P(row | column) and the
    Jaccard index of the paper's Fig. 3, for synth.json and the docs."""
    y = sample_labels(np.random.default_rng(seed), n).astype(bool)
    names = [au_name(a) for a in AUS]
    both = (y[:, :, None] & y[:, None, :]).sum(axis=0).astype(np.float64)
    either = (y[:, :, None] | y[:, None, :]).sum(axis=0).astype(np.float64)
    cnt = y.sum(axis=0).astype(np.float64)
    cond = both / np.maximum(cnt[None, :], 1)  # P(row | column)
    jac = both / np.maximum(either, 1)
    return {
        "draws": n,
        "marginal": {k: round(float(v), 3) for k, v in zip(names, y.mean(axis=0), strict=True)},
        "no_au": round(float((~y.any(axis=1)).mean()), 3),
        "mean_aus_per_image": round(float(y.sum(axis=1).mean()), 2),
        "p_row_given_col": {r: {c: round(float(cond[i, j]), 3) for j, c in enumerate(names)}
                            for i, r in enumerate(names)},
        "jaccard": {r: {c: round(float(jac[i, j]), 3) for j, c in enumerate(names)}
                    for i, r in enumerate(names)},
    }


# --------------------------------------------------------------------------------------------
# sources: registered real faces, one identity per person
# --------------------------------------------------------------------------------------------
@dataclass
class SourceFace:
    """One registered real face to deform: a crop of the photo around it and its mesh.

    ``points`` (478, 3) are in ``rgb`` pixels; ``frame`` maps them to the face frame.
    """

    identity: str
    origin: str
    frame_index: int
    rgb: np.ndarray
    points: np.ndarray
    frame: FaceFrame
    visible: np.ndarray  # (T,) triangles that face the camera in the source


def _sanitize(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_")
    return s or "face"


def _source_face(identity: str, origin: str, index: int, rgb: np.ndarray, face,
                 target_iod: float) -> SourceFace:
    """Crop (and shrink) the photo around a registered face so later warps stay cheap.

    Why shrink: the output face has ``target_iod`` px between the irises; warping a 12-MP photo
    per image would cost far more than it adds. Kept at up to 2x the output resolution.
    """
    pts = np.asarray(face.source_landmarks, dtype=np.float64)
    ff = FaceFrame.fit(pts, face.landmarks_3d)
    iod = ff.source_iod
    c = 0.5 * (pts[IRIS_LEFT, :2] + pts[IRIS_RIGHT, :2])
    half = 5.0 * iod  # room for rotation, scale and shift of the output crop
    h, w = rgb.shape[:2]
    x0, y0 = max(0, int(c[0] - half)), max(0, int(c[1] - half))
    x1, y1 = min(w, int(math.ceil(c[0] + half))), min(h, int(math.ceil(c[1] + half)))
    crop = rgb[y0:y1, x0:x1]
    pts = pts - np.array([x0, y0, 0.0])
    f = min(1.0, 2.0 * target_iod / iod)
    if f < 1.0:
        size = (max(1, round(crop.shape[1] * f)), max(1, round(crop.shape[0] * f)))
        fx, fy = size[0] / crop.shape[1], size[1] / crop.shape[0]
        crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
        pts = np.stack([(pts[:, 0] + 0.5) * fx - 0.5, (pts[:, 1] + 0.5) * fy - 0.5,
                        pts[:, 2] * 0.5 * (fx + fy)], axis=1)
    ff = FaceFrame.fit(pts, face.landmarks_3d)
    tri = load_template().triangles.astype(np.int64)
    # a triangle hidden in the source (far side of a turned head) keeps the photo as it is
    a_src = triangle_areas(pts, tri)
    a_can = triangle_areas(ff.to_face(pts), tri)
    visible = ~(a_can > 0) | (a_src > 0.1 * a_can * ff.source_iod**2)
    return SourceFace(identity, origin, index, np.ascontiguousarray(crop), pts, ff, visible)


def _neutrality(face) -> float:
    """Smaller = more neutral mouth (closed, narrow): video frames to deform are picked among the
    most neutral ones, because a source expression is constant per image and unlabelled."""
    lm = face.landmarks
    iod = float(np.linalg.norm(lm[IRIS_LEFT] - lm[IRIS_RIGHT]))
    opening = float(np.linalg.norm(lm[14] - lm[13])) / iod
    width = float(np.linalg.norm(lm[291] - lm[61])) / iod
    return opening + 0.5 * width


def _video_candidates(path: Path, n_frames: int, registrar) -> list[tuple[int, np.ndarray, object]]:
    from pattnet.io import iter_frames
    from pattnet.io.probe import try_probe_video

    info = try_probe_video(path)
    total = info.frames if info else 0
    step = max(1, (total or 300) // max(1, 3 * n_frames))
    cands = []
    try:
        for fr in iter_frames(path):
            if fr.index % step:
                continue
            faces = [f for f in registrar.register(fr.rgb) if f.success]
            if faces:
                cands.append((fr.index, fr.rgb, faces[0]))
    except PattnetError as exc:  # a damaged video keeps the frames before the damage
        if not cands:
            raise
        log.warning("%s", exc)
    if not cands:
        return []
    keep = sorted(sorted(cands, key=lambda c: _neutrality(c[2]))[: max(n_frames, 1)],
                  key=lambda c: c[0])
    return keep


def bundled_faces(n_lfw: int = 40) -> list[tuple[str, np.ndarray]]:
    """Real faces that ship with installed packages, as ``(identity, rgb)``.

    scikit-image's ``astronaut`` (Eileen Collins), matplotlib's ``grace_hopper.jpg``, and the
    first ``n_lfw`` faces of scikit-image's ``lfw_subset`` (25x25 grey crops from Labeled Faces
    in the Wild, shipped inside the wheel; upscaled to 200 px and padded). Why LFW: a network
    trained on two or three people learns who they are, not what their AUs look like; dozens of
    identities let the subject-independent folds test what the paper tests. Each LFW image is
    taken as one identity (the subset does not say who is who, so a person appearing twice
    cannot be ruled out). scikit-image's ``camera`` is left out: a face turned about 45 degrees
    frontalises mostly into occluded, smeared surface.
    """
    import cv2
    import matplotlib.cbook as cbook
    import matplotlib.image as mimage
    from skimage import data

    from pattnet.io import to_rgb_uint8

    with cbook.get_sample_data("grace_hopper.jpg") as fh:
        grace = mimage.imread(fh, format="jpg")
    out = [("astronaut", to_rgb_uint8(data.astronaut())), ("grace_hopper", to_rgb_uint8(grace))]
    lfw = data.lfw_subset()[:100]  # the first 100 images of the subset are faces
    for i, g in enumerate(lfw[: max(0, n_lfw)]):
        img = cv2.resize(np.clip(g * 255.0, 0, 255).astype(np.uint8), (200, 200),
                         interpolation=cv2.INTER_CUBIC)
        img = cv2.copyMakeBorder(img, 28, 28, 28, 28, cv2.BORDER_REPLICATE)
        out.append((f"lfw{i:03d}", cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)))
    return out


def load_sources(
    faces: Sequence[str | Path] | None,
    *,
    frames_per_video: int = 8,
    max_faces: int = 10,
    target_iod: float = 85.0,
    min_iod: float = 20.0,
    skipped: list[str] | None = None,
    bundled_lfw: int = 40,
) -> dict[str, list[SourceFace]]:
    """Register the source faces: identity -> its source faces (several for a video).

    ``faces`` are image or video files or folders (``None`` or the word ``bundled``: the faces
    of :func:`bundled_faces`). A photo gives one identity per face found (a group photo gives
    several, named ``<stem>-f<k>``); a video gives one identity, ``frames_per_video`` frames
    spread over it and chosen among its most neutral ones. Inputs without a usable face are
    listed in ``skipped`` (with the reason) and left out; the caller decides whether enough
    identities remain.
    """
    from pattnet.io import expand_inputs, is_video, read_image
    from pattnet.registration import Registrar, RegistrationConfig

    skipped = skipped if skipped is not None else []
    items: list[tuple[str, str, Path | np.ndarray]] = []
    paths = [str(p) for p in (faces or ["bundled"])]
    files = [p for p in paths if p != "bundled"]
    if len(files) < len(paths):
        items += [(name, f"bundled:{name}", rgb) for name, rgb in bundled_faces(bundled_lfw)]
    for p in expand_inputs(files) if files else []:
        items.append((_sanitize(p.stem), str(p), p))

    out: dict[str, list[SourceFace]] = {}

    def add(name: str, sf_list: list[SourceFace]) -> None:
        base, k = name, 2
        while name in out:
            name, k = f"{base}-{k}", k + 1
        for sf in sf_list:
            sf.identity = name
        out[name] = sf_list

    with Registrar(RegistrationConfig(max_faces=max_faces), static_image_mode=True) as reg, \
            Registrar(RegistrationConfig(max_faces=1), static_image_mode=True) as reg1:
        for name, origin, src in items:
            try:
                if isinstance(src, Path) and is_video(src):
                    cands = _video_candidates(src, frames_per_video, reg1)
                    sfs = [_source_face(name, origin, i, rgb, f, target_iod) for i, rgb, f in cands]
                    sfs = [s for s in sfs if s.frame.source_iod >= min_iod]
                    if not sfs:
                        skipped.append(f"{origin}: no face found in the video")
                        continue
                    add(name, sfs)
                    continue
                rgb = read_image(src) if isinstance(src, Path) else src
                found = [f for f in reg.register(rgb) if f.success]
            except PattnetError as exc:
                skipped.append(str(exc))
                continue
            if not found:
                skipped.append(f"{origin}: no face found")
                continue
            sfs = [_source_face(name, origin, 0, rgb, f, target_iod) for f in found]
            small = [s for s in sfs if s.frame.source_iod < min_iod]
            sfs = [s for s in sfs if s.frame.source_iod >= min_iod]
            if small:
                skipped.append(f"{origin}: {len(small)} face(s) too small (under {min_iod:.0f} px "
                               "between the eyes)")
            for k, sf in enumerate(sfs):
                add(name if len(sfs) == 1 else f"{name}-f{k}", [sf])
    return out


# --------------------------------------------------------------------------------------------
# rendering one image
# --------------------------------------------------------------------------------------------
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


@cache
def _furrow_anchors(au: int) -> tuple[tuple[np.ndarray, np.ndarray, float, float], ...]:
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
            dense = [poly[0]]
            for p0, p1 in zip(poly[:-1], poly[1:], strict=True):
                n = max(1, int(math.ceil(np.linalg.norm(p1 - p0) / 0.01)))
                dense += [p0 + (p1 - p0) * (i / n) for i in range(1, n + 1)]
            q = np.asarray(dense)
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
            if len(t) >= 2:
                out.append((t, w, float(f.depth), float(f.width)))
    return tuple(out)


def shade_furrows(image: np.ndarray, points: np.ndarray, effective: dict[int, float],
                  iod: float, visible: np.ndarray | None = None) -> np.ndarray:
    """Darken the furrows of the AUs in ``effective`` (intensity > 0) along the face mesh
    ``points`` (478, 2+) in ``image`` pixels; ``iod`` in those pixels sets the line width.
    Strokes through triangles not in ``visible`` (hidden in the source) are left out."""
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
    if not strokes:
        return image
    h, wd = image.shape[:2]
    allxy = np.concatenate([s[0] for s in strokes])
    pad = 4.0 * max(s[2] for s in strokes) + 2
    x0, y0 = max(0, int(allxy[:, 0].min() - pad)), max(0, int(allxy[:, 1].min() - pad))
    x1, y1 = min(wd, int(allxy[:, 0].max() + pad) + 1), min(h, int(allxy[:, 1].max() + pad) + 1)
    if x1 <= x0 or y1 <= y0:
        return image
    shade = np.zeros((y1 - y0, x1 - x0), np.float32)
    for xy, amount, sigma in strokes:
        canvas = np.zeros_like(shade)
        line = np.round((xy - [x0, y0]) * 16).astype(np.int32)  # 4 fractional bits
        # a 1 px line blurred by sigma peaks at 1 / (sqrt(2 pi) sigma): scale so it peaks at 1
        cv2.polylines(canvas, [line], False, math.sqrt(2 * math.pi) * sigma, 1, cv2.LINE_8, 4)
        canvas = cv2.GaussianBlur(canvas, (0, 0), sigma)
        shade = np.maximum(shade, np.minimum(canvas, 1.0) * amount)
    out = image.copy()
    roi = out[y0:y1, x0:x1].astype(np.float32)
    roi *= (1.0 - np.clip(shade, 0.0, 0.8))[:, :, None]
    out[y0:y1, x0:x1] = np.clip(np.rint(roi), 0, 255).astype(image.dtype)
    return out


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


def sample_intensities(rng: np.random.Generator, labels: Iterable[int]) -> dict[int, float]:
    lo, hi = INTENSITY_RANGE
    return {a: (float(rng.uniform(lo, hi)) if y else 0.0) for a, y in zip(AUS, labels, strict=True)}


# --------------------------------------------------------------------------------------------
# the schedule video
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Segment:
    """AUs ``aus`` on at ``intensity`` from frame ``start`` (inclusive) to ``end`` (exclusive)."""

    start: int
    end: int
    aus: tuple[int, ...]
    intensity: float = 0.85


def schedule_segments(fps: int = 12, seconds: float = 10.0) -> list[Segment]:
    """Neutral first, then each AU alone in turn, then the common combinations (6+12, 1+2,
    4+7, 17+24, 1+4+15), each on for about 0.4 s with neutral gaps, fitted into the duration."""
    n = int(round(fps * seconds))
    blocks: list[tuple[int, ...]] = [(a,) for a in AUS] + [(6, 12), (1, 2), (4, 7), (17, 24),
                                                           (1, 4, 15)]
    lead = max(2, n // 20)
    slot = max(2, (n - lead) // len(blocks))
    on = max(1, int(round(slot * 0.6)))
    segs = []
    for i, aus in enumerate(blocks):
        s = lead + i * slot
        if s + on > n:
            break
        segs.append(Segment(s, s + on, tuple(sorted(aus))))
    return segs


def schedule_table(segments: Sequence[Segment], n_frames: int) -> np.ndarray:
    """(n_frames, 12) float intensities per frame in :data:`AUS` order."""
    inten = np.zeros((n_frames, len(AUS)))
    col = {a: j for j, a in enumerate(AUS)}
    for seg in segments:
        for a in seg.aus:
            inten[seg.start:seg.end, col[a]] = seg.intensity
    return inten


def schedule_motion(i: int, fps: float) -> ImageParams:
    """Smooth, known head motion of the schedule video (rotation +-6 deg, scale +-5 %, a small
    drift), so that detect has to track and register rather than read a still picture."""
    t = i / fps
    return ImageParams(
        rotation=6.0 * math.sin(2 * math.pi * t / 5.0),
        scale=1.0 + 0.05 * math.sin(2 * math.pi * t / 3.3),
        shift=(0.03 * math.sin(2 * math.pi * t / 4.0), 0.02 * math.cos(2 * math.pi * t / 6.0)),
    )


# --------------------------------------------------------------------------------------------
# the whole set
# --------------------------------------------------------------------------------------------
MANIFEST = "manifest.csv"
DETAILS = "synth_labels.csv"
SCHEDULE_VIDEO = "schedule.mp4"
SCHEDULE_CSV = "schedule.csv"
CONFIG = "synth.json"
IMAGES = "images"
_OWN_FILES = (MANIFEST, DETAILS, SCHEDULE_VIDEO, SCHEDULE_CSV, CONFIG)


def _check_out(out: Path) -> None:
    """Refuse to write into a folder with other things in it; a previous synth output is
    replaced (its images first, so no stale image outlives a smaller rerun)."""
    if not out.exists():
        return
    if not out.is_dir():
        raise PattnetError(f"{out}: exists and is not a folder")
    entries = [p for p in out.iterdir() if not p.name.startswith(".")]
    if not entries:
        return
    if not (out / CONFIG).is_file():
        raise PattnetError(f"{out}: folder is not empty and holds no earlier synth output "
                           f"({CONFIG}); choose a new --out")
    img = out / IMAGES
    if img.is_dir():
        for p in img.glob("*.png"):
            p.unlink()


def write_schedule_video(source: SourceFace, out: Path, *, fps: int = 12, seconds: float = 10.0,
                         size: int = 384, target_iod: float = 85.0) -> list[Segment]:
    """``schedule.mp4`` (H.264) of ``source`` with AUs switching on and off per
    :func:`schedule_segments`, and ``schedule.csv`` (frame, time, AU01..AU24: 1/0; I01..I24:
    effective intensity). Frame i of the video is row i of the CSV."""
    import av

    from pattnet.io.atomic import atomic_write_text, tmp_path_for

    n = int(round(fps * seconds))
    segs = schedule_segments(fps, seconds)
    inten = schedule_table(segs, n)
    names = [au_name(a) for a in AUS]
    lines = ["frame,time," + ",".join(names) + "," + ",".join(f"I{a:02d}" for a in AUS)]
    tmp = tmp_path_for(out / SCHEDULE_VIDEO)
    try:
        with av.open(str(tmp), mode="w") as container:
            stream = container.add_stream("libx264", rate=fps)
            stream.width = stream.height = size
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": "16", "preset": "veryfast"}
            for i in range(n):
                want = {a: float(inten[i, j]) for j, a in enumerate(AUS)}
                im = render(source, want, schedule_motion(i, fps), size=size, target_iod=target_iod)
                frame = av.VideoFrame.from_ndarray(im.rgb, format="rgb24")
                for pkt in stream.encode(frame):
                    container.mux(pkt)
                lab = ",".join(str(v) for v in im.labels)
                eff = ",".join(f"{im.effective[a]:.3f}" for a in AUS)
                lines.append(f"{i},{i / fps:.4f},{lab},{eff}")
            for pkt in stream.encode():
                container.mux(pkt)
        tmp.replace(out / SCHEDULE_VIDEO)
    finally:
        if tmp.exists():
            tmp.unlink()
    atomic_write_text(out / SCHEDULE_CSV, "\n".join(lines) + "\n")
    return segs


def synthesize(
    out: str | Path,
    faces: Sequence[str | Path] | None = None,
    *,
    per_identity: int = 100,
    frames_per_video: int = 8,
    seed: int = 0,
    folds: int = 3,
    size: int = 384,
    fps: int = 12,
    seconds: float = 10.0,
    video: bool = True,
    workers: int = 1,
    bundled_lfw: int = 40,
    echo: Callable[[str], None] = print,
) -> dict[str, object]:
    """Build the controlled AU set in ``out`` and return what synth.json records.

    ``bundled_lfw``: how many LFW faces :func:`bundled_faces` adds when ``faces`` is None.

    Deterministic given the inputs and ``seed``: image k of identity i draws from its own
    generator seeded with (seed, i, k), whatever ``workers`` is.
    """
    import json
    import time
    from concurrent.futures import ThreadPoolExecutor

    from pattnet import __version__
    from pattnet.io.atomic import atomic_write_json, atomic_write_text

    t0 = time.monotonic()
    out = Path(out).expanduser()
    if per_identity < 1:
        raise PattnetError(f"--per-identity must be at least 1, got {per_identity}")
    if folds < 1:
        raise PattnetError(f"--folds must be at least 1, got {folds}")
    if workers < 1:
        raise PattnetError(f"--workers must be at least 1, got {workers}")
    if size < 64:
        raise PattnetError(f"--size must be at least 64, got {size}")
    target_iod = size / 4.5
    skipped: list[str] = []
    sources = load_sources(faces, bundled_lfw=bundled_lfw, frames_per_video=frames_per_video,
                           target_iod=target_iod, skipped=skipped)
    for s in skipped:
        print(f"pattnet: skipped: {s}", file=sys.stderr)
    if len(sources) < folds:
        have = ", ".join(sources) if sources else "none"
        why = f" ({len(skipped)} input(s) without a usable face)" if skipped else ""
        raise PattnetError(
            f"synth found {len(sources)} identit{'y' if len(sources) == 1 else 'ies'} ({have}){why}; "
            f"{folds} subject-independent folds need at least {folds} different people: pass "
            "--faces photos or videos of more people (one identity per file; each face of a group "
            "photo counts as one), or lower --folds"
        )
    _check_out(out)
    (out / IMAGES).mkdir(parents=True, exist_ok=True)
    t_src = time.monotonic() - t0

    jobs = [(i, name, k) for i, name in enumerate(sources) for k in range(per_identity)]

    def one(job: tuple[int, str, int]) -> list[str]:
        i, name, k = job
        rng = np.random.default_rng([seed, i, k])
        labels = sample_labels(rng)[0]
        inten = sample_intensities(rng, labels)
        params = sample_image_params(rng)
        sfs = sources[name]
        src = sfs[k % len(sfs)]
        im = render(src, inten, params, size=size, target_iod=target_iod)
        rel = f"{IMAGES}/{name}_{k:04d}.png"
        write_png_atomic(out / rel, im.rgb)
        p = im.params
        return [rel, name, str(k), *map(str, im.labels), src.origin, str(src.frame_index),
                *(f"{im.effective[a]:.3f}" for a in AUS), *(f"{im.intensities[a]:.3f}" for a in AUS),
                f"{p.rotation:.2f}", f"{p.scale:.3f}", f"{p.shift[0]:.3f}", f"{p.shift[1]:.3f}",
                f"{p.gain:.3f}", f"{p.offset:.2f}"]

    t1 = time.monotonic()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        rows = list(pool.map(one, jobs))
    t_img = time.monotonic() - t1

    names = [au_name(a) for a in AUS]
    n_lab = 3 + len(AUS)
    man = ["path,subject,session,frame," + ",".join(names)]
    man += [f"{r[0]},{r[1]},synth,{r[2]}," + ",".join(r[3:n_lab]) for r in rows]
    det = ["path,subject,frame," + ",".join(names) + ",source,source_frame,"
           + ",".join(f"I{a:02d}" for a in AUS) + "," + ",".join(f"requested_I{a:02d}" for a in AUS)
           + ",rotation,scale,shift_x,shift_y,gain,offset"]
    det += [",".join(json.dumps(c) if "," in c or '"' in c else c for c in r) for r in rows]
    atomic_write_text(out / DETAILS, "\n".join(det) + "\n")
    atomic_write_text(out / MANIFEST, "\n".join(man) + "\n")

    y = np.array([[int(v) for v in r[3:n_lab]] for r in rows], dtype=np.int64)
    requested = sum(1 for r in rows for j in range(len(AUS)) if float(r[n_lab + 2 + len(AUS) + j]) > 0)
    guard = requested - int(y.sum())

    segs: list[Segment] = []
    t2 = time.monotonic()
    sched_identity = next(iter(sources))
    if video:
        segs = write_schedule_video(sources[sched_identity][0], out, fps=fps, seconds=seconds,
                                    size=size, target_iod=target_iod)
    t_vid = time.monotonic() - t2

    meta: dict[str, object] = {
        "pattnet_version": __version__,
        "template_version": load_template().version,
        "seed": seed,
        "config": {"per_identity": per_identity, "frames_per_video": frames_per_video,
                   "folds": folds, "size": size, "target_iod": round(target_iod, 2),
                   "fps": fps, "seconds": seconds, "video": video,
                   "intensity_range": list(INTENSITY_RANGE), "min_visible": MIN_VISIBLE,
                   "faces": [str(f) for f in faces] if faces else ["bundled"]},
        "identities": {name: {"images": per_identity,
                              "sources": [{"origin": s.origin, "frame": s.frame_index,
                                           "iod_px": round(s.frame.source_iod, 1)} for s in sfs]}
                       for name, sfs in sources.items()},
        "skipped": skipped,
        "images": len(rows),
        "label_rules": [{"au": a, "base": b, "given": [{"au": p, "p": q} for p, q in par]}
                        for a, b, par in LABEL_RULES],
        "rates_model": label_rates(),
        "rates_this_set": {k: round(float(v), 3) for k, v in zip(names, y.mean(axis=0), strict=True)},
        "labels_dropped_by_fold_guard": guard,
        "schedule": {"identity": sched_identity, "fps": fps, "seconds": seconds,
                     "segments": [{"start": s.start, "end": s.end, "aus": list(s.aus),
                                   "intensity": s.intensity} for s in segs]} if video else None,
        "seconds": {"sources": round(t_src, 2), "images": round(t_img, 2),
                    "video": round(t_vid, 2), "total": round(time.monotonic() - t0, 2)},
    }
    atomic_write_json(out / CONFIG, meta)
    echo(f"synth: {len(sources)} identities, {len(rows)} images in {t_img:.1f} s"
         + (f", schedule video {int(round(fps * seconds))} frames" if video else "")
         + f" -> {out}")
    return meta
