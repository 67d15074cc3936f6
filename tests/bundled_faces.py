"""Stand-ins for ../shared/data/faces, built from faces that installed packages ship.

A user's fresh clone has no ../shared, yet the tests that need real faces should still run there.
Each file keeps the name of the shared file it replaces and the properties the tests rely on
(frame counts, frame rates, faces present or absent, a container that over-declares its length),
so the tests read the same either way. The two photos are scikit-image's ``astronaut`` (Eileen
Collins) and matplotlib's ``grace_hopper.jpg``; flipped and grey copies stand in for other people.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

NAMES = (
    "single_face.jpg", "multi_face.jpg", "0-f1-su-ph.jpg", "0-f15-hao-ph.jpg", "15-f13-anc-ph.jpg",
    "BWPictureHuman.jpg", "single_face.mp4", "WolfgangLanger_Pexels.mp4", "face_noface.mov",
    "no_face.mp4",
)
VIDEO_SIZE = (640, 360)  # width, height: small enough to encode and register quickly


def astronaut() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[:, :, :3])


def grace_hopper() -> np.ndarray:
    from matplotlib import cbook
    from matplotlib import image as mimage

    with cbook.get_sample_data("grace_hopper.jpg") as fh:
        return np.ascontiguousarray(mimage.imread(fh, format="jpg")[:, :, :3])


def _flip(rgb: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(rgb[:, ::-1])


def _grey(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def _write_jpg(path: Path, img: np.ndarray) -> None:
    bgr = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(path), bgr, [cv2.IMWRITE_JPEG_QUALITY, 92]):
        raise OSError(f"cannot write {path}")


# --------------------------------------------------------------------------------------------
# photos
# --------------------------------------------------------------------------------------------
def _group_photo(tiles: list[np.ndarray], width: int = 1000) -> np.ndarray:
    """Head crops in two staggered rows, as a group stands: each head is a third of the width, big
    enough for MediaPipe's detector, and no two share a left edge, so ids follow from x."""
    pad, n = 20, len(tiles)
    tw = (width - 2 * pad - 20) // 3
    step = (width - 2 * pad - tw) / (n - 1)
    imgs = [cv2.resize(t, (tw, int(t.shape[0] * tw / t.shape[1])), interpolation=cv2.INTER_AREA)
            for t in tiles]
    th = max(img.shape[0] for img in imgs)
    canvas = np.full((2 * th + 3 * pad, width, 3), 150, np.uint8)
    for i, img in enumerate(imgs):
        x, y = pad + round(i * step), pad + (i % 2) * (th + pad)
        canvas[y:y + img.shape[0], x:x + tw] = img
    return canvas


def _head(rgb: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    x0, y0, x1, y1 = box
    return np.ascontiguousarray(rgb[y0:y1, x0:x1])


ASTRONAUT_HEAD = (110, 10, 340, 290)  # x0, y0, x1, y1: the face with some hair and shoulders
GRACE_HEAD = (90, 50, 430, 450)


def write_photos(out: Path, astro: np.ndarray, grace: np.ndarray) -> None:
    _write_jpg(out / "single_face.jpg", grace)
    _write_jpg(out / "0-f1-su-ph.jpg", astro)
    _write_jpg(out / "0-f15-hao-ph.jpg", _flip(grace))
    _write_jpg(out / "15-f13-anc-ph.jpg", _head(astro, ASTRONAUT_HEAD))  # a closer crop
    _write_jpg(out / "BWPictureHuman.jpg", _grey(_flip(grace)))  # one channel, as the real one
    a, g = _head(astro, ASTRONAUT_HEAD), _head(grace, GRACE_HEAD)
    grey_a = cv2.cvtColor(_grey(_flip(a)), cv2.COLOR_GRAY2RGB)
    _write_jpg(out / "multi_face.jpg", _group_photo([a, g, _flip(a), _flip(g), grey_a]))


# --------------------------------------------------------------------------------------------
# videos
# --------------------------------------------------------------------------------------------
def _moving_face(rgb: np.ndarray, n: int, size: tuple[int, int] = VIDEO_SIZE) -> Iterator[np.ndarray]:
    """The photo drifting, zooming and tilting a little per frame, so tracking has work to do."""
    w, h = size
    base = h / rgb.shape[0]
    centre = (rgb.shape[1] / 2, rgb.shape[0] / 2)
    for i in range(n):
        t = 2 * math.pi * i / n
        m = cv2.getRotationMatrix2D(centre, 3 * math.sin(t), base * (1 + 0.04 * math.sin(2 * t)))
        m[:, 2] += (w / 2 - centre[0] + 12 * math.sin(t), h / 2 - centre[1] + 6 * math.cos(t))
        yield cv2.warpAffine(rgb, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                             borderValue=(90, 110, 130))


def _faceless(n: int, size: tuple[int, int] = VIDEO_SIZE, phase: int = 0) -> Iterator[np.ndarray]:
    """Coloured discs and bars sliding over a gradient: motion and texture, nothing face-like."""
    w, h = size
    xx = np.linspace(0, 1, w, dtype=np.float32)[None, :]
    yy = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    for i in range(phase, phase + n):
        s = i / 25
        planes = [80 + 100 * xx, 60 + 120 * yy, 140 + 60 * np.sin(3 * xx + s)]
        bg = np.stack([np.broadcast_to(c, (h, w)) for c in planes], axis=2)
        img = np.ascontiguousarray(np.clip(bg, 0, 255).astype(np.uint8))
        for k in range(4):
            cx = int((0.2 + 0.2 * k + 0.15 * math.sin(s + k)) * w)
            cy = int((0.5 + 0.3 * math.cos(1.3 * s + 2 * k)) * h)
            cv2.circle(img, (cx, cy), 25 + 8 * k, (40 * k + 60, 200 - 40 * k, 90), -1)
        x = int((s * 0.15 % 1) * w)
        cv2.rectangle(img, (x, 20), (x + 60, h - 20), (230, 220, 40), -1)
        yield img


def write_video(path: Path, frames: Iterator[np.ndarray], rate: Fraction, *, first_pts: int = 0,
                faststart: bool = False, gop: int = 12) -> None:
    """H.264 without B-frames and with a keyframe every ``gop`` frames, so that the first part of
    a cut file still decodes frame by frame.

    A negative ``first_pts`` puts frames before time zero: the container then declares them but
    the demuxer's edit list drops them, which is how real files come to over-declare their length.
    """
    import av

    opts = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), "w", options=opts) as c:
        st = c.add_stream("libx264", rate=rate)
        st.width, st.height, st.pix_fmt = VIDEO_SIZE[0], VIDEO_SIZE[1], "yuv420p"
        st.time_base = 1 / rate
        st.codec_context.gop_size = gop
        st.codec_context.options = {"preset": "veryfast", "crf": "26", "threads": "1", "bf": "0"}
        for i, rgb in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            vf.pts, vf.time_base = first_pts + i, 1 / rate
            for packet in st.encode(vf):
                c.mux(packet)
        for packet in st.encode():
            c.mux(packet)


def write_videos(out: Path, astro: np.ndarray, grace: np.ndarray) -> None:
    a, g = _head(astro, ASTRONAUT_HEAD), _head(grace, GRACE_HEAD)  # a face filling the frame
    # 72 frames at 30 fps, a face in every one
    write_video(out / "single_face.mp4", _moving_face(g, 72), Fraction(30))
    # NTSC film rate, moov atom first, long enough that a tenth of it still holds several frames
    write_video(out / "WolfgangLanger_Pexels.mp4", _moving_face(a, 120), Fraction(24000, 1001),
                faststart=True, gop=6)
    # 169 frames: a face for the first 90, then an animation without one
    write_video(out / "face_noface.mov", itertools.chain(_moving_face(_flip(g), 90), _faceless(79)),
                Fraction(25))
    # declares 98 frames and decodes 95
    write_video(out / "no_face.mp4", _faceless(98, phase=40), Fraction(25), first_pts=-3)


def build(out: Path) -> Path:
    """Write every stand-in file into ``out`` (created if needed) and return ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    astro, grace = astronaut(), grace_hopper()
    write_photos(out, astro, grace)
    write_videos(out, astro, grace)
    missing = [n for n in NAMES if not (out / n).is_file()]
    if missing:
        raise RuntimeError(f"bundled faces not written: {missing}")
    return out
