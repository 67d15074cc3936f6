"""What an adapter hands on: labelled frames, grouped by session, with their problems attached.

Why records carry a path and not pixels: decoding is prepare's job, so building records stays
cheap and ``pattnet stats`` never touches an image. Why problems travel with the session: nothing
is silently lost, and prepare writes each session's problems into its report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


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
class SessionLabels:
    """A session's labels as read from the label files, before any frame source is looked up."""

    subject: str
    session: str
    frames: list[int]
    labels: list[tuple[int, ...]]
    problems: list[Problem] = field(default_factory=list)
    # adapter-specific: where the frames come from (e.g. the video path of a manifest row)
    sources: list[tuple[Path, int | None]] | None = None
