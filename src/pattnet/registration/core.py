"""Registration: landmarks -> rigid pose -> frontalised mesh -> dense warp into the 512x512 frame.

Per face:

1. the back-end gives 478 points in source pixels (x, y) with relative depth z;
2. a similarity fit (Umeyama) of the rigid points onto the template gives scale, rotation and
   translation; the rotation is the head pose (pitch, yaw, roll);
3. the whole observed mesh goes through that similarity: the pose is removed, the non-rigid
   shape (the expression) stays; dropping z projects it into the canonical frame, which gives
   the canonical landmarks;
4. one dense piecewise-affine warp (:mod:`pattnet.registration.warp`) carries the image from the
   source mesh to the canonical mesh. Triangles that face away from the camera in the source are
   masked black (they have no pixels to show), and the visible fraction of the face area is
   reported.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from pattnet.config import validate
from pattnet.errors import PattnetError
from pattnet.io import Frame
from pattnet.registration.faces import RegisteredFace, RegisteredFrame, RegistrationConfig
from pattnet.registration.landmarks import LandmarkBackend, load_backend
from pattnet.registration.pose import apply_similarity, rotation_to_euler, similarity_fit
from pattnet.registration.template import (
    IRIS_LEFT,
    IRIS_RIGHT,
    NOSE_TIP,
    Template,
    load_template,
)
from pattnet.registration.tracking import FaceTracker, ids_left_to_right
from pattnet.registration.warp import piecewise_affine_warp, triangle_areas


class Registrar:
    """Holds the landmark back-end and the template, registers frame after frame.

    Create one per stream and reuse it: starting MediaPipe costs far more than one frame.
    ``static_image_mode`` True treats every frame independently (photos, shuffled dataset
    frames); False tracks the face from frame to frame (video: faster, steadier) and keeps
    ``face_id`` stable by box overlap (:class:`~pattnet.registration.tracking.FaceTracker`).
    """

    def __init__(
        self,
        config: RegistrationConfig | None = None,
        *,
        static_image_mode: bool = True,
        template: Template | None = None,
        backend: LandmarkBackend | None = None,
    ) -> None:
        self.config = validate(config or RegistrationConfig())
        self.template = template or load_template()
        self.static_image_mode = static_image_mode
        self._backend = backend
        self._tracker = FaceTracker(self.config.track_iou)
        f = self.config.output_size / self.template.size
        tpl = self.template.points.astype(np.float64)
        self._tpl = tpl * f  # template scaled to the output size
        # pose-fit points and weights: the template's rigid points, plus the iris centres, eye
        # corners and nose tip weighted up so that eyes and nose land where the patch boxes
        # expect them (identity differences otherwise move the irises by several pixels)
        extra = np.array([IRIS_RIGHT, IRIS_LEFT, 33, 133, 362, 263, NOSE_TIP])
        self._fit_idx = np.concatenate([self.template.rigid, extra])
        n = len(self.template.rigid)
        self._fit_w = np.concatenate([np.ones(n), [1.0 * n] * 2, [0.05 * n] * 4, [0.3 * n]])
        self._tpl_fit = self._tpl[self._fit_idx]
        self._tri = self.template.triangles.astype(np.int64)
        self._tri.setflags(write=False)  # lets the warp cache per-mesh data by identity
        self._iod = self.template.interocular * f
        self._tpl_area = np.abs(triangle_areas(self._tpl, self._tri))

    # -- life cycle -------------------------------------------------------------------------
    @property
    def backend(self) -> LandmarkBackend:
        if self._backend is None:
            c = self.config
            self._backend = load_backend(
                c.backend,
                static_image_mode=self.static_image_mode,
                max_faces=c.max_faces,
                min_detection_confidence=c.min_detection_confidence,
                min_tracking_confidence=c.min_tracking_confidence,
            )
        return self._backend

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
            self._backend = None

    def __enter__(self) -> Registrar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def reset_tracking(self) -> None:
        """Forget face ids (start of a new video with the same Registrar)."""
        self._tracker.reset()

    # -- registration -----------------------------------------------------------------------
    def detect(self, rgb: np.ndarray) -> list[np.ndarray]:
        """Source landmarks (478, 3) of every face, shrinking huge frames for the detector."""
        rgb = _check_rgb(rgb)
        h, w = rgb.shape[:2]
        side = max(h, w)
        limit = self.config.max_detect_side
        if limit and side > limit:
            f = limit / side
            small = cv2.resize(rgb, (max(1, round(w * f)), max(1, round(h * f))),
                               interpolation=cv2.INTER_AREA)
            dets = self.backend.detect(small)
            return [d.points / np.float32(f) for d in dets]
        return [d.points for d in self.backend.detect(rgb)]

    def register(self, rgb: np.ndarray) -> list[RegisteredFace]:
        """All faces (up to ``max_faces``) of one RGB uint8 frame, ordered by ``face_id``."""
        rgb = _check_rgb(rgb)
        return self._with_ids(self._register_all(rgb, self.detect(rgb)))

    def register_frame(self, rgb: np.ndarray, index: int = 0, timestamp: float = 0.0
                       ) -> RegisteredFrame:
        return RegisteredFrame(index, timestamp, self.register(rgb), (rgb.shape[0], rgb.shape[1]))

    def register_stream(self, frames: Iterable[Frame | np.ndarray], *, pipelined: bool = True
                        ) -> Iterator[RegisteredFrame]:
        """Register a sequence of frames in order, one :class:`RegisteredFrame` per input frame.

        Why pipelined: MediaPipe works on one core and the pose fit + warp on another, so the
        landmarks of frame i+1 are found on the calling thread while one worker thread warps
        frame i (both release the GIL for most of their time). The output is the same as
        :meth:`register_frame` frame after frame; at most two frames are in flight, so memory
        stays bounded. ``frames`` yields :class:`pattnet.io.Frame` objects (index and timestamp
        are kept) or bare RGB arrays (numbered from 0). An error from the source (a video broken
        part way) or a bad frame is raised after every earlier frame has been yielded.
        """
        if not pipelined:
            for n, fr in enumerate(frames):
                rgb, index, ts = _unpack(fr, n)
                yield self.register_frame(rgb, index, ts)
            return
        with ThreadPoolExecutor(1, thread_name_prefix="pattnet-warp") as pool:
            pending: tuple[int, float, tuple[int, int], Future] | None = None
            it = iter(frames)
            n = 0
            while True:
                try:
                    fr = next(it)
                    rgb, index, ts = _unpack(fr, n)
                    rgb = _check_rgb(rgb)
                    points = self.detect(rgb)
                except StopIteration:
                    break
                except Exception:
                    if pending is not None:
                        yield self._collect(*pending)
                    raise
                n += 1
                job = pool.submit(self._register_all, rgb, points)
                if pending is not None:
                    yield self._collect(*pending)
                pending = (index, ts, (rgb.shape[0], rgb.shape[1]), job)
            if pending is not None:
                yield self._collect(*pending)

    def _collect(self, index: int, timestamp: float, shape: tuple[int, int], job: Future
                 ) -> RegisteredFrame:
        # ids in frame order, on the caller's thread: they stay stable
        return RegisteredFrame(index, timestamp, self._with_ids(job.result()), shape)

    def _register_all(self, rgb: np.ndarray, points: list[np.ndarray]) -> list[RegisteredFace]:
        """Pose fit and warp of every face found in one frame (ids not yet assigned)."""
        return [self.register_points(rgb, pts) for pts in points]

    def register_points(self, rgb: np.ndarray, points: np.ndarray, face_id: int = 0
                        ) -> RegisteredFace:
        """Register one face whose 478 source landmarks are already known.

        Exposed so that callers with their own landmarks (or tests with synthetic ones) use the
        same pose, frontalisation and warp as the detector path.
        """
        pts = np.asarray(points, dtype=np.float64)
        if pts.shape != (self.template.points.shape[0], 3):
            raise PattnetError(f"expected (478, 3) landmarks, got {pts.shape}")
        x0, y0 = pts[:, 0].min(), pts[:, 1].min()
        x1, y1 = pts[:, 0].max(), pts[:, 1].max()
        bbox = (float(x0), float(y0), float(x1), float(y1))
        s, r, canon, confidence = self._fit_pose(pts)
        pitch, yaw, roll = rotation_to_euler(r.T)
        finite = bool(np.isfinite(canon).all()) and s > 0
        visible, visible_fraction = self._visibility(pts, canon, s)
        if finite:
            image = self._warp(rgb, pts, canon, s, bbox, visible)
        else:
            size = self.config.output_size
            image = np.zeros((size, size, 3), dtype=np.uint8)
        success = finite and confidence >= self.config.min_confidence
        return RegisteredFace(
            image=image,
            landmarks=canon[:, :2].astype(np.float32),
            pitch=pitch,
            yaw=yaw,
            roll=roll,
            success=success,
            confidence=confidence,
            visible_fraction=visible_fraction,
            face_id=face_id,
            bbox=bbox,
            source_landmarks=pts.astype(np.float32),
            landmarks_3d=canon.astype(np.float32),
            scale=float(s),
        )

    def canonical_mesh(self, points: np.ndarray) -> tuple[np.ndarray, float]:
        """(canonical mesh (478, 3), fit confidence) of 478 source landmarks: the pose fit of
        :meth:`register_points` without the warp, for work on meshes alone (``pattnet synth
        --meshes`` puts its deformed meshes through the same fit a real face goes through, so
        an AU that moves fit points shifts the frame as it would at detection)."""
        pts = np.asarray(points, dtype=np.float64)
        if pts.shape != (self.template.points.shape[0], 3):
            raise PattnetError(f"expected (478, 3) landmarks, got {pts.shape}")
        _, _, canon, confidence = self._fit_pose(pts)
        return canon, confidence

    def _fit_pose(self, pts: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, float]:
        """Scale, rotation, the frontalised mesh and the fit's confidence in [0, 1]."""
        idx = self._fit_idx
        s, r, t = similarity_fit(pts[idx], self._tpl_fit, self._fit_w)
        canon = apply_similarity(pts, s, r, t)
        resid = np.linalg.norm(canon[idx] - self._tpl_fit, axis=1)
        rms = float(np.sqrt((self._fit_w * resid**2).sum() / self._fit_w.sum())) / self._iod
        # a good fit leaves a residual of a few percent of the interocular distance (identity,
        # expression); a wrong mesh (not a face, half outside the frame) is far beyond 10 %
        confidence = float(math.exp(-((rms / 0.1) ** 2)))
        return s, r, canon, confidence

    def _visibility(self, pts: np.ndarray, canon: np.ndarray, s: float) -> tuple[np.ndarray, float]:
        """Triangles with pixels to show in the source, and the visible share of the face area.

        A triangle seen in the frontal (canonical) view whose source area, brought to canonical
        scale, is small or negative faces away from the camera in the source: it has no pixels
        to show and is masked. Triangles already folded away in the frontal view (under the
        nose tip) are covered by their neighbours there.
        """
        a_src = triangle_areas(pts, self._tri) * (s * s)
        a_dst = triangle_areas(canon, self._tri)
        front = a_dst > 0
        # slivers (edge-on in the frontal view too, e.g. under the nose) stay: masking them
        # would cut thin black lines through the face for no gain
        solid = a_dst > 0.25 * self._tpl_area
        visible = ~(front & solid) | (a_src > self.config.min_facing * a_dst)
        total = float(a_dst[front].sum())
        visible_fraction = float(a_dst[front & visible].sum() / total) if total > 0 else 0.0
        return visible, visible_fraction

    def _warp(self, rgb: np.ndarray, pts: np.ndarray, canon: np.ndarray, s: float,
              bbox: tuple[float, float, float, float], visible: np.ndarray) -> np.ndarray:
        """The face carried from the source mesh onto the canonical one, hidden triangles black."""
        size = self.config.output_size
        src_img, src_xy = _prescale(rgb, pts[:, :2], s, bbox)
        return piecewise_affine_warp(
            src_img, src_xy, canon[:, :2], self._tri, (size, size), tri_mask=visible,
            grid_step=self.config.grid_step,
        )

    def _with_ids(self, faces: list[RegisteredFace]) -> list[RegisteredFace]:
        """``faces`` with their ``face_id`` set, ordered by it."""
        boxes = [f.bbox for f in faces]
        ids = ids_left_to_right(boxes) if self.static_image_mode else self._tracker.assign(boxes)
        for f, i in zip(faces, ids, strict=True):
            f.face_id = i
        return sorted(faces, key=lambda f: f.face_id)


def _unpack(frame: Frame | np.ndarray, n: int) -> tuple[np.ndarray, int, float]:
    if isinstance(frame, np.ndarray):
        return frame, n, 0.0
    return frame.rgb, frame.index, frame.timestamp


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    a = np.asarray(rgb)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
        raise PattnetError(
            f"registration needs an RGB uint8 image of shape (H, W, 3), got {a.dtype} {a.shape}; "
            "use pattnet.io.read_image or pattnet.io.to_rgb_uint8"
        )
    if min(a.shape[:2]) < 8:
        raise PattnetError(f"image too small to hold a face: {a.shape[1]}x{a.shape[0]}")
    return a


def _prescale(rgb: np.ndarray, xy: np.ndarray, s: float, bbox: tuple[float, ...]
              ) -> tuple[np.ndarray, np.ndarray]:
    """Shrink the face region first when the warp would shrink it more than 2x.

    Why: ``cv2.remap`` samples bilinearly without low-pass filtering, so a face 4x larger than
    the canonical one (a 12000x8000 photo) would alias. Cropping to the face keeps it cheap.
    """
    if s >= 0.5:
        return rgb, xy
    h, w = rgb.shape[:2]
    m = 0.1 * max(bbox[2] - bbox[0], bbox[3] - bbox[1]) + 2
    cx0 = int(max(0, math.floor(bbox[0] - m)))
    cy0 = int(max(0, math.floor(bbox[1] - m)))
    cx1 = int(min(w, math.ceil(bbox[2] + m)))
    cy1 = int(min(h, math.ceil(bbox[3] + m)))
    if cx1 - cx0 < 2 or cy1 - cy0 < 2:
        return rgb, xy
    f = 2.0 * s
    crop = rgb[cy0:cy1, cx0:cx1]
    size = (max(1, round((cx1 - cx0) * f)), max(1, round((cy1 - cy0) * f)))
    small = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
    fx = size[0] / (cx1 - cx0)
    fy = size[1] / (cy1 - cy0)
    out = np.empty_like(xy)
    out[:, 0] = (xy[:, 0] - cx0 + 0.5) * fx - 0.5
    out[:, 1] = (xy[:, 1] - cy0 + 0.5) * fy - 0.5
    return small, out


def _as_rgb(image: np.ndarray | str | Path) -> np.ndarray:
    from pattnet.io import read_image, to_rgb_uint8

    if isinstance(image, (str, Path)):
        return read_image(image)
    return to_rgb_uint8(image)


def register_image(
    image: np.ndarray | str | Path,
    *,
    max_faces: int = 1,
    config: RegistrationConfig | None = None,
    registrar: Registrar | None = None,
) -> list[RegisteredFace]:
    """Register the faces of one photo (array or path); an empty list when there is none.

    For many photos pass a ``registrar`` (``Registrar(static_image_mode=True)``) to avoid
    starting MediaPipe for each. Arrays that are grayscale, RGBA or 16-bit are converted; arrays
    are taken as RGB (convert OpenCV's BGR first).
    """
    rgb = _as_rgb(image)
    if registrar is not None:
        return registrar.register(rgb)
    cfg = config or RegistrationConfig(max_faces=max_faces)
    if config is not None and max_faces != 1:
        cfg = RegistrationConfig(**{**cfg.__dict__, "max_faces": max_faces})
    with Registrar(cfg, static_image_mode=True) as reg:
        return reg.register(rgb)


def register_video(
    path: str | Path,
    max_faces: int = 1,
    *,
    config: RegistrationConfig | None = None,
    registrar: Registrar | None = None,
    max_side: int | None = None,
) -> Iterator[RegisteredFrame]:
    """Stream a video: one :class:`RegisteredFrame` per decoded frame, in order, memory bounded.

    Frames without a face come with ``faces == []`` (never skipped). A video damaged part way
    yields the frames before the damage, then raises :class:`pattnet.io.DecodeError` whose
    ``frames_read`` says where it stopped. An image path yields one frame.
    """
    from pattnet.io import iter_frames
    from pattnet.io.stream import read_ahead

    cfg = config or RegistrationConfig(max_faces=max_faces)
    if config is not None and max_faces != 1:
        cfg = RegistrationConfig(**{**cfg.__dict__, "max_faces": max_faces})
    own = registrar is None
    reg = registrar or Registrar(cfg, static_image_mode=False)
    reg.reset_tracking()
    try:
        yield from reg.register_stream(read_ahead(iter_frames(path, max_side=max_side)))
    finally:
        if own:
            reg.close()
