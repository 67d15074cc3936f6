"""Frame records -> RGB frames in record order, decoding each run of a video in one pass.

Why one pass: seeking in compressed video is slow and not frame-exact with every codec, and
a decoded frame is held only until it is registered, so memory stays at one frame.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from pattnet.errors import PattnetError

#: ``(record, rgb, error)``: ``rgb`` None with a one-line error when the frame cannot be read.
Source = tuple[Any, np.ndarray | None, str | None]


def iter_sources(records: Sequence[Any]) -> Iterator[Source]:
    """``(record, rgb, error)`` for each record, in order; ``rgb`` None with a one-line error
    when the frame cannot be read. Video records are decoded sequentially: a run of records of
    one video with increasing frame index is one pass over the video (PyAV, no seeking)."""
    from pattnet.io import read_image

    i = 0
    while i < len(records):
        r = records[i]
        if r.source_frame is None:
            try:
                yield r, read_image(r.source), None
            except PattnetError as exc:
                yield r, None, str(exc)
            i += 1
            continue
        j = _run_end(records, i)
        yield from _decode_run(records[i:j])
        i = j


def _run_end(records: Sequence[Any], i: int) -> int:
    """End of the run of video records starting at ``i`` that one forward pass can serve."""
    r = records[i]
    j = i + 1
    while (j < len(records) and records[j].source == r.source
           and records[j].source_frame is not None
           and records[j].source_frame > records[j - 1].source_frame):
        j += 1
    return j


def _decode_run(run: Sequence[Any]) -> Iterator[Source]:
    from pattnet.io import iter_frames

    k = 0
    last = -1
    err: str | None = None
    frames = iter_frames(run[0].source)
    try:
        for fr in frames:
            last = fr.index
            if fr.index == run[k].source_frame:
                yield run[k], fr.rgb, None
                k += 1
                if k == len(run):
                    break
    except PattnetError as exc:
        err = str(exc)
    finally:
        frames.close()
    for r in run[k:]:
        yield r, None, err or (f"{r.source}: video ends after frame {last}, before frame "
                               f"{r.source_frame}")
