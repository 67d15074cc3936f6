"""The BP4D adapter: occurrence CSVs per subject and task, frames as numbered images.

Why BP4D needs care: its CSVs carry more AU columns than the 12 the paper uses, code only a
segment of each task (most video frames have no label) and mark not-coded cells with 9; a
release may also keep the frames outside the label root.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from pattnet.constants import BP4D_AUS, au_name
from pattnet.datasets.base import DatasetAdapter, LabelGrid, examples, parse_au, parse_int
from pattnet.datasets.frames import resolve_images
from pattnet.datasets.records import FrameRecord, Problem, SessionLabels
from pattnet.errors import PattnetError


class BP4DAdapter(DatasetAdapter):
    """BP4D: ``AUCoding/AU_OCC/<Subject>_<Task>.csv`` + ``<images>/<Subject>/<Task>/<frame>.jpg``.

    The CSV has a header row (first cell the frame column, then AU numbers) and values 0, 1 or
    9 (not coded -> -1). Only coded frames are kept: BP4D codes a segment of each task, so most
    video frames have no labels. ``images`` defaults to the dataset root; releases that put the
    frames under ``2DFeatures`` or ``Sequences`` pass that folder instead.
    """

    name = "bp4d"
    LABEL_DIR = Path("AUCoding") / "AU_OCC"

    def __init__(
        self,
        root: str | Path,
        images: str | Path | None = None,
        aus: Iterable[int] | None = None,
        strict: bool = False,
    ):
        super().__init__(root, aus, strict)
        self.aus = self._aus_option or BP4D_AUS
        self.label_dir = self.root / self.LABEL_DIR
        if not self.label_dir.is_dir():
            raise PattnetError(
                f"{self.root}: not a BP4D root: expected the occurrence labels in "
                f"{self.label_dir} (AUCoding/AU_OCC/<Subject>_<Task>.csv)"
            )
        self.csvs = sorted(self.label_dir.glob("*.csv"))
        if not self.csvs:
            raise PattnetError(
                f"{self.label_dir}: no <Subject>_<Task>.csv label files (e.g. F001_T1.csv)"
            )
        self.images = Path(images).expanduser() if images is not None else self.root
        if not self.images.is_dir():
            raise PattnetError(f"{self.images}: images folder not found")

    def _split_name(self, path: Path) -> tuple[str, str] | None:
        m = re.fullmatch(r"([^_]+)_(.+)", path.stem)
        return (m.group(1), m.group(2)) if m else None

    def _label_sessions(self) -> Iterator[SessionLabels]:
        for path in self.csvs:
            parts = self._split_name(path)
            if parts is None:
                self._note([Problem(
                    "bad_file", f"{path}: file name is not <Subject>_<Task>.csv; file skipped",
                    path=path,
                )])
                continue
            yield self._read_csv(path, *parts)

    def _read_csv(self, path: Path, subject: str, task: str) -> SessionLabels:
        return _LabelFile(path, subject, task, self.aus).read()

    def _check_sources(self) -> None:
        subjects = sorted({p[0] for c in self.csvs if (p := self._split_name(c))})
        if subjects and not any((self.images / s).is_dir() for s in subjects):
            raise PattnetError(
                f"{self.images}: no image folder for any of the {len(subjects)} labelled "
                f"subjects (expected e.g. {self.images / subjects[0]}/<Task>/<frame>.jpg); if "
                "the frames are elsewhere (2DFeatures, Sequences), pass that folder as the "
                "images root (--images)"
            )

    def _resolve(self, lab: SessionLabels) -> tuple[list[FrameRecord], list[Problem]]:
        return resolve_images(lab, self.images / lab.subject / lab.session,
                              " (pass --images if the frames live elsewhere)")


class _LabelFile:
    """One ``<Subject>_<Task>.csv`` read into its session's labels.

    Why a class: the header, each row and the summary all add problems to the same session and
    fill the same grid. A file that cannot be read, or whose header is wrong, yields the session
    with its problem and no frames, so the report can say why it is absent.
    """

    def __init__(self, path: Path, subject: str, task: str, aus: Sequence[int]):
        self.path = path
        self.aus = aus
        self.lab = SessionLabels(subject, task, [], [])
        self.grid = LabelGrid(len(aus))
        self.bad: list[str] = []
        self.bad_frames: list[int] = []
        self.n_rows = 0

    def problem(self, kind: str, msg: str, frames: Sequence[int] = ()) -> None:
        self.lab.problems.append(
            Problem(kind, msg, self.lab.subject, self.lab.session, self.path, tuple(frames)))

    def read(self) -> SessionLabels:
        try:
            fh = self.path.open(newline="", encoding="utf-8-sig")
        except OSError as exc:
            self.problem("bad_file", f"{self.path}: cannot read ({exc.strerror})")
            return self.lab
        with fh:
            reader = csv.reader(fh)
            columns = self._header(reader)
            if columns is None:
                return self.lab
            self._rows(reader, columns)
        return self._finish()

    def _header(self, reader: Any) -> dict[int, int] | None:
        """AU -> column index; None (with the problem noted) when the session must be skipped."""
        path = self.path
        try:
            header = next(reader, None)
        except (csv.Error, UnicodeDecodeError) as exc:
            self.problem("bad_file", f"{path}: unreadable CSV ({exc})")
            return None
        if header is None:
            self.problem("empty_session", f"{path}: empty file (no header, no frames)")
            return None
        while header and not header[-1].strip():  # trailing comma
            header = header[:-1]
        columns: dict[int, int] = {}
        for i, cell in enumerate(header[1:], start=1):
            au = parse_au(cell)
            if au is None:
                self.problem("unknown_column",
                             f"{path}: line 1, column {i + 1}: {cell!r} is not an AU number "
                             "(header must be the frame column, then AU numbers); session skipped")
                return None
            if au in columns:
                self.problem("unknown_column",
                             f"{path}: line 1: AU {au} appears in two columns; session skipped")
                return None
            columns[au] = i
        absent = [a for a in self.aus if a not in columns]
        if absent:
            self.problem("missing_labels",
                         f"{path}: no column for AU {', '.join(map(str, absent))}; those AUs are "
                         "treated as not coded (-1) in this session")
        return columns

    def _rows(self, reader: Any, columns: dict[int, int]) -> None:
        use = [(j, columns[a]) for j, a in enumerate(self.aus) if a in columns]
        uncoded = [j for j, a in enumerate(self.aus) if a not in columns]
        try:
            for row in reader:
                line = reader.line_num
                if any(c.strip() for c in row):
                    self._row(line, row, use, uncoded)
        except (csv.Error, UnicodeDecodeError) as exc:
            self.problem("bad_file", f"{self.path}: unreadable CSV at line {reader.line_num} "
                         f"({exc}); rows after it are skipped")

    def _row(self, line: int, row: list[str], use: list[tuple[int, int]], uncoded: list[int]) -> None:
        """One frame's row into the grid; a row with any bad cell is skipped whole."""
        self.n_rows += 1
        frame = parse_int(row[0])
        if frame is None or frame < 0:
            self.bad.append(f"line {line}: frame {row[0]!r} is not a frame number")
            return
        values = []
        for j, col in use:
            cell = row[col] if col < len(row) else ""
            v = parse_int(cell)
            if v not in (0, 1, 9):
                self.bad.append(f"line {line}: {au_name(self.aus[j])} = {cell!r} is not 0, 1 or 9")
                self.bad_frames.append(frame)
                return
            values.append((j, -1 if v == 9 else v))
        for j, v in values:
            self.grid.set(frame, j, v, f"line {line}")
        for j in uncoded:
            self.grid.set(frame, j, -1, f"line {line}")

    def _finish(self) -> SessionLabels:
        lab, path = self.lab, self.path
        if self.bad:
            self.problem("bad_cell", f"{path}: {len(self.bad)} row(s) skipped: {examples(self.bad)}",
                         self.bad_frames)
        lab.problems += self.grid.problems(str(path), lab.subject, lab.session)
        lab.frames, lab.labels, _ = self.grid.rows()
        if not lab.frames and not self.bad:
            self.problem("empty_session", f"{path}: no coded frames"
                         + (" (every row is 9)" if self.n_rows else " (no rows)"))
        return lab
