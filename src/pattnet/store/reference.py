"""Person-specific normalisation: each face is fed to the model as its difference from that
person's mean face.

Why: most of what differs between two registered faces is who they are (skin, brows, lip shape,
glasses), not which AUs are on. With few training subjects a network learns the people; the
difference from a person's own mean face keeps what changes over time, which is what AUs are.
OpenFace 2.0 does the same for its AU models (person-specific calibration by a running median of
the features over a video). Labels are never used, so the test subjects' references are
legitimate: detection computes them the same way from the video it is given.

- training (:func:`subject_references`): the mean of up to ``max_frames`` frames per subject,
  spread evenly over the subject's frames, read a block at a time (memory bounded by the block);
- detection (:class:`RunningReference`): per tracked face, the mean of the frames seen so far,
  pulled toward the training population's mean face while few frames have been seen.

Which frames make the reference (``Reference``): ``mean``, all of them (the person's average
face); ``neutral``, the person's face with no AU on. The mean absorbs an AU that is on most of
the time (a lip press held while listening becomes the reference, and its absence then reads as
the opposite movement), so a model trained against neutral references gets them: in training
the frames with no labelled AU (labels of training people only), for people seen without labels
(held-out folds, detection) the frames the model itself finds least expressive against the
population's neutral face (:func:`least_expressive`): the same question OpenFace's calibration
asks of the lower part of a person's output distribution.
"""

from __future__ import annotations

import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import numpy as np

from pattnet.errors import PattnetError
from pattnet.io.atomic import atomic_path
from pattnet.store.reader import PatchStore

#: How a model's input is normalised (TrainConfig.normalize, kept in the model file): ``global``,
#: the paper's fixed mean/std; ``subject``, the difference from the person's mean face.
Normalize = Literal["global", "subject"]
MODES: tuple[str, ...] = typing.get_args(Normalize)
#: Which of a person's frames make their reference (TrainConfig.reference, kept in the model file).
Reference = Literal["mean", "neutral"]
REFERENCES: tuple[str, ...] = typing.get_args(Reference)
#: Share of a person's frames, the least expressive, averaged for a neutral reference estimated
#: without labels. Small enough that an AU on in 80 % of the frames stays out of it; large
#: enough that a few seconds of video give a dozen frames.
NEUTRAL_SHARE = 0.15


def expressiveness(prob: np.ndarray) -> np.ndarray:
    """How much of any AU a frame shows: the sum of its AU probabilities ((N, A) -> (N,)).

    Why a sum of probabilities: an AU the person shows in every frame (or that their face reads
    as against the population) adds a constant and does not change which frames are least
    expressive, while a mouth opened to speak counts, once the model reports it (AU25/26)."""
    return np.asarray(prob, dtype=np.float64).sum(axis=1)


def least_expressive(prob: np.ndarray, share: float = NEUTRAL_SHARE) -> np.ndarray:
    """Rows of ``prob`` (one person's frames) whose expressiveness is among the lowest
    ``share`` (at least one row), in row order: the frames a neutral reference averages."""
    e = expressiveness(prob)
    if len(e) == 0:
        return np.zeros(0, dtype=np.int64)
    k = max(1, int(round(share * len(e))))
    return np.sort(np.argsort(e, kind="stable")[:k])


def neutral_rows(labels: np.ndarray) -> np.ndarray:
    """Boolean mask of a person's frames (labels (N, A) of 1/0/-1) that have no AU on: the
    frames with the fewest labelled AUs, which is none wherever such frames exist."""
    lab = np.asarray(labels)
    if len(lab) == 0:
        return np.zeros(0, dtype=bool)
    on = (lab == 1).sum(axis=1)
    return on == on.min()


def subject_references(
    store: PatchStore,
    kind: str,
    subjects: Iterable[str],
    usable: np.ndarray | None = None,
    max_frames: int = 500,
    block: int = 256,
    reference: Reference = "mean",
) -> dict[str, np.ndarray]:
    """Mean ``kind`` sample (float32) of each subject: its mean face (0-255 scale) for an image
    kind, its mean canonical mesh for ``mesh`` (frames without a mesh left out).

    ``usable`` (bool per store row) limits the frames used (e.g. ``store.success``).
    ``reference``: ``neutral`` averages only the subject's frames with no labelled AU
    (:func:`neutral_rows`): for training subjects, whose labels the model may see.
    """
    subj = store.subjects
    out: dict[str, np.ndarray] = {}
    for s in subjects:
        mine = subj == s
        idx = np.flatnonzero(mine if usable is None else mine & usable)
        if reference == "neutral" and len(idx):
            idx = idx[neutral_rows(store.labels[idx])]
        out_s = mean_of_rows(store, kind, idx, max_frames, block)
        if out_s is not None:
            out[str(s)] = out_s
    return out


def mean_of_rows(store: PatchStore, kind: str, idx: np.ndarray, max_frames: int = 500,
                 block: int = 256) -> np.ndarray | None:
    """Mean ``kind`` sample (float32) of store rows ``idx`` (at most ``max_frames`` of them,
    spread evenly), read a block at a time; None for no rows."""
    if len(idx) == 0:
        return None
    if len(idx) > max_frames:
        idx = idx[np.linspace(0, len(idx) - 1, max_frames).round().astype(np.int64)]
    acc: np.ndarray | None = None
    count: np.ndarray | int = 0
    for i in range(0, len(idx), block):
        raw = store.read(kind, idx[i:i + block])
        if raw.dtype.kind == "f":  # a mesh: frames without one (NaN) do not count
            seen = np.isfinite(raw)
            count = count + seen.sum(axis=0)
            part = np.where(seen, raw, 0.0).astype(np.float64).sum(axis=0)
        else:
            count = count + len(raw)
            part = raw.astype(np.float64).sum(axis=0)
        acc = part if acc is None else acc + part
    assert acc is not None
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = acc / count  # NaN only where no frame of the subject has a value
    return mean.astype(np.float32)


def population_reference(refs: dict[str, np.ndarray], subjects: Iterable[str]) -> np.ndarray:
    """Mean of the given subjects' references: the prior for a face seen for the first time."""
    arr = [refs[s] for s in subjects if s in refs]
    if not arr:
        raise ValueError("no subject references to average")
    return np.mean(np.stack(arr), axis=0).astype(np.float32)


class RunningReference:
    """Per tracked face: the running mean face, starting from a prior.

    ``reference(face) = (sum of its frames + prior_weight * prior) / (count + prior_weight)``:
    the first frames lean on the population mean (a single frame would otherwise be its own
    reference and show no AU at all); after a few seconds of video the person's own mean
    dominates. Memory: one float sum per tracked face.
    """

    def __init__(self, prior: np.ndarray, prior_weight: float = 10.0):
        self.prior = np.asarray(prior, dtype=np.float32)
        self.prior_weight = float(prior_weight)
        self._sum: dict[int, np.ndarray] = {}
        self._count: dict[int, int] = {}

    def update(self, face_id: int, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float32)
        if x.shape != self.prior.shape:
            raise ValueError(f"face shape {x.shape} does not match the reference {self.prior.shape}")
        if face_id in self._sum:
            self._sum[face_id] += x
            self._count[face_id] += 1
        else:
            self._sum[face_id] = x.copy()
            self._count[face_id] = 1

    def count(self, face_id: int) -> int:
        return self._count.get(face_id, 0)

    def reference(self, face_id: int) -> np.ndarray:
        n = self._count.get(face_id, 0)
        if n == 0:
            return self.prior
        w = self.prior_weight
        return (self._sum[face_id] + w * self.prior) / (n + w)


def save_references(path: str | Path, refs: dict[str, np.ndarray]) -> None:
    """Write subject -> mean face (a run's ``references.npz``) atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **{f"s_{k}": v for k, v in refs.items()})


def load_references(path: str | Path) -> dict[str, np.ndarray]:
    """Subject -> mean face, as :func:`save_references` wrote it."""
    p = Path(path)
    try:
        with np.load(p) as z:
            return {k[2:]: z[k] for k in z.files}
    except (OSError, ValueError, KeyError) as exc:
        raise PattnetError(f"{p}: missing or unreadable subject references "
                           f"({type(exc).__name__})") from exc


__all__ = [
    "MODES",
    "NEUTRAL_SHARE",
    "REFERENCES",
    "Normalize",
    "Reference",
    "RunningReference",
    "expressiveness",
    "least_expressive",
    "load_references",
    "mean_of_rows",
    "neutral_rows",
    "population_reference",
    "save_references",
    "subject_references",
]
