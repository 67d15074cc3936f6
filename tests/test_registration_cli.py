"""``pattnet register``: outputs, CSV layout, and bad input handled without a traceback."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest

from pattnet.cli import main


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(["register", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_image_and_folder_with_a_bad_file(tmp_path, capsys, astronaut):
    src = tmp_path / "in"
    src.mkdir()
    cv2.imwrite(str(src / "astro.png"), astronaut[:, :, ::-1])
    cv2.imwrite(str(src / "gray.png"), cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY))
    cv2.imwrite(str(src / "rgba16.png"),
                np.dstack([astronaut[:, :, ::-1], np.full((512, 512), 255, np.uint8)])
                .astype(np.uint16) * 257)
    (src / "broken.jpg").write_bytes(b"not an image" * 50)
    (src / "empty.png").write_bytes(b"")
    out = tmp_path / "out"
    rc, stdout, err = _run(capsys, str(src), "--out", str(out), "--patches")
    assert rc == 1
    assert "broken.jpg" in err and "empty.png" in err and "Traceback" not in err
    for stem in ("astro", "gray", "rgba16"):
        df = pd.read_csv(out / f"{stem}.csv")
        assert list(df.columns[:9]) == ["frame", "face_id", "timestamp", "success", "confidence",
                                        "pitch", "yaw", "roll", "visible_fraction"]
        assert df.shape == (1, 9 + 2 * 478) and df.success[0] == 1
        assert abs(df.x_468[0] - 207) < 4 and abs(df.y_1[0] - 300) < 6
        img = cv2.imread(str(out / stem / "000000.png"))
        assert img.shape == (512, 512, 3)
        assert (out / stem / "000000_patches.png").is_file()
    assert not (out / "broken.csv").exists()
    assert not list(out.rglob("*.tmp*"))


def test_missing_input_is_one_line(tmp_path, capsys):
    rc, _, err = _run(capsys, str(tmp_path / "missing.jpg"), "--out", str(tmp_path / "o"))
    assert rc == 2 and err.strip().count("\n") == 0 and err.startswith("pattnet: error:")


def test_only_bad_inputs(tmp_path, capsys):
    (tmp_path / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    rc, _, err = _run(capsys, str(tmp_path / "x.png"), "--out", str(tmp_path / "o"))
    assert rc == 2 and "pattnet: error:" in err and "Traceback" not in err


def test_video_rows_and_truncation(tmp_path, capsys, faces_dir):
    data = (faces_dir / "WolfgangLanger_Pexels.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 10])
    out = tmp_path / "o"
    rc, _, err = _run(capsys, str(cut), str(faces_dir / "no_face.mp4"), "--out", str(out),
                      "--no-images")
    assert rc == 1 and "cut.mp4" in err
    text = (out / "cut.csv").read_text().splitlines()
    assert text[-1].startswith("# stopped after frame")
    df = pd.read_csv(out / "cut.csv", comment="#")
    assert len(df) > 5 and (df.frame == np.arange(len(df))).all() and df.success.all()
    nf = pd.read_csv(out / "no_face.csv")
    assert len(nf) == 95 and (nf.success == 0).all() and nf.pitch.isna().all()


def test_face_noface_rows(tmp_path, capsys, faces_dir):
    out = tmp_path / "o"
    rc, _, _ = _run(capsys, str(faces_dir / "face_noface.mov"), "--out", str(out))
    assert rc == 0
    df = pd.read_csv(out / "face_noface.csv")
    assert len(df) >= 169 and sorted(set(df.frame)) == list(range(169))
    assert (df.success == 0).sum() > 40
    n_png = len(list((out / "face_noface").glob("*.png")))
    assert n_png == int(df.success.sum())


def test_multi_face_ids(tmp_path, capsys, faces_dir):
    out = tmp_path / "o"
    rc, _, _ = _run(capsys, str(faces_dir / "multi_face.jpg"), "--out", str(out),
                    "--max-faces", "6")
    assert rc == 0
    df = pd.read_csv(out / "multi_face.csv")
    assert list(df.face_id) == [0, 1, 2, 3, 4]
    assert (out / "multi_face" / "000000.png").is_file()
    assert (out / "multi_face" / "000000_f4.png").is_file()


@pytest.mark.slow
def test_huge_image(tmp_path, capsys, astronaut):
    big = np.zeros((8000, 12000, 3), np.uint8)
    face = cv2.resize(astronaut, (4000, 4000), interpolation=cv2.INTER_LINEAR)
    big[2000:6000, 4000:8000] = face[:, :, ::-1]
    p = tmp_path / "huge.jpg"
    cv2.imwrite(str(p), big, [cv2.IMWRITE_JPEG_QUALITY, 70])
    del big, face
    out = tmp_path / "o"
    rc, _, err = _run(capsys, str(p), "--out", str(out))
    assert rc == 0, err
    df = pd.read_csv(out / "huge.csv")
    assert df.success[0] == 1 and abs(df.x_468[0] - 207) < 4
