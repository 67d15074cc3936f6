"""What the demo checks its results against: the paper's attention locations and the schedule.

Both answers are known in advance (the paper's Fig. 4; the synthetic video's schedule), so they
show whether the pipeline learned the right thing, not only a number.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from pattnet.constants import au_name

#: Where the paper (Fig. 4) finds each AU's attention: upper-face AUs on the brow and eye
#: patches P1-P5, lower-face AUs on the cheek, mouth and chin patches P6-P9.
EXPECTED_PATCHES: dict[int, tuple[int, ...]] = {
    1: (1, 2, 3, 4, 5), 2: (1, 2, 3, 4, 5), 4: (1, 2, 3, 4, 5),
    12: (6, 7, 8, 9), 15: (6, 7, 8, 9), 17: (6, 7, 8, 9), 23: (6, 7, 8, 9), 24: (6, 7, 8, 9),
}


def attention_check(attention: pd.DataFrame) -> pd.DataFrame:
    """Per AU of :data:`EXPECTED_PATCHES`: the patch with the most mean attention and whether it
    is where the paper says (rows of ``attention`` are AU names, columns P1..P9)."""
    rows = []
    for au, want in EXPECTED_PATCHES.items():
        name = au_name(au)
        if name not in attention.index:
            continue
        top = int(np.argmax(attention.loc[name].to_numpy(dtype=float))) + 1
        rows.append({"au": name, "top_patch": f"P{top}",
                     "expected": f"P{want[0]}-P{want[-1]}", "ok": top in want})
    return pd.DataFrame(rows).set_index("au") if rows else pd.DataFrame()


def schedule_agreement(detections: pd.DataFrame, schedule: pd.DataFrame,
                       aus: Sequence[int]) -> pd.DataFrame:
    """Per AU: how often detect's occurrence equals the schedule's ground truth, frame by frame.

    Also F1 of the occurrence and the mean probability when on vs off, which shows whether the
    timeline follows the schedule even where the threshold is off.
    """
    from sklearn.metrics import f1_score

    det = detections[detections["success"] == 1].drop_duplicates("frame").set_index("frame")
    sch = schedule.set_index("frame")
    frames = det.index.intersection(sch.index)
    rows = []
    for au in aus:
        name = au_name(au)
        if f"{name}_c" not in det.columns or name not in sch.columns:
            continue
        truth = sch.loc[frames, name].to_numpy().astype(int)
        pred = det.loc[frames, f"{name}_c"].to_numpy().astype(int)
        prob = det.loc[frames, f"{name}_p"].to_numpy(dtype=float)
        rows.append({
            "au": name,
            "frames": len(frames),
            "frames_on": int(truth.sum()),
            "agreement": float((truth == pred).mean()) if len(frames) else np.nan,
            "f1": float(f1_score(truth, pred, zero_division=0)) if truth.any() else np.nan,
            "mean_p_on": float(prob[truth == 1].mean()) if truth.any() else np.nan,
            "mean_p_off": float(prob[truth == 0].mean()) if (truth == 0).any() else np.nan,
        })
    df = pd.DataFrame(rows).set_index("au")
    if len(df):
        df.loc["Avg"] = df.mean(numeric_only=True)
    return df


__all__ = ["EXPECTED_PATCHES", "attention_check", "schedule_agreement"]
