"""Landmark back-ends behind one small interface, loadable by name.

Why an interface: MediaPipe Face Mesh is the default because it is open, fast on a CPU and gives
478 points in 3D, but the rest of registration only needs "an RGB frame in, a list of (478, 3)
arrays in source pixels out". Another detector (a newer MediaPipe task, a GPU model) can be
plugged in with :func:`register_backend` without touching pose, warp or patches.

Output convention of every back-end: ``x``, ``y`` in source pixels (origin top-left, y down) and
``z`` a relative depth at the scale of ``x`` (pixels), positive away from the camera.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from pattnet.errors import PattnetError

N_LANDMARKS = 478


@dataclass
class Detection:
    """One face found by a back-end: (478, 3) points in source pixels and a score in [0, 1]."""

    points: np.ndarray
    score: float = 1.0


class LandmarkBackend(Protocol):
    """What registration needs from a landmark detector."""

    name: str

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """Faces in an RGB uint8 HxWx3 frame, in the back-end's own order."""
        ...

    def close(self) -> None: ...


_BACKENDS: dict[str, Callable[..., LandmarkBackend]] = {}


def register_backend(name: str, factory: Callable[..., LandmarkBackend]) -> None:
    """Make a back-end loadable by name (``factory(static_image_mode=..., max_faces=..., ...)``)."""
    _BACKENDS[name] = factory


def list_backends() -> list[str]:
    return sorted(_BACKENDS)


def load_backend(name: str, **kwargs: object) -> LandmarkBackend:
    """Instantiate the back-end called ``name`` (``"mediapipe"`` by default in the config)."""
    if name not in _BACKENDS:
        raise PattnetError(
            f"unknown landmark back-end {name!r}; available: {', '.join(list_backends())}"
        )
    return _BACKENDS[name](**kwargs)


class MediaPipeBackend:
    """MediaPipe Face Mesh (mediapipe==0.10.21 legacy solution), 478 points with iris refinement.

    ``static_image_mode=False`` switches MediaPipe to tracking mode (landmarks of one frame seed
    the next, face detection only when tracking is lost): faster and steadier for video.

    MediaPipe's legacy API reports no per-face score, so ``Detection.score`` is 1.0 here;
    registration derives its confidence from the rigid-fit residual instead.
    """

    name = "mediapipe"

    def __init__(
        self,
        static_image_mode: bool = True,
        max_faces: int = 1,
        min_detection_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
    ) -> None:
        os.environ.setdefault("GLOG_minloglevel", "2")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        try:
            from mediapipe.python.solutions import face_mesh
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise PattnetError(
                "MediaPipe is not installed; install it with "
                "'pip install --no-deps mediapipe==0.10.21' (see docs/registration.md)"
            ) from exc
        self._mesh = face_mesh.FaceMesh(
            static_image_mode=static_image_mode,
            max_num_faces=int(max_faces),
            refine_landmarks=True,
            min_detection_confidence=float(min_detection_confidence),
            min_tracking_confidence=float(min_tracking_confidence),
        )

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise PattnetError("landmark detection needs an RGB uint8 HxWx3 image")
        h, w = rgb.shape[:2]
        res = self._mesh.process(np.ascontiguousarray(rgb))
        out: list[Detection] = []
        for face in res.multi_face_landmarks or []:
            pts = np.array([(p.x, p.y, p.z) for p in face.landmark], dtype=np.float32)
            if len(pts) != N_LANDMARKS:
                continue
            pts[:, 0] *= w
            pts[:, 1] *= h
            pts[:, 2] *= w  # MediaPipe's z is at the scale of the normalised x
            out.append(Detection(points=pts, score=1.0))
        return out

    def close(self) -> None:
        self._mesh.close()


register_backend("mediapipe", MediaPipeBackend)
