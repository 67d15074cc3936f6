"""The manifest adapter: a hand-written CSV naming each labelled frame, so any lab's data works.

Why strict about columns: a manifest is typed by a person, and a misspelt AU column that were
ignored would silently train without that AU; every column must be known, and a bad row is
reported with its line number rather than dropped without a word.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from pathlib import Path

from pattnet.constants import au_name
from pattnet.datasets.base import DatasetAdapter, examples, parse_au, parse_int
from pattnet.datasets.frames import video_length
from pattnet.datasets.records import FrameRecord, Problem, SessionLabels
from pattnet.errors import PattnetError

#: line, frame, source, source_frame, labels
_ManifestRow = tuple[int, int, Path, int | None, tuple[int, ...]]
_Key = tuple[str, str]


class _BadRow(ValueError):
    """A row that is skipped; the message says which line and why."""


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
        self.csv_path = self._find_csv()
        self.base = self.csv_path.parent
        self.columns: dict[str, int] = {}
        au_cols = self._map_columns(self._read_header())
        self._check_columns(au_cols)
        self.aus = self._choose_aus(au_cols)
        self._au_cols = [au_cols[a] for a in self.aus]

    # -- the header -----------------------------------------------------------------------------
    def _find_csv(self) -> Path:
        path = self.root
        if path.is_dir():
            path = path / "manifest.csv"
            if not path.is_file():
                raise PattnetError(
                    f"{self.root}: a manifest is a CSV file (or a folder holding manifest.csv)"
                )
        return path

    def _read_header(self) -> list[str]:
        path = self.csv_path
        try:
            with path.open(newline="", encoding="utf-8-sig") as fh:
                header = next(csv.reader(fh), None)
        except (OSError, csv.Error, UnicodeDecodeError) as exc:
            raise PattnetError(f"{path}: cannot read the manifest ({exc})") from exc
        if not header:
            raise PattnetError(f"{path}: empty manifest (expected a header row)")
        return header

    def _map_columns(self, header: list[str]) -> dict[int, int]:
        """Fill ``self.columns`` (known name -> index); returns AU -> column index."""
        path = self.csv_path
        au_cols: dict[int, int] = {}
        for i, raw in enumerate(header):
            cell = raw.strip().lower()
            if cell in self.KNOWN:
                if cell in self.columns:
                    raise PattnetError(f"{path}: line 1: column {raw!r} appears twice")
                self.columns[cell] = i
            elif (au := parse_au(cell)) is not None:
                if au in au_cols:
                    raise PattnetError(f"{path}: line 1: AU {au} appears in two columns")
                au_cols[au] = i
            else:
                raise PattnetError(
                    f"{path}: line 1, column {i + 1}: unknown column {raw!r}; a manifest has "
                    f"{', '.join(self.KNOWN)} and AU columns (AU1 or AU01)"
                )
        return au_cols

    def _check_columns(self, au_cols: dict[int, int]) -> None:
        path = self.csv_path
        if "subject" not in self.columns:
            raise PattnetError(f"{path}: no 'subject' column")
        if "path" not in self.columns and not {"video", "frame"} <= self.columns.keys():
            raise PattnetError(
                f"{path}: no frame source: a manifest needs a 'path' column (images) or "
                "'video' and 'frame' columns"
            )
        if not au_cols:
            raise PattnetError(f"{path}: no AU columns (e.g. AU1, AU2 or AU01)")

    def _choose_aus(self, au_cols: dict[int, int]) -> tuple[int, ...]:
        if self._aus_option is None:
            return tuple(sorted(au_cols))
        unknown = [a for a in self._aus_option if a not in au_cols]
        if unknown:
            raise PattnetError(
                f"{self.csv_path}: no column for AU {', '.join(map(str, unknown))} "
                f"(the manifest has {', '.join(map(str, sorted(au_cols)))})"
            )
        return self._aus_option

    # -- sessions -------------------------------------------------------------------------------
    def _label_sessions(self) -> Iterator[SessionLabels]:
        sessions, bad = _RowReader(self).read()
        if bad:
            self._note([Problem("bad_cell",
                                f"{self.csv_path}: {len(bad)} row(s) skipped: {examples(bad)}",
                                path=self.csv_path)])
        if not sessions and not bad:
            raise PattnetError(f"{self.csv_path}: the manifest has no rows")
        for (subject, session), rows in sessions.items():
            yield self._session_labels(subject, session, rows)

    def _session_labels(self, subject: str, session: str, rows: list[_ManifestRow]) -> SessionLabels:
        """Identical duplicate rows merged, frames whose rows differ skipped, uncoded frames left
        out. A picture given on several rows as several frames counts as a duplicate too: the
        same labels are kept once, differing ones are all skipped."""
        lab = SessionLabels(subject, session, [], [], sources=[])
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
        # one image (or video frame) given as several frames: the same picture labelled twice
        by_source: dict[tuple[Path, int | None], list[int]] = {}
        for f, (_, source, sframe, _) in sorted(by_frame.items()):
            by_source.setdefault((source, sframe), []).append(f)
        for frames in (fs for fs in by_source.values() if len(fs) > 1):
            lines = [by_frame[f][0] for f in frames]
            dups.append(f"{by_frame[frames[0]][1].name} at lines {', '.join(map(str, lines))}")
            same = len({by_frame[f][3] for f in frames}) == 1
            conflicts.extend(frames[1:] if same else frames)
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
                f"{self.csv_path}: {len(dups)} duplicate frame row(s) ({examples(dups)}); "
                "identical rows merged"
                + (f", {len(set(conflicts))} frame(s) with differing or repeated rows skipped"
                   if conflicts else ""),
                subject, session, self.csv_path, tuple(sorted(set(conflicts))),
            ))
        if not lab.frames:
            why = ("every frame's rows conflict" if conflicts and not by_frame
                   else "every AU is -1/empty")
            lab.problems.append(Problem(
                "empty_session", f"{self.csv_path}: no coded frames ({why})",
                subject, session, self.csv_path))
        return lab

    # -- frame sources --------------------------------------------------------------------------
    def _resolve(self, lab: SessionLabels) -> tuple[list[FrameRecord], list[Problem]]:
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
            if sframe is not None and not self._in_video(lab, source, sframe, videos, problems):
                beyond.append(f)
                continue
            records.append(FrameRecord(lab.subject, lab.session, f, source, sframe, y))
        if missing:
            problems.append(Problem(
                "missing_image",
                f"{len(missing)} labelled frame(s) whose file is missing ("
                f"{examples(sorted(set(missing)))}); they are skipped",
                lab.subject, lab.session, None, tuple(missing_frames),
            ))
        if beyond:
            problems.append(Problem(
                "missing_image",
                f"{len(beyond)} labelled frame(s) outside their video's length or in an "
                f"unreadable video (frames {examples(beyond)}); they are skipped",
                lab.subject, lab.session, None, tuple(beyond),
            ))
        return records, problems

    @staticmethod
    def _in_video(
        lab: SessionLabels, video: Path, index: int, lengths: dict[Path, int], problems: list[Problem]
    ) -> bool:
        """Whether frame ``index`` lies within ``video``; each video is probed once (``lengths``
        caches it, -1 for an unreadable one, whose problem is noted the first time)."""
        if video not in lengths:
            try:
                lengths[video] = video_length(video)
            except PattnetError as exc:
                problems.append(Problem("missing_source", str(exc), lab.subject, lab.session, video))
                lengths[video] = -1
        n = lengths[video]
        return not (n < 0 or (n and index >= n))


class _RowReader:
    """The manifest's rows grouped by session, each row checked; bad rows are collected with
    their line numbers, never dropped silently.

    Why apart from the adapter: the adapter knows what the columns mean, this knows how one row
    is read, and an image row without a frame number takes its position among the rows read so
    far in its session.
    """

    def __init__(self, adapter: ManifestAdapter):
        self.csv_path = adapter.csv_path
        self.base = adapter.base
        self.columns = adapter.columns
        self.aus = adapter.aus
        self.au_cols = adapter._au_cols
        self.default_session = adapter.DEFAULT_SESSION
        self.counters: dict[_Key, int] = {}

    def read(self) -> tuple[dict[_Key, list[_ManifestRow]], list[str]]:
        """(subject, session) -> [(line, frame, source, source_frame, labels)], bad rows."""
        sessions: dict[_Key, list[_ManifestRow]] = {}
        bad: list[str] = []
        with self.csv_path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            next(reader)
            try:
                for row in reader:
                    line = reader.line_num
                    if not any(c.strip() for c in row):
                        continue
                    try:
                        key, entry = self._parse_row(row, line)
                    except _BadRow as exc:
                        bad.append(str(exc))
                        continue
                    self.counters[key] = self.counters.get(key, 0) + 1
                    sessions.setdefault(key, []).append(entry)
            except (csv.Error, UnicodeDecodeError) as exc:
                raise PattnetError(
                    f"{self.csv_path}: unreadable CSV at line {reader.line_num} ({exc})"
                ) from exc
        return sessions, bad

    def _cell(self, row: list[str], name: str) -> str:
        i = self.columns.get(name)
        return row[i].strip() if i is not None and i < len(row) else ""

    def _parse_row(self, row: list[str], line: int) -> tuple[_Key, _ManifestRow]:
        subject = self._cell(row, "subject")
        session = self._cell(row, "session") or self.default_session
        if not subject:
            raise _BadRow(f"line {line}: empty subject")
        key = (subject, session)
        frame, source, source_frame = self._source(row, line, self.counters.get(key, 0))
        return key, (line, frame, source, source_frame, self._labels(row, line))

    def _source(self, row: list[str], line: int, position: int) -> tuple[int, Path, int | None]:
        """frame number, file, index into the file (None for an image)."""
        img, vid, fr = self._cell(row, "path"), self._cell(row, "video"), self._cell(row, "frame")
        frame = parse_int(fr) if fr else None
        if fr and (frame is None or frame < 0):
            raise _BadRow(f"line {line}: frame {fr!r} is not a frame number")
        if img:
            return (position if frame is None else frame), self.base / img, None
        if vid:
            if frame is None:
                raise _BadRow(f"line {line}: a video row needs a frame index")
            return frame, self.base / vid, frame
        raise _BadRow(f"line {line}: neither path nor video given")

    def _labels(self, row: list[str], line: int) -> tuple[int, ...]:
        labels = []
        for a, i in zip(self.aus, self.au_cols, strict=True):
            raw = row[i].strip() if i < len(row) else ""
            v = parse_int(raw) if raw else -1
            if v not in (1, 0, -1, 9):
                raise _BadRow(f"line {line}: {au_name(a)} = {raw!r} is not 1, 0, -1 "
                              "(or 9 / empty for not coded)")
            labels.append(-1 if v == 9 else v)
        return tuple(labels)
