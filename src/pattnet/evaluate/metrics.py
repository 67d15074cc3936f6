"""Per-AU detection metrics with uncoded labels masked out, computed by scikit-learn.

Why scikit-learn rather than our own formulas: F1 and AUC are the numbers everyone compares,
and a hand-rolled version that differs in a corner case (ties in AUC, zero division in F1)
would make our tables quietly incomparable. What this module adds is the masking (label -1 =
not coded never counts, neither as positive nor as negative) and explicit NaNs with a reason
where a metric is undefined, instead of scikit-learn's warnings and silent zeros.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from pattnet.constants import au_name
from pattnet.errors import PattnetError

#: Columns of :func:`au_metrics`' frame, in order.
METRIC_COLUMNS = (
    "au", "name", "n", "n_pos", "base_rate", "precision", "recall", "f1", "auc", "note",
)
#: Metrics that the "Avg" row averages over AUs (the paper averages F1 and AUC over its AUs).
AVERAGED = ("base_rate", "precision", "recall", "f1", "auc")
_CHUNK = 65536


def _check(prob: np.ndarray, label: np.ndarray, aus: Sequence[int]) -> tuple[np.ndarray, ...]:
    prob = np.asarray(prob, dtype=np.float64)
    label = np.asarray(label)
    if prob.ndim == 1:
        prob = prob[:, None]
    if label.ndim == 1:
        label = label[:, None]
    if prob.shape != label.shape or prob.ndim != 2:
        raise PattnetError(
            f"probabilities {prob.shape} and labels {label.shape} must both be (frames, AUs)"
        )
    if prob.shape[1] != len(aus):
        raise PattnetError(f"{prob.shape[1]} prediction columns but {len(aus)} AUs ({list(aus)})")
    bad = ~np.isin(label, (-1, 0, 1))
    if bad.any():
        raise PattnetError(
            f"labels must be 1, 0 or -1 (not coded); found {np.unique(label[bad])[:5].tolist()}"
        )
    if not np.isfinite(prob).all():
        raise PattnetError("probabilities contain NaN or infinity")
    return prob, label.astype(np.int8)


def au_metrics(
    prob: np.ndarray,
    label: np.ndarray,
    aus: Sequence[int],
    threshold: float = 0.5,
) -> pd.DataFrame:
    """F1, AUC, precision, recall, base rate and counts per AU, plus an "Avg" row.

    ``prob`` and ``label`` are (N, A) with column j belonging to ``aus[j]``; labels are 1, 0 or
    -1 (not coded), and -1 frames are dropped for that AU only. A frame is predicted positive
    when ``prob >= threshold``. Values are fractions in [0, 1] (tables multiply by 100).

    Undefined metrics are NaN with a reason in ``note``: AUC when the coded frames hold one
    class only, F1/precision/recall when there are no positive frames (recall is 0/0; scikit-
    learn would report 0 and drag averages down) or no coded frames. Precision with no predicted
    positives is 0, scikit-learn's ``zero_division=0``, because the detector did miss every
    positive. The "Avg" row is the unweighted mean over AUs of each metric (the paper's
    average), skipping NaN AUs and naming them in its note; its ``n``/``n_pos`` are totals.
    """
    prob, label = _check(prob, label, aus)
    rows = [_au_row(au, prob[:, j], label[:, j], threshold) for j, au in enumerate(aus)]
    df = pd.DataFrame(rows, columns=list(METRIC_COLUMNS))
    avg = _avg_row(df)
    df = pd.concat([df, pd.DataFrame([avg], columns=list(METRIC_COLUMNS))], ignore_index=True)
    df["au"] = df["au"].astype("Int64")
    df.index = pd.Index(df["name"].tolist(), name=None)
    return df


def _au_row(au: int, prob: np.ndarray, label: np.ndarray, threshold: float) -> dict[str, object]:
    """One AU's metrics on its coded frames; undefined ones NaN with the reason in "note"."""
    from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

    coded = label >= 0
    y = (label[coded] == 1).astype(np.int8)
    p = prob[coded]
    n, n_pos = int(y.size), int(y.sum())
    row: dict[str, object] = {
        "au": int(au), "name": au_name(au), "n": n, "n_pos": n_pos,
        "base_rate": n_pos / n if n else np.nan,
        "precision": np.nan, "recall": np.nan, "f1": np.nan, "auc": np.nan, "note": ""}
    notes = []
    if n == 0:
        notes.append("no coded frames")
    else:
        pred = (p >= threshold).astype(np.int8)
        if n_pos == 0:
            notes.append("no positive frames: F1 undefined")
        else:
            row["precision"] = float(precision_score(y, pred, zero_division=0.0))
            row["recall"] = float(recall_score(y, pred, zero_division=0.0))
            row["f1"] = float(f1_score(y, pred, zero_division=0.0))
        if n_pos in (0, n):
            kind = "positive" if n_pos == n else "negative"
            notes.append(f"one class only (all {n} coded frames {kind}): AUC undefined")
        else:
            row["auc"] = float(roc_auc_score(y, p))
    row["note"] = "; ".join(notes)
    return row


def _avg_row(df: pd.DataFrame) -> dict[str, object]:
    """The "Avg" row: unweighted mean over AUs skipping NaN ones (named in its note), totals."""
    avg: dict[str, object] = {"au": pd.NA, "name": "Avg", "n": int(df["n"].sum()),
                              "n_pos": int(df["n_pos"].sum())}
    notes = []
    for col in AVERAGED:
        vals = df[col].to_numpy(dtype=np.float64)
        ok = ~np.isnan(vals)
        avg[col] = float(vals[ok].mean()) if ok.any() else np.nan
        if col in ("f1", "auc") and not ok.all() and vals.size:
            skipped = ", ".join(df.loc[~ok, "name"])
            notes.append(f"{col} averaged without {skipped}")
    avg["note"] = "; ".join(notes)
    return avg


def mean_attention(attention: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Attention weights (N, A, P) averaged over frames -> (A, P), for the paper's Figure 4.

    ``mask`` (N, A) or (N,) of bools selects the frames that count for each row (e.g.
    ``label >= 0``: the frames where the AU was coded); a row with no selected frame is NaN.
    Averages are taken in float64 because attention is stored as float16, whose sums over
    a dataset's frames would lose all precision. A 2-D (N, P) input (one attention shared by all
    AUs) is treated as A = 1.
    """
    att = np.asarray(attention)
    if att.ndim == 2:
        att = att[:, None, :]
    if att.ndim != 3:
        raise PattnetError(f"attention must be (frames, AUs, patches); got shape {att.shape}")
    if mask is None:
        if att.shape[0] == 0:
            return np.full(att.shape[1:], np.nan)
        return att.mean(axis=0, dtype=np.float64)
    m = np.asarray(mask, dtype=bool)
    if m.ndim == 1:
        m = m[:, None]
    if m.shape[0] != att.shape[0] or m.shape[1] not in (1, att.shape[1]):
        raise PattnetError(f"mask {m.shape} does not match attention {att.shape}")
    m = np.broadcast_to(m, att.shape[:2])
    total = np.zeros(att.shape[1:], dtype=np.float64)
    count = np.zeros((att.shape[1], 1), dtype=np.float64)
    for s in range(0, att.shape[0], _CHUNK):  # bounded float64 copies, not one of N frames
        w = m[s:s + _CHUNK].astype(np.float64)
        total += np.einsum("na,nap->ap", w, att[s:s + _CHUNK].astype(np.float64))
        count[:, 0] += w.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = total / count
    return np.where(count > 0, out, np.nan)


def f1_thresholds(prob: np.ndarray, label: np.ndarray, aus: Sequence[int],
                  grid: np.ndarray | None = None, default: float = 0.5) -> np.ndarray:
    """Per AU, the threshold (from ``grid``, default 0.05..0.95) that maximises F1 on ``prob``
    and ``label`` (coded frames only); ``default`` where an AU has no positive frame.

    Why: a detector's thresholds should come from held-out predictions (validation subjects,
    or the out-of-fold test predictions of cross-validation), never from the data it is then
    scored on.
    """
    prob, label = _check(prob, label, aus)
    grid = np.round(np.arange(0.05, 0.951, 0.01), 2) if grid is None else np.asarray(grid)
    out = np.full(len(aus), float(default))
    for j in range(len(aus)):
        coded = label[:, j] >= 0
        y = label[coded, j] == 1
        if not y.any():
            continue
        pred = prob[coded, j][:, None] >= grid[None, :]  # (frames, thresholds)
        tp = (pred & y[:, None]).sum(0)
        f1 = 2 * tp / np.maximum(pred.sum(0) + y.sum(), 1)
        out[j] = float(grid[int(np.argmax(f1))])
    return out
