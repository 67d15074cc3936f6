"""What the detector needs to know about an input before reading it, and how to share the CPUs.

Checked up front so that a bad path fails with one clear error before any thread starts, and
probed (frames, rate) so that the progress bar and the overlay video can be set up ahead.
"""

from __future__ import annotations

import os
from pathlib import Path

from pattnet.errors import PattnetError
from pattnet.io.probe import try_probe_video


def frame_count(source: str | Path | int) -> int | None:
    """Frames a video declares (for the progress bar's ETA); 1 for an image; None if unknown."""
    from pattnet.io import is_image, is_video

    if isinstance(source, int):
        return None
    if is_image(source):
        return 1
    if not is_video(source):
        return None
    info = try_probe_video(source)
    return (info.frames or None) if info else None


def frame_rate(source: str | Path | int) -> float | None:
    """Average frame rate of a video (for the overlay video), None if unknown."""
    from pattnet.io import is_video

    if isinstance(source, int) or not is_video(source):
        return None
    info = try_probe_video(source)
    return info.rate if info else None


def check_source(source: str | Path | int) -> None:
    """Refuse what is neither an image nor a video file before starting any thread."""
    from pattnet.io import is_image, is_video

    if isinstance(source, bool) or not isinstance(source, (str, Path, int)):
        raise PattnetError(f"the source must be an image or video file's path or a camera index "
                           f"(an int), got {type(source).__name__}; write a picture in memory to "
                           "a file first")
    if isinstance(source, int):
        if source < 0:
            raise PattnetError(f"camera index must be 0 or more, got {source}")
        return
    p = Path(source)
    if p.is_dir():
        raise PattnetError(f"{p}: is a folder; Detector.detect takes one file (the CLI expands "
                           "folders)")
    if not p.exists():
        raise PattnetError(f"{p}: no such file")
    if not (is_image(p) or is_video(p)):
        raise PattnetError(f"{p}: unsupported file type '{p.suffix or p.name}' (expected an image "
                           "or a video file)")


def is_moving(source: str | Path | int) -> bool:
    """A video or a camera: frames in time, one face followed across them (not a photo)."""
    from pattnet.io import is_video

    return isinstance(source, int) or is_video(source)


def default_workers(device_type: str = "cpu") -> int:
    """Model batches scored at once: 2 on a CPU (see :class:`pattnet.detect.Detector`), 1 on a GPU."""
    if device_type == "cuda":
        return 1
    return min(2, os.cpu_count() or 1)


def default_threads(workers: int) -> int:
    """torch threads per worker: the CPUs shared out among the workers, at least 1 each."""
    return max(1, (os.cpu_count() or 1) // max(1, workers))


__all__ = ["check_source", "default_threads", "default_workers", "frame_count", "frame_rate",
           "is_moving"]
