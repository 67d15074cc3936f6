"""Occurrence over time: an AU of a video turns on above its threshold plus a margin and off below
its threshold minus the margin (hysteresis), per face.

Why: a face's AU probabilities move from frame to frame with registration jitter even when the
face does not; with a single threshold an AU whose probability sits near it switches on and off
every few frames. The margin keeps an occurrence until the probability has clearly crossed back,
so on/off runs last as long as the expression does. Only the ``*_c`` columns change; ``*_p`` are
the model's probabilities as they are. A photo has no history and uses the plain threshold.
"""

from __future__ import annotations

import numpy as np

from pattnet.detect.schema import FrameResult


class Occurrence:
    """The running on/off state of every AU of every tracked face of one input."""

    def __init__(self, threshold: np.ndarray, margin: float) -> None:
        self.threshold = np.asarray(threshold, dtype=np.float64)
        self.margin = float(margin)
        self._on: dict[int, np.ndarray] = {}

    def update(self, fr: FrameResult) -> FrameResult:
        """Set ``occurrence`` of each scored face of ``fr`` (frames must come in order)."""
        for f in fr.faces:
            if f.prob is None or not f.success:
                continue
            p = np.asarray(f.prob, dtype=np.float64)
            prev = self._on.get(f.face_id)
            if prev is None or self.margin <= 0:
                on = p >= self.threshold
            else:
                on = np.where(prev, p >= self.threshold - self.margin,
                              p >= self.threshold + self.margin)
            self._on[f.face_id] = on
            f.occurrence = on
        return fr


__all__ = ["Occurrence"]
