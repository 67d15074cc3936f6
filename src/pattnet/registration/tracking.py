"""Face ids across frames: which face of this frame is which face of the last one.

Why an optimal assignment (:func:`scipy.optimize.linear_sum_assignment` on the box overlaps)
and not "best overlap first": when two faces are close, taking the single best pair first can
leave the other face without its track, and it then gets a new id although its box still
overlaps its old one. Where one overlap is clearly each face's own, both give the same ids.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in source pixels


def box_iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes (face tracking across frames)."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def ids_left_to_right(boxes: Sequence[Box]) -> list[int]:
    """Photo ids: by box centre from left to right, so the same photo always gives the same ids."""
    order = sorted(range(len(boxes)), key=lambda i: (boxes[i][0] + boxes[i][2]) / 2)
    ids = [0] * len(boxes)
    for rank, i in enumerate(order):
        ids[i] = rank
    return ids


class FaceTracker:
    """Keeps face ids stable over a video by matching each frame's boxes to the last frame's.

    A face keeps its id when its box overlaps a box of the previous frame by at least
    ``min_iou`` (the assignment maximises the total overlap of the kept pairs); any other face
    takes the smallest free id, so a single face that is lost and found again stays 0.
    """

    def __init__(self, min_iou: float) -> None:
        self.min_iou = float(min_iou)
        self._tracks: list[tuple[int, Box]] = []

    def reset(self) -> None:
        """Forget every face (the start of a new video)."""
        self._tracks = []

    def assign(self, boxes: Sequence[Box]) -> list[int]:
        """The id of each box of this frame, in the order given; remembered for the next frame."""
        ids: list[int | None] = [None] * len(boxes)
        for fi, ti in self._matches(boxes):
            ids[fi] = self._tracks[ti][0]
        taken = {i for i in ids if i is not None}
        for fi, known in enumerate(ids):
            if known is None:
                nid = 0
                while nid in taken:
                    nid += 1
                ids[fi] = nid
                taken.add(nid)
        out = [int(i) for i in ids if i is not None]
        self._tracks = [(i, (b[0], b[1], b[2], b[3])) for i, b in zip(out, boxes, strict=True)]
        return out

    def _matches(self, boxes: Sequence[Box]) -> list[tuple[int, int]]:
        """(box, track) pairs of the largest total overlap, each pair at least ``min_iou``."""
        if not boxes or not self._tracks:
            return []
        iou = np.array([[box_iou(b, t) for _, t in self._tracks] for b in boxes])
        weight = np.where(iou >= self.min_iou, iou, 0.0)  # too little overlap: no pair
        rows, cols = linear_sum_assignment(weight, maximize=True)
        return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True)
                if iou[r, c] >= self.min_iou]
