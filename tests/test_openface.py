"""OpenFace 2.0's CSV: ``pattnet detect --format openface`` writes it, ``read_openface`` and
``read_detections`` read it (OpenFace's own files too) into pattnet's table."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from pattnet.cli import main
from pattnet.detect import compare_detections, read_detections, read_openface
from pattnet.errors import PattnetError


def openface_header() -> list[str]:
    """OpenFace 2.0 FeatureExtraction's columns, in order, as its wiki's Output Format page
    documents them (68 landmarks, 56 eye landmarks, 34 shape parameters)."""
    h = ["frame", "face_id", "timestamp", "confidence", "success"]
    h += [f"gaze_{e}_{a}" for e in (0, 1) for a in "xyz"] + ["gaze_angle_x", "gaze_angle_y"]
    h += [f"eye_lmk_{c}_{i}" for c in ("x", "y") for i in range(56)]
    h += [f"eye_lmk_{c}_{i}" for c in ("X", "Y", "Z") for i in range(56)]
    h += ["pose_Tx", "pose_Ty", "pose_Tz", "pose_Rx", "pose_Ry", "pose_Rz"]
    h += [f"{c}_{i}" for c in ("x", "y") for i in range(68)]
    h += [f"{c}_{i}" for c in ("X", "Y", "Z") for i in range(68)]
    h += ["p_scale", "p_rx", "p_ry", "p_rz", "p_tx", "p_ty"] + [f"p_{i}" for i in range(34)]
    r = (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 25, 26, 45)
    c = (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 25, 26, 28, 45)
    return h + [f"AU{a:02d}_r" for a in r] + [f"AU{a:02d}_c" for a in c]


@pytest.fixture(scope="module")
def both_formats(tmp_path_factory, faces_dir):
    """The bundled model on 8 frames of a video, in pattnet's layout and in OpenFace's."""
    out = tmp_path_factory.mktemp("of")
    video = faces_dir / "single_face.mp4"
    for fmt in ("pattnet", "openface"):
        assert main(["detect", str(video), "--out", str(out / fmt), "--max-frames", "8",
                     "--format", fmt, "--no-progress"]) == 0
    return out / "pattnet" / "single_face.csv", out / "openface" / "single_face.csv"


def test_openface_layout_has_openfaces_names_in_its_order_then_ours(both_formats):
    _, of = both_formats
    header = [line for line in of.read_text().splitlines() if not line.startswith("#")][0]
    cols = header.split(",")
    theirs = openface_header()
    shared = [c for c in cols if c in theirs]
    assert shared == [c for c in theirs if c in shared]  # OpenFace's order
    assert cols[:len(shared)] == shared  # OpenFace's columns first, what pattnet adds after
    assert cols[:8] == ["frame", "face_id", "timestamp", "confidence", "success",
                        "pose_Rx", "pose_Ry", "pose_Rz"]
    added = cols[len(shared):]
    assert added[0] == "AU24_c" and all(c.endswith("_p") for c in added[1:])
    assert not [c for c in cols if c.endswith("_r")]  # no intensity is claimed


def test_openface_units_and_frames(both_formats):
    ours, of = both_formats
    a = pd.read_csv(ours, comment="#")
    b = pd.read_csv(of, comment="#")
    assert b["frame"].tolist() == (a["frame"] + 1).tolist() and b["frame"].iloc[0] == 1
    assert np.allclose(b["pose_Rx"], np.radians(a["pitch"]), atol=1e-5)
    assert np.allclose(b["pose_Rz"], np.radians(a["roll"]), atol=1e-5)
    assert (b["AU12_c"] == a["AU12_c"]).all() and np.allclose(b["AU12_p"], a["AU12_p"])


def test_both_layouts_read_back_as_one_table(both_formats):
    ours, of = both_formats
    a, b = read_detections(ours), read_detections(of)
    assert list(b.columns) == list(a.columns)
    assert np.allclose(a[["pitch", "yaw", "roll"]], b[["pitch", "yaw", "roll"]], atol=0.01)
    pd.testing.assert_frame_equal(a.drop(columns=["pitch", "yaw", "roll"]),
                                  b.drop(columns=["pitch", "yaw", "roll"]))
    cmp = compare_detections(a, b)
    assert (cmp["agreement"] == 1.0).all() and (cmp["frames"] == len(a)).all()


def test_read_openface_reads_openfaces_own_csv(tmp_path):
    """A file as OpenFace writes it: its full header, ', ' between fields, frames from 1."""
    header = openface_header()
    rng = np.random.default_rng(0)
    rows = []
    for i in range(6):
        row = dict.fromkeys(header, 0.0)
        row.update(frame=i + 1, face_id=0, timestamp=i / 30, confidence=0.98, success=1,
                   pose_Rx=0.1, pose_Ry=-0.2, pose_Rz=0.05)
        for a in (1, 12, 45):
            row[f"AU{a:02d}_r"] = round(float(rng.uniform(0, 5)), 2)
            row[f"AU{a:02d}_c"] = float(i % 2)
        rows.append(row)
    path = tmp_path / "openface.csv"
    lines = [", ".join(header)] + [", ".join(f"{r[c]:g}" for c in header) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    df = read_openface(path)
    assert df["frame"].tolist() == list(range(6))
    assert math.isclose(df["pitch"].iloc[0], math.degrees(0.1), abs_tol=0.01)
    assert df["AU45_c"].tolist() == [0.0, 1.0] * 3 and "AU45_r" in df and "AU45_p" not in df
    assert df.equals(read_detections(path))  # the one reader takes both layouts
    ours = df.assign(AU12_p=np.where(df["AU12_c"] == 1, 0.9, 0.1))
    cmp = compare_detections(ours, df)
    assert cmp.loc["AU12", "auc"] == 1.0 and cmp.loc["AU12", "agreement"] == 1.0


def test_read_openface_refuses_what_is_not_openfaces(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("a,b\n1,2\n")
    with pytest.raises(PattnetError, match="not an OpenFace CSV"):
        read_openface(p)
    with pytest.raises(PattnetError, match="no such CSV"):
        read_openface(tmp_path / "nope.csv")
