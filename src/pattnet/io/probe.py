"""What a video container declares about itself, read without decoding a frame.

Only hints: containers lie (a declared frame count may be 0 or wrong), so every stage still
checks what it decodes. Used for progress bars, for the overlay video's frame rate and to catch a
label track far longer than its video.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pattnet.errors import PattnetError


@dataclass(frozen=True)
class VideoInfo:
    frames: int  # declared frame count, 0 when the container does not say
    rate: float | None  # average frames per second, None when unknown
    width: int
    height: int


def probe_video(path: str | Path) -> VideoInfo:
    """The first video stream's declared length, rate and size; a one-line error otherwise."""
    import av

    p = Path(path)
    try:
        with av.open(str(p)) as c:
            if not c.streams.video:
                raise PattnetError(f"{p}: no video stream")
            s = c.streams.video[0]
            rate = float(s.average_rate) if s.average_rate else None
            return VideoInfo(int(s.frames or 0), rate, int(s.codec_context.width or 0),
                             int(s.codec_context.height or 0))
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise PattnetError(f"{p}: cannot open video ({exc})") from exc


def try_probe_video(path: str | Path) -> VideoInfo | None:
    """:func:`probe_video`, or None for anything it cannot read (a hint is never required)."""
    try:
        return probe_video(path)
    except PattnetError:
        return None
