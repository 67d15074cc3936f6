"""Finding each labelled frame's source: a numbered image in a folder, or an index into a video.

Why here and not in each adapter: BP4D, DISFA (extracted frames) and any folder of numbered
images share one way of matching frame numbers to files, and DISFA's videos and a manifest's
video rows share one length check. Labelled frames without a source are reported, never dropped
without a word.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pattnet.datasets.base import examples
from pattnet.datasets.records import FrameRecord, Problem, SessionLabels
from pattnet.errors import PattnetError

#: Image files an adapter accepts as a frame (the stem must be the frame number).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def index_images(folder: Path) -> tuple[dict[int, Path], list[Problem]]:
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
            f"({examples(clashes)}); the first name in sort order is used",
            path=folder,
        ))
    return index, problems


def video_length(path: Path) -> int:
    """Frame count the container declares (0 when unknown). Only a hint: containers lie, so
    prepare still checks every decode; this catches a label track far longer than the video."""
    from pattnet.io.probe import probe_video

    return probe_video(path).frames


def resolve_images(
    lab: SessionLabels, folder: Path, hint: str, offset: int = 0
) -> tuple[list[FrameRecord], list[Problem]]:
    """Records for frames stored as numbered images in ``folder`` (image number = frame +
    offset); labelled frames without an image are reported, the others kept."""
    if not folder.is_dir():
        return [], [Problem(
            "missing_source",
            f"image folder {folder} not found; {len(lab.frames)} labelled frame(s) skipped{hint}",
            lab.subject, lab.session, folder, tuple(lab.frames),
        )]
    index, problems = index_images(folder)
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
            f"(frames {examples(missing)}); they are skipped",
            lab.subject, lab.session, folder, tuple(missing),
        ))
    return records, problems


def resolve_video(
    lab: SessionLabels, video: Path, frames: Sequence[int], offset: int = 0
) -> tuple[list[FrameRecord], list[Problem]]:
    """Records pointing into ``video`` at frame index (frame + offset); frames past the length
    the container declares are reported."""
    if not video.is_file():
        return [], [Problem(
            "missing_source", f"video {video} not found; {len(frames)} labelled frame(s) skipped",
            lab.subject, lab.session, video, tuple(frames),
        )]
    try:
        n = video_length(video)
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
            f"frames (frames {examples(beyond)}); they are skipped",
            lab.subject, lab.session, video, tuple(beyond),
        ))
    return records, problems
