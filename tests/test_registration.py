"""Registration into the canonical frame: template, pose, warp, real faces."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pattnet.registration import (
    Detection,
    FaceTracker,
    Registrar,
    RegistrationConfig,
    euler_to_rotation,
    load_template,
    piecewise_affine_warp,
    rotation_to_euler,
)
from pattnet.registration.template import (
    CHIN,
    IRIS_LEFT,
    IRIS_RIGHT,
    MOUTH_LEFT,
    MOUTH_RIGHT,
    NOSE_TIP,
)

ZFACE = {IRIS_RIGHT: (207, 234), IRIS_LEFT: (303, 232), NOSE_TIP: (258, 300),
         MOUTH_LEFT: (224, 351), MOUTH_RIGHT: (287, 352), CHIN: (256, 414)}
TOL = {IRIS_RIGHT: 3, IRIS_LEFT: 3, NOSE_TIP: 5, MOUTH_LEFT: 8, MOUTH_RIGHT: 8, CHIN: 8}


@pytest.fixture(scope="module")
def registrar():
    with Registrar(static_image_mode=True) as reg:
        yield reg


def _err(face, idx: int) -> float:
    return float(np.linalg.norm(face.landmarks[idx] - load_template().points[idx, :2]))


def test_template_in_zface_frame():
    t = load_template()
    assert t.points.shape == (478, 3) and t.points.dtype == np.float32
    for i, (x, y) in ZFACE.items():
        assert np.hypot(*(t.points[i, :2] - (x, y))) <= TOL[i], i
    assert 90 < t.interocular < 102
    assert len(t.rigid) > 50 and not set(t.rigid) & {MOUTH_LEFT, MOUTH_RIGHT, CHIN, 13, 14}
    assert (t.mirror[t.mirror] == np.arange(478)).all()
    assert t.triangles.max() < 468 and len(t.triangles) > 800


def test_pose_convention_round_trip():
    for p, y, r in [(10, 0, 0), (0, 25, 0), (0, 0, -15), (12, -20, 8)]:
        got = rotation_to_euler(euler_to_rotation(p, y, r))
        assert np.allclose(got, (p, y, r), atol=1e-6)
    # yaw > 0: the face turns toward the image's right, so the nose tip moves right
    t = load_template().points.astype(np.float64)
    c = t.mean(0)
    turned = (t - c) @ euler_to_rotation(0, 20, 0).T + c
    assert turned[NOSE_TIP, 0] > t[NOSE_TIP, 0] + 5
    up = (t - c) @ euler_to_rotation(20, 0, 0).T + c
    assert up[NOSE_TIP, 1] < t[NOSE_TIP, 1] - 5  # pitch > 0: chin up, nose tip moves up


def test_synthetic_pose_recovered(registrar):
    """Template points posed by a known rotation give that rotation back."""
    t = load_template().points.astype(np.float64)
    img = np.full((600, 600, 3), 128, np.uint8)
    for pose in [(10, -15, 5), (-8, 25, -12)]:
        pts = 0.8 * (t - t.mean(0)) @ euler_to_rotation(*pose).T + (300, 310, 0)
        face = registrar.register_points(img, pts)
        assert np.allclose((face.pitch, face.yaw, face.roll), pose, atol=0.5)
        assert np.abs(face.landmarks - t[:, :2]).max() < 0.5
        assert face.success and face.confidence > 0.95
    # a strongly turned head hides part of the face
    pts = (t - t.mean(0)) @ euler_to_rotation(0, 60, 0).T + (300, 310, 0)
    assert registrar.register_points(img, pts).visible_fraction < 0.97


def test_astronaut(registrar, astronaut):
    faces = registrar.register(astronaut)
    assert len(faces) == 1
    f = faces[0]
    assert f.success and f.image.shape == (512, 512, 3) and f.image.dtype == np.uint8
    assert f.landmarks.shape == (478, 2) and f.landmarks.dtype == np.float32
    assert f.source_landmarks.shape == (478, 3)
    assert _err(f, IRIS_RIGHT) < 3 and _err(f, IRIS_LEFT) < 3 and _err(f, NOSE_TIP) < 5
    assert f.image[:40].max() == 0 and f.image[:, :60].max() == 0  # outside the mesh is black
    assert f.image[300, 256].mean() > 60  # the face is there
    assert 0 < f.bbox[0] < f.bbox[2] <= 512 and f.visible_fraction > 0.95


@pytest.mark.parametrize(
    "name", ["single_face.jpg", "0-f1-su-ph.jpg", "0-f15-hao-ph.jpg", "15-f13-anc-ph.jpg"]
)
def test_real_faces(registrar, faces_dir, name):
    from pattnet.io import read_image

    faces = registrar.register(read_image(faces_dir / name))
    assert len(faces) == 1 and faces[0].success
    f = faces[0]
    assert _err(f, IRIS_RIGHT) < 3 and _err(f, IRIS_LEFT) < 3, name
    assert _err(f, NOSE_TIP) < 5, name


def test_grayscale_photo(registrar, faces_dir, astronaut):
    from pattnet.io import read_image

    img = read_image(faces_dir / "BWPictureHuman.jpg")  # a shouting soldier seen from below
    assert img.ndim == 3 and (img[..., 0] == img[..., 2]).all()
    assert isinstance(registrar.register(img), list)  # MediaPipe finds no face here; no crash
    gray = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    faces = registrar.register(np.repeat(gray[:, :, None], 3, axis=2))
    assert faces and faces[0].success


def test_multi_face(faces_dir):
    from pattnet.registration import register_image

    faces = register_image(faces_dir / "multi_face.jpg", max_faces=8)
    assert len(faces) == 5
    assert [f.face_id for f in faces] == list(range(5))
    xs = [f.bbox[0] for f in faces]
    assert xs == sorted(xs)  # ids left to right in a photo


def _affine_canvas(img: np.ndarray, angle: float, scale: float, shift: tuple[int, int]):
    h, w = img.shape[:2]
    size = int(max(h, w) * scale * 1.6) + 2 * max(abs(shift[0]), abs(shift[1]))
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
    m[:, 2] += (size / 2 - w / 2 + shift[0], size / 2 - h / 2 + shift[1])
    return cv2.warpAffine(img, m, (size, size), flags=cv2.INTER_LINEAR)


@pytest.mark.parametrize(
    "angle,scale,shift", [(30, 1.0, (40, -30)), (-30, 1.0, (0, 0)), (0, 0.5, (-20, 10)),
                          (0, 2.0, (60, 20)), (20, 1.5, (-50, 40))]
)
def test_similarity_invariance(registrar, astronaut, angle, scale, shift):
    ref = registrar.register(astronaut)[0]
    moved = registrar.register(_affine_canvas(astronaut, angle, scale, shift))
    assert len(moved) == 1
    d = np.linalg.norm(moved[0].landmarks - ref.landmarks, axis=1)
    rigid = load_template().rigid
    assert np.median(d) < 2.0 and d[rigid].mean() < 2.0
    for i in (IRIS_RIGHT, IRIS_LEFT, NOSE_TIP):
        assert d[i] < 2.0, (i, d[i])


def test_registered_frame_is_frontal(registrar, astronaut):
    first = registrar.register(astronaut)[0]
    again = registrar.register(first.image)
    assert len(again) == 1
    f = again[0]
    assert abs(f.pitch) < 2 and abs(f.yaw) < 2 and abs(f.roll) < 2, (f.pitch, f.yaw, f.roll)


def test_no_face_gives_empty_list(registrar):
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
    assert registrar.register(noise) == []
    assert registrar.register(np.zeros((100, 100, 3), np.uint8)) == []


def test_config_validation():
    from pattnet.errors import PattnetError

    with pytest.raises(PattnetError):
        Registrar(RegistrationConfig(max_faces=0))
    with pytest.raises(PattnetError):
        Registrar(RegistrationConfig(backend="nope")).register(np.zeros((64, 64, 3), np.uint8))


# --- face ids across video frames ----------------------------------------------------------------

class _ScriptedBackend:
    """A landmark back-end that returns faces at given centres, in the given order, frame by frame."""

    name = "scripted"

    def __init__(self, frames: list[list[tuple[float, float]]]):
        t = load_template().points.astype(np.float64)
        self._face = 0.4 * (t - t.mean(0))
        self._frames = iter(frames)

    def detect(self, rgb):
        return [Detection(points=(self._face + (x, y, 0)).astype(np.float32))
                for x, y in next(self._frames)]

    def close(self):
        pass


def _ids_by_centre(frames: list[list[tuple[float, float]]]) -> list[dict[tuple[float, float], int]]:
    """Per frame: the id of each scripted face, found by the centre of the face's box."""
    img = np.full((320, 960, 3), 128, np.uint8)
    with Registrar(RegistrationConfig(max_faces=3), static_image_mode=False,
                   backend=_ScriptedBackend(frames)) as reg:
        out = []
        for centres in frames:
            faces = reg.register(img)
            assert [f.face_id for f in faces] == sorted(f.face_id for f in faces)
            ids = {}
            for f in faces:
                cx, cy = (f.bbox[0] + f.bbox[2]) / 2, (f.bbox[1] + f.bbox[3]) / 2
                ids[min(centres, key=lambda c: np.hypot(c[0] - cx, c[1] - cy))] = f.face_id
            assert len(ids) == len(centres)
            out.append(ids)
        return out


def test_ids_follow_boxes_when_the_detector_swaps_their_order():
    a, b = (160, 160), (480, 160)
    moved_a, moved_b = (165, 162), (476, 158)
    got = _ids_by_centre([[a, b], [moved_b, moved_a], [a, b]])
    assert got == [{a: 0, b: 1}, {moved_a: 0, moved_b: 1}, {a: 0, b: 1}]


def test_a_face_leaves_and_a_new_one_takes_the_free_id():
    a, b, c = (160, 160), (480, 160), (800, 160)
    # a leaves while c enters (listed first): b keeps 1, c takes the smallest free id, 0
    got = _ids_by_centre([[a, b], [c, b], [b, c]])
    assert got == [{a: 0, b: 1}, {c: 0, b: 1}, {c: 0, b: 1}]


def test_tracker_keeps_both_faces_moving_together():
    """Best pair first would give the first face the left track's id; the assignment does not."""
    tracker = FaceTracker(0.3)
    assert tracker.assign([(0, 0, 10, 10), (3, 0, 13, 10)]) == [0, 1]
    # both faces moved 3-4 px left; the right face now overlaps the left track most
    assert tracker.assign([(1, 0, 11, 10), (-3, 0, 7, 10)]) == [1, 0]
    assert tracker.assign([(40, 0, 50, 10)]) == [0]  # no overlap: a new face, smallest free id
    tracker.reset()
    assert tracker.assign([(1, 0, 11, 10), (-3, 0, 7, 10)]) == [0, 1]


# --- the warp on its own (reused by the synthetic AU set) ---------------------------------------

def _mesh():
    t = load_template()
    return t.points[:, :2].astype(np.float64), t.triangles


def test_warp_affine_matches_opencv(astronaut):
    dst, tri = _mesh()
    a = np.array([[0.7, 0.2], [-0.15, 0.8]])
    b = np.array([30.0, 40.0])
    src = dst @ a.T + b
    m = np.linalg.inv(np.vstack([np.hstack([a, b[:, None]]), [0, 0, 1]]))[:2]
    ref = cv2.warpAffine(astronaut, m, (512, 512))
    for step in (1, 4):
        out, mask = piecewise_affine_warp(astronaut, src, dst, tri, (512, 512), grid_step=step,
                                          return_mask=True)
        k = mask > 0
        assert k.sum() > 30000
        assert np.abs(out.astype(int) - ref.astype(int))[k].mean() < 0.05
        assert out[~k].max() == 0


def test_warp_grid_matches_exact_on_nonrigid_mesh(astronaut):
    dst, tri = _mesh()
    rng = np.random.default_rng(1)
    src = dst * 0.9 + 20 + rng.normal(0, 1.5, dst.shape)
    exact = piecewise_affine_warp(astronaut, src, dst, tri, (512, 512), grid_step=1)
    fast = piecewise_affine_warp(astronaut, src, dst, tri, (512, 512), grid_step=4)
    diff = np.abs(exact.astype(int) - fast.astype(int))
    assert diff.mean() < 1.0 and np.percentile(diff, 99) < 20


def test_warp_mask_and_dtypes():
    dst, tri = _mesh()
    img = np.full((512, 512), 1.0, np.float32)  # single channel, float
    keep = np.ones(len(tri), bool)
    keep[:100] = False
    out, mask = piecewise_affine_warp(img, dst, dst, tri, (512, 512), tri_mask=keep,
                                      return_mask=True)
    assert out.dtype == np.float32 and out.shape == (512, 512)
    hidden = piecewise_affine_warp(img, dst, dst, tri[:100], (512, 512))
    full = piecewise_affine_warp(img, dst, dst, tri, (512, 512))
    assert out.sum() < full.sum() and hidden.sum() > 0
    assert set(np.unique(mask)) <= {0, 255}
