"""The schedule video: one face with AUs switching on and off at known frames, so that detect's
output on a real video can be scored against a known answer, frame by frame."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pattnet.constants import au_name
from pattnet.synth.labels import AUS
from pattnet.synth.render import ImageParams, render
from pattnet.synth.sources import SourceFace
from pattnet.synth.tables import write_csv

__all__ = [
    "SCHEDULE_CSV",
    "SCHEDULE_VIDEO",
    "Segment",
    "schedule_motion",
    "schedule_segments",
    "schedule_table",
    "write_schedule_video",
]

SCHEDULE_VIDEO = "schedule.mp4"
SCHEDULE_CSV = "schedule.csv"


@dataclass(frozen=True)
class Segment:
    """AUs ``aus`` on at ``intensity`` from frame ``start`` (inclusive) to ``end`` (exclusive)."""

    start: int
    end: int
    aus: tuple[int, ...]
    intensity: float = 0.85


def schedule_segments(fps: int = 12, seconds: float = 10.0) -> list[Segment]:
    """Neutral first, then each AU alone in turn, then the common combinations (6+12, 1+2,
    4+7, 17+24, 1+4+15), each on for about 0.4 s with neutral gaps, fitted into the duration."""
    n = int(round(fps * seconds))
    blocks: list[tuple[int, ...]] = [(a,) for a in AUS] + [(6, 12), (1, 2), (4, 7), (17, 24),
                                                           (1, 4, 15)]
    lead = max(2, n // 20)
    slot = max(2, (n - lead) // len(blocks))
    on = max(1, int(round(slot * 0.6)))
    segs = []
    for i, aus in enumerate(blocks):
        s = lead + i * slot
        if s + on > n:
            break
        segs.append(Segment(s, s + on, tuple(sorted(aus))))
    return segs


def schedule_table(segments: Sequence[Segment], n_frames: int) -> np.ndarray:
    """(n_frames, 12) float intensities per frame in :data:`AUS` order."""
    inten = np.zeros((n_frames, len(AUS)))
    col = {a: j for j, a in enumerate(AUS)}
    for seg in segments:
        for a in seg.aus:
            inten[seg.start:seg.end, col[a]] = seg.intensity
    return inten


def schedule_motion(i: int, fps: float) -> ImageParams:
    """Smooth, known head motion of the schedule video (rotation +-6 deg, scale +-5 %, a small
    drift), so that detect has to track and register rather than read a still picture."""
    t = i / fps
    return ImageParams(
        rotation=6.0 * math.sin(2 * math.pi * t / 5.0),
        scale=1.0 + 0.05 * math.sin(2 * math.pi * t / 3.3),
        shift=(0.03 * math.sin(2 * math.pi * t / 4.0), 0.02 * math.cos(2 * math.pi * t / 6.0)),
    )


def _encode(source: SourceFace, path: Path, inten: np.ndarray, *, fps: int, size: int,
            target_iod: float) -> list[list[str]]:
    """Render and encode frame after frame into ``path`` (H.264), returning the CSV row of each
    frame as it was actually rendered (labels after the fold guard, effective intensities)."""
    import av

    rows = []
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "16", "preset": "veryfast"}
        for i in range(len(inten)):
            want = {a: float(inten[i, j]) for j, a in enumerate(AUS)}
            im = render(source, want, schedule_motion(i, fps), size=size, target_iod=target_iod)
            frame = av.VideoFrame.from_ndarray(im.rgb, format="rgb24")
            for pkt in stream.encode(frame):
                container.mux(pkt)
            rows.append([str(i), f"{i / fps:.4f}", *map(str, im.labels),
                         *(f"{im.effective[a]:.3f}" for a in AUS)])
        for pkt in stream.encode():
            container.mux(pkt)
    return rows


def write_schedule_video(source: SourceFace, out: Path, *, fps: int = 12, seconds: float = 10.0,
                         size: int = 384, target_iod: float = 85.0) -> list[Segment]:
    """``schedule.mp4`` (H.264) of ``source`` with AUs switching on and off per
    :func:`schedule_segments`, and ``schedule.csv`` (frame, time, AU01..AU24: 1/0; I01..I24:
    effective intensity). Frame i of the video is row i of the CSV."""
    from pattnet.io.atomic import atomic_path

    n = int(round(fps * seconds))
    segs = schedule_segments(fps, seconds)
    inten = schedule_table(segs, n)
    header = ["frame", "time", *(au_name(a) for a in AUS), *(f"I{a:02d}" for a in AUS)]
    with atomic_path(out / SCHEDULE_VIDEO) as tmp:
        rows = _encode(source, tmp, inten, fps=fps, size=size, target_iod=target_iod)
    write_csv(out / SCHEDULE_CSV, header, rows)
    return segs
