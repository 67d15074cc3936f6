"""The FACS table: each AU as a mesh displacement confined to its own region and linear in intensity.

Why a mesh displacement: with no licensed AU dataset at hand, pattnet still needs images whose
ground truth is known exactly. Displacing the face mesh the way FACS describes the AU's
appearance change, then warping the photo from the old mesh to the new one, applies the AU to a
real face of a real person. How a face is deformed (see docs/synth.md for the table per AU):

1. the face is registered; the similarity ``canonical = s R p + t`` that registration found
   maps the source landmarks ``p`` into the canonical frame, where pose is removed;
2. the canonical mesh is expressed in the :class:`~pattnet.synth.face_frame.FaceFrame`;
3. each AU is a registered :class:`AUDeformation`: smooth, compactly supported "pulls" anchored
   on the template's landmarks (the same landmarks in every face), gated by the AU's own
   region, so landmarks outside the region do not move at all; the displacement is linear in
   the intensity;
4. the displaced mesh goes back through the inverse similarity (re-rotate, re-scale, drop z),
   so a turned head gets its AU turned with it, and the photo is warped inside the face only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache

import numpy as np

from pattnet.errors import PattnetError
from pattnet.registration.template import load_template
from pattnet.registration.warp import triangle_areas
from pattnet.synth.face_frame import N_MESH, boundary_distance, smoothstep, template_face

__all__ = [
    "DEFORMATIONS",
    "INNER_LIPS",
    "NUISANCE",
    "REGIONS",
    "AUDeformation",
    "Furrow",
    "Pull",
    "Region",
    "deform_mesh",
    "region_indices",
]


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
        w = smoothstep(v, v0, v1) * smoothstep(v, v3, v2)
        w = w * smoothstep(u, u0, u1) * smoothstep(u, u3, u2)
        if self.outline > 0:
            w = w * smoothstep(boundary_distance(), 0.0, self.outline)
        w[N_MESH:] = 0.0
        return w


REGIONS: dict[str, Region] = {
    # forehead, brows and the upper-lid skin below them (eye line at v = 0)
    "brows": Region("brows", v=((-9.0, -8.0), (-0.12, 0.0))),
    # lids, eye corners and the infraorbital cheek, not the nose bridge
    "eyes": Region("eyes", v=((-0.16, -0.06), (0.45, 0.6)), u_abs=((0.12, 0.22), (8.0, 9.0))),
    # lips, mouth corners, nasolabial area and chin, below the nose tip
    "mouth": Region("mouth", v=((0.62, 0.75), (8.0, 9.0))),
    # the mandible: the lower lip, the chin and the jaw line, which a dropped jaw takes down
    # with it (the outline too: the face only grows downward, so the warp leaves no seam)
    "jaw": Region("jaw", v=((1.05, 1.2), (8.0, 9.0)), outline=0.0),
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
#: The mouth opening's outline: the inner upper lip left to right, then the inner lower lip
#: back, between the corners 78 and 308.
INNER_LIPS: tuple[int, ...] = (78, *(u for u, _ in _INNER_LIP_PAIRS), 308,
                               *(lo for _, lo in reversed(_INNER_LIP_PAIRS)))


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
        # Not one of the AUs synth labels (:data:`~pattnet.synth.labels.AUS`): a nuisance motion,
        # the open mouth of talking and surprise, so that a model learns that a dropped jaw is
        # not a lower-face AU. The opening is drawn dark (``shade_mouth``).
        # The upper lip stays with the skull: only the lower lip, the chin and (half as far)
        # the lip corners go down with the mandible.
        AUDeformation(26, "jaw drop", "mandible lowered, lips parted, chin and lower lip down, "
                      "the lip corners drawn down with the jaw, the upper lip in place", "jaw",
                      (Pull((0.0, 1.35), (0.40, 0.16), (0.0, 0.15, 0.0), mirror=False),
                       Pull((0.0, 1.85), (1.3, 0.70), (0.0, 0.20, 0.0), mirror=False),
                       Pull((-0.33, 1.23), (0.22, 0.22), (0.0, 0.06, 0.0)))),
        # Mouth movements of speech and of the mouth at rest. The image synth applies only the
        # jaw drop (unlabelled, NUISANCE); the mesh synth (pattnet.synth.meshes) labels the lips
        # parting (25) and the jaw drop (26) and applies pucker and stretch unlabelled, so that
        # the lower-face AUs learn that speech is none of them.
        AUDeformation(25, "lips part", "lips parted, the lower lip drawn down a little, the jaw "
                      "not lowered (the chin stays)", "mouth",
                      (Pull((0.0, 1.33), (0.36, 0.20), (0.0, 0.09, 0.0), mirror=False),
                       Pull((0.0, 1.08), (0.30, 0.08), (0.0, _up(0.02), 0.0), mirror=False))),
        AUDeformation(18, "lip pucker", "lips pushed forward and drawn together toward the "
                      "midline, the mouth narrowed and rounded (as in 'oo')", "mouth",
                      (Pull((-0.33, 1.23), (0.24, 0.24), (0.08, 0.0, -0.03)),
                       Pull((0.0, 1.25), (0.42, 0.30), (0.0, 0.0, -0.04), mirror=False))),
        AUDeformation(20, "lip stretcher", "lip corners pulled sideways, the lips flattened and "
                      "the mouth widened", "mouth",
                      (Pull((-0.33, 1.23), (0.30, 0.26), (-0.07, 0.015, 0.0)),)),
    )
}
#: Deformations applied without a label: motions a face makes that are none of the labelled AUs.
NUISANCE: tuple[int, ...] = (26,)


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
    leaves less than :data:`~pattnet.synth.labels.MIN_VISIBLE`.
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
