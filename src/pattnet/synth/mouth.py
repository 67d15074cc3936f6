"""The mouth at rest: how open a face's mouth is, and the same face with its lips together.

Why: the real faces synth starts from are photos, and many have the mouth open (a smile showing
teeth, speech); the person's neutral face, against which lips parting (AU25) and the jaw drop
(AU26) are labelled and the population's reference is taken, has the lips together.
"""

from __future__ import annotations

import numpy as np

from pattnet.synth.deformations import _INNER_LIP_PAIRS, INNER_LIPS, _folds, _front_triangles
from pattnet.synth.face_frame import N_MESH, smoothstep

__all__ = ["MOUTH_GAP", "close_mouth", "mouth_gap"]

#: The inner lip midpoints (upper, lower): the mouth's opening is the second's y minus the first's.
MOUTH_GAP = (13, 14)


def mouth_gap(face: np.ndarray) -> float:
    """The opening between the inner lips at the midline, in the face frame (IOD; 0 = closed)."""
    up, lo = MOUTH_GAP
    return float(face[lo, 1] - face[up, 1])


def close_mouth(face: np.ndarray, gap: float = 0.01, reach: float = 0.3) -> np.ndarray:
    """``face`` with its lips brought together to ``gap``: the lower lip moved up under the
    upper one, across the mouth by as much as each part of it is open, the skin below it less
    and less to ``reach`` IOD under the lower lip; the upper lip stays. Scaled down where the
    mesh would fold."""
    face = np.asarray(face, dtype=np.float64)
    up = np.array([u for u, _ in _INNER_LIP_PAIRS])
    lo = np.array([v for _, v in _INNER_LIP_PAIRS])
    opening = np.clip(face[lo, 1] - face[up, 1] - gap, 0.0, None)
    if not (opening > 0).any():
        return face.copy()
    corners = face[[78, 308], 0]
    xs = np.r_[corners[0], face[lo, 0], corners[1]]
    order = np.argsort(xs)
    u = face[:, 0]
    lift = np.interp(u, xs[order], np.r_[0.0, opening, 0.0][order], left=0.0, right=0.0)
    upper = np.interp(u, xs[order], np.r_[face[78, 1], face[up, 1], face[308, 1]][order])
    outer_lower = face[17, 1]
    v = face[:, 1]
    fall = 1.0 - smoothstep(v, outer_lower, outer_lower + reach)
    below = v > upper + 0.01
    below[up] = below[[78, 308]] = False
    d = np.zeros_like(face)
    d[:, 1] = np.where(below, lift * fall, 0.0)
    d[N_MESH:] = 0.0
    tri, _ = _front_triangles()
    # the triangles that span the opening itself (all three corners on the inner lips) close
    # with it by design; every other one must keep its area
    inner = np.isin(tri, INNER_LIPS).all(axis=1)
    for factor in (1.0, 0.75, 0.5, 0.3, 0.15, 0.0):
        out = face - factor * d
        if factor == 0.0 or not _folds(face, out, tri[~inner]):
            return out
    return face.copy()
