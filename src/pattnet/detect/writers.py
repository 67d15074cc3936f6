"""One input's result files: the CSV as it grows, the overlay and the plot, and their summary.

The CSV grows in a :class:`~pattnet.io.atomic.GrowingFile` (``<name>.<pid>-<token>.partial``):
the table is written while frames arrive, for as long as the video lasts, and a crash must leave
the rows written so far readable; only a complete table takes its name.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from pattnet.detect.schema import FrameResult, columns, csv_field, frame_rows, read_detections
from pattnet.detect.sources import frame_count, frame_rate
from pattnet.io import source_orientation
from pattnet.io.atomic import GrowingFile, is_disk_full

FLUSH_EVERY = 32  # frames: a crash loses at most ~one batch of rows


@dataclass
class DetectSummary:
    source: str
    csv: Path
    renamed_from: Path | None = None  # the name asked for, when another run's table held it
    frames: int = 0
    faces: int = 0
    seconds: float = 0.0
    problem: str | None = None
    interrupted: bool = False
    overlay: Path | None = None
    plot: Path | None = None

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def source_label(source: str | Path | int) -> str:
    """How an input is named in the progress bar and the plot's title."""
    return f"camera {source}" if isinstance(source, int) else Path(source).name


def _total(source: str | Path | int, max_frames: int | None) -> int | None:
    n = frame_count(source)
    if max_frames is None:
        return n
    return max_frames if n is None else min(n, max_frames)


def _beside(asked: Path, got: Path, target: Path) -> Path:
    """``target`` renamed the way the table was (``asked`` -> ``got``) when it is named after it."""
    if asked == got or not target.name.startswith(asked.stem):
        return target
    return target.with_name(got.stem + target.name[len(asked.stem):])


def progress_bar(source: str | Path | int, max_frames: int | None, enabled: bool) -> Any:
    """A frame counter for ``source`` (a no-op one when not ``enabled``)."""
    from tqdm.auto import tqdm

    return tqdm(total=_total(source, max_frames), desc=source_label(source), disable=not enabled,
                unit="frame", leave=False, dynamic_ncols=True, mininterval=0.5)


class CsvTable:
    """A detection CSV that grows under a partial name and takes its name only when complete;
    a finished table already there is replaced only with ``overwrite``, else the new one takes
    the next free name beside it (``clip-2.csv``)."""

    def __init__(self, path: Path, header: Sequence[str], overwrite: bool = False,
                 preamble: Sequence[str] = (),
                 convert: Callable[[Sequence[Any]], Sequence[Any]] | None = None) -> None:
        self.path = path
        self._convert = convert  # pattnet's row -> the row of another layout (OpenFace's)
        self._file = GrowingFile(path, overwrite=True, apart=not overwrite)
        self.partial = self._file.partial
        self._header = list(header)
        self._preamble = list(preamble)
        self._fh: IO[str] | None = None
        self._writer: Any = None

    def open(self) -> None:
        self._fh = fh = self._file.open()
        self._writer = csv.writer(fh, lineterminator="\n")
        for line in self._preamble:  # ``#`` lines before the header: facts about the input
            fh.write(f"# {line}\n")
        self._writer.writerow(self._header)

    def write_rows(self, rows: Iterable[Sequence[Any]]) -> None:
        if self._convert is not None:
            rows = [self._convert(row) for row in rows]
        self._writer.writerows([csv_field(v) for v in row] for row in rows)

    def comment(self, text: str) -> None:
        """A ``#`` line (skipped by :func:`read_detections`): why the table ends early."""
        assert self._fh is not None
        self._fh.write(f"# {text}\n")

    def flush(self) -> None:
        assert self._fh is not None
        self._fh.flush()

    def commit(self) -> Path:
        """Make the rows durable, then give the table its name; returns the name it got."""
        self._fh = None
        self.path = self._file.commit()
        return self.path

    def abort(self, keep: bool) -> None:
        """Close after a failure; the partial file stays only when ``keep`` (rows written)."""
        self._fh = None
        self._file.abort(keep)


class DetectionFiles:
    """The files :meth:`pattnet.detect.Detector.detect_to_files` writes for one input."""

    def __init__(self, source: str | Path | int, csv_path: str | Path, aus: Sequence[int],
                 threshold: np.ndarray, *, overlay: str | Path | None = None,
                 plot: str | Path | None = None, overwrite: bool = False,
                 layout: str = "pattnet") -> None:
        from pattnet.detect.openface import OpenFaceRows, check_format
        from pattnet.detect.overlay import OVERLAY_SUFFIXES
        from pattnet.io.atomic import check_output_file

        self.source = source
        self.aus = list(aus)
        self.threshold = threshold
        path = Path(csv_path)
        # every output checked before the first is created: a bad --overlay leaves no CSV
        check_output_file(path, "the CSV", (".csv",))
        if overlay is not None:
            check_output_file(overlay, "--overlay", OVERLAY_SUFFIXES)
        if plot is not None:
            check_output_file(plot, "--plot", (".png",))
        path.parent.mkdir(parents=True, exist_ok=True)
        turned = source_orientation(source)
        preamble = [turned] if turned else []
        if check_format(layout) == "openface":
            rows = OpenFaceRows(self.aus)
            self.table = CsvTable(path, rows.header, overwrite, preamble, rows.convert)
        else:
            self.table = CsvTable(path, columns(self.aus), overwrite, preamble)
        self.overwrite = overwrite
        self.overlay: Any = None
        if overlay is not None:
            from pattnet.detect.overlay import OverlayWriter

            self.overlay = OverlayWriter(overlay, self.aus, threshold,
                                         fps=frame_rate(source) or 30.0)
        self.plot = plot
        self.summary = DetectSummary(source=str(source), csv=path)

    def write(self, frames: Iterator[FrameResult], *, max_frames: int | None, progress: bool,
              on_frame: Callable[[FrameResult], None] | None) -> DetectSummary:
        """Write every frame of ``frames``, then the pictures; the summary of it all."""
        bar = progress_bar(self.source, max_frames, progress)
        t0 = time.perf_counter()
        try:
            self.table.open()
            self._write_frames(frames, bar, on_frame)
            final = self.table.commit()
        except BaseException as exc:
            # nothing useful written, or a full disk (the table can never be finished there
            # and its partial file only takes space): leave no partial file behind
            self.table.abort(keep=self.summary.frames > 0 and not is_disk_full(exc))
            if self.overlay is not None:
                self.overlay.abort()
            raise
        finally:
            bar.close()
        self.summary.seconds = time.perf_counter() - t0
        if final != self.summary.csv:  # another run's table holds the name: ours went beside it
            self.summary.renamed_from = self.summary.csv
            self.summary.csv = final
        self._finish_pictures()
        return self.summary

    def _write_frames(self, frames: Iterator[FrameResult], bar: Any,
                      on_frame: Callable[[FrameResult], None] | None) -> None:
        """The rows of every frame; a damaged video or Ctrl-C after some frames ends the table
        (with a ``# stopped after frame N`` line, except for a webcam, which Ctrl-C just ends)."""
        from pattnet.io import DecodeError

        s = self.summary
        last = -1
        try:
            for fr in frames:
                self.table.write_rows(frame_rows(fr, self.threshold))
                s.frames += 1
                s.faces += sum(1 for f in fr.faces if f.success)
                last = fr.index
                if self.overlay is not None:
                    self.overlay.write(fr)
                if on_frame is not None:
                    on_frame(fr)
                bar.update(1)
                if s.frames % FLUSH_EVERY == 0:
                    self.table.flush()
        except DecodeError as exc:
            if exc.frames_read == 0 or s.frames == 0:
                raise
            s.problem = exc.stopped()
            self.table.comment(s.problem)
        except KeyboardInterrupt:
            if s.frames == 0:
                raise
            s.interrupted = True
            if not isinstance(self.source, int):
                s.problem = f"interrupted after frame {last}"
                self.table.comment(f"stopped after frame {last}: interrupted")

    def _beside_table(self, target: Path) -> Path:
        asked = self.summary.renamed_from
        return target if asked is None else _beside(asked, self.summary.csv, target)

    def _finish_pictures(self) -> None:
        """The overlay and the plot, named like the table (``clip-2.csv`` -> ``clip-2_...``)."""
        if self.overlay is not None:
            self.overlay.path = self._beside_table(self.overlay.path)
            self.summary.overlay = self.overlay.close(overwrite=self.overwrite)
        if self.plot is not None and self.summary.frames:
            from pattnet.detect.overlay import plot_timeline

            self.summary.plot = plot_timeline(read_detections(self.table.path), self.aus,
                                              self.threshold, self._beside_table(Path(self.plot)),
                                              overwrite=self.overwrite,
                                              title=source_label(self.source))


__all__ = ["CsvTable", "DetectSummary", "DetectionFiles", "progress_bar", "source_label"]
