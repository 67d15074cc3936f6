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
from typing import Any, Protocol

import numpy as np

from pattnet.errors import PattnetError
from pattnet.registration.tracking import box_iou

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

    Two modes, because MediaPipe's own face detector inside Face Mesh is the short-range model
    (faces within about 2 m, filling a good part of the frame):

    * ``static_image_mode=True`` (photos, dataset frames): faces are found with MediaPipe's
      full-range detector, and the mesh is computed on a square crop around each face. This finds
      small faces in group photos that Face Mesh alone misses. When the detector finds nothing,
      Face Mesh is tried on the whole frame.
    * ``static_image_mode=False`` (video): Face Mesh's tracking mode; landmarks of one frame seed
      the next and detection only runs when tracking is lost.

    ``Detection.score`` is the full-range detector's score in static mode; tracking mode has no
    per-face score (1.0) and registration derives its confidence from the rigid-fit residual.
    """

    name = "mediapipe"
    crop_scale = 2.2  # crop side / detector box side
    crop_max = 384  # crops are shrunk to at most this side before Face Mesh

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
            from mediapipe.python.solutions import face_detection, face_mesh
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise PattnetError(
                "MediaPipe is not installed; install it with "
                "'pip install --no-deps mediapipe==0.10.21' (see docs/registration.md)"
            ) from exc
        self.static = bool(static_image_mode)
        self.max_faces = int(max_faces)
        self.min_conf = float(min_detection_confidence)
        self._mesh = face_mesh.FaceMesh(
            static_image_mode=static_image_mode,
            max_num_faces=int(max_faces),
            refine_landmarks=True,
            min_detection_confidence=float(min_detection_confidence),
            min_tracking_confidence=float(min_tracking_confidence),
        )
        self._det = None
        self._crop_mesh = None
        if self.static:
            self._det = face_detection.FaceDetection(
                model_selection=1, min_detection_confidence=self.min_conf
            )
            self._crop_mesh = face_mesh.FaceMesh(
                static_image_mode=True, max_num_faces=1, refine_landmarks=True,
                min_detection_confidence=self.min_conf,
            )

    @staticmethod
    def _points(face: Any, w: int, h: int) -> np.ndarray | None:
        pts = _parse_landmarks(face)
        if pts is None:
            pts = np.array([(p.x, p.y, p.z) for p in face.landmark], dtype=np.float32)
        if len(pts) != N_LANDMARKS:
            return None
        pts[:, 0] *= w
        pts[:, 1] *= h
        pts[:, 2] *= w  # MediaPipe's z is at the scale of the normalised x
        return pts

    def _mesh_whole(self, rgb: np.ndarray) -> list[Detection]:
        h, w = rgb.shape[:2]
        res = self._mesh.process(rgb)
        out = []
        for face in res.multi_face_landmarks or []:
            pts = self._points(face, w, h)
            if pts is not None:
                out.append(Detection(points=pts, score=1.0))
        return out

    def _mesh_crops(self, rgb: np.ndarray) -> list[Detection] | None:
        import cv2

        det, crop_mesh = self._det, self._crop_mesh
        if det is None or crop_mesh is None:  # made only for still images
            return None
        h, w = rgb.shape[:2]
        res = det.process(rgb)
        dets = sorted(res.detections or [], key=lambda d: -d.score[0])
        if not dets:
            return None
        out: list[Detection] = []
        boxes: list[tuple[float, float, float, float]] = []
        for d in dets:
            if len(out) >= self.max_faces:
                break
            bb = d.location_data.relative_bounding_box
            cx = (bb.xmin + bb.width / 2) * w
            cy = (bb.ymin + bb.height / 2) * h
            side = self.crop_scale * max(bb.width * w, bb.height * h)
            if side < 8:
                continue
            x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
            n = int(round(side))
            crop: np.ndarray = np.zeros((n, n, 3), dtype=np.uint8)
            sx0, sy0 = max(0, x0), max(0, y0)
            sx1, sy1 = min(w, x0 + n), min(h, y0 + n)
            if sx1 <= sx0 or sy1 <= sy0:
                continue
            crop[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = rgb[sy0:sy1, sx0:sx1]
            f = 1.0
            if n > self.crop_max:
                f = self.crop_max / n
                crop = cv2.resize(crop, (self.crop_max, self.crop_max),
                                  interpolation=cv2.INTER_AREA)
            r = crop_mesh.process(crop)
            if not r.multi_face_landmarks:
                continue
            pts = self._points(r.multi_face_landmarks[0], crop.shape[1], crop.shape[0])
            if pts is None:
                continue
            pts[:, :2] = (pts[:, :2] + 0.5) / f - 0.5 + np.array([x0, y0], dtype=np.float32)
            pts[:, 2] /= f
            box = (float(pts[:, 0].min()), float(pts[:, 1].min()),
                   float(pts[:, 0].max()), float(pts[:, 1].max()))
            if any(box_iou(box, b) > 0.5 for b in boxes):
                continue  # two detector boxes on one face
            boxes.append(box)
            out.append(Detection(points=pts, score=float(d.score[0])))
        return out

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise PattnetError("landmark detection needs an RGB uint8 HxWx3 image")
        rgb = np.ascontiguousarray(rgb)
        if self.static:
            found = self._mesh_crops(rgb)
            if found:
                return found
        return self._mesh_whole(rgb)

    def close(self) -> None:
        for m in (self._mesh, self._det, self._crop_mesh):
            if m is not None:
                m.close()


_WIRE = np.array([0x0A, 0x0F, 0x0D, 0x15, 0x1D], dtype=np.uint8)


def _parse_landmarks(face: Any) -> np.ndarray | None:
    """(478, 3) float32 straight from the protobuf wire bytes, or None to use the slow path.

    Why: reading the landmarks attribute by attribute costs as much as the whole pose fit.
    Each landmark serialises as 17 bytes (``0a 0f``, then ``0d`` x, ``15`` y, ``1d`` z as
    little-endian float32) when x, y and z are set and nothing else is; anything else (a zero
    coordinate is omitted by protobuf, a visibility field) changes the length or the tags and
    falls back.
    """
    buf = np.frombuffer(face.SerializeToString(), dtype=np.uint8)
    if buf.size != N_LANDMARKS * 17:
        return None
    rec = buf.reshape(N_LANDMARKS, 17)
    if not (rec[:, [0, 1, 2, 7, 12]] == _WIRE).all():
        return None
    cols = np.concatenate([rec[:, 3:7], rec[:, 8:12], rec[:, 13:17]], axis=1)
    return np.ascontiguousarray(cols).view("<f4").reshape(N_LANDMARKS, 3).astype(np.float32)


register_backend("mediapipe", MediaPipeBackend)
