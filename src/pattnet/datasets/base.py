"""What every dataset adapter shares: the adapter protocol, reading label cells, the label grid.

Why adapters: every later stage (prepare, stats, train) wants the same thing, "this frame of this
subject's session, found here, has these AU labels (1 / 0 / -1)", while each dataset stores its
labels and frames differently. Keeping the per-dataset knowledge in the adapters means prepare
never learns what an ``AU_OCC`` folder is.

Two rules shape the code:

* Nothing is silently lost. A label row whose image is missing, a duplicated frame row or a
  non-numeric cell becomes a :class:`~pattnet.datasets.records.Problem` on the session it
  belongs to (and on ``adapter.problems``), while the rest of the dataset is still yielded. Only
  a root that is not the named layout at all is fatal (:class:`~pattnet.errors.PattnetError`).
* Sessions are the unit of work. :meth:`DatasetAdapter.iter_sessions` yields one
  :class:`~pattnet.datasets.records.Session` at a time so that prepare can write, and resume,
  per session; labels are never held for the whole dataset unless
  :meth:`DatasetAdapter.labels_table` is asked for them (it reads label files only, never
  images, so ``pattnet stats`` works on a raw root).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pattnet.constants import au_name
from pattnet.datasets.records import FrameRecord, Problem, Session, SessionLabels
from pattnet.errors import PattnetError

if TYPE_CHECKING:
    import pandas as pd

#: The logger every adapter reports problems on. One name for all adapter modules, so that a
#: caller that reports the problems itself (prepare) can silence them in one place.
LOGGER_NAME = "pattnet.datasets"
log = logging.getLogger(LOGGER_NAME)

#: Examples quoted in one problem message; the count is always given in full.
MAX_EXAMPLES = 5


def examples(items: Sequence[Any], n: int = MAX_EXAMPLES) -> str:
    """The first ``n`` items for a message, and how many more there are."""
    shown = ", ".join(str(x) for x in items[:n])
    return shown + (f", ... ({len(items) - n} more)" if len(items) > n else "")


def parse_au(cell: str) -> int | None:
    """``1``, ``01``, ``AU1``, ``AU01``, ``au 1`` -> 1; anything else -> None."""
    m = re.fullmatch(r"(?:au)?\s*0*(\d+)", cell.strip(), flags=re.IGNORECASE)
    return int(m.group(1)) if m else None


def parse_int(cell: str) -> int | None:
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


class LabelGrid:
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
                f"({examples(self.duplicates)}); identical labels merged"
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
    def _label_sessions(self) -> Iterator[SessionLabels]:
        raise NotImplementedError

    def _resolve(self, lab: SessionLabels) -> tuple[list[FrameRecord], list[Problem]]:
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
