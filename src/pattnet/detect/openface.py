"""OpenFace 2.0's CSV layout: writing pattnet's detections in it, and reading OpenFace's CSVs.

Users come from OpenFace 2.0 (FeatureExtraction) and from tools that read its CSVs (py-feat);
a script written for those files should run on pattnet's. ``pattnet detect --format openface``
writes OpenFace's names, order, units and 1-based frames for what pattnet has, then what pattnet
adds (docs/detect.md has the mapping column by column):

* ``frame`` (from 1), ``face_id``, ``timestamp`` (s), ``confidence``, ``success``: OpenFace's
  first five columns, in its order;
* ``pose_Rx, pose_Ry, pose_Rz``: pitch, yaw and roll in radians (OpenFace's units; the angles
  and their signs are pattnet's, docs/registration.md); OpenFace's translation ``pose_T*``,
  gaze, landmarks and shape parameters have no pattnet counterpart and are left out;
* ``AUxx_c`` for the AUs of OpenFace's occurrence list that the model has, in OpenFace's order;
  OpenFace's intensities ``AUxx_r`` are left out (pattnet estimates no intensity);
* after them, what OpenFace has not: ``AUxx_c`` of the model's other AUs (AU24), then every
  ``AUxx_p`` (the probability).

:func:`read_openface` reads either OpenFace's own CSV (with or without ``face_id``, with the
spaces after commas it writes) or one written with ``--format openface`` into pattnet's table
(:mod:`pattnet.detect.schema`): frames from 0, angles in degrees, ``AUxx_c`` as they are, and
OpenFace's ``AUxx_r`` kept beside them; an AU OpenFace reports no probability for has no ``_p``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pattnet.constants import DETECT_FORMATS, au_name
from pattnet.errors import PattnetError

#: OpenFace 2.0's AUs, in the order of its CSV: intensity (``_r``) and occurrence (``_c``).
OPENFACE_INTENSITY_AUS: tuple[int, ...] = (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 25,
                                           26, 45)
OPENFACE_OCCURRENCE_AUS: tuple[int, ...] = (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 25,
                                            26, 28, 45)
#: OpenFace's first columns, then the head rotation (radians).
OPENFACE_HEAD = ("frame", "face_id", "timestamp", "confidence", "success")
OPENFACE_POSE = ("pose_Rx", "pose_Ry", "pose_Rz")
FORMATS = DETECT_FORMATS


def openface_columns(aus: Sequence[int]) -> list[str]:
    """The ``--format openface`` header for a model of ``aus``."""
    known = [a for a in OPENFACE_OCCURRENCE_AUS if a in aus]
    extra = [a for a in aus if a not in OPENFACE_OCCURRENCE_AUS]
    return ([*OPENFACE_HEAD, *OPENFACE_POSE] + [f"{au_name(a)}_c" for a in known + extra]
            + [f"{au_name(a)}_p" for a in aus])


class OpenFaceRows:
    """Turns pattnet's table rows (:func:`pattnet.detect.schema.frame_rows`) into OpenFace's."""

    def __init__(self, aus: Sequence[int]) -> None:
        from pattnet.detect.schema import columns

        self.header = openface_columns(aus)
        ours = columns(aus)
        renamed = {"pose_Rx": "pitch", "pose_Ry": "yaw", "pose_Rz": "roll"}
        self._take = [ours.index(renamed.get(c, c)) for c in self.header]
        self._frame = self.header.index("frame")
        self._angles = [self.header.index(c) for c in OPENFACE_POSE]

    def convert(self, row: Sequence[Any]) -> list[Any]:
        out = [row[i] for i in self._take]
        out[self._frame] = int(out[self._frame]) + 1
        for i in self._angles:
            v = out[i]
            out[i] = round(math.radians(v), 5) if isinstance(v, float) and math.isfinite(v) else v
        return out


def is_openface_header(names: Sequence[str]) -> bool:
    """Whether a CSV header is OpenFace's (its own, or pattnet's ``--format openface``)."""
    clean = [n.strip() for n in names]
    return bool(clean) and clean[0] == "frame" and "pose_Rx" in clean and "pitch" not in clean


def from_openface(df: Any, path: str | Path = "the CSV") -> Any:
    """An OpenFace-layout DataFrame -> pattnet's table (see the module's description)."""
    import numpy as np
    import pandas as pd

    from pattnet.detect.schema import BASE_COLUMNS

    df = df.rename(columns=lambda c: str(c).strip())
    lacking = [c for c in ("frame", "timestamp", "success") if c not in df.columns]
    if lacking:
        raise PattnetError(f"{path}: not an OpenFace CSV (no {', '.join(lacking)} column)")
    out = pd.DataFrame({
        "frame": df["frame"].astype("int64") - 1,
        "timestamp": df["timestamp"].astype("float64"),
        "face_id": df["face_id"].astype("int64") if "face_id" in df else 0,
        "success": df["success"].astype("int64"),
        "confidence": df.get("confidence", pd.Series(np.nan, index=df.index)).astype("float64"),
    })
    for ours, theirs in zip(("pitch", "yaw", "roll"), OPENFACE_POSE, strict=True):
        out[ours] = (np.degrees(df[theirs].astype("float64")).round(2) if theirs in df
                     else np.nan)
    out = out[BASE_COLUMNS]
    aus = sorted({int(c[2:4]) for c in df.columns
                  if len(c) == 6 and c.startswith("AU") and c[2:4].isdigit()
                  and c[4:] in ("_p", "_c", "_r")})
    for kind in ("_p", "_c", "_r"):
        for a in aus:
            c = f"{au_name(a)}{kind}"
            if c in df:
                out[c] = df[c].astype("float64")
    return out


def read_openface(path: str | Path) -> Any:
    """Read an OpenFace 2.0 CSV (or pattnet's ``--format openface``) into pattnet's table."""
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise PattnetError(f"{p}: no such CSV file")
    try:
        df = pd.read_csv(p, comment="#", skipinitialspace=True, float_precision="round_trip")
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise PattnetError(f"{p}: not a readable CSV ({str(exc).splitlines()[0]})") from None
    return from_openface(df, p)


def _auc(y: Any, p: Any) -> float:
    """AUC of ``p`` against the decisions ``y``; NaN where ``y`` holds one class only."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    ok = np.isfinite(p)
    y, p = y[ok], p[ok]
    return float(roc_auc_score(y, p)) if 0 < int(y.sum()) < len(y) else math.nan


def compare_detections(ours: Any, theirs: Any) -> Any:
    """Per AU both tables decide (``AUxx_c``), over the frames and faces both registered: how
    often the decisions agree, how often each says on, and the AUC of ``ours``' probability
    against ``theirs``' decision (where ``ours`` has ``_p``). Tables as
    :func:`pattnet.detect.read_detections` reads them, so
    ``compare_detections(read_detections("ours.csv"), read_openface("openface.csv"))``.
    """
    import pandas as pd

    keys = ["frame", "face_id"]
    a = ours[ours["success"] == 1]
    b = theirs[theirs["success"] == 1]
    both = a.merge(b, on=keys, suffixes=("", "_theirs"))
    rows = {}
    for c in [c for c in a.columns if c.endswith("_c") and c in b.columns]:
        x, y = both[c], both[f"{c}_theirs"]
        ok = x.notna() & y.notna()
        x, y = x[ok].astype(int), y[ok].astype(int)
        p = f"{c[:-2]}_p"
        rows[c[:-2]] = {
            "frames": int(ok.sum()),
            "agreement": float((x == y).mean()) if ok.any() else math.nan,
            "ours_on": float(x.mean()) if ok.any() else math.nan,
            "theirs_on": float(y.mean()) if ok.any() else math.nan,
            "auc": _auc(y.to_numpy(), both.loc[ok[ok].index, p].to_numpy())
            if p in both.columns else math.nan,
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise PattnetError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    return fmt


__all__ = ["FORMATS", "OPENFACE_INTENSITY_AUS", "OPENFACE_OCCURRENCE_AUS", "OpenFaceRows",
           "check_format", "compare_detections", "from_openface", "is_openface_header", "openface_columns",
           "read_openface"]
