"""Person references for subject-normalised models: what each face is scored against.

Why: a model trained with ``normalize: subject`` scores each face as its difference from that
person's reference face (and mesh), :mod:`pattnet.store.reference`. Which reference
(``Detector(reference=...)``, ``pattnet detect --reference``):

* ``neutral``: the person's face with no AU on, estimated as the mean of the frames the model
  finds least expressive when it scores them against the population's neutral face
  (:func:`~pattnet.store.reference.least_expressive`). An AU the person shows most of the time
  stays out of it, so it still reads as on. What a model trained with ``reference: neutral``
  was trained against.
* ``mean``: the running mean of the person's frames. An AU that is on most of the time becomes
  part of the reference and then reads as off (and its absence as the opposite movement); what
  a model trained with ``reference: mean`` expects.
* ``prior``: the training population's neutral face for everyone: a photo has no other frame
  of its person.
* a :class:`PersonReference`: the person's own reference given up front (a neutral photo of
  them, or a folder of their photos pooled): the most accurate choice a user can make.
* ``auto`` (default): ``prior`` for a photo; for a video or a webcam what the model was
  trained with (its file's ``person_reference``).

A video's first ``calibration_frames`` frames are held back until the person is known, then
scored against the reference of all of them; later frames use the reference of the frames so
far (the estimate moves on as the video goes).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pattnet.errors import PattnetError
from pattnet.store.reference import NEUTRAL_SHARE, REFERENCES, expressiveness, least_expressive

if TYPE_CHECKING:
    from pattnet.detect.pipeline import Arrays, _Item
    from pattnet.store.reference import RunningReference

#: The reference choices by name (a :class:`PersonReference` is the other kind of choice).
CHOICES: tuple[str, ...] = ("auto", "prior", *REFERENCES)
#: Frames scored against the population at once to find the least expressive ones after the
#: calibration frames (the model's unit of work; a webcam scores each frame as it comes).
_CHUNK = 32


@dataclass(frozen=True)
class PersonReference:
    """One person's reference, by input kind (``mesh``: (478, 3) canonical mesh; ``patches``:
    the mean patches, 0-255 scale), and what it was made from (for messages and the CSV)."""

    arrays: dict[str, np.ndarray]
    origin: str
    frames: int = 1


def first_faces(producer: Any) -> list[Arrays]:
    """The model inputs of the first face of every frame a started :class:`~pattnet.detect.
    pipeline.FrameProducer` makes (it is closed at the end, or on a failure)."""
    from pattnet.detect.pipeline import _End, _Failure

    faces: list[Arrays] = []
    producer.start()
    try:
        while not isinstance(item := producer.get(), _End):
            if isinstance(item, _Failure):
                raise item.exc
            faces.extend(item.inputs[:1])
    finally:
        producer.close()
    return faces


def person_reference(faces: list[Arrays], mode: str, origin: str,
                     score_prior: Callable[[dict[str, np.ndarray]], np.ndarray]
                     ) -> PersonReference:
    """One person's reference from their ``faces``: the ``mean`` of all, or the ``neutral``
    (their least expressive, as the model scores them against the population)."""
    if mode not in REFERENCES:
        raise PattnetError(f"a person's reference is the mean or the neutral of their faces, "
                           f"not {mode!r}")
    if not faces:
        raise PattnetError(f"{origin}: no face found to make the person's reference from")
    stacked = {k: np.stack([f[k] for f in faces]) for k in faces[0]}
    rows = least_expressive(score_prior(stacked)) if mode == "neutral" else np.arange(len(faces))
    arrays = {k: np.nanmean(v[rows].astype(np.float32), axis=0) for k, v in stacked.items()}
    return PersonReference(arrays, origin, len(rows))


def check_choice(choice: str | PersonReference) -> str | PersonReference:
    """``choice`` if it is one the detector knows, else one clear error."""
    if isinstance(choice, PersonReference) or choice in CHOICES:
        return choice
    raise PattnetError(f"reference must be one of {', '.join(CHOICES)} or a person's reference "
                       f"(a photo), not {choice!r}")


class NeutralEstimate:
    """Per tracked face: the mean of its least expressive frames so far, from a prior.

    Each face keeps the ``keep`` least expressive frames it has shown (a bounded heap, so memory
    does not grow with the video) and averages the lowest ``share`` of its frames among them
    (at least one, at most ``keep``): early frames that turn out to be expressive leave the
    estimate as soon as calmer ones arrive. ``prior_weight`` frames' worth of the population's
    neutral face is mixed in, scaled by ``share``: few frames make the estimate, and each
    counts for more.
    """

    def __init__(self, priors: dict[str, np.ndarray], prior_weight: float,
                 share: float = NEUTRAL_SHARE, keep: int = 64) -> None:
        self.priors = {k: np.asarray(v, dtype=np.float32) for k, v in priors.items()}
        self.weight = float(prior_weight) * share
        self.share = share
        self.keep = int(keep)
        self._heap: dict[int, list[tuple[float, int, Arrays]]] = {}
        self._n: dict[int, int] = {}

    def update(self, face_id: int, x: Arrays, prob: np.ndarray) -> None:
        """One frame of the face (``prob``: its AU probabilities against the prior)."""
        e = float(expressiveness(np.asarray(prob)[None])[0])
        n = self._n[face_id] = self._n.get(face_id, 0) + 1
        heap = self._heap.setdefault(face_id, [])
        item = (-e, n, {k: np.asarray(x[k], dtype=np.float32) for k in self.priors})
        if len(heap) < self.keep:
            heapq.heappush(heap, item)
        elif -e > heap[0][0]:  # calmer than the most expressive frame kept
            heapq.heapreplace(heap, item)

    def reference(self, face_id: int) -> Arrays:
        heap = self._heap.get(face_id)
        if not heap:
            return dict(self.priors)
        k = min(len(heap), max(1, int(round(self.share * self._n[face_id]))))
        chosen = heapq.nlargest(k, heap)  # the k least expressive (largest -e)
        out = {}
        for kind, p in self.priors.items():
            acc = np.sum([np.nan_to_num(c[2][kind], nan=0.0) for c in chosen], axis=0,
                         dtype=np.float64)
            out[kind] = ((acc + self.weight * p) / (k + self.weight)).astype(np.float32)
        return out


class Calibration:
    """The per-face references of one input, and the frames held back for them.

    Without a subject-normalised model (or with the population prior) it passes every item
    straight through: the detector then uses the model's population references.
    """

    def __init__(self, *, running: dict[str, RunningReference] | None = None,
                 neutral: NeutralEstimate | None = None, fixed: Arrays | None = None,
                 hold: int = 0, chunk: int = _CHUNK,
                 score_prior: Callable[[dict[str, np.ndarray]], np.ndarray] | None = None) -> None:
        self._running = running or None
        self._neutral = neutral
        self._fixed = fixed
        if neutral is not None and score_prior is None:
            raise ValueError("a neutral estimate needs the model's scores against the prior")
        self._score_prior = score_prior
        active = self._running is not None or self._neutral is not None
        self._left = hold if active else 0
        self._chunk = max(1, int(chunk))
        self._held: list[_Item] = []

    @classmethod
    def for_source(cls, checkpoint: Any, source: str | Path | int, frames: int,
                   prior_weight: float, choice: str | PersonReference = "auto", *,
                   score_prior: Callable[[dict[str, np.ndarray]], np.ndarray] | None = None,
                   live: bool = False) -> Calibration:
        """The calibration ``checkpoint`` needs for ``source`` under ``choice`` (held-back
        frames only for a video or a webcam)."""
        if checkpoint.normalize != "subject":
            return cls()
        from pattnet.detect.sources import is_moving

        if isinstance(choice, PersonReference):
            return cls(fixed=choice.arrays)
        moving = is_moving(source)
        mode = choice if choice != "auto" else (checkpoint.person_reference if moving else "prior")
        if mode == "prior" or not moving:
            # a photo alone: its own frame as its reference would show no AU at all
            return cls()
        priors = {k: checkpoint.mesh_reference if k == "mesh" else checkpoint.reference
                  for k in checkpoint.input_kinds}
        chunk = 1 if live else _CHUNK
        if mode == "neutral":
            return cls(neutral=NeutralEstimate(priors, prior_weight), hold=frames, chunk=chunk,
                       score_prior=score_prior)
        from pattnet.store.reference import RunningReference

        running = {k: RunningReference(prior, prior_weight) for k, prior in priors.items()}
        return cls(running=running, hold=frames)

    def ready(self, item: _Item) -> list[_Item]:
        """Items ready to score once ``item`` has arrived, each with its references."""
        if self._fixed is not None:
            item.refs = [dict(self._fixed) for _ in item.face_ids()]
            return [item]
        if self._neutral is not None:
            self._held.append(item)
            if len(self._held) >= (self._left if self._left > 0 else self._chunk):
                return self._release()
            return []
        if self._running is None:
            return [item]
        for fid, x in zip(item.face_ids(), item.inputs, strict=True):
            for kind, running in self._running.items():
                if np.isfinite(x[kind]).all():
                    running.update(fid, x[kind])
        if self._left > 0:
            self._held.append(item)
            return self._release() if len(self._held) >= self._left else []
        item.refs = [self._refs(fid) for fid in item.face_ids()]
        return [item]

    def _refs(self, face_id: int) -> dict[str, np.ndarray]:
        assert self._running is not None
        return {k: r.reference(face_id) for k, r in self._running.items()}

    def flush(self) -> list[_Item]:
        """The items still held back (the input ended before calibration did)."""
        return self._release() if self._held else []

    def _release(self) -> list[_Item]:
        """The held-back items with their references: during calibration every face against
        the reference of all its held frames, afterwards each frame against the reference of
        the frames up to it."""
        first, self._left = self._left > 0, 0
        held, self._held = self._held, []
        if self._neutral is not None:
            self._release_neutral(held, first)
        else:
            refs = {fid: self._refs(fid) for it in held for fid in it.face_ids()}
            for it in held:
                it.refs = [refs[fid] for fid in it.face_ids()]
        return held

    def _release_neutral(self, held: list[_Item], first: bool) -> None:
        assert self._neutral is not None and self._score_prior is not None
        est = self._neutral
        faces = [(it, fid, x) for it in held for fid, x in zip(it.face_ids(), it.inputs,
                                                               strict=True)]
        if not faces:
            for it in held:
                it.refs = []
            return
        prob = self._score_prior({k: np.stack([x[k] for _, _, x in faces]) for k in faces[0][2]})
        if first:
            for (_, fid, x), p in zip(faces, prob, strict=True):
                est.update(fid, x, p)
            refs = {fid: est.reference(fid) for _, fid, _ in faces}
            for it in held:
                it.refs = [refs[fid] for fid in it.face_ids()]
            return
        k = 0
        for it in held:
            it.refs = []
            for fid, x in zip(it.face_ids(), it.inputs, strict=True):
                est.update(fid, x, prob[k])
                it.refs.append(est.reference(fid))
                k += 1


__all__ = ["CHOICES", "Calibration", "NeutralEstimate", "PersonReference", "check_choice",
           "first_faces", "person_reference"]
