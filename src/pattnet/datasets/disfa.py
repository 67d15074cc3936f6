"""The DISFA adapter: one intensity file per subject and AU, frames from the videos.

Why DISFA differs from BP4D: its labels are intensities (0-5) to threshold into occurrence, come
as one file per AU (so a frame may be missing from some of them), and its frames are usually
decoded from the videos rather than shipped as images.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from pattnet.constants import DISFA_AUS
from pattnet.datasets.base import DatasetAdapter, LabelGrid, examples, parse_int
from pattnet.datasets.frames import resolve_images, resolve_video
from pattnet.datasets.records import FrameRecord, Problem, SessionLabels
from pattnet.errors import PattnetError


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

    def _label_sessions(self) -> Iterator[SessionLabels]:
        for subject in self.subjects:
            yield self._read_subject(subject)

    def _read_subject(self, subject: str) -> SessionLabels:
        sdir = self.label_dir / subject
        lab = SessionLabels(subject, self.session_name, [], [])
        grid = LabelGrid(len(self.aus))
        bad: list[str] = []
        absent: list[str] = []
        present: list[int] = []
        for j, au in enumerate(self.aus):
            path = sdir / f"{subject}_au{au}.txt"
            if not path.is_file():
                absent.append(path.name)
                continue
            present.append(j)
            bad += self._read_au_file(path, j, grid)
        self._file_problems(lab, sdir, absent, bad)
        lab.problems += grid.problems(str(sdir), subject, lab.session)
        lab.frames, lab.labels, incomplete = grid.rows(present)
        self._coverage_problems(lab, sdir, incomplete, len(present), bad)
        return lab

    def _read_au_file(self, path: Path, j: int, grid: LabelGrid) -> list[str]:
        """One AU's ``frame,intensity`` lines into column ``j`` of ``grid``; the bad lines."""
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            return [f"{path.name}: unreadable ({exc})"]
        bad: list[str] = []
        for line_no, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            cells = [c for c in re.split(r"[,;\s]+", line.strip()) if c]
            frame = parse_int(cells[0]) if len(cells) == 2 else None
            value = parse_int(cells[1]) if len(cells) == 2 else None
            if frame is None or frame < 0 or value is None or not 0 <= value <= 5:
                bad.append(f"{path.name} line {line_no}: {line.strip()!r} is not "
                           "'frame,intensity' with intensity 0-5")
                continue
            grid.set(frame, j, int(value >= self.threshold), f"{path.name} line {line_no}")
        return bad

    def _file_problems(self, lab: SessionLabels, sdir: Path, absent: list[str], bad: list[str]) -> None:
        if absent:
            lab.problems.append(Problem(
                "missing_labels",
                f"{sdir}: {examples(absent)} missing; " + (
                    "session skipped" if len(absent) == len(self.aus)
                    else "those AUs are treated as not coded (-1)"),
                lab.subject, lab.session, sdir,
            ))
        if bad:
            lab.problems.append(Problem(
                "bad_cell", f"{sdir}: {len(bad)} line(s) skipped: {examples(bad)}",
                lab.subject, lab.session, sdir,
            ))

    def _coverage_problems(
        self, lab: SessionLabels, sdir: Path, incomplete: list[int], n_files: int, bad: list[str]
    ) -> None:
        if incomplete:
            lab.problems.append(Problem(
                "missing_labels",
                f"{sdir}: {len(incomplete)} frame(s) are missing from some AU files (frames "
                f"{examples(incomplete)}); the missing AUs are treated as not coded (-1)",
                lab.subject, lab.session, sdir, tuple(incomplete),
            ))
        if not lab.frames and n_files and not bad:
            lab.problems.append(Problem("empty_session", f"{sdir}: label files have no frames",
                                        lab.subject, lab.session, sdir))

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

    def _resolve(self, lab: SessionLabels) -> tuple[list[FrameRecord], list[Problem]]:
        if self.images is not None:
            return resolve_images(lab, self.images / lab.subject, "", self.frame_offset)
        return resolve_video(lab, self.video_path(lab.subject), lab.frames, self.frame_offset)
