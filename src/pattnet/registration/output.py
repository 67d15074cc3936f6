"""One input's registration files: the landmark CSV as it grows and the registered frames.

What ``pattnet register`` writes per input: ``<stem>.csv`` with one row per face per frame (and
one ``success=0`` row for a frame without a face, so a CSV never has fewer rows than the input
has frames) and ``<stem>/<frame:06d>.png`` per registered face. The CSV grows under a name of its
own per process (:class:`~pattnet.io.atomic.GrowingFile`), so a second run never shares or
replaces a half-written table.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pattnet.errors import PattnetError
from pattnet.io import DecodeError, is_video, iter_frames
from pattnet.io.atomic import GrowingFile, write_png_atomic
from pattnet.io.stream import read_ahead
from pattnet.registration.core import Registrar
from pattnet.registration.faces import RegisteredFace, RegisteredFrame, RegistrationConfig

N_POINTS = 478
COLUMNS = (
    ["frame", "face_id", "timestamp", "success", "confidence", "pitch", "yaw", "roll",
     "visible_fraction"]
    + [f"x_{i}" for i in range(N_POINTS)]
    + [f"y_{i}" for i in range(N_POINTS)]
)

#: Extra picture per registered face, written beside its PNG (``pattnet register --patches``).
FacePicture = Callable[[RegisteredFace, Path], Any]


@dataclass
class RegisterSummary:
    stem: str  # the name the outputs got: the one asked for, or the next free one beside it
    csv: Path
    frames: int = 0
    faces: int = 0
    problem: str | None = None  # set when a damaged video stopped early; the CSV says where


def _fmt(x: float, nd: int) -> str:
    return "" if x != x else f"{x:.{nd}f}"  # NaN -> empty cell


def face_row(index: int, timestamp: float, face: RegisteredFace | None) -> list[str]:
    """One CSV row (strings) for a registered face, or a success=0 row when ``face`` is None."""
    if face is None:
        return [str(index), "0", f"{timestamp:.4f}", "0"] + [""] * (len(COLUMNS) - 4)
    lm = face.landmarks
    return (
        [str(index), str(face.face_id), f"{timestamp:.4f}", str(int(face.success)),
         _fmt(face.confidence, 3), _fmt(face.pitch, 2), _fmt(face.yaw, 2), _fmt(face.roll, 2),
         _fmt(face.visible_fraction, 3)]
        + [f"{v:.2f}" for v in lm[:, 0].tolist()]
        + [f"{v:.2f}" for v in lm[:, 1].tolist()]
    )


class _FrameWriter:
    """Rows of each registered frame into the CSV, and each face's pictures into ``frame_dir``."""

    def __init__(self, writer: Any, frame_dir: Path, summary: RegisterSummary, images: bool,
                 picture: FacePicture | None) -> None:
        self.writer, self.frame_dir, self.summary = writer, frame_dir, summary
        self.images, self.picture = images, picture

    def __call__(self, fr: RegisteredFrame) -> None:
        self.summary.frames += 1
        if not fr.faces:
            self.writer.writerow(face_row(fr.index, fr.timestamp, None))
            return
        for f in fr.faces:
            self.writer.writerow(face_row(fr.index, fr.timestamp, f))
            self.summary.faces += 1
            if f.success and (self.images or self.picture is not None):
                self._pictures(fr.index, f)

    def _pictures(self, index: int, face: RegisteredFace) -> None:
        self.frame_dir.mkdir(parents=True, exist_ok=True)
        name = f"{index:06d}" + (f"_f{face.face_id}" if face.face_id else "")
        if self.images:
            write_png_atomic(self.frame_dir / f"{name}.png", face.image)
        if self.picture is not None:
            self.picture(face, self.frame_dir / f"{name}_patches.png")


def _claim(out_dir: Path, stem: str, folder: bool, overwrite: bool) -> str:
    """The stem this run writes under: ``stem``, or, when another run's results hold it, the
    first free ``stem-2``, ``stem-3`` ... Creating the frame folder claims a stem atomically, so
    two processes never write frames into the same folder."""
    if overwrite:
        if folder:
            (out_dir / stem).mkdir(exist_ok=True)
        return stem
    for k in range(1, 1000):
        name = stem if k == 1 else f"{stem}-{k}"
        if (out_dir / f"{name}.csv").exists():
            continue
        if not folder:
            return name
        try:
            (out_dir / name).mkdir()
            return name
        except FileExistsError:
            continue
    raise PattnetError(f"{out_dir / stem}: 1000 results of this name exist already")


def register_to_files(path: Path, stem: str, out_dir: Path, cfg: RegistrationConfig,
                      image_registrar: Registrar, *, images: bool = True,
                      picture: FacePicture | None = None,
                      overwrite: bool = False) -> RegisterSummary:
    """Register one image or video into ``out_dir``; raises PattnetError when nothing could be
    read. A video damaged part way keeps the frames before the damage: its CSV ends with a
    ``# stopped after frame N: ...`` line and the summary's ``problem`` says why. Results of
    another run under ``stem`` are never replaced unless ``overwrite``: this run's go beside
    them (the summary's ``stem`` says where)."""
    frames = iter_frames(path)
    first = next(frames)  # an unreadable file fails here, before anything is written
    video = is_video(path)
    stem = _claim(out_dir, stem, images or picture is not None, overwrite)
    reg = Registrar(cfg, static_image_mode=False) if video else image_registrar
    summary = RegisterSummary(stem=stem, csv=out_dir / f"{stem}.csv")
    table = GrowingFile(summary.csv, overwrite=True, apart=not overwrite)
    try:
        fh = table.open()
        w = csv.writer(fh)
        w.writerow(COLUMNS)
        handle = _FrameWriter(w, out_dir / stem, summary, images, picture)
        try:
            for fr in reg.register_stream(read_ahead(itertools.chain([first], frames))):
                handle(fr)
        except DecodeError as exc:
            summary.problem = exc.stopped()
            fh.write(f"# {summary.problem}\n")
        summary.csv = table.commit()
    except BaseException:
        table.abort(keep=False)
        raise
    finally:
        if video:
            reg.close()
    return summary


__all__ = ["COLUMNS", "FacePicture", "RegisterSummary", "face_row", "register_to_files"]
