"""Reading images and videos as RGB uint8 frames, with the container's timestamps.

Every stage that loops over frames (register, prepare, detect) goes through here so that colour
order, bit depth, alpha and broken files are handled once. Frames stream: a video is never held
in memory.

Why PyAV for video: it decodes straight to RGB, fast, and gives the
presentation timestamps of the container, which OpenCV's VideoCapture only estimates; variable
frame rate phone videos need the real ones.
"""

from __future__ import annotations

import re
import time
from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pattnet.errors import PattnetError

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm", ".jp2"}
)
VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".mts",
     ".ts", ".3gp", ".ogv"}
)


@dataclass
class Frame:
    """One decoded frame: ``rgb`` (H, W, 3) uint8, 0-based ``index``, ``timestamp`` in seconds."""

    rgb: np.ndarray
    index: int
    timestamp: float


class DecodeError(PattnetError):
    """A video that broke part way. ``frames_read`` frames before the damage were yielded."""

    def __init__(self, message: str, frames_read: int) -> None:
        super().__init__(message)
        self.frames_read = frames_read

    def stopped(self) -> str:
        """What every output of a damaged input says about it: where it stopped, and why."""
        return f"stopped after frame {self.frames_read - 1}: {self}"


def is_video(path: str | Path) -> bool:
    """True for a file whose extension is a video container's (decided by name, not content)."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def is_image(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def expand_inputs(paths: Iterable[str | Path], recursive: bool = False) -> list[Path]:
    """Files to process: files as given, folders replaced by their image and video files (sorted).

    A missing path is refused up front (a typo should not cost a long run); files inside folders
    that turn out to be unreadable are left for the caller to report one by one.
    """
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            it = p.rglob("*") if recursive else p.iterdir()
            found = sorted(
                f for f in it if f.is_file() and not f.name.startswith(".")
                and (is_image(f) or is_video(f))
            )
            if not found:
                raise PattnetError(f"{p}: folder has no image or video files")
            out.extend(found)
        elif p.is_file():
            out.append(p)
        else:
            raise PattnetError(f"{p}: no such file or folder")
    return out


#: Room an output name needs beyond its stem: the longest ending pattnet adds
#: (``-99_timeline.png``, a folder's ``.csv`` and the like).
STEM_ROOM = 24


def output_stems(paths: Sequence[Path]) -> list[str]:
    """One output name per input: its stem, made unique within the call (``a/x.mp4``,
    ``b/x.mov`` -> ``x``, ``x-2``) so that two inputs never write the same result; a stem so
    long that the endings would not fit a file name is shortened (its start and a digest)."""
    from pattnet.io.atomic import fit_name

    seen: dict[str, int] = {}
    out = []
    for p in paths:
        stem = fit_name(p.stem, STEM_ROOM)
        k = seen.get(stem, 0) + 1
        seen[stem] = k
        out.append(stem if k == 1 else f"{stem}-{k}")
    return out


def to_rgb_uint8(img: np.ndarray) -> np.ndarray:
    """Any decoded image (gray, gray+alpha, RGB, RGBA; 8/16 bit or float) -> RGB uint8.

    Alpha is dropped (a face photo's transparency carries no facial information); 16-bit is
    scaled, not clipped, so a 16-bit PNG looks like its 8-bit version.
    """
    a = np.asarray(img)
    if a.dtype == np.uint16:
        a = (a.astype(np.uint32) * 255 + 32767) // 65535
    elif a.dtype.kind == "f":
        scale = 255.0 if np.nanmax(a) <= 1.0 else 1.0
        a = np.nan_to_num(a) * scale
    if a.dtype != np.uint8:
        a = np.clip(a, 0, 255).astype(np.uint8)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    elif a.ndim == 3 and a.shape[2] in (1, 2):
        a = np.repeat(a[:, :, :1], 3, axis=2)
    elif a.ndim == 3 and a.shape[2] == 4:
        a = a[:, :, :3]
    if a.ndim != 3 or a.shape[2] != 3:
        raise PattnetError(f"unsupported image shape {np.asarray(img).shape}")
    return np.ascontiguousarray(a)


#: EXIF Orientation (tag 274) -> what turns the stored pixels upright: (quarter turns
#: counter-clockwise, then mirror left-right). 1 and anything unknown: as stored.
_EXIF_UPRIGHT = {2: (0, True), 3: (2, False), 4: (2, True), 5: (3, True), 6: (3, False),
                 7: (1, True), 8: (1, False)}


def exif_orientation(path: str | Path) -> int:
    """The EXIF Orientation of an image file (1 = as stored; phones write 6 or 8 for a photo
    taken upright in portrait), read from the header only."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            code = im.getexif().get(274, 1)
    except Exception:  # no EXIF, or a format Pillow does not open: OpenCV still may
        return 1
    return int(code) if isinstance(code, int) and 1 <= code <= 8 else 1


def upright(rgb: np.ndarray, quarter_turns_ccw: int = 0, mirror: bool = False) -> np.ndarray:
    """``rgb`` turned by quarter turns counter-clockwise, then mirrored left-right."""
    out = np.rot90(rgb, quarter_turns_ccw % 4) if quarter_turns_ccw % 4 else rgb
    if mirror:
        out = out[:, ::-1]
    return np.ascontiguousarray(out)


def source_orientation(source: str | Path | int) -> str | None:
    """What was turned to read ``source`` upright, in words (for the results' header), or None
    when it is stored upright: an image's EXIF Orientation, a video's display matrix."""
    if isinstance(source, int):
        return None
    p = Path(source)
    if is_image(p):
        code = exif_orientation(p)
        return None if code == 1 else f"orientation: EXIF Orientation {code} applied (read upright)"
    if not is_video(p):
        return None
    import av

    try:
        with av.open(str(p)) as c:
            frame = next(c.decode(video=0), None)
            rotation = round(frame.rotation or 0) if frame is not None else 0
    except (av.FFmpegError, OSError, ValueError, IndexError):
        return None  # the decoder says what is wrong with the file when it reads it
    return (f"orientation: display matrix {rotation} degrees applied (read upright)"
            if rotation % 360 else None)


def read_image(path: str | Path) -> np.ndarray:
    """An image file as RGB uint8 (H, W, 3), the right way up (its EXIF Orientation applied, as
    every photo viewer does: a phone's portrait photo is stored sideways); one-line
    :class:`PattnetError` when it cannot be."""
    import cv2

    p = Path(path)
    if not p.is_file():
        raise PattnetError(f"{p}: no such file")
    if p.stat().st_size == 0:
        raise PattnetError(f"{p}: empty file (0 bytes)")
    buf = np.fromfile(p, dtype=np.uint8)
    try:
        img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise PattnetError(f"{p}: cannot decode image ({str(exc).strip().splitlines()[-1]})") from exc
    if img is None or img.size == 0:
        raise PattnetError(f"{p}: not a readable image (unknown format or damaged file)")
    if img.ndim == 3 and img.shape[2] >= 3:
        # OpenCV decodes to BGR(A)
        img = img[:, :, [2, 1, 0, 3][: img.shape[2]]]
    rgb = to_rgb_uint8(img)
    turn = _EXIF_UPRIGHT.get(exif_orientation(p))
    return upright(rgb, *turn) if turn else rgb


def iter_frames(source: str | Path | int, max_side: int | None = None
                ) -> Generator[Frame, None, None]:
    """Frames of a video file, an image file (one frame, timestamp 0) or a webcam (an int).

    Video timestamps are the container's presentation times in seconds. A video that is damaged
    part way yields every frame before the damage and then raises :class:`DecodeError` (with
    ``frames_read``), so callers keep what was decoded and can say where it stopped.
    ``max_side`` optionally shrinks large frames (keeping the aspect ratio).
    """
    if isinstance(source, int):
        yield from _iter_webcam(source, max_side)
        return
    p = Path(source)
    if not p.is_file():
        raise PattnetError(f"{p}: no such file")
    if p.stat().st_size == 0:
        raise PattnetError(f"{p}: empty file (0 bytes)")
    if not is_video(p):
        yield Frame(_shrink(read_image(p), max_side), 0, 0.0)
        return
    yield from _iter_video(p, max_side)


def _shrink(rgb: np.ndarray, max_side: int | None) -> np.ndarray:
    if max_side is None or max(rgb.shape[:2]) <= max_side:
        return rgb
    import cv2

    f = max_side / max(rgb.shape[:2])
    size = (max(1, round(rgb.shape[1] * f)), max(1, round(rgb.shape[0] * f)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def _iter_video(p: Path, max_side: int | None) -> Iterator[Frame]:
    import av

    try:
        container = av.open(str(p))
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise PattnetError(f"{p}: not a readable video ({_first_line(exc)})") from exc
    n = 0
    try:
        if not container.streams.video:
            raise PattnetError(f"{p}: no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = float(stream.average_rate) if stream.average_rate else 0.0
        try:
            for frame in container.decode(stream):
                t = frame.time
                if t is None:
                    t = n / rate if rate > 0 else float(n)
                rgb = frame.to_ndarray(format="rgb24")
                # the display matrix (a phone's portrait video is stored sideways): its
                # counter-clockwise angle, as players apply it
                turns = round((frame.rotation or 0) / 90)
                if turns % 4:
                    rgb = upright(rgb, turns)
                yield Frame(_shrink(rgb, max_side), n, float(t))
                n += 1
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise DecodeError(
                f"{p}: video damaged, decoding stopped after {n} frame(s) ({_first_line(exc)})",
                frames_read=n,
            ) from exc
        if n == 0:
            raise DecodeError(f"{p}: no decodable video frames", frames_read=0)
        declared = int(stream.frames or 0)
        # a file cut short often decodes "cleanly" up to where the data ends; the container's
        # frame count gives it away. A few frames of slack: some containers over-declare
        # (no_face.mp4 declares 98 and holds 95).
        if declared and n < declared - max(3, round(0.02 * declared)):
            raise DecodeError(
                f"{p}: video ends early: decoded {n} of {declared} declared frames "
                "(truncated file?)",
                frames_read=n,
            )
    finally:
        container.close()


def _iter_webcam(index: int, max_side: int | None) -> Iterator[Frame]:
    import cv2

    cap = cv2.VideoCapture(index)
    if not cap.isOpened():
        raise PattnetError(f"camera {index}: cannot be opened")
    t0 = time.monotonic()
    n = 0
    try:
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            yield Frame(_shrink(bgr[:, :, ::-1].copy(), max_side), n, time.monotonic() - t0)
            n += 1
    finally:
        cap.release()


def _first_line(exc: BaseException) -> str:
    s = str(exc).strip()
    s = s.splitlines()[0] if s else type(exc).__name__
    return re.sub(r"^\[Errno -?\d+\] |: '[^']*'$", "", s)  # PyAV repeats errno and path
