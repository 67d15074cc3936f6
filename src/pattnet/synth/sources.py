"""Source faces: registered real photos and video frames, one identity per person, so that no
person is invented and the folds can stay subject-independent (a mirrored face is the same person).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from pattnet.errors import PattnetError
from pattnet.registration.template import IRIS_LEFT, IRIS_RIGHT, load_template
from pattnet.registration.warp import triangle_areas
from pattnet.synth.face_frame import FaceFrame

if TYPE_CHECKING:
    from pattnet.registration import RegisteredFace, Registrar

log = logging.getLogger(__name__)

__all__ = ["SourceFace", "bundled_faces", "load_sources"]


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


def _source_face(identity: str, origin: str, index: int, rgb: np.ndarray, face: RegisteredFace,
                 target_iod: float) -> SourceFace:
    """Crop (and shrink) the photo around a registered face so later warps stay cheap.

    Why shrink: the output face has ``target_iod`` px between the irises; warping a 12-MP photo
    per image would cost far more than it adds. Kept at up to 2x the output resolution.
    """
    canon = face.landmarks_3d
    if canon is None:  # only faces registered with success are passed here
        raise PattnetError(f"{identity}: a face without its canonical mesh cannot be deformed")
    pts = np.asarray(face.source_landmarks, dtype=np.float64)
    ff = FaceFrame.fit(pts, canon)
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
    ff = FaceFrame.fit(pts, canon)
    tri = load_template().triangles.astype(np.int64)
    # a triangle hidden in the source (far side of a turned head) keeps the photo as it is
    a_src = triangle_areas(pts, tri)
    a_can = triangle_areas(ff.to_face(pts), tri)
    visible = ~(a_can > 0) | (a_src > 0.1 * a_can * ff.source_iod**2)
    return SourceFace(identity, origin, index, np.ascontiguousarray(crop), pts, ff, visible)


def _neutrality(face: RegisteredFace) -> float:
    """Smaller = more neutral mouth (closed, narrow): video frames to deform are picked among the
    most neutral ones, because a source expression is constant per image and unlabelled."""
    lm = face.landmarks
    iod = float(np.linalg.norm(lm[IRIS_LEFT] - lm[IRIS_RIGHT]))
    opening = float(np.linalg.norm(lm[14] - lm[13])) / iod
    width = float(np.linalg.norm(lm[291] - lm[61])) / iod
    return opening + 0.5 * width


def _video_candidates(path: Path, n_frames: int, registrar: Registrar
                      ) -> list[tuple[int, np.ndarray, RegisteredFace]]:
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
    import matplotlib.cbook as cbook
    import matplotlib.image as mimage
    from skimage import data

    from pattnet.io import to_rgb_uint8

    grace = mimage.imread(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    out = [("astronaut", to_rgb_uint8(data.astronaut())), ("grace_hopper", to_rgb_uint8(grace))]
    lfw = data.lfw_subset()[:100]  # the first 100 images of the subset are faces
    for i, g in enumerate(lfw[: max(0, n_lfw)]):
        img = cv2.resize(np.clip(g * 255.0, 0, 255).astype(np.uint8), (200, 200),
                         interpolation=cv2.INTER_CUBIC)
        img = cv2.copyMakeBorder(img, 28, 28, 28, 28, cv2.BORDER_REPLICATE)
        out.append((f"lfw{i:03d}", cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)))
    return out


def _source_items(faces: Sequence[str | Path] | None,
                  bundled_lfw: int) -> list[tuple[str, str, Path | np.ndarray]]:
    """(identity name, origin, file or decoded image) for each input, bundled faces first."""
    from pattnet.io import expand_inputs

    items: list[tuple[str, str, Path | np.ndarray]] = []
    paths = [str(p) for p in (faces or ["bundled"])]
    files = [p for p in paths if p != "bundled"]
    if len(files) < len(paths):
        items += [(name, f"bundled:{name}", rgb) for name, rgb in bundled_faces(bundled_lfw)]
    for p in expand_inputs(files) if files else []:
        items.append((_sanitize(p.stem), str(p), p))
    return items


class _Identities:
    """Identity -> its source faces, collected input by input; inputs without a usable face go
    to ``skipped`` with the reason, so the caller can say why too few identities remain."""

    def __init__(self, skipped: list[str], *, frames_per_video: int, target_iod: float,
                 min_iod: float) -> None:
        self.out: dict[str, list[SourceFace]] = {}
        self.skipped = skipped
        self.frames_per_video = frames_per_video
        self.target_iod = target_iod
        self.min_iod = min_iod

    def add(self, name: str, sf_list: list[SourceFace]) -> None:
        """Two inputs with the same stem are two people: the second gets ``-2``, and so on."""
        base, k = name, 2
        while name in self.out:
            name, k = f"{base}-{k}", k + 1
        for sf in sf_list:
            sf.identity = name
        self.out[name] = sf_list

    def add_video(self, name: str, origin: str, path: Path, registrar: Registrar) -> None:
        cands = _video_candidates(path, self.frames_per_video, registrar)
        sfs = [_source_face(name, origin, i, rgb, f, self.target_iod) for i, rgb, f in cands]
        sfs = [s for s in sfs if s.frame.source_iod >= self.min_iod]
        if not sfs:
            self.skipped.append(f"{origin}: no face found in the video")
            return
        self.add(name, sfs)

    def add_photo(self, name: str, origin: str, rgb: np.ndarray, found: list) -> None:
        if not found:
            self.skipped.append(f"{origin}: no face found")
            return
        sfs = [_source_face(name, origin, 0, rgb, f, self.target_iod) for f in found]
        small = [s for s in sfs if s.frame.source_iod < self.min_iod]
        sfs = [s for s in sfs if s.frame.source_iod >= self.min_iod]
        if small:
            self.skipped.append(f"{origin}: {len(small)} face(s) too small (under "
                                f"{self.min_iod:.0f} px between the eyes)")
        for k, sf in enumerate(sfs):
            self.add(name if len(sfs) == 1 else f"{name}-f{k}", [sf])


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
    from pattnet.io import is_video, read_image
    from pattnet.registration import Registrar, RegistrationConfig

    skipped = skipped if skipped is not None else []
    items = _source_items(faces, bundled_lfw)
    ids = _Identities(skipped, frames_per_video=frames_per_video, target_iod=target_iod,
                      min_iod=min_iod)
    with Registrar(RegistrationConfig(max_faces=max_faces), static_image_mode=True) as reg, \
            Registrar(RegistrationConfig(max_faces=1), static_image_mode=True) as reg1:
        for name, origin, src in items:
            try:
                if isinstance(src, Path) and is_video(src):
                    ids.add_video(name, origin, src, reg1)
                    continue
                rgb = read_image(src) if isinstance(src, Path) else src
                found = [f for f in reg.register(rgb) if f.success]
            except PattnetError as exc:
                skipped.append(str(exc))
                continue
            ids.add_photo(name, origin, rgb, found)
    return ids.out
