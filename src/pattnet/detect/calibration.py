"""Person references for subject-normalised models: the first frames wait until the person is known.

Why: a model trained with ``normalize: subject`` scores each face against that person's mean face
and mean mesh (:mod:`pattnet.store.reference`). The first frames of a video would otherwise be
scored against a reference made of almost nothing but themselves, so they are held back until
``calibration_frames`` have been seen, then scored against the mean over all of them; later
frames use the running mean of the frames so far. A photo has only itself and is not held back:
it is scored against (mostly) the training population's mean, the documented prior.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from pattnet.detect.pipeline import _Item
    from pattnet.store.reference import RunningReference


class Calibration:
    """The running per-face references of one input (one per input kind), and the frames held
    back for them.

    Without a subject-normalised model it passes every item straight through (no reference: the
    detector uses the model's population references).
    """

    def __init__(self, running: dict[str, RunningReference] | None, frames: int) -> None:
        self._running = running or None
        self._left = frames if self._running is not None else 0
        self._held: list[_Item] = []

    @classmethod
    def for_source(cls, checkpoint: Any, source: str | Path | int, frames: int,
                   prior_weight: float) -> Calibration:
        """The calibration ``checkpoint`` needs for ``source`` (held-back frames only for a video
        or a webcam)."""
        if checkpoint.normalize != "subject":
            return cls(None, 0)
        from pattnet.detect.sources import is_moving
        from pattnet.store.reference import RunningReference

        priors = {k: checkpoint.mesh_reference if k == "mesh" else checkpoint.reference
                  for k in checkpoint.input_kinds}
        running = {k: RunningReference(prior, prior_weight) for k, prior in priors.items()}
        return cls(running, frames if is_moving(source) else 0)

    def ready(self, item: _Item) -> list[_Item]:
        """Items ready to score once ``item`` has arrived, each with its references."""
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
        """The held-back items, each face scored against its mean over all of them."""
        self._left = 0
        refs = {fid: self._refs(fid) for it in self._held for fid in it.face_ids()}
        for it in self._held:
            it.refs = [refs[fid] for fid in it.face_ids()]
        out, self._held = self._held, []
        return out


__all__ = ["Calibration"]
