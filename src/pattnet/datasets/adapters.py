"""Dataset adapters: turn a dataset as it ships (BP4D, DISFA, or a hand-written manifest CSV)
into one :class:`FrameRecord` per labelled frame.

Why adapters: every later stage (prepare, stats, train) wants the same thing, "this frame of this
subject's session, found here, has these AU labels (1 / 0 / -1)", while each dataset stores its
labels and frames differently. Keeping the per-dataset knowledge here means prepare never learns
what an ``AU_OCC`` folder is.

Two rules shape the code:

* Nothing is silently lost. A label row whose image is missing, a duplicated frame row or a
  non-numeric cell becomes a :class:`Problem` on the session it belongs to (and on
  ``adapter.problems``), while the rest of the dataset is still yielded. Only a root that is not
  the named layout at all is fatal (:class:`~pattnet.errors.PattnetError`).
* Sessions are the unit of work. :meth:`DatasetAdapter.iter_sessions` yields one
  :class:`Session` at a time so that prepare can write, and resume, per session; labels are
  never held for the whole dataset unless :meth:`DatasetAdapter.labels_table` is asked for them
  (it reads label files only, never images, so ``pattnet stats`` works on a raw root).
"""

from __future__ import annotations

import csv
import inspect
import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pattnet.constants import BP4D_AUS, DISFA_AUS, au_name
from pattnet.errors import PattnetError

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

#: Image files an adapter accepts as a frame (the stem must be the frame number).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
#: Examples quoted in one problem message; the count is always given in full.
_MAX_EXAMPLES = 5


# --------------------------------------------------------------------------------------------
# records, sessions, problems
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FrameRecord:
    """One labelled frame.

    ``source`` is an image file (``source_frame`` is None) or a video file, in which case
    ``source_frame`` is the 0-based index of the frame to decode; decoding is prepare's job, so
    building records stays cheap. ``labels`` follow ``adapter.aus``: 1 present, 0 absent,
    -1 not coded.
    """

    subject: str
    session: str
    frame: int
    source: Path
    source_frame: int | None
    labels: tuple[int, ...]


@dataclass(frozen=True)
class Problem:
    """A recoverable defect in the input, reported instead of being silently dropped.

    ``kind`` is one of ``missing_image``, ``missing_source``, ``missing_labels``,
    ``bad_cell``, ``unknown_column``, ``duplicate_frame``, ``empty_session``,
    ``duplicate_image``, ``bad_file``. ``frames`` lists the affected frame numbers where
    that is meaningful, so prepare can write them into its report.
    """

    kind: str
    message: str
    subject: str | None = None
    session: str | None = None
    path: Path | None = None
    frames: tuple[int, ...] = ()

    def __str__(self) -> str:
        where = f"{self.subject}/{self.session}: " if self.subject is not None else ""
        return f"{where}{self.message}"


@dataclass
class Session:
    """All usable records of one subject's session, plus what went wrong in it."""

    subject: str
    session: str
    records: list[FrameRecord]
    problems: list[Problem] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str]:
        return (self.subject, self.session)


@dataclass
class _Labels:
    """A session's labels as read from the label files, before any frame source is looked up."""

    subject: str
    session: str
    frames: list[int]
    labels: list[tuple[int, ...]]
    problems: list[Problem] = field(default_factory=list)
    # adapter-specific: where the frames come from (e.g. the video path of a manifest row)
    sources: list[tuple[Path, int | None]] | None = None


def _examples(items: Sequence[Any], n: int = _MAX_EXAMPLES) -> str:
    shown = ", ".join(str(x) for x in items[:n])
    return shown + (f", ... ({len(items) - n} more)" if len(items) > n else "")


def _parse_au(cell: str) -> int | None:
    """``1``, ``01``, ``AU1``, ``AU01``, ``au 1`` -> 1; anything else -> None."""
    m = re.fullmatch(r"(?:au)?\s*0*(\d+)", cell.strip(), flags=re.IGNORECASE)
    return int(m.group(1)) if m else None


def _parse_int(cell: str) -> int | None:
    """An integer cell (``3``, ``3.0``); None when it is not one."""
    s = cell.strip()
    try:
        return int(s)
    except ValueError:
        pass
    try:
        f = float(s)
    except ValueError:
        return None
    return int(f) if f.is_integer() else None


class _LabelGrid:
    """frame -> one label per AU, filled cell by cell; records duplicates and conflicts.

    Why a grid: BP4D gives a row per frame, DISFA a file per AU; both must detect a frame given
    twice. Identical duplicates are merged, conflicting values become -1 (not coded) because
    neither can be trusted, and both are reported.
    """

    def __init__(self, n_aus: int):
        self.n = n_aus
        self.cells: dict[int, list[int | None]] = {}
        self.duplicates: list[str] = []
        self.dup_frames: list[int] = []
        self.conflicts: set[tuple[int, int]] = set()

    def set(self, frame: int, j: int, value: int, where: str) -> None:
        row = self.cells.setdefault(frame, [None] * self.n)
        old = row[j]
        if old is not None or (frame, j) in self.conflicts:
            if (frame, j) in self.conflicts or old != value:
                self.conflicts.add((frame, j))
                row[j] = -1
            if not self.dup_frames or self.dup_frames[-1] != frame:
                self.dup_frames.append(frame)
                self.duplicates.append(f"frame {frame} again at {where}")
            return
        row[j] = value

    def problems(self, label_file: str, subject: str, session: str) -> list[Problem]:
        out = []
        if self.dup_frames:
            frames = sorted(set(self.dup_frames))
            n_conf = len({f for f, _ in self.conflicts})
            out.append(Problem(
                "duplicate_frame",
                f"{label_file}: {len(frames)} frame(s) given more than once "
                f"({_examples(self.duplicates)}); identical labels merged"
                + (f", conflicting labels of {n_conf} frame(s) set to not coded (-1)"
                   if n_conf else ""),
                subject, session, frames=tuple(frames),
            ))
        return out

    def rows(
        self, check: Sequence[int] | None = None
    ) -> tuple[list[int], list[tuple[int, ...]], list[int]]:
        """Coded frames in order with their labels (missing cells -> -1), and the frames with a
        missing cell among the AUs ``check`` (default all)."""
        frames: list[int] = []
        labels: list[tuple[int, ...]] = []
        incomplete: list[int] = []
        check = range(self.n) if check is None else check
        for f in sorted(self.cells):
            row = self.cells[f]
            if any(row[j] is None for j in check):
                incomplete.append(f)
            lab = tuple(-1 if v is None else v for v in row)
            if any(v != -1 for v in lab):  # only coded frames are used
                frames.append(f)
                labels.append(lab)
        return frames, labels, incomplete


def _index_images(folder: Path) -> tuple[dict[int, Path], list[Problem]]:
    """Frame number -> image file in ``folder``, whatever the zero padding (``12.jpg``,
    ``012.jpg``, ``0012.jpg``). Two files for one number are ambiguous and reported."""
    index: dict[int, Path] = {}
    clashes: list[str] = []
    for p in sorted(folder.iterdir()):
        if p.suffix.lower() in IMAGE_SUFFIXES and p.stem.isdigit():
            n = int(p.stem)
            if n in index:
                clashes.append(f"{index[n].name} / {p.name}")
                continue
            index[n] = p
    problems = []
    if clashes:
        problems.append(Problem(
            "duplicate_image",
            f"{folder}: {len(clashes)} frame number(s) with more than one image "
            f"({_examples(clashes)}); the first name in sort order is used",
            path=folder,
        ))
    return index, problems


def _video_length(path: Path) -> int:
    """Frame count the container declares (0 when unknown). Only a hint: containers lie, so
    prepare still checks every decode; this catches a label track far longer than the video."""
    from pattnet.io.probe import probe_video

    return probe_video(path).frames


# --------------------------------------------------------------------------------------------
# base class
# --------------------------------------------------------------------------------------------
class DatasetAdapter:
    """Common machinery: subclasses read labels per session (:meth:`_label_sessions`) and find
    each frame's source (:meth:`_resolve`)."""

    name: ClassVar[str] = ""
    aus: tuple[int, ...]

    def __init__(self, root: str | Path, aus: Iterable[int] | None = None, strict: bool = False):
        self.root = Path(root).expanduser()
        if not self.root.exists():
            raise PattnetError(f"{self.root}: no such file or directory")
        self.strict = strict
        self.problems: list[Problem] = []
        self._log_level = logging.WARNING
        self._aus_option = None if aus is None else tuple(int(a) for a in aus)

    # -- subclass hooks -----------------------------------------------------------------------
    def _label_sessions(self) -> Iterator[_Labels]:
        raise NotImplementedError

    def _resolve(self, lab: _Labels) -> tuple[list[FrameRecord], list[Problem]]:
        raise NotImplementedError

    def _check_sources(self) -> None:
        """Fail early when the frame source root is clearly wrong (no session would resolve)."""

    # -- public -------------------------------------------------------------------------------
    def _note(self, problems: Iterable[Problem]) -> None:
        for p in problems:
            if self.strict:
                raise PattnetError(str(p))
            log.log(self._log_level, "%s", p)
            self.problems.append(p)

    def iter_sessions(self) -> Iterator[Session]:
        """One :class:`Session` per labelled session, records in frame order.

        A session whose labels could not be read at all is still yielded, with no records and
        its problems, so that a per-session report can say why it is absent.
        """
        self.problems = []
        self._log_level = logging.WARNING
        self._check_sources()
        for lab in self._label_sessions():
            records: list[FrameRecord] = []
            problems = list(lab.problems)
            if lab.frames:
                records, more = self._resolve(lab)
                problems += more
            self._note(problems)
            yield Session(lab.subject, lab.session, records, problems)

    def labels_table(self) -> pd.DataFrame:
        """All coded frames' labels: columns subject, session, frame, AU01, ... (1/0/-1).

        Reads the label files only, so it works on a root whose images are elsewhere or not yet
        extracted; problems are collected on ``self.problems`` as for :meth:`iter_sessions`.
        """
        import numpy as np
        import pandas as pd

        self.problems = []
        # debug only: the caller reports self.problems itself (stats prints them once)
        self._log_level = logging.DEBUG
        cols = [au_name(a) for a in self.aus]
        subj: list[str] = []
        sess: list[str] = []
        frames: list[int] = []
        labels: list[tuple[int, ...]] = []
        for lab in self._label_sessions():
            self._note(lab.problems)
            subj += [lab.subject] * len(lab.frames)
            sess += [lab.session] * len(lab.frames)
            frames += lab.frames
            labels += lab.labels
        arr = np.asarray(labels, dtype=np.int8).reshape(len(labels), len(cols))
        df = pd.DataFrame({"subject": pd.Series(subj, dtype=str),
                           "session": pd.Series(sess, dtype=str),
                           "frame": np.asarray(frames, dtype=np.int64)})
        return pd.concat([df, pd.DataFrame(arr, columns=cols)], axis=1)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.root)!r}, aus={list(self.aus)})"


def _resolve_images(
    lab: _Labels, folder: Path, hint: str, offset: int = 0
) -> tuple[list[FrameRecord], list[Problem]]:
    """Records for frames stored as numbered images in ``folder`` (image number = frame +
    offset); labelled frames without an image are reported, the others kept."""
    if not folder.is_dir():
        return [], [Problem(
            "missing_source",
            f"image folder {folder} not found; {len(lab.frames)} labelled frame(s) skipped{hint}",
            lab.subject, lab.session, folder, tuple(lab.frames),
        )]
    index, problems = _index_images(folder)
    problems = [Problem(p.kind, p.message, lab.subject, lab.session, p.path) for p in problems]
    records, missing = [], []
    for f, y in zip(lab.frames, lab.labels, strict=True):
        img = index.get(f + offset)
        if img is None:
            missing.append(f)
            continue
        records.append(FrameRecord(lab.subject, lab.session, f, img, None, y))
    if missing:
        problems.append(Problem(
            "missing_image",
            f"{len(missing)} labelled frame(s) have no image in {folder} "
            f"(frames {_examples(missing)}); they are skipped",
            lab.subject, lab.session, folder, tuple(missing),
        ))
    return records, problems


def _resolve_video(
    lab: _Labels, video: Path, frames: Sequence[int], offset: int = 0
) -> tuple[list[FrameRecord], list[Problem]]:
    """Records pointing into ``video`` at frame index (frame + offset); frames past the length
    the container declares are reported."""
    if not video.is_file():
        return [], [Problem(
            "missing_source", f"video {video} not found; {len(frames)} labelled frame(s) skipped",
            lab.subject, lab.session, video, tuple(frames),
        )]
    try:
        n = _video_length(video)
    except PattnetError as exc:
        return [], [Problem("missing_source", f"{exc}; {len(frames)} labelled frame(s) skipped",
                            lab.subject, lab.session, video, tuple(frames))]
    records, beyond = [], []
    for f, y in zip(frames, lab.labels, strict=True):
        idx = f + offset
        if idx < 0 or (n and idx >= n):
            beyond.append(f)
            continue
        records.append(FrameRecord(lab.subject, lab.session, f, video, idx, y))
    problems = []
    if beyond:
        problems.append(Problem(
            "missing_image",
            f"{len(beyond)} labelled frame(s) lie outside {video.name}, which declares {n} "
            f"frames (frames {_examples(beyond)}); they are skipped",
            lab.subject, lab.session, video, tuple(beyond),
        ))
    return records, problems


# --------------------------------------------------------------------------------------------
# BP4D
# --------------------------------------------------------------------------------------------
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

    def _label_sessions(self) -> Iterator[_Labels]:
        for path in self.csvs:
            parts = self._split_name(path)
            if parts is None:
                self._note([Problem(
                    "bad_file", f"{path}: file name is not <Subject>_<Task>.csv; file skipped",
                    path=path,
                )])
                continue
            yield self._read_csv(path, *parts)

    def _read_csv(self, path: Path, subject: str, task: str) -> _Labels:
        lab = _Labels(subject, task, [], [])

        def problem(kind: str, msg: str, frames: Sequence[int] = ()) -> None:
            lab.problems.append(Problem(kind, msg, subject, task, path, tuple(frames)))

        try:
            fh = path.open(newline="", encoding="utf-8-sig")
        except OSError as exc:
            problem("bad_file", f"{path}: cannot read ({exc.strerror})")
            return lab
        with fh:
            reader = csv.reader(fh)
            try:
                header = next(reader, None)
            except (csv.Error, UnicodeDecodeError) as exc:
                problem("bad_file", f"{path}: unreadable CSV ({exc})")
                return lab
            if header is None:
                problem("empty_session", f"{path}: empty file (no header, no frames)")
                return lab
            while header and not header[-1].strip():  # trailing comma
                header = header[:-1]
            columns: dict[int, int] = {}
            for i, cell in enumerate(header[1:], start=1):
                au = _parse_au(cell)
                if au is None:
                    problem("unknown_column",
                            f"{path}: line 1, column {i + 1}: {cell!r} is not an AU number "
                            "(header must be the frame column, then AU numbers); session skipped")
                    return lab
                if au in columns:
                    problem("unknown_column",
                            f"{path}: line 1: AU {au} appears in two columns; session skipped")
                    return lab
                columns[au] = i
            absent = [a for a in self.aus if a not in columns]
            if absent:
                problem("missing_labels",
                        f"{path}: no column for AU {', '.join(map(str, absent))}; those AUs are "
                        "treated as not coded (-1) in this session")
            use = [(j, columns[a]) for j, a in enumerate(self.aus) if a in columns]
            grid = _LabelGrid(len(self.aus))
            bad: list[str] = []
            bad_frames: list[int] = []
            n_rows = 0
            try:
                for row in reader:
                    line = reader.line_num
                    if not any(c.strip() for c in row):
                        continue
                    n_rows += 1
                    frame = _parse_int(row[0])
                    if frame is None or frame < 0:
                        bad.append(f"line {line}: frame {row[0]!r} is not a frame number")
                        continue
                    values = []
                    for j, col in use:
                        cell = row[col] if col < len(row) else ""
                        v = _parse_int(cell)
                        if v not in (0, 1, 9):
                            bad.append(f"line {line}: {au_name(self.aus[j])} = {cell!r} is not "
                                       "0, 1 or 9")
                            bad_frames.append(frame)
                            break
                        values.append((j, -1 if v == 9 else v))
                    else:
                        for j, v in values:
                            grid.set(frame, j, v, f"line {line}")
                        for j, a in enumerate(self.aus):
                            if a not in columns:
                                grid.set(frame, j, -1, f"line {line}")
            except (csv.Error, UnicodeDecodeError) as exc:
                problem("bad_file", f"{path}: unreadable CSV at line {reader.line_num} ({exc}); "
                        "rows after it are skipped")
        if bad:
            problem("bad_cell", f"{path}: {len(bad)} row(s) skipped: {_examples(bad)}",
                    bad_frames)
        lab.problems += grid.problems(str(path), subject, task)
        lab.frames, lab.labels, _ = grid.rows()
        if not lab.frames and not bad:
            problem("empty_session",
                    f"{path}: no coded frames" + (" (every row is 9)" if n_rows else " (no rows)"))
        return lab

    def _check_sources(self) -> None:
        subjects = sorted({p[0] for c in self.csvs if (p := self._split_name(c))})
        if subjects and not any((self.images / s).is_dir() for s in subjects):
            raise PattnetError(
                f"{self.images}: no image folder for any of the {len(subjects)} labelled "
                f"subjects (expected e.g. {self.images / subjects[0]}/<Task>/<frame>.jpg); if "
                "the frames are elsewhere (2DFeatures, Sequences), pass that folder as the "
                "images root (--images)"
            )

    def _resolve(self, lab: _Labels) -> tuple[list[FrameRecord], list[Problem]]:
        return _resolve_images(lab, self.images / lab.subject / lab.session,
                               " (pass --images if the frames live elsewhere)")


# --------------------------------------------------------------------------------------------
# DISFA
# --------------------------------------------------------------------------------------------
class DISFAAdapter(DatasetAdapter):
    """DISFA: ``ActionUnit_Labels/SN001/SN001_au1.txt`` (``frame,intensity`` lines, 0-5).

    An AU is present when its intensity is at least ``threshold`` (2, the usual protocol).
    Frames come straight from the videos (``Videos_LeftCamera/LeftVideoSN001_comp.avi``, frame t
    is video frame t, 0-based; decoding happens in prepare) or, with ``images``, from extracted
    frames ``<images>/<Subject>/<frame>.jpg``. ``frame_offset`` shifts label frame numbers onto
    source frames for extractions that number from 1. The session name is the camera.
    """

    name = "disfa"
    LABEL_DIR = "ActionUnit_Labels"

    def __init__(
        self,
        root: str | Path,
        threshold: int = 2,
        images: str | Path | None = None,
        videos: str | Path | None = None,
        camera: str = "left",
        frame_offset: int = 0,
        aus: Iterable[int] | None = None,
        strict: bool = False,
    ):
        super().__init__(root, aus, strict)
        self.aus = self._aus_option or DISFA_AUS
        if not 1 <= int(threshold) <= 5:
            raise PattnetError(f"DISFA threshold {threshold} must be an intensity 1..5")
        self.threshold = int(threshold)
        cam = camera.strip().lower()
        if cam not in ("left", "right"):
            raise PattnetError(f"DISFA camera {camera!r} must be 'left' or 'right'")
        self.camera = cam.capitalize()
        self.frame_offset = int(frame_offset)
        self.label_dir = self.root / self.LABEL_DIR
        if not self.label_dir.is_dir():
            raise PattnetError(
                f"{self.root}: not a DISFA root: expected {self.label_dir} "
                "(ActionUnit_Labels/SN001/SN001_au1.txt)"
            )
        self.subjects = sorted(p.name for p in self.label_dir.iterdir() if p.is_dir())
        if not self.subjects:
            raise PattnetError(f"{self.label_dir}: no subject folders (e.g. SN001/SN001_au1.txt)")
        self.images = Path(images).expanduser() if images is not None else None
        self.videos = (Path(videos).expanduser() if videos is not None
                       else self.root / f"Videos_{self.camera}Camera")
        if self.images is not None and not self.images.is_dir():
            raise PattnetError(f"{self.images}: images folder not found")

    @property
    def session_name(self) -> str:
        return f"{self.camera}Camera"

    def _label_sessions(self) -> Iterator[_Labels]:
        for subject in self.subjects:
            yield self._read_subject(subject)

    def _read_subject(self, subject: str) -> _Labels:
        sdir = self.label_dir / subject
        lab = _Labels(subject, self.session_name, [], [])
        grid = _LabelGrid(len(self.aus))
        bad: list[str] = []
        absent: list[str] = []
        present: list[int] = []
        for j, au in enumerate(self.aus):
            path = sdir / f"{subject}_au{au}.txt"
            if not path.is_file():
                absent.append(path.name)
                continue
            present.append(j)
            try:
                text = path.read_text(encoding="utf-8-sig")
            except (OSError, UnicodeDecodeError) as exc:
                bad.append(f"{path.name}: unreadable ({exc})")
                continue
            for line_no, line in enumerate(text.splitlines(), start=1):
                if not line.strip():
                    continue
                cells = [c for c in re.split(r"[,;\s]+", line.strip()) if c]
                frame = _parse_int(cells[0]) if len(cells) == 2 else None
                value = _parse_int(cells[1]) if len(cells) == 2 else None
                if frame is None or frame < 0 or value is None or not 0 <= value <= 5:
                    bad.append(f"{path.name} line {line_no}: {line.strip()!r} is not "
                               "'frame,intensity' with intensity 0-5")
                    continue
                grid.set(frame, j, int(value >= self.threshold), f"{path.name} line {line_no}")
        if absent:
            lab.problems.append(Problem(
                "missing_labels",
                f"{sdir}: {_examples(absent)} missing; " + (
                    "session skipped" if len(absent) == len(self.aus)
                    else "those AUs are treated as not coded (-1)"),
                subject, lab.session, sdir,
            ))
        if bad:
            lab.problems.append(Problem(
                "bad_cell", f"{sdir}: {len(bad)} line(s) skipped: {_examples(bad)}",
                subject, lab.session, sdir,
            ))
        lab.problems += grid.problems(str(sdir), subject, lab.session)
        lab.frames, lab.labels, incomplete = grid.rows(present)
        n_files = len(present)
        if incomplete:
            lab.problems.append(Problem(
                "missing_labels",
                f"{sdir}: {len(incomplete)} frame(s) are missing from some AU files (frames "
                f"{_examples(incomplete)}); the missing AUs are treated as not coded (-1)",
                subject, lab.session, sdir, tuple(incomplete),
            ))
        if not lab.frames and n_files and not bad:
            lab.problems.append(Problem("empty_session", f"{sdir}: label files have no frames",
                                        subject, lab.session, sdir))
        return lab

    def video_path(self, subject: str) -> Path:
        """DISFA's ``<Camera>Video<Subject>_comp.avi``, or the one other ``<Camera>Video<Subject>*``
        file when a copy was renamed or re-encoded."""
        exact = self.videos / f"{self.camera}Video{subject}_comp.avi"
        if exact.is_file():
            return exact
        others = sorted(self.videos.glob(f"{self.camera}Video{subject}*"))
        return others[0] if len(others) == 1 else exact

    def _check_sources(self) -> None:
        if self.images is None and not self.videos.is_dir():
            raise PattnetError(
                f"{self.root}: DISFA videos not found: expected {self.videos}/"
                f"{self.camera}Video<Subject>_comp.avi; pass extracted frames as the images "
                "root (--images) or the videos folder (--videos)"
            )

    def _resolve(self, lab: _Labels) -> tuple[list[FrameRecord], list[Problem]]:
        if self.images is not None:
            return _resolve_images(lab, self.images / lab.subject, "", self.frame_offset)
        return _resolve_video(lab, self.video_path(lab.subject), lab.frames, self.frame_offset)


# --------------------------------------------------------------------------------------------
# manifest
# --------------------------------------------------------------------------------------------
#: line, frame, source, source_frame, labels
_ManifestRow = tuple[int, int, Path, int | None, tuple[int, ...]]


class ManifestAdapter(DatasetAdapter):
    """A CSV written by hand, so any lab's own data works.

    Columns (case-insensitive): ``subject``; ``path`` (an image) or ``video`` + ``frame`` (0-based
    index into the video); optional ``session`` (default ``default``) and ``frame`` (for image
    rows: the frame number, default the row's position in its session); one column per AU
    (``AU1``, ``AU01`` or ``1``) holding 1, 0, -1 / 9 / empty (not coded). Relative paths are
    relative to the CSV's folder. Any other column is an error, because a misspelt AU column
    would otherwise be ignored without a word.
    """

    name = "manifest"
    KNOWN = ("path", "video", "frame", "subject", "session")
    DEFAULT_SESSION = "default"

    def __init__(self, root: str | Path, aus: Iterable[int] | None = None, strict: bool = False):
        super().__init__(root, aus, strict)
        path = self.root
        if path.is_dir():
            path = path / "manifest.csv"
            if not path.is_file():
                raise PattnetError(
                    f"{self.root}: a manifest is a CSV file (or a folder holding manifest.csv)"
                )
        self.csv_path = path
        self.base = path.parent
        try:
            with path.open(newline="", encoding="utf-8-sig") as fh:
                header = next(csv.reader(fh), None)
        except (OSError, csv.Error, UnicodeDecodeError) as exc:
            raise PattnetError(f"{path}: cannot read the manifest ({exc})") from exc
        if not header:
            raise PattnetError(f"{path}: empty manifest (expected a header row)")
        self.columns: dict[str, int] = {}
        au_cols: dict[int, int] = {}
        for i, raw in enumerate(header):
            cell = raw.strip().lower()
            if cell in self.KNOWN:
                if cell in self.columns:
                    raise PattnetError(f"{path}: line 1: column {raw!r} appears twice")
                self.columns[cell] = i
            elif (au := _parse_au(cell)) is not None:
                if au in au_cols:
                    raise PattnetError(f"{path}: line 1: AU {au} appears in two columns")
                au_cols[au] = i
            else:
                raise PattnetError(
                    f"{path}: line 1, column {i + 1}: unknown column {raw!r}; a manifest has "
                    f"{', '.join(self.KNOWN)} and AU columns (AU1 or AU01)"
                )
        if "subject" not in self.columns:
            raise PattnetError(f"{path}: no 'subject' column")
        if "path" not in self.columns and not {"video", "frame"} <= self.columns.keys():
            raise PattnetError(
                f"{path}: no frame source: a manifest needs a 'path' column (images) or "
                "'video' and 'frame' columns"
            )
        if not au_cols:
            raise PattnetError(f"{path}: no AU columns (e.g. AU1, AU2 or AU01)")
        if self._aus_option is not None:
            unknown = [a for a in self._aus_option if a not in au_cols]
            if unknown:
                raise PattnetError(
                    f"{path}: no column for AU {', '.join(map(str, unknown))} "
                    f"(the manifest has {', '.join(map(str, sorted(au_cols)))})"
                )
            self.aus = self._aus_option
        else:
            self.aus = tuple(sorted(au_cols))
        self._au_cols = [au_cols[a] for a in self.aus]

    def _rows(self) -> tuple[dict[tuple[str, str], list[_ManifestRow]], list[str]]:
        """(subject, session) -> [(line, frame, source, source_frame, labels)], bad rows."""
        sessions: dict[tuple[str, str], list[_ManifestRow]] = {}
        counters: dict[tuple[str, str], int] = {}
        bad: list[str] = []
        col = self.columns

        def cell(row: list[str], name: str) -> str:
            i = col.get(name)
            return row[i].strip() if i is not None and i < len(row) else ""

        with self.csv_path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            next(reader)
            try:
                for row in reader:
                    line = reader.line_num
                    if not any(c.strip() for c in row):
                        continue
                    subject = cell(row, "subject")
                    session = cell(row, "session") or self.DEFAULT_SESSION
                    if not subject:
                        bad.append(f"line {line}: empty subject")
                        continue
                    key = (subject, session)
                    img, vid, fr = cell(row, "path"), cell(row, "video"), cell(row, "frame")
                    frame = _parse_int(fr) if fr else None
                    if fr and (frame is None or frame < 0):
                        bad.append(f"line {line}: frame {fr!r} is not a frame number")
                        continue
                    if img:
                        source, source_frame = self.base / img, None
                        if frame is None:
                            frame = counters.get(key, 0)
                    elif vid:
                        if frame is None:
                            bad.append(f"line {line}: a video row needs a frame index")
                            continue
                        source, source_frame = self.base / vid, frame
                    else:
                        bad.append(f"line {line}: neither path nor video given")
                        continue
                    labels = []
                    for a, i in zip(self.aus, self._au_cols, strict=True):
                        raw = row[i].strip() if i < len(row) else ""
                        v = _parse_int(raw) if raw else -1
                        if v not in (1, 0, -1, 9):
                            bad.append(f"line {line}: {au_name(a)} = {raw!r} is not 1, 0, -1 "
                                       "(or 9 / empty for not coded)")
                            break
                        labels.append(-1 if v == 9 else v)
                    else:
                        counters[key] = counters.get(key, 0) + 1
                        sessions.setdefault(key, []).append(
                            (line, frame, source, source_frame, tuple(labels)))
            except (csv.Error, UnicodeDecodeError) as exc:
                raise PattnetError(
                    f"{self.csv_path}: unreadable CSV at line {reader.line_num} ({exc})"
                ) from exc
        return sessions, bad

    def _label_sessions(self) -> Iterator[_Labels]:
        sessions, bad = self._rows()
        if bad:
            self._note([Problem("bad_cell",
                                f"{self.csv_path}: {len(bad)} row(s) skipped: {_examples(bad)}",
                                path=self.csv_path)])
        if not sessions and not bad:
            raise PattnetError(f"{self.csv_path}: the manifest has no rows")
        for (subject, session), rows in sessions.items():
            lab = _Labels(subject, session, [], [], sources=[])
            by_frame: dict[int, tuple[int, Path, int | None, tuple[int, ...]]] = {}
            dups: list[str] = []
            conflicts: list[int] = []
            for line, frame, source, sframe, labels in rows:
                if frame in by_frame:
                    first = by_frame[frame]
                    dups.append(f"frame {frame} at lines {first[0]} and {line}")
                    if (first[1], first[2], first[3]) != (source, sframe, labels):
                        conflicts.append(frame)
                    continue
                by_frame[frame] = (line, source, sframe, labels)
            for f in conflicts:
                by_frame.pop(f, None)
            for f in sorted(by_frame):
                _, source, sframe, labels = by_frame[f]
                if all(v == -1 for v in labels):
                    continue  # not coded at all
                lab.frames.append(f)
                lab.labels.append(labels)
                assert lab.sources is not None
                lab.sources.append((source, sframe))
            if dups:
                lab.problems.append(Problem(
                    "duplicate_frame",
                    f"{self.csv_path}: {len(dups)} duplicate frame row(s) ({_examples(dups)}); "
                    "identical rows merged"
                    + (f", {len(set(conflicts))} frame(s) with differing rows skipped"
                       if conflicts else ""),
                    subject, session, self.csv_path, tuple(sorted(set(conflicts))),
                ))
            if not lab.frames:
                lab.problems.append(Problem(
                    "empty_session", f"{self.csv_path}: no coded frames (every AU is -1/empty)",
                    subject, session, self.csv_path))
            yield lab

    def _resolve(self, lab: _Labels) -> tuple[list[FrameRecord], list[Problem]]:
        assert lab.sources is not None
        records: list[FrameRecord] = []
        problems: list[Problem] = []
        missing: list[str] = []
        missing_frames: list[int] = []
        videos: dict[Path, int] = {}
        beyond: list[int] = []
        for f, y, (source, sframe) in zip(lab.frames, lab.labels, lab.sources, strict=True):
            if not source.is_file():
                missing.append(str(source))
                missing_frames.append(f)
                continue
            if sframe is not None:
                if source not in videos:
                    try:
                        videos[source] = _video_length(source)
                    except PattnetError as exc:
                        problems.append(Problem("missing_source", str(exc), lab.subject,
                                                lab.session, source))
                        videos[source] = -1
                n = videos[source]
                if n < 0 or (n and sframe >= n):
                    beyond.append(f)
                    continue
            records.append(FrameRecord(lab.subject, lab.session, f, source, sframe, y))
        if missing:
            problems.append(Problem(
                "missing_image",
                f"{len(missing)} labelled frame(s) whose file is missing ("
                f"{_examples(sorted(set(missing)))}); they are skipped",
                lab.subject, lab.session, None, tuple(missing_frames),
            ))
        if beyond:
            problems.append(Problem(
                "missing_image",
                f"{len(beyond)} labelled frame(s) outside their video's length or in an "
                f"unreadable video (frames {_examples(beyond)}); they are skipped",
                lab.subject, lab.session, None, tuple(beyond),
            ))
        return records, problems


# --------------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------------
ADAPTERS: dict[str, type[DatasetAdapter]] = {
    "bp4d": BP4DAdapter,
    "disfa": DISFAAdapter,
    "manifest": ManifestAdapter,
}


def list_adapters() -> list[str]:
    return list(ADAPTERS)


def get_adapter(name: str, root: str | Path, **opts: Any) -> DatasetAdapter:
    """The adapter ``name`` on ``root``. Options that are None are left at their defaults, so a
    CLI can pass its flags through unconditionally; an option the adapter does not take is an
    error rather than being ignored."""
    cls = ADAPTERS.get(name.lower())
    if cls is None:
        raise PattnetError(f"unknown dataset {name!r}; choose from {', '.join(ADAPTERS)}")
    opts = {k: v for k, v in opts.items() if v is not None}
    params = inspect.signature(cls.__init__).parameters
    unknown = [k for k in opts if k not in params or k in ("self", "root")]
    if unknown:
        accepted = [p for p in params if p not in ("self", "root")]
        raise PattnetError(
            f"the {name} adapter has no option {', '.join(unknown)} "
            f"(it takes {', '.join(accepted)})"
        )
    return cls(root, **opts)


def detect_dataset(root: str | Path) -> str:
    """Guess the adapter from the layout, so ``--dataset`` can usually be left out."""
    p = Path(root).expanduser()
    if p.is_file() and p.suffix.lower() == ".csv":
        return "manifest"
    if (p / BP4DAdapter.LABEL_DIR).is_dir():
        return "bp4d"
    if (p / DISFAAdapter.LABEL_DIR).is_dir():
        return "disfa"
    if (p / "manifest.csv").is_file():
        return "manifest"
    if not p.exists():
        raise PattnetError(f"{p}: no such file or directory")
    raise PattnetError(
        f"{p}: cannot tell the dataset: expected AUCoding/AU_OCC/ (BP4D), ActionUnit_Labels/ "
        "(DISFA), a manifest CSV, or a patch store (store.json); pass --dataset"
    )
