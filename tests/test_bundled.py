"""The model that ships inside pattnet: detect works with it out of the box, its description
agrees with the file, and the committed script that builds it runs."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import cv2
import pandas as pd
import pytest

from pattnet.checkpoint import bundled_model_about, bundled_model_path, load_checkpoint
from pattnet.cli import main

REPO = Path(__file__).resolve().parents[1]


def test_the_description_is_the_file_it_describes():
    path = bundled_model_path()
    about = bundled_model_about()
    ck = load_checkpoint(path)
    assert about["file_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert about["aus"] == ck.aus and about["thresholds"] == ck.threshold
    assert about["model"] == ck.model.name and ck.mesh_reference.shape == (478, 3)
    assert "synthetic" in about["trained_on"] and "no real AU labels" in about["trained_on"]
    assert path.stat().st_size < 5_000_000  # a few MB at most


def test_detect_a_photo_with_no_model_and_no_out(tmp_path, monkeypatch, capsys, astronaut):
    monkeypatch.chdir(tmp_path)
    cv2.imwrite("astronaut.png", astronaut[:, :, ::-1])
    assert main(["detect", "astronaut.png", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "face 0:" in out
    df = pd.read_csv(tmp_path / "detections" / "astronaut.csv")
    assert len(df) == 1 and df["success"].iloc[0] == 1


def test_pattnet_models_says_what_the_bundled_model_is(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "pattnet-fusion" in out and "pattnet-geometry" in out
    assert "trained on: synthetic" in out and "BP4D or DISFA" in out


@pytest.mark.slow
def test_the_build_script_runs_and_builds_the_same_model_twice(tmp_path):
    """A small build (--quick), twice: the same bytes, whatever the temporary folders."""
    files = []
    for k in (1, 2):
        out = tmp_path / f"m{k}"
        r = subprocess.run([sys.executable, str(REPO / "scripts" / "build_bundled_model.py"),
                            "--quick", "--no-real-faces", "--out", str(out)],
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-2000:]
        files.append((out / "bundled.pt").read_bytes())
        assert (out / "bundled.json").is_file()
    assert files[0] == files[1]
