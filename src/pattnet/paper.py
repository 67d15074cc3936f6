"""The numbers the PAttNet paper (BMVC 2019) reports, so that every evaluation sits beside them.

Why as data here: ``evaluate`` and ``report`` print our results next to the paper's, and a
reader must be able to check each figure against the paper without opening it. All values are
BP4D, subject-independent 3-fold cross-validation, per AU, in percent, exactly as printed in
the paper (Tables 1-3); averages are the paper's own (over its 12 AUs), not recomputed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from pattnet.constants import BP4D_AUS

#: AUs the paper reports, in the paper's column order.
PAPER_AUS: tuple[int, ...] = BP4D_AUS
#: The only dataset the paper reports numbers for.
PAPER_DATASET = "bp4d"


@dataclass(frozen=True)
class PaperRow:
    """One row of a paper table: a method's per-AU values and the average the paper printed."""

    label: str
    metric: str  # "f1" or "auc"
    values: Mapping[int, float]  # AU -> percent
    avg: float  # percent, as printed

    def get(self, au: int) -> float | None:
        """The paper's value for ``au``, or None when the paper has no such AU."""
        return self.values.get(int(au))


def _row(label: str, metric: str, vals: tuple[float, ...], avg: float) -> PaperRow:
    assert len(vals) == len(PAPER_AUS)
    return PaperRow(label, metric, MappingProxyType(dict(zip(PAPER_AUS, vals, strict=True))), avg)


#: Table 1, F1 of PAttNet with sigmoid attention (the paper's method).
F1_PATTNET = _row(
    "PAttNet (paper)", "f1",
    (46.1, 41.4, 57.1, 77.9, 76.2, 83.8, 88.4, 66.5, 51.2, 61.6, 44.1, 57.3), 62.6,
)
#: Table 1, F1 of the softmax-attention ablation.
F1_SOFTMAX = _row(
    "softmax attention (paper)", "f1",
    (37.2, 28.4, 41.5, 73.4, 69.8, 79.3, 82.0, 58.7, 32.7, 58.5, 39.8, 49.2), 54.2,
)
#: Table 1, F1 of the holistic CNN baseline (whole face, 200x200).
F1_HOLISTIC = _row(
    "holistic CNN (paper)", "f1",
    (45.3, 37.2, 55.5, 76.3, 74.0, 82.2, 87.3, 65.6, 51.6, 61.3, 47.1, 50.8), 61.2,
)
#: Table 2, AUC of PAttNet.
AUC_PATTNET = _row(
    "PAttNet (paper)", "auc",
    (66.5, 65.6, 74.4, 78.6, 71.8, 78.5, 86.4, 65.4, 72.1, 70.1, 68.0, 74.8), 72.7,
)

#: Table 1 rows in the paper's order.
F1_ROWS: tuple[PaperRow, ...] = (F1_PATTNET, F1_SOFTMAX, F1_HOLISTIC)
#: Table 2 rows.
AUC_ROWS: tuple[PaperRow, ...] = (AUC_PATTNET,)

#: Paper row matching each model name of a run (``run.json`` "model").
F1_BY_MODEL: Mapping[str, PaperRow] = MappingProxyType(
    {"pattnet": F1_PATTNET, "pattnet-softmax": F1_SOFTMAX, "holistic": F1_HOLISTIC}
)

#: Table 3, best single patch per AU: AU -> (patch number 1..9, F1 percent).
BEST_SINGLE_PATCH: Mapping[int, tuple[int, float]] = MappingProxyType({
    1: (1, 39.5), 2: (1, 36.3), 4: (4, 46.1), 6: (7, 73.2), 7: (2, 75.6), 10: (6, 80.6),
    12: (7, 83.9), 14: (7, 61.4), 15: (8, 45.7), 17: (7, 58.1), 23: (7, 42.9), 24: (7, 52.4),
})

#: Later published BP4D F1 averages (same 3-fold protocol), for context only.
LATER_BP4D_F1_AVG: Mapping[str, float] = MappingProxyType({
    "JAA-Net": 60.0, "ME-GraphAU": 65.5, "CLEF": 65.9, "MDHR": 66.6, "FMAE-IAT": 67.1,
})

#: Patch regions (paper section 3.2), image left/right as seen in the registered frame.
PATCH_REGIONS: Mapping[int, str] = MappingProxyType({
    1: "right eyebrow", 2: "left eyebrow", 3: "right eye", 4: "between eyebrows and nose root",
    5: "left eye", 6: "right cheek and lip corner", 7: "nose and upper mouth",
    8: "left cheek and lip corner", 9: "mouth and chin",
})
