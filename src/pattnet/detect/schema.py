"""The detection table's schema in one place, so the DataFrame and the CSV can never disagree.

One row per frame and face, in the style of OpenFace 2.0 (``frame, timestamp, face_id, success,
confidence, pitch, yaw, roll, AU01_p ... AU01_c ...``). A frame without a face keeps a row with
``success=0`` and empty values; ``*_p`` is the probability, ``*_c`` is 1 when the probability
reaches the model's threshold for that AU (in a video, with a margin around it: an AU stays on
until its probability has clearly fallen back, :mod:`pattnet.detect.occurrence`). Values are
rounded (probabilities to 4 decimals, confidence 3, pose 2, time 4) identically in the DataFrame
and the CSV, so the DataFrame returned by :meth:`pattnet.detect.Detector.detect` equals
:func:`read_detections` of the CSV.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pattnet.constants import au_name

BASE_COLUMNS = ["frame", "timestamp", "face_id", "success", "confidence", "pitch", "yaw", "roll"]
_INT_COLUMNS = ("frame", "face_id", "success")
PROB_DECIMALS = 4


def columns(aus: Sequence[int]) -> list[str]:
    """Column names of a detection table for ``aus``."""
    return (BASE_COLUMNS + [f"{au_name(a)}_p" for a in aus] + [f"{au_name(a)}_c" for a in aus])


@dataclass
class FaceResult:
    """One face of one frame. ``prob`` (A,) is None when registration failed (``success`` False);
    ``attention`` (A, 9) is the patch attention of attention models, else None."""

    face_id: int
    success: bool
    confidence: float
    pitch: float
    yaw: float
    roll: float
    bbox: tuple[float, float, float, float]
    prob: np.ndarray | None = None
    attention: np.ndarray | None = None
    occurrence: np.ndarray | None = None  # (A,) bool when decided over time; else prob >= thr


@dataclass
class FrameResult:
    """One decoded frame: ``faces`` is empty when none was found. ``rgb`` only with keep_frames."""

    index: int
    timestamp: float
    faces: list[FaceResult] = field(default_factory=list)
    rgb: np.ndarray | None = None


def _r(x: float, nd: int) -> float:
    return round(float(x), nd) if x is not None and math.isfinite(x) else math.nan


def frame_rows(fr: FrameResult, threshold: np.ndarray) -> list[list[Any]]:
    """The table rows (Python values, already rounded) of one frame."""
    n = len(threshold)
    t = _r(fr.timestamp, 4)
    if not fr.faces:
        return [[fr.index, t, 0, 0] + [math.nan] * (4 + 2 * n)]
    rows = []
    for f in fr.faces:
        head = [fr.index, t, int(f.face_id), int(bool(f.success) and f.prob is not None),
                _r(f.confidence, 3), _r(f.pitch, 2), _r(f.yaw, 2), _r(f.roll, 2)]
        if f.prob is None or not f.success:
            rows.append(head + [math.nan] * (2 * n))
            continue
        p = [round(float(v), PROB_DECIMALS) for v in f.prob]
        if f.occurrence is not None:
            c = [1.0 if on else 0.0 for on in f.occurrence]
        else:
            c = [1.0 if pv >= th else 0.0 for pv, th in zip(p, threshold, strict=True)]
        rows.append(head + p + c)
    return rows


def csv_field(v: Any) -> str:
    """One value as the CSV writes it: empty for NaN, ``0``/``1`` for the occurrence columns,
    else ``repr`` (the shortest text that reads back as the same float)."""
    if isinstance(v, float):
        if v != v:
            return ""
        return "1" if v == 1.0 else "0" if v == 0.0 else repr(v)
    return str(v)


def to_dataframe(rows: list[list[Any]], aus: Sequence[int]) -> Any:
    """Rows -> DataFrame with the table's dtypes (ints for frame/face_id/success, else float)."""
    import pandas as pd

    cols = columns(aus)
    df = pd.DataFrame(rows, columns=cols) if rows else pd.DataFrame(columns=cols)
    return _fix_dtypes(df)


def _fix_dtypes(df: Any) -> Any:
    for c in df.columns:
        df[c] = df[c].astype("int64") if c in _INT_COLUMNS else df[c].astype("float64")
    return df


def read_detections(path: str | Path) -> Any:
    """Read a detection CSV into the DataFrame :meth:`pattnet.detect.Detector.detect` returns:
    pattnet's layout, ``--format openface`` and OpenFace 2.0's own CSVs alike
    (:mod:`pattnet.detect.openface`).

    ``#`` lines (the ``# stopped after frame N`` marker of a damaged video) are skipped; floats
    are parsed exactly (``round_trip``), so the values equal the API's.
    """
    import pandas as pd

    from pattnet.detect.openface import from_openface, is_openface_header

    df = pd.read_csv(path, comment="#", float_precision="round_trip", skipinitialspace=True)
    if is_openface_header(list(df.columns)):  # OpenFace's own, or ``--format openface``
        return from_openface(df, path)
    return _fix_dtypes(df)


__all__ = ["BASE_COLUMNS", "PROB_DECIMALS", "FaceResult", "FrameResult", "columns", "csv_field",
           "frame_rows", "read_detections", "to_dataframe"]
