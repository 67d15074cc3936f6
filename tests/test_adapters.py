"""Dataset adapters on small trees in the exact BP4D, DISFA and manifest layouts."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from pattnet.constants import BP4D_AUS, DISFA_AUS
from pattnet.datasets import (
    BP4DAdapter,
    DISFAAdapter,
    FrameRecord,
    ManifestAdapter,
    detect_dataset,
    get_adapter,
)
from pattnet.errors import PattnetError

TINY = np.zeros((8, 8, 3), np.uint8)
# BP4D CSVs carry more AU columns than the 12 used; 3 and 5 here must be ignored.
BP4D_HEADER = ["", "1", "2", "3", "4", "5", "6", "7", "10", "12", "14", "15", "17", "23", "24"]


def write_image(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), TINY)


def bp4d_labels(frame: int) -> list[int]:
    """A distinct, frame-dependent label row for the 12 AUs, so misalignment shows."""
    return [(frame >> (i % 4)) & 1 for i in range(12)]


def bp4d_row(frame: int, labels: list[int]) -> str:
    """A CSV row in BP4D_HEADER's column order (AU3 and AU5 set to 9)."""
    by_au = dict(zip(BP4D_AUS, labels, strict=True))
    cells = [str(frame)] + [str(by_au.get(int(h), 9)) for h in BP4D_HEADER[1:]]
    return ",".join(cells)


def write_bp4d_csv(root: Path, name: str, rows: list[str], header: list[str] | None = None) -> Path:
    p = root / "AUCoding" / "AU_OCC" / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(",".join(header or BP4D_HEADER) + "\n" + "".join(r + "\n" for r in rows))
    return p


@pytest.fixture
def bp4d(tmp_path: Path) -> Path:
    """F001/T1: 4-digit names, frames 2440-2444 (2444 all 9 = not coded, 2443 partly 9).
    F001/T2: 3-digit names, frames 7-9. M007/T1: frames 10-12, image 11 missing."""
    root = tmp_path / "BP4D"
    rows = [bp4d_row(f, bp4d_labels(f)) for f in range(2440, 2443)]
    partly = bp4d_labels(2443)
    partly[0] = partly[5] = 9
    rows.append(bp4d_row(2443, partly))
    rows.append(bp4d_row(2444, [9] * 12))
    write_bp4d_csv(root, "F001_T1.csv", rows)
    for f in range(2440, 2445):
        write_image(root / "F001" / "T1" / f"{f:04d}.jpg")
    write_bp4d_csv(root, "F001_T2.csv", [bp4d_row(f, bp4d_labels(f)) for f in (7, 8, 9)])
    for f in (7, 8, 9):
        write_image(root / "F001" / "T2" / f"{f:03d}.jpg")
    write_bp4d_csv(root, "M007_T1.csv", [bp4d_row(f, bp4d_labels(f)) for f in (10, 11, 12)])
    for f in (10, 12):
        write_image(root / "M007" / "T1" / f"{f:04d}.jpg")
    return root


def sessions_by_key(adapter):
    return {s.key: s for s in adapter.iter_sessions()}


# -- BP4D ------------------------------------------------------------------------------------
def test_bp4d_labels_padding_alignment_and_not_coded(bp4d: Path):
    a = get_adapter("bp4d", bp4d)
    assert a.aus == BP4D_AUS
    ss = sessions_by_key(a)
    assert set(ss) == {("F001", "T1"), ("F001", "T2"), ("M007", "T1")}
    t1 = ss[("F001", "T1")]
    assert [r.frame for r in t1.records] == [2440, 2441, 2442, 2443]  # 2444 is all 9: dropped
    for r in t1.records + ss[("F001", "T2")].records:
        assert isinstance(r, FrameRecord)
        assert int(r.source.stem) == r.frame and r.source_frame is None  # image t is frame t
        assert r.source.parent == bp4d / r.subject / r.session
    for r in t1.records[:3]:
        assert r.labels == tuple(bp4d_labels(r.frame))
    expected = bp4d_labels(2443)
    expected[0] = expected[5] = -1  # 9 -> not coded
    assert t1.records[3].labels == tuple(expected)
    t2 = ss[("F001", "T2")]  # 3-digit padding
    assert [r.source.name for r in t2.records] == ["007.jpg", "008.jpg", "009.jpg"]
    assert [r.labels for r in t2.records] == [tuple(bp4d_labels(f)) for f in (7, 8, 9)]
    assert not t1.problems and not t2.problems


def test_bp4d_missing_image_reported_others_kept(bp4d: Path):
    a = BP4DAdapter(bp4d)
    ss = sessions_by_key(a)
    m = ss[("M007", "T1")]
    assert [r.frame for r in m.records] == [10, 12]
    assert [p.kind for p in m.problems] == ["missing_image"]
    assert m.problems[0].frames == (11,)
    assert "11" in m.problems[0].message
    assert a.problems == m.problems


def test_bp4d_labels_table_does_not_need_images(bp4d: Path, tmp_path: Path):
    import shutil

    shutil.rmtree(bp4d / "F001")
    shutil.rmtree(bp4d / "M007")
    df = BP4DAdapter(bp4d).labels_table()
    assert list(df.columns[:3]) == ["subject", "session", "frame"]
    assert list(df.columns[3:]) == ["AU01", "AU02", "AU04", "AU06", "AU07", "AU10", "AU12",
                                    "AU14", "AU15", "AU17", "AU23", "AU24"]
    assert len(df) == 4 + 3 + 3
    row = df[(df.session == "T1") & (df.frame == 2443) & (df.subject == "F001")].iloc[0]
    assert row["AU01"] == -1 and row["AU10"] == -1
    assert row["AU02"] == bp4d_labels(2443)[1]
    assert str(df["AU01"].dtype) == "int8"


def test_bp4d_images_root_option(tmp_path: Path):
    root = tmp_path / "BP4D"
    write_bp4d_csv(root, "F001_T1.csv", [bp4d_row(5, bp4d_labels(5))])
    write_image(root / "Sequences" / "F001" / "T1" / "0005.jpg")
    with pytest.raises(PattnetError, match="--images"):
        list(BP4DAdapter(root).iter_sessions())
    (rec,) = next(BP4DAdapter(root, images=root / "Sequences").iter_sessions()).records
    assert rec.source == root / "Sequences" / "F001" / "T1" / "0005.jpg"


def test_bp4d_session_folder_missing_is_reported(bp4d: Path):
    import shutil

    shutil.rmtree(bp4d / "F001" / "T2")
    ss = sessions_by_key(BP4DAdapter(bp4d))
    assert ss[("F001", "T2")].records == []
    assert ss[("F001", "T2")].problems[0].kind == "missing_source"
    assert len(ss[("F001", "T1")].records) == 4


def test_bp4d_not_a_root(tmp_path: Path):
    (tmp_path / "x").mkdir()
    with pytest.raises(PattnetError, match=r"AUCoding[/\\]AU_OCC"):
        BP4DAdapter(tmp_path / "x")
    (tmp_path / "x" / "AUCoding" / "AU_OCC").mkdir(parents=True)
    with pytest.raises(PattnetError, match="F001_T1.csv"):
        BP4DAdapter(tmp_path / "x")
    with pytest.raises(PattnetError, match="no such file"):
        BP4DAdapter(tmp_path / "nope")


def test_bp4d_unknown_column(bp4d: Path):
    bad = write_bp4d_csv(bp4d, "F002_T1.csv", ["1,0,1"], header=["frame", "1", "foo"])
    write_image(bp4d / "F002" / "T1" / "001.jpg")
    a = BP4DAdapter(bp4d)
    ss = sessions_by_key(a)
    s = ss[("F002", "T1")]
    assert s.records == [] and s.problems[0].kind == "unknown_column"
    assert str(bad) in s.problems[0].message and "line 1" in s.problems[0].message
    assert "'foo'" in s.problems[0].message
    assert len(ss[("F001", "T1")].records) == 4  # the rest still comes


def test_bp4d_non_numeric_cell_reports_file_and_line(bp4d: Path):
    rows = [bp4d_row(f, bp4d_labels(f)) for f in (1, 2, 3)]
    cells = rows[1].split(",")
    cells[2] = "x"  # AU02 of frame 2
    rows[1] = ",".join(cells)
    path = write_bp4d_csv(bp4d, "F002_T1.csv", rows)
    for f in (1, 2, 3):
        write_image(bp4d / "F002" / "T1" / f"{f:03d}.jpg")
    s = sessions_by_key(BP4DAdapter(bp4d))[("F002", "T1")]
    assert [r.frame for r in s.records] == [1, 3]
    (p,) = s.problems
    assert p.kind == "bad_cell" and str(path) in p.message
    assert "line 3" in p.message and "AU02" in p.message and "'x'" in p.message


def test_bp4d_empty_session(bp4d: Path):
    write_bp4d_csv(bp4d, "F002_T1.csv", [])
    write_bp4d_csv(bp4d, "F002_T2.csv", [bp4d_row(1, [9] * 12)])
    (bp4d / "F002").mkdir()
    ss = sessions_by_key(BP4DAdapter(bp4d))
    for key in (("F002", "T1"), ("F002", "T2")):
        assert ss[key].records == []
        assert [p.kind for p in ss[key].problems] == ["empty_session"]


def test_bp4d_duplicate_frame_rows(bp4d: Path):
    la, lb = bp4d_labels(1), bp4d_labels(2)
    lb_conf = list(lb)
    lb_conf[0] = 1 - lb_conf[0]
    rows = [bp4d_row(1, la), bp4d_row(1, la), bp4d_row(2, lb), bp4d_row(2, lb_conf)]
    write_bp4d_csv(bp4d, "F002_T1.csv", rows)
    for f in (1, 2):
        write_image(bp4d / "F002" / "T1" / f"{f}.jpg")
    s = sessions_by_key(BP4DAdapter(bp4d))[("F002", "T1")]
    assert [r.frame for r in s.records] == [1, 2]
    assert s.records[0].labels == tuple(la)
    expected = list(lb)
    expected[0] = -1  # the two rows disagree on AU01: not coded
    assert s.records[1].labels == tuple(expected)
    (p,) = s.problems
    assert p.kind == "duplicate_frame" and p.frames == (1, 2)
    assert "line 3" in p.message and "line 5" in p.message


def test_strict_turns_problems_into_errors(bp4d: Path):
    with pytest.raises(PattnetError, match="no image"):
        list(BP4DAdapter(bp4d, strict=True).iter_sessions())


def test_bp4d_aus_subset(bp4d: Path):
    a = get_adapter("bp4d", bp4d, aus=[12, 1])
    rec = next(a.iter_sessions()).records[0]
    full = bp4d_labels(rec.frame)
    assert a.aus == (12, 1) and rec.labels == (full[6], full[0])


# -- DISFA -----------------------------------------------------------------------------------
def write_disfa(root: Path, subject: str, intensities: dict[int, list[int]]) -> None:
    d = root / "ActionUnit_Labels" / subject
    d.mkdir(parents=True, exist_ok=True)
    for au, vals in intensities.items():
        (d / f"{subject}_au{au}.txt").write_text("".join(f"{t},{v}\n" for t, v in enumerate(vals)))


def write_video(path: Path, n: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 20, (32, 32))
    for i in range(n):
        w.write(np.full((32, 32, 3), i * 20, np.uint8))
    w.release()


def disfa_intensities(n: int) -> dict[int, list[int]]:
    return {au: [(t + k) % 6 for t in range(n)] for k, au in enumerate(DISFA_AUS)}


@pytest.fixture
def disfa(tmp_path: Path) -> Path:
    root = tmp_path / "DISFA"
    write_disfa(root, "SN001", disfa_intensities(6))
    write_video(root / "Videos_LeftCamera" / "LeftVideoSN001_comp.avi", 6)
    return root


def test_disfa_video_source_and_threshold(disfa: Path):
    a = get_adapter("disfa", disfa)
    assert a.aus == DISFA_AUS
    (s,) = list(a.iter_sessions())
    assert s.subject == "SN001" and s.session == "LeftCamera" and not s.problems
    assert [r.frame for r in s.records] == list(range(6))
    video = disfa / "Videos_LeftCamera" / "LeftVideoSN001_comp.avi"
    inten = disfa_intensities(6)
    for r in s.records:
        assert r.source == video and r.source_frame == r.frame
        assert r.labels == tuple(int(inten[au][r.frame] >= 2) for au in DISFA_AUS)
    t1 = {r.frame: r.labels for r in next(DISFAAdapter(disfa, threshold=1).iter_sessions()).records}
    assert t1[1] == tuple(int(inten[au][1] >= 1) for au in DISFA_AUS)
    assert t1[1] != s.records[1].labels  # intensity 1 counts only at threshold 1


def test_disfa_labels_beyond_video_are_reported(tmp_path: Path):
    root = tmp_path / "DISFA"
    write_disfa(root, "SN001", disfa_intensities(8))
    write_video(root / "Videos_LeftCamera" / "LeftVideoSN001_comp.avi", 6)
    (s,) = list(DISFAAdapter(root).iter_sessions())
    assert [r.frame for r in s.records] == list(range(6))
    assert s.problems[0].kind == "missing_image" and s.problems[0].frames == (6, 7)


def test_disfa_extracted_images_and_offset(disfa: Path, tmp_path: Path):
    imgs = tmp_path / "frames"
    for t in range(5):  # frame 5 has no image
        write_image(imgs / "SN001" / f"{t:04d}.jpg")
    (s,) = list(DISFAAdapter(disfa, images=imgs).iter_sessions())
    assert [r.source.name for r in s.records] == [f"{t:04d}.jpg" for t in range(5)]
    assert all(r.source_frame is None for r in s.records)
    assert s.problems[0].kind == "missing_image" and s.problems[0].frames == (5,)
    # 1-based extraction: label frame t is image t + 1
    (s1,) = list(DISFAAdapter(disfa, images=imgs, frame_offset=1).iter_sessions())
    assert [(r.frame, r.source.name) for r in s1.records][:2] == [(0, "0001.jpg"), (1, "0002.jpg")]


def test_disfa_bad_lines_missing_files_and_duplicates(disfa: Path):
    d = disfa / "ActionUnit_Labels" / "SN001"
    (d / "SN001_au26.txt").unlink()
    p2 = d / "SN001_au2.txt"
    lines = p2.read_text().splitlines()
    lines[2] = "2,high"
    lines.append("3,0")  # duplicate frame 3, differing value (intensity 4 above)
    p2.write_text("\n".join(lines) + "\n")
    (s,) = list(DISFAAdapter(disfa).iter_sessions())
    kinds = sorted(p.kind for p in s.problems)
    # AU26 file missing; frame 2 lacks AU02 (its line is bad); frame 3 given twice
    assert kinds == ["bad_cell", "duplicate_frame", "missing_labels", "missing_labels"]
    msg = " | ".join(p.message for p in s.problems)
    assert "SN001_au2.txt line 3" in msg and "SN001_au26.txt" in msg
    incomplete = [p for p in s.problems if p.kind == "missing_labels" and p.frames]
    assert incomplete[0].frames == (2,)
    by = {r.frame: r.labels for r in s.records}
    assert by[2][1] == -1 and by[3][1] == -1  # bad line and conflicting duplicate: not coded
    assert all(lab[-1] == -1 for lab in by.values())  # AU26 file missing
    assert by[0][0] == int(disfa_intensities(6)[1][0] >= 2)


def test_disfa_not_a_root_and_no_videos(tmp_path: Path, disfa: Path):
    with pytest.raises(PattnetError, match="ActionUnit_Labels"):
        DISFAAdapter(tmp_path)
    import shutil

    shutil.rmtree(disfa / "Videos_LeftCamera")
    with pytest.raises(PattnetError, match="Videos_LeftCamera"):
        list(DISFAAdapter(disfa).iter_sessions())
    assert len(DISFAAdapter(disfa).labels_table()) == 6  # labels alone still fine


def test_disfa_empty_session(disfa: Path):
    write_disfa(disfa, "SN002", {au: [] for au in DISFA_AUS})
    write_video(disfa / "Videos_LeftCamera" / "LeftVideoSN002_comp.avi", 2)
    ss = sessions_by_key(DISFAAdapter(disfa))
    assert ss[("SN002", "LeftCamera")].records == []
    assert [p.kind for p in ss[("SN002", "LeftCamera")].problems] == ["empty_session"]
    assert len(ss[("SN001", "LeftCamera")].records) == 6


# -- manifest --------------------------------------------------------------------------------
def test_manifest_images_videos_relative_paths(tmp_path: Path):
    d = tmp_path / "lab"
    write_image(d / "imgs" / "a.jpg")
    write_image(d / "imgs" / "b.png")
    write_video(d / "clips" / "s2.avi", 4)
    (d / "manifest.csv").write_text(
        "path,video,frame,subject,session,AU1,AU02,AU12\n"
        "imgs/a.jpg,,,P1,,1,0,\n"
        "imgs/b.png,,,P1,,0,9,1\n"
        "imgs/missing.jpg,,,P1,,1,1,1\n"
        ",clips/s2.avi,3,P2,take1,0,0,1\n"
        ",clips/s2.avi,1,P2,take1,-1,1,0\n"
        ",clips/s2.avi,9,P2,take1,1,1,1\n"
    )
    a = get_adapter("manifest", d / "manifest.csv")
    assert a.aus == (1, 2, 12)
    ss = sessions_by_key(a)
    p1 = ss[("P1", "default")]
    assert [(r.frame, r.source, r.labels) for r in p1.records] == [
        (0, d / "imgs" / "a.jpg", (1, 0, -1)),
        (1, d / "imgs" / "b.png", (0, -1, 1)),
    ]
    assert p1.problems[0].kind == "missing_image" and "missing.jpg" in p1.problems[0].message
    p2 = ss[("P2", "take1")]
    assert [(r.frame, r.source_frame, r.labels) for r in p2.records] == [
        (1, 1, (-1, 1, 0)), (3, 3, (0, 0, 1))]
    assert p2.problems[0].frames == (9,)  # past the 4-frame video
    assert detect_dataset(d) == "manifest" and detect_dataset(d / "manifest.csv") == "manifest"
    df = a.labels_table()
    assert len(df) == 6 and list(df.columns) == ["subject", "session", "frame", "AU01", "AU02",
                                                 "AU12"]


def test_manifest_unknown_column_is_fatal(tmp_path: Path):
    p = tmp_path / "m.csv"
    p.write_text("path,subject,AU1,AU2x\nx.jpg,S,1,0\n")
    with pytest.raises(PattnetError, match=r"line 1, column 4: unknown column 'AU2x'"):
        ManifestAdapter(p)
    p.write_text("path,AU1\nx.jpg,1\n")
    with pytest.raises(PattnetError, match="subject"):
        ManifestAdapter(p)
    p.write_text("subject,AU1\nS,1\n")
    with pytest.raises(PattnetError, match="'path'"):
        ManifestAdapter(p)


def test_manifest_bad_cell_and_duplicates(tmp_path: Path):
    for n in "abc":
        write_image(tmp_path / f"{n}.jpg")
    p = tmp_path / "m.csv"
    p.write_text(
        "path,frame,subject,AU1\n"
        "a.jpg,0,S,1\n"
        "b.jpg,1,S,yes\n"
        "c.jpg,2,S,0\n"
        "c.jpg,2,S,0\n"
        "a.jpg,5,S,1\n"
        "b.jpg,5,S,0\n"
    )
    a = ManifestAdapter(p)
    (s,) = list(a.iter_sessions())
    assert [r.frame for r in s.records] == [0, 2]
    assert s.problems[0].kind == "duplicate_frame" and s.problems[0].frames == (5,)
    bad = [x for x in a.problems if x.kind == "bad_cell"]
    assert len(bad) == 1 and "line 3" in bad[0].message and "'yes'" in bad[0].message


def test_registry_errors(tmp_path: Path, bp4d: Path):
    with pytest.raises(PattnetError, match="unknown dataset"):
        get_adapter("ck+", tmp_path)
    with pytest.raises(PattnetError, match="no option threshold"):
        get_adapter("bp4d", bp4d, threshold=2)
    assert get_adapter("bp4d", bp4d, threshold=None).name == "bp4d"
    assert detect_dataset(bp4d) == "bp4d"
    with pytest.raises(PattnetError, match="cannot tell the dataset"):
        detect_dataset(tmp_path)
