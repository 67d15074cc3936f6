"""One session -> one chunk: register each frame, cut its patches, stream them to disk.

Runs the same in the main process and in a worker, so a session's chunk does not depend on
where it was prepared. Memory is bounded by a batch: patches go to disk every ``batch_size``
frames, and every record gives exactly one row, so nothing is silently dropped.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from pattnet.errors import PattnetError
from pattnet.prepare.jobs import MAX_FRAME_EXAMPLES, JobSettings, SessionJob, SessionResult
from pattnet.prepare.sources import iter_sources
from pattnet.store import ARRAY_DTYPES, ARRAY_SHAPES, ChunkWriter, au_columns

#: One registered face's arrays: ``patches``, ``holistic`` and its canonical ``mesh``.
FaceArrays = dict[str, np.ndarray]
#: ``(row values, arrays, failure reason)``; arrays None when not registered.
Prepared = tuple[dict[str, Any], FaceArrays | None, str | None]


class FrameProcessor:
    """Register one frame and cut its patches, with a fresh tracker per session.

    Why fresh: MediaPipe's video mode carries the face from frame to frame; starting each
    session anew makes its result independent of the worker, shard or run that prepared it.
    """

    def __init__(self, settings: JobSettings):
        from pattnet.registration import RegistrationConfig

        self.settings = settings
        self.config = RegistrationConfig(**settings.registration)
        self._reg: Any = None

    def start_session(self) -> None:
        from pattnet.registration import Registrar

        if self._reg is not None and not self.settings.track:
            return  # photo mode keeps no state between frames: reuse MediaPipe
        self.close()
        self._reg = Registrar(self.config, static_image_mode=not self.settings.track)

    def end_session(self) -> None:
        """Drop the tracker (video mode) and hand freed memory back to the OS.

        Why the trim: each session's MediaPipe graph and warps leave glibc's heap fragmented,
        and over many sessions a worker's RSS would ratchet up instead of staying flat.
        """
        if self.settings.track:
            self.close()
        _malloc_trim()

    def close(self) -> None:
        if self._reg is not None:
            self._reg.close()
            self._reg = None

    def __call__(self, rgb: np.ndarray) -> Prepared:
        """``(row values, arrays, failure reason)``; arrays None when not registered."""
        from pattnet.patches import crop_patches

        if self._reg is None:
            self.start_session()
        faces = self._reg.register(rgb)
        if not faces:
            return failed_row(), None, "no face found"
        f = faces[0]
        row = {"confidence": round(float(f.confidence), 5), "pitch": round(float(f.pitch), 4),
               "yaw": round(float(f.yaw), 4), "roll": round(float(f.roll), 4),
               "visible_fraction": round(float(f.visible_fraction), 5)}
        if not f.success:
            return {**row, "success": 0}, None, "fit below the confidence threshold"
        patches, holistic = crop_patches(f)
        return {**row, "success": 1}, {"patches": patches, "holistic": holistic,
                                       "mesh": f.landmarks_3d}, None


def _malloc_trim() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # musl or another libc: nothing to trim
        pass


def failed_row() -> dict[str, Any]:
    """Row values of a frame that could not be read or registered (kept with success=0)."""
    return {"success": 0, "confidence": 0.0, "pitch": math.nan, "yaw": math.nan, "roll": math.nan,
            "visible_fraction": 0.0}


class _Batch:
    """Up to ``batch_size`` rows and their arrays, written to the chunk together: one
    preallocated buffer per session keeps memory flat however long the session is."""

    def __init__(self, writer: ChunkWriter, size: int):
        self.writer = writer
        self.size = size
        self.arrays = {k: np.zeros((size, *ARRAY_SHAPES[k]), dtype=ARRAY_DTYPES[k])
                       for k in ("patches", "holistic", "mesh")}
        self.rows: list[dict[str, Any]] = []

    def add(self, row: dict[str, Any], arrays: FaceArrays | None) -> None:
        k = len(self.rows)
        for kind, buf in self.arrays.items():
            if arrays is None:  # not registered: black patches, no mesh
                buf[k] = np.nan if kind == "mesh" else 0
            else:
                buf[k] = arrays[kind]
        self.rows.append(row)
        if len(self.rows) == self.size:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            n = len(self.rows)
            a = self.arrays
            self.writer.append(pd.DataFrame(self.rows), a["patches"][:n], a["holistic"][:n],
                               a["mesh"][:n])
            self.rows.clear()


class _SessionProblems:
    """The frames of a session that could not be read or registered, as report problems."""

    def __init__(self, job: SessionJob):
        self.job = job
        self.unreadable: list[tuple[int, str]] = []
        self.not_registered: dict[str, list[int]] = {}

    def note(self, frame: int, err: str | None, why: str | None) -> None:
        if why is not None:
            self.not_registered.setdefault(why, []).append(frame)
        if err is not None:
            self.unreadable.append((frame, err))

    def _failed_registration(self) -> list[int]:
        return sorted(f for fr in self.not_registered.values() for f in fr)

    @property
    def failed(self) -> int:
        return len(self.unreadable) + len(self._failed_registration())

    def as_dicts(self, n: int) -> list[dict[str, Any]]:
        job = self.job
        problems = []
        if self.unreadable:
            frames = [f for f, _ in self.unreadable]
            shown = "; ".join(m for _, m in self.unreadable[:3])
            problems.append({
                "subject": job.subject, "session": job.session, "kind": "unreadable_frame",
                "n_frames": len(frames), "frames": frames[:MAX_FRAME_EXAMPLES], "path": None,
                "message": f"{len(frames)} frame(s) could not be read ({shown}"
                           f"{'; ...' if len(self.unreadable) > 3 else ''}); kept with success=0",
            })
        failed_reg = self._failed_registration()
        if failed_reg:
            why = ", ".join(f"{len(v)} {k}" for k, v in sorted(self.not_registered.items()))
            problems.append({
                "subject": job.subject, "session": job.session, "kind": "registration_failed",
                "n_frames": len(failed_reg), "frames": failed_reg[:MAX_FRAME_EXAMPLES],
                "path": None,
                "message": f"{len(failed_reg)} of {n} frame(s) not registered ({why}); kept with "
                           "success=0, left out of training",
            })
        return problems


def _prepare_frame(
    processor: FrameProcessor, rgb: np.ndarray | None, err: str | None
) -> tuple[Prepared, str | None]:
    """One frame's ``(values, arrays, why)`` and read error (or None)."""
    if rgb is None:
        return (failed_row(), None, None), err
    try:
        return processor(rgb), err
    except PattnetError as exc:  # e.g. an image too small to hold a face
        return (failed_row(), None, None), str(exc)


def process_session(
    job: SessionJob,
    settings: JobSettings,
    processor: FrameProcessor,
    progress: Callable[[int], None] | None = None,
) -> SessionResult:
    """Prepare one session into the chunk ``job.name`` (files committed, not yet recorded).

    Every record gives exactly one row, in record order: unreadable or unregistered frames get
    ``success=0`` and zero patches, and are counted in the session's problems.
    """
    t0 = time.monotonic()
    cols = au_columns(settings.aus)
    problems = _SessionProblems(job)
    processor.start_session()
    with ChunkWriter(settings.store, job.name, settings.aus) as cw:
        batch = _Batch(cw, max(1, int(settings.batch_size)))
        for rec, rgb, read_err in iter_sources(job.records):
            (values, arrays, why), err = _prepare_frame(processor, rgb, read_err)
            problems.note(rec.frame, err, why)
            row = {"subject": rec.subject, "session": rec.session, "frame": int(rec.frame), **values}
            row.update({c: int(v) for c, v in zip(cols, rec.labels, strict=True)})
            batch.add(row, arrays)
            if progress is not None:
                progress(1)
        batch.flush()
        n = cw.commit()
    processor.end_session()
    return SessionResult(job.name, job.subject, job.session, n, problems.failed,
                         problems.as_dicts(n), time.monotonic() - t0)
