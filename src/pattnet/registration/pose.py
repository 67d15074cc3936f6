"""Rigid pose: similarity fits between 3D point sets and Euler angles.

Why a similarity (Umeyama) fit and not PnP: MediaPipe's landmarks are already a weak-perspective
3D reconstruction in pixel units (x, y in pixels, z relative depth at the scale of x), so the
head pose is the rotation of the least-squares similarity that maps them onto the canonical
template. What the fit cannot explain is the face's non-rigid shape (the expression), which
frontalisation keeps.

Coordinate convention (source pixels and canonical frame alike): x to the image's right, y down,
z away from the camera (MediaPipe's sign), a right-handed frame.

Angle convention (degrees), for the head's rotation relative to the frontal template,
``R_head = Rz(roll) @ Ry(-yaw) @ Rx(-pitch)``:

* pitch > 0: the head tilts up (chin raised), pitch < 0: looking down;
* yaw > 0: the face turns toward the image's right (the subject's left);
* roll > 0: the head tilts clockwise in the image (top of the head moves to the image's right).
"""

from __future__ import annotations

import math

import numpy as np


def similarity_fit(
    src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None
) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares similarity ``dst ~ s * R @ src + t`` (Umeyama 1991), in any dimension.

    Returns ``(s, R, t)`` with ``R`` a proper rotation (det +1): a reflection would turn a face
    inside out, which is never the right answer for a head.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if weights is None:
        w = np.full(len(src), 1.0 / len(src))
    else:
        w = np.asarray(weights, dtype=np.float64)
        w = w / w.sum()
    mu_s = w @ src
    mu_d = w @ dst
    xs = src - mu_s
    xd = dst - mu_d
    cov = (xd * w[:, None]).T @ xs
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(len(sig))
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1.0
    r = (u * d) @ vt
    var_s = float(w @ (xs**2).sum(axis=1))
    s = float((sig * d).sum() / var_s) if var_s > 0 else 1.0
    t = mu_d - s * r @ mu_s
    return s, r, t


def apply_similarity(pts: np.ndarray, s: float, r: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``s * R @ p + t`` for every row ``p`` of ``pts``."""
    return (s * (np.asarray(pts, dtype=np.float64) @ r.T)) + t


def rotation_to_euler(r_head: np.ndarray) -> tuple[float, float, float]:
    """(pitch, yaw, roll) in degrees of a head rotation, in the convention of this module."""
    r = np.asarray(r_head, dtype=np.float64)
    b = -math.asin(max(-1.0, min(1.0, r[2, 0])))
    a = math.atan2(r[2, 1], r[2, 2])
    c = math.atan2(r[1, 0], r[0, 0])
    return -math.degrees(a), -math.degrees(b), math.degrees(c)


def euler_to_rotation(pitch: float, yaw: float, roll: float) -> np.ndarray:
    """Head rotation matrix from (pitch, yaw, roll) in degrees; inverse of rotation_to_euler."""
    a, b, c = (math.radians(-pitch), math.radians(-yaw), math.radians(roll))
    rx = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    ry = np.array([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]])
    rz = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
    return rz @ ry @ rx
