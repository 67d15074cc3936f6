"""``pattnet detect`` as a user meets it: only pattnet's own lines on the screen, and the person
reference chosen on the command line."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pandas as pd
import pytest

from pattnet.io.native_log import is_native_noise


def _pattnet(*args, cwd):
    env = {k: v for k, v in os.environ.items() if k not in ("GLOG_minloglevel", "TF_CPP_MIN_LOG_LEVEL")}
    return subprocess.run([sys.executable, "-m", "pattnet", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=300)


def test_detect_on_a_photo_prints_only_pattnets_lines(faces_dir, tmp_path):
    r = _pattnet("detect", str(faces_dir / "single_face.jpg"), "--out", str(tmp_path / "d"),
                 "--no-progress", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in (r.stdout + r.stderr).splitlines() if ln.strip()]
    assert lines[0].startswith(str(faces_dir / "single_face.jpg")) and "face 0:" in lines[1]
    assert len(lines) == 2, lines  # the result, and nothing MediaPipe or TensorFlow Lite said


@pytest.mark.slow
def test_verbose_shows_the_native_libraries_lines(faces_dir, tmp_path):
    verbose = _pattnet("-v", "detect", str(faces_dir / "single_face.jpg"), "--out",
                       str(tmp_path / "v"), "--no-progress", cwd=tmp_path)
    assert verbose.returncode == 0
    assert any(is_native_noise(ln.encode()) for ln in verbose.stderr.splitlines())  # -v shows all


def test_an_error_still_reaches_the_screen(tmp_path):
    r = _pattnet("detect", "missing.jpg", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == ["pattnet: error: missing.jpg: no such file or folder"]


def test_native_log_lines_are_recognised():
    assert is_native_noise(b"W0000 00:00:1796637226.143147    1986 inference_feedback_manager.cc:114] "
                           b"Feedback manager requires a model with a single signature inference.\n")
    assert is_native_noise(b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
    assert is_native_noise(b"WARNING: All log messages before absl::InitializeLog() is called are "
                           b"written to STDERR\n")
    assert not is_native_noise(b"pattnet: error: W0000 is not a file\n")
    assert not is_native_noise(b"photo.jpg: 1 frame(s), 1 face(s)\n")


def test_reference_from_a_neutral_photo_and_from_pooled_photos(faces_dir, tmp_path, capsys):
    from pattnet.cli import main

    photo = faces_dir / "single_face.jpg"
    assert main(["detect", str(photo), "--out", str(tmp_path / "own"), "--no-progress",
                 "--reference", str(photo)]) == 0
    err = capsys.readouterr().err
    assert "reference:" in err and "single_face.jpg" in err
    df = pd.read_csv(tmp_path / "own" / "single_face.csv")
    p = df.filter(regex=r"^AU\d+_p$").iloc[0]
    assert (p <= 0.2).all(), p  # the photo against itself shows nothing
    a, b = tmp_path / "a.jpg", tmp_path / "b.jpg"
    a.write_bytes(photo.read_bytes())
    b.write_bytes((faces_dir / "0-f15-hao-ph.jpg").read_bytes())
    assert main(["detect", str(a), str(b), "--out", str(tmp_path / "pooled"), "--no-progress",
                 "--reference", "neutral"]) == 0
    assert re.search(r"reference: neutral of 2 photos", capsys.readouterr().err)


@pytest.mark.parametrize("value", ["median", "nothere.jpg"])
def test_a_bad_reference_is_one_line(tmp_path, faces_dir, value, capsys):
    from pattnet.cli import main

    rc = main(["detect", str(faces_dir / "single_face.jpg"), "--out", str(tmp_path),
               "--reference", value])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and f"--reference {value}" in err[0]
