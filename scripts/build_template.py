#!/usr/bin/env python
"""Build pattnet's canonical 3D face template (src/pattnet/registration/assets/template.npz).

Why the project builds its own: the paper registers with ZFace, which is closed. pattnet needs a
3D mean face in MediaPipe's point order, frontal, placed in the 512x512 frame so that the paper's
9 patch boxes cut the same facial parts as on ZFace-registered frames.

Steps (all offline, all from faces no one on the project made):

1. MediaPipe Face Mesh (478 points, 3D, pixels) on every face in ../shared/data/faces (stills and
   every k-th video frame), scikit-image's astronaut and matplotlib's grace_hopper sample.
2. Generalised Procrustes analysis (similarity fits to the running mean, 3D) -> mean shape; the
   samples far from frontal (|yaw| or |pitch| > 20 deg against the first mean) are dropped and the
   mean rebuilt, so the mean is a frontal face. Each person (video) is weighted as one face so the
   one long video does not make the template that woman's face.
3. Left-right correspondence of MediaPipe's points (computed, not typed in): mirror the mean
   across its approximate symmetry plane and match points by optimal assignment.
4. Symmetrise (average the mean with its aligned mirror image) and rotate the symmetry plane to
   x = 0; this removes yaw and roll. Pitch is the one free angle: it is chosen, with scale and
   translation, by a weighted least-squares fit of the projected template to the ZFace positions
   of docs/paper-notes.md section 1.
5. Rigid points for pose fits: the points that move least across the expressive video frames
   after alignment, excluding lips, jaw line and brows.
6. Triangles: Delaunay triangulation of the 468 mesh points in the frontal template (irises
   excluded: they sit on the eyeball and would fold the eyelid triangles). It covers the mouth and
   eye openings, so teeth and eyes are warped too.

Run: .venv/bin/python scripts/build_template.py [--faces ../shared/data/faces]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from pattnet.io import iter_frames, read_image  # noqa: E402
from pattnet.registration.landmarks import MediaPipeBackend  # noqa: E402
from pattnet.registration.pose import (  # noqa: E402
    apply_similarity,
    rotation_to_euler,
    similarity_fit,
)

OUT = REPO / "src" / "pattnet" / "registration" / "assets" / "template.npz"
VERSION = "pattnet-mp478-v1"

# ZFace-registered BP4D frame, docs/paper-notes.md section 1: MediaPipe index -> (x, y)
ZFACE = {468: (207, 234), 473: (303, 232), 1: (258, 300), 61: (224, 351), 291: (287, 352),
         13: (255, 342), 152: (256, 414), 10: (258, 157)}
# fit weights: the rigid points (irises, nose tip) must be matched closely, the rest loosely
ZFACE_W = {468: 6.0, 473: 6.0, 1: 3.0, 61: 1.0, 291: 1.0, 13: 1.0, 152: 1.0, 10: 1.0}


def collect(faces: Path | None, every: int) -> list[tuple[str, np.ndarray]]:
    """(group, (478,3) points) for every face found; group = the person/video it came from."""
    from matplotlib import cbook
    from skimage import data

    det = MediaPipeBackend(static_image_mode=True, max_faces=5, min_detection_confidence=0.5)
    out: list[tuple[str, np.ndarray]] = []

    def add(group: str, rgb: np.ndarray, multi: bool) -> None:
        for k, d in enumerate(det.detect(rgb)):
            out.append((f"{group}#{k}" if multi else group, d.points.astype(np.float64)))

    add("astronaut", data.astronaut(), False)
    with cbook.get_sample_data("grace_hopper.jpg") as fh:
        import cv2

        buf = np.frombuffer(fh.read(), np.uint8)
        add("grace_hopper", cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1].copy(), False)
    if faces is not None and faces.is_dir():
        for p in sorted(faces.iterdir()):
            if p.suffix.lower() in (".jpg", ".png"):
                add(p.stem, read_image(p), p.stem.startswith("multi"))
            elif p.suffix.lower() in (".mp4", ".mov"):
                try:
                    for fr in iter_frames(p):
                        if fr.index % every == 0:
                            add(p.stem, fr.rgb, False)
                except Exception as exc:  # a damaged tail only shortens the sample
                    print(f"  {p.name}: {exc}")
    det.close()
    return out


def gpa(shapes: np.ndarray, weights: np.ndarray, iters: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Generalised Procrustes: returns (mean, aligned shapes), mean centred with unit RMS size."""
    mean = shapes[0] - shapes[0].mean(0)
    mean /= np.sqrt((mean**2).sum(1).mean())
    aligned = shapes.copy()
    for _ in range(iters):
        for i, s in enumerate(shapes):
            sc, r, t = similarity_fit(s, mean)
            aligned[i] = apply_similarity(s, sc, r, t)
        new = (aligned * weights[:, None, None]).sum(0) / weights.sum()
        new -= new.mean(0)
        new /= np.sqrt((new**2).sum(1).mean())
        sc, r, t = similarity_fit(new, mean)  # keep the orientation of the first mean
        new = apply_similarity(new, sc, r, t)
        if np.abs(new - mean).max() < 1e-7:
            mean = new
            break
        mean = new
    return mean, aligned


def neutral_mask(aligned: np.ndarray, groups: list[str], q: float) -> np.ndarray:
    """Per source, the faces with the narrowest, most closed mouth (quantile ``q``).

    Why: the sources smile and talk a lot; a mean over all of them has a mouth 0.9 x the
    interocular distance wide with raised corners, far from a neutral face (and from the ZFace
    frame). A template is a neutral face, so each source contributes its most neutral frames.
    """
    iod = np.linalg.norm(aligned[:, 473] - aligned[:, 468], axis=1)
    width = np.linalg.norm(aligned[:, 291] - aligned[:, 61], axis=1) / iod
    opening = np.linalg.norm(aligned[:, 14] - aligned[:, 13], axis=1) / iod
    score = width + 2.0 * opening
    keep = np.zeros(len(aligned), dtype=bool)
    for g in set(groups):
        idx = np.array([i for i, x in enumerate(groups) if x == g])
        thr = np.quantile(score[idx], q)
        keep[idx[score[idx] <= thr]] = True
    return keep


def mirror_map(mean: np.ndarray) -> np.ndarray:
    """Index of each point's left-right counterpart (self for midline points)."""
    from scipy.optimize import linear_sum_assignment

    pairs = [(468, 473), (33, 263), (133, 362), (61, 291), (234, 454), (127, 356)]
    n = np.zeros(3)
    for a, b in pairs:
        v = mean[b] - mean[a]
        n += v / np.linalg.norm(v)
    n /= np.linalg.norm(n)
    mid = [1, 4, 6, 10, 152, 0, 17, 13, 14, 168, 9]
    c = mean[mid].mean(0)
    refl = mean - 2 * ((mean - c) @ n)[:, None] * n[None, :]
    m = np.arange(len(mean))
    for lo, hi in ((0, 468), (468, 478)):
        d = np.linalg.norm(mean[lo:hi, None, :] - refl[None, lo:hi, :], axis=2)
        rows, cols = linear_sum_assignment(d)
        m[lo + rows] = lo + cols
    return m


def symmetrise(mean: np.ndarray, mirror: np.ndarray) -> np.ndarray:
    """Average with the aligned mirror image, then put the symmetry plane at x = 0, y down."""
    flip = mean[mirror] * np.array([-1.0, 1.0, 1.0])
    _, r, t = similarity_fit(flip, mean)
    sym = 0.5 * (mean + (flip @ r.T + t))
    d = sym - sym[mirror]
    d = d[np.linalg.norm(d, axis=1) > 1e-9]
    ref = sym[473] - sym[468]  # subject's left iris minus right: points to the image's right
    d = d * np.sign(d @ ref)[:, None]
    ex = d.sum(0)
    ex /= np.linalg.norm(ex)
    down = sym[152] - sym[10]  # forehead -> chin
    ey = down - (down @ ex) * ex
    ey /= np.linalg.norm(ey)
    ez = np.cross(ex, ey)  # x right, y down -> z away from the viewer (right-handed)
    rot = np.stack([ex, ey, ez])
    out = (sym - sym.mean(0)) @ rot.T
    if out[1, 2] > out[234, 2]:  # nose tip must be nearer the camera (smaller z) than the cheek
        raise RuntimeError("template came out inside-out")
    out[:, 0] -= 0.5 * (out[:, 0] + out[mirror, 0]).mean()
    return out


def place(sym: np.ndarray) -> tuple[np.ndarray, float, dict[int, float]]:
    """Choose pitch, scale and translation so the projection matches the ZFace positions."""
    idx = np.array(list(ZFACE))
    tgt = np.array([ZFACE[i] for i in idx], dtype=np.float64)
    w = np.array([ZFACE_W[i] for i in idx])
    best = None
    for pitch in np.arange(-30.0, 30.01, 0.25):
        a = np.radians(pitch)
        rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
        p3 = sym @ rx.T
        src = p3[idx, :2]
        # scale + translation only: the template stays upright (roll 0 = upright face)
        mu_s = (w @ src) / w.sum()
        mu_d = (w @ tgt) / w.sum()
        xs, xd = src - mu_s, tgt - mu_d
        s = float((w * (xs * xd).sum(1)).sum() / (w * (xs**2).sum(1)).sum())
        t = mu_d - s * mu_s
        res = np.linalg.norm(s * src + t - tgt, axis=1)
        cost = float((w * res**2).sum())
        if best is None or cost < best[0]:
            full = p3 * s
            full[:, :2] += t
            full[:, 2] -= full[:, 2].mean()
            best = (cost, pitch, full, dict(zip(idx.tolist(), res.tolist(), strict=True)))
    assert best is not None
    return best[2], best[1], best[3]


def anchor(template: np.ndarray) -> tuple[np.ndarray, dict[int, float]]:
    """Bend the placed mean face (x, y only, thin-plate spline) onto the ZFace frame's points.

    Why: a similarity places the rigid points (irises, nose tip) within 2-4 px, but MediaPipe's
    mouth corners on a mean face sit about 18 px from the ZFace frame's (MediaPipe's outer lip
    corners are wider, and the ZFace face has a narrow mouth). The patch boxes were drawn on the
    ZFace layout, so the canonical frame follows it at the measured points: the targets are the
    ZFace positions made left-right symmetric about the template's midline (moving each point at
    most 3 px), and a thin-plate spline carries the rest of the mesh smoothly along. The template
    stays symmetric, so an upright frontal face has zero roll and yaw.
    """
    from scipy.interpolate import RBFInterpolator

    mid = float(template[[1, 10, 13, 152], 0].mean())
    tgt: dict[int, tuple[float, float]] = {}
    for a, b in ((468, 473), (61, 291)):
        half = 0.5 * (ZFACE[b][0] - ZFACE[a][0])
        y = 0.5 * (ZFACE[a][1] + ZFACE[b][1])
        tgt[a], tgt[b] = (mid - half, y), (mid + half, y)
    for i in (1, 13, 152, 10):
        tgt[i] = (mid, float(ZFACE[i][1]))
    idx = np.array(list(tgt))
    src = template[idx, :2].astype(np.float64)
    dst = np.array([tgt[i] for i in idx])
    rbf = RBFInterpolator(src, dst - src, kernel="thin_plate_spline")
    out = template.copy()
    out[:, :2] += rbf(template[:, :2])
    res = {i: float(np.linalg.norm(out[i, :2] - np.array(ZFACE[i]))) for i in ZFACE}
    return out, res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=Path, default=REPO.parent / "shared" / "data" / "faces")
    ap.add_argument("--every", type=int, default=6, help="use every k-th video frame")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--neutral-quantile", type=float, default=0.3,
                    help="per source, keep the faces whose mouth is this neutral or more")
    args = ap.parse_args()

    from mediapipe.python.solutions import face_mesh_connections as fmc
    from scipy.spatial import Delaunay

    samples = collect(args.faces, args.every)
    groups = [g for g, _ in samples]
    shapes = np.stack([s for _, s in samples])
    print(f"{len(shapes)} faces from {len(set(groups))} people/sources")
    counts = {g: groups.count(g) for g in set(groups)}
    weights = np.array([1.0 / counts[g] for g in groups])

    mean0, aligned0 = gpa(shapes, weights)
    mirror = mirror_map(mean0)
    sym0 = symmetrise(mean0, mirror)
    keep = []
    for a in aligned0:
        _, r, _ = similarity_fit(sym0, a)
        pitch, yaw, roll = rotation_to_euler(r)
        keep.append(abs(yaw) < 20 and abs(pitch) < 20)
    keep = np.array(keep) & neutral_mask(aligned0, groups, args.neutral_quantile)
    print(f"{keep.sum()} near-frontal, near-neutral faces kept for the mean")
    mean, aligned = gpa(shapes[keep], weights[keep])
    mirror = mirror_map(mean)
    n_self = int((mirror == np.arange(len(mirror))).sum())
    assert (mirror[mirror] == np.arange(len(mirror))).all(), "mirror map is not an involution"
    print(f"mirror map: {n_self} midline points, {(len(mirror) - n_self) // 2} pairs")
    sym = symmetrise(mean, mirror)
    template, pitch, res = place(sym)
    print(f"pitch chosen {pitch:.2f} deg; residuals to ZFace (px): "
          + ", ".join(f"{k}:{v:.1f}" for k, v in res.items()))
    template, res = anchor(template)
    print("after anchoring, residuals to ZFace (px): "
          + ", ".join(f"{k}:{v:.1f}" for k, v in res.items()))
    iod = np.linalg.norm(template[473, :2] - template[468, :2])
    print(f"interocular distance {iod:.1f} px")

    # rigid points: low residual motion across all aligned samples (expressions, talking)
    excl: set[int] = set()
    for conn in (fmc.FACEMESH_LIPS, fmc.FACEMESH_LEFT_EYEBROW, fmc.FACEMESH_RIGHT_EYEBROW,
                 fmc.FACEMESH_FACE_OVAL):
        for a, b in conn:
            excl.update((a, b))
    excl.update(range(468, 478))
    chin_y = template[152, 1]
    mouth_y = template[13, 1]
    for i in range(468):
        if template[i, 1] > mouth_y - 0.3 * (chin_y - mouth_y) - 10:  # lower face moves with jaw
            excl.add(i)
    _, all_aligned = gpa(shapes, weights)
    spread = np.sqrt(((all_aligned - all_aligned.mean(0)) ** 2).sum(2).mean(0))
    cand = np.array([i for i in range(468) if i not in excl])
    order = cand[np.argsort(spread[cand])]
    stable = np.sort(order[: max(60, len(order) // 2)])
    print(f"{len(stable)} rigid points (of {len(cand)} candidates)")

    tri = Delaunay(template[:468, :2]).simplices.astype(np.int32)
    # orient every triangle counter-clockwise in the image (y down -> negative cross product)
    p = template[:, :2]
    cross = ((p[tri[:, 1], 0] - p[tri[:, 0], 0]) * (p[tri[:, 2], 1] - p[tri[:, 0], 1])
             - (p[tri[:, 1], 1] - p[tri[:, 0], 1]) * (p[tri[:, 2], 0] - p[tri[:, 0], 0]))
    flip = cross > 0
    tri[flip] = tri[flip][:, [0, 2, 1]]
    print(f"{len(tri)} triangles")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(".template.tmp.npz")
    np.savez_compressed(
        tmp,
        points=template.astype(np.float32),
        triangles=tri,
        rigid=stable.astype(np.int32),
        mirror=mirror.astype(np.int32),
        version=np.array(VERSION),
        n_faces=np.array(int(keep.sum())),
        pitch_deg=np.array(pitch),
    )
    tmp.replace(args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
