"""The face frame: where every deformation is defined, so one AU moves the same anatomy in every face.

The canonical mesh is expressed with its origin between the iris centres, in units of the face's
interocular distance (IOD), x to the image's right, y down, z away: pose and face size are gone,
so a displacement written once applies to any photo, and a turned head gets its AU turned with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from pattnet.errors import PattnetError
from pattnet.registration.pose import similarity_fit
from pattnet.registration.template import IRIS_LEFT, IRIS_RIGHT, load_template
from pattnet.registration.warp import mesh_boundary

__all__ = ["N_MESH", "FaceFrame", "boundary_distance", "smoothstep", "template_face"]

N_MESH = 468  # mesh points; the 10 iris points are not part of the triangulation


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
def boundary_distance() -> np.ndarray:
    """Distance (IOD) of each landmark to the mesh outline: pulls fade to zero at the outline,
    so the warped face meets the untouched photo without a seam."""
    tf = template_face()
    b = mesh_boundary(load_template().triangles)
    d = np.linalg.norm(tf[:, None, :2] - tf[None, b, :2], axis=2).min(axis=1)
    d.setflags(write=False)
    return d


def smoothstep(x: np.ndarray, a: float, b: float) -> np.ndarray:
    """0 at ``a``, 1 at ``b`` (either order), C1 in between."""
    s = np.clip((x - a) / (b - a), 0.0, 1.0)
    return s * s * (3 - 2 * s)
