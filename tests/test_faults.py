"""Faults that used to lose or corrupt data without a word: concurrent runs, damaged model
files, changed inputs, bad output paths and settings. One test per defect, each failing on the
code before the fix; the mechanism behind each is tested where it lives (io.atomic, the
checkpoint format, prepare's fingerprints)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from helpers import toy_store
from pattnet.cli import main

#: A folder where nothing can be created, also for root (the kernel's sysfs).
UNWRITABLE = Path("/sys")


def _pattnet(*argv: str, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "GLOG_minloglevel": "3", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "pattnet", *argv], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _short_video(src: Path, out: Path, frames: int) -> Path:
    """The first ``frames`` frames of ``src`` re-encoded (another container, another video)."""
    import av

    from pattnet.io import iter_frames

    imgs = [f.rgb for _, f in zip(range(frames), iter_frames(src), strict=False)]
    h, w = (imgs[0].shape[0] // 2) * 2, (imgs[0].shape[1] // 2) * 2
    with av.open(str(out), "w") as c:
        st = c.add_stream("mpeg4", rate=25)
        st.width, st.height, st.pix_fmt = w, h, "yuv420p"
        for im in imgs:
            for p in st.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(im[:h, :w]),
                                                          "rgb24")):
                c.mux(p)
        for p in st.encode():
            c.mux(p)
    return out


# -- 1. two processes, one output folder ------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("same_video", [False, True], ids=["two-videos-one-stem", "same-video"])
def test_two_detects_into_one_folder_keep_both_results(tmp_path, faces_dir, same_video):
    (tmp_path / "d1").mkdir()
    (tmp_path / "d2").mkdir()
    a = _short_video(faces_dir / "single_face.mp4", tmp_path / "d1" / "clip.mp4", 24)
    b = a if same_video else _short_video(faces_dir / "WolfgangLanger_Pexels.mp4",
                                          tmp_path / "d2" / "clip.mov", 24)
    procs = [_pattnet("detect", str(v), "--out", "out", "--no-progress", cwd=tmp_path)
             for v in (a, b)]
    results = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, results, strict=True):
        assert p.returncode == 0 and "Traceback" not in err, err
    out = tmp_path / "out"
    assert sorted(f.name for f in out.iterdir()) == ["clip-2.csv", "clip.csv"]
    for f in out.iterdir():
        df = pd.read_csv(f)  # both parse: neither was written into the other
        assert len(df) == 24 and df["frame"].tolist() == list(range(24))
    notes = [err for _, err in results if "holds another run's result" in err]
    assert len(notes) == 1  # the second one said where its result went


@pytest.mark.slow
def test_two_registers_with_one_stem_keep_both_results(tmp_path, astronaut):
    for d in ("d1", "d2"):
        (tmp_path / d).mkdir()
    cv2.imwrite(str(tmp_path / "d1" / "face.png"), astronaut[:, :, ::-1])
    cv2.imwrite(str(tmp_path / "d2" / "face.jpg"), astronaut[:, ::-1, ::-1])  # another picture
    procs = [_pattnet("register", f"d{k}", "--out", "out", cwd=tmp_path) for k in (1, 2)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0 and "Traceback" not in err, err
    out = tmp_path / "out"
    assert sorted(f.name for f in out.iterdir()) == ["face", "face-2", "face-2.csv", "face.csv"]
    assert (out / "face" / "000000.png").is_file() and (out / "face-2" / "000000.png").is_file()


def test_a_finished_result_is_kept_unless_overwrite(tmp_path, astronaut, capsys):
    cv2.imwrite(str(tmp_path / "a.png"), astronaut[:, :, ::-1])
    out = tmp_path / "out"
    assert main(["detect", str(tmp_path / "a.png"), "--out", str(out), "--no-progress"]) == 0
    first = (out / "a.csv").read_bytes()
    assert main(["detect", str(tmp_path / "a.png"), "--out", str(out), "--no-progress"]) == 0
    assert "kept it and wrote a-2.csv beside it" in capsys.readouterr().err
    assert (out / "a.csv").read_bytes() == first and (out / "a-2.csv").is_file()
    assert main(["detect", str(tmp_path / "a.png"), "--out", str(out), "--no-progress",
                 "--overwrite"]) == 0
    assert sorted(f.name for f in out.iterdir()) == ["a-2.csv", "a.csv"]


# -- 2. a model file damaged in the middle ---------------------------------------------------
def test_a_model_file_damaged_in_the_middle_is_refused(tmp_path):
    from pattnet.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
    from pattnet.models import create_model

    torch.manual_seed(0)
    path = save_checkpoint(tmp_path / "m.pt", create_model("pattnet-multilabel").eval())
    data = bytearray(path.read_bytes())
    mid = len(data) // 2  # inside the weights, far from the zip's headers
    data[mid:mid + 4096] = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    bad = tmp_path / "damaged.pt"
    bad.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"damaged\.pt: damaged model file: its weights no "
                                              r"longer match the checksum"):
        load_checkpoint(bad)


# -- 3. prepare resumed after its inputs changed ----------------------------------------------
def test_prepare_prepares_again_what_changed_since(tmp_path, astronaut, capsys):
    img = tmp_path / "data"
    img.mkdir()
    rows = []
    for k, (subject, im) in enumerate([("A", astronaut), ("B", astronaut[:, ::-1]),
                                       ("C", astronaut[::-1, ::-1])]):
        cv2.imwrite(str(img / f"{subject}.png"), im[:, :, ::-1])
        rows.append({"path": f"{subject}.png", "subject": subject, "AU12": k % 2})
    man = img / "manifest.csv"
    pd.DataFrame(rows).to_csv(man, index=False)
    args = ["prepare", "--dataset", "manifest", "--root", str(man), "--out",
            str(tmp_path / "store"), "--static", "--no-progress"]
    assert main(args) == 0
    pd.DataFrame([{**r, "AU12": 1} for r in rows]).to_csv(man, index=False)  # labels edited
    capsys.readouterr()
    assert main(args) == 0
    assert "preparing again 2 session(s)" in capsys.readouterr().out  # A and C changed
    from pattnet.store import PatchStore

    assert PatchStore(tmp_path / "store").table["AU12"].tolist() == [1, 1, 1]
    cv2.imwrite(str(img / "B.png"), astronaut[:, :, ::-1])  # an image replaced, same name
    assert main(args) == 0
    assert "preparing again 1 session(s) whose labels or source files changed" in \
        capsys.readouterr().out
    assert main(args) == 0
    assert "nothing left to prepare" in capsys.readouterr().out


# -- 4. output paths that cannot be written ---------------------------------------------------
@pytest.mark.parametrize("command", ["register", "detect", "prepare"])
@pytest.mark.parametrize("where", ["a file", "inside a file", "read-only folder"])
def test_output_paths_that_cannot_be_written_give_one_line(tmp_path, capsys, astronaut,
                                                           command, where):
    cv2.imwrite(str(tmp_path / "a.png"), astronaut[:, :, ::-1])
    (tmp_path / "m.csv").write_text("path,subject,AU12\na.png,S,1\n")
    (tmp_path / "taken").write_text("x")
    out = {"a file": tmp_path / "taken", "inside a file": tmp_path / "taken" / "sub",
           "read-only folder": UNWRITABLE}[where]
    argv = {"register": ["register", str(tmp_path / "a.png"), "--out", str(out)],
            "detect": ["detect", str(tmp_path / "a.png"), "--out", str(out), "--no-progress"],
            "prepare": ["prepare", "--dataset", "manifest", "--root", str(tmp_path / "m.csv"),
                        "--out", str(out), "--no-progress"]}[command]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("pattnet: error:") and str(out) in err
    assert (tmp_path / "taken").read_text() == "x"


# -- 5. settings out of range, refused before anything is written ----------------------------
@pytest.mark.parametrize("setting", ["epochs=-1", "batch_size=0", "lr=0", "val_fraction=1.5"])
def test_settings_out_of_range_leave_no_run_folder(tmp_path, capsys, setting):
    toy_store(tmp_path / "store", n=12)
    rc = main(["train", str(tmp_path / "store"), "--out", str(tmp_path / "run"), "--no-progress",
               "--set", setting])
    err = capsys.readouterr().err
    assert rc == 2 and f"config key '{setting.split('=')[0]}'" in err and err.count("\n") == 1
    assert not (tmp_path / "run").exists()


# -- 6. overrides on --resume -----------------------------------------------------------------
def test_resume_refuses_settings_that_differ(tmp_path, capsys):
    toy_store(tmp_path / "store", n=24)
    base = ["train", str(tmp_path / "store"), "--out", str(tmp_path / "run"), "--no-progress",
            "--fold", "1", "--set", "epochs=1", "batch_size=12", "num_workers=0",
            "model=pattnet-multilabel"]
    assert main(base) == 0
    capsys.readouterr()
    resume = ["train", str(tmp_path / "store"), "--out", str(tmp_path / "run"), "--no-progress",
              "--fold", "1", "--resume"]
    assert main([*resume, "--set", "lr=0.1"]) == 2
    err = capsys.readouterr().err
    assert "lr=0.1 (run: 0.001)" in err and err.count("\n") == 1
    assert main(resume) == 0  # without overrides it continues (here: already finished)
    assert main([*resume, "--set", "epochs=1"]) == 0  # an override equal to the run's is fine


# -- 7. register and detect on a video damaged part way ---------------------------------------
def test_register_and_detect_say_the_same_about_a_damaged_video(tmp_path, faces_dir, capsys):
    data = (faces_dir / "WolfgangLanger_Pexels.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 10])
    codes, lines = [], []
    for argv in (["register", str(cut), "--out", str(tmp_path / "r"), "--no-images"],
                 ["detect", str(cut), "--out", str(tmp_path / "d"), "--no-progress"]):
        codes.append(main(argv))
        err = capsys.readouterr().err
        lines.append(next(ln for ln in err.splitlines() if "incomplete" in ln))
    assert codes == [1, 1]
    assert lines[0] == lines[1] and lines[0].startswith("pattnet: incomplete: stopped after frame")
    assert str(cut) in lines[0]
    for csv in (tmp_path / "r" / "cut.csv", tmp_path / "d" / "cut.csv"):
        assert csv.read_text().rstrip().splitlines()[-1].startswith("# stopped after frame")


# -- 8. every message about an input names it -------------------------------------------------
@pytest.mark.parametrize("command", ["register", "detect"])
def test_a_1x1_image_is_named(tmp_path, capsys, command, astronaut):
    cv2.imwrite(str(tmp_path / "dot.png"), np.zeros((1, 1, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "ok.png"), astronaut[:, :, ::-1])
    extra = ["--no-progress"] if command == "detect" else []
    assert main([command, str(tmp_path / "dot.png"), "--out", str(tmp_path / "o"), *extra]) == 2
    assert f"{tmp_path / 'dot.png'}: " in capsys.readouterr().err
    assert main([command, str(tmp_path), "--out", str(tmp_path / "o2"), *extra]) == 1
    skipped = [ln for ln in capsys.readouterr().err.splitlines() if "skipped" in ln]
    assert len(skipped) == 1 and str(tmp_path / "dot.png") in skipped[0]


# -- 9. what a non-model or truncated model file is called ------------------------------------
def test_random_bytes_and_truncated_model_files_are_named_for_what_they_are(tmp_path):
    from pattnet.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
    from pattnet.models import create_model

    (tmp_path / "random.pt").write_bytes(np.random.default_rng(0).bytes(100_000))
    with pytest.raises(CheckpointError, match=r"random\.pt: not a model file \(not a file PyTorch "
                                              "wrote"):
        load_checkpoint(tmp_path / "random.pt")
    good = save_checkpoint(tmp_path / "m.pt", create_model("pattnet-geometry", aus=[1]),
                           mesh_reference=np.zeros((478, 3), np.float32)).read_bytes()
    (tmp_path / "cut.pt").write_bytes(good[: len(good) // 3])
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(tmp_path / "cut.pt")
    msg = str(err.value)
    assert msg.endswith("?)") or msg.endswith(")"), msg  # a whole sentence, not cut mid-word
    assert "truncated" in msg and "If yo" not in msg


# -- 10. failed starts leave nothing behind ---------------------------------------------------
def test_a_manifest_without_rows_leaves_no_store_folder(tmp_path, capsys):
    (tmp_path / "m.csv").write_text("path,subject,AU12\n")
    rc = main(["prepare", "--dataset", "manifest", "--root", str(tmp_path / "m.csv"), "--out",
               str(tmp_path / "store"), "--no-progress"])
    assert rc == 2 and "no rows" in capsys.readouterr().err
    assert not (tmp_path / "store").exists()


def test_a_fold_that_does_not_exist_leaves_no_run_folder(tmp_path, capsys):
    toy_store(tmp_path / "store", n=12)
    argv = ["train", str(tmp_path / "store"), "--out", str(tmp_path / "run"), "--no-progress",
            "--set", "epochs=1", "num_workers=0", "model=pattnet-multilabel"]
    assert main([*argv, "--fold", "7"]) == 2
    assert "--fold 7: the run has folds 1..3" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
    assert main([*argv, "--fold", "1"]) == 0  # the corrected retry, same --out


# -- 11. one rule for a finished fold ---------------------------------------------------------
def test_evaluate_and_export_agree_on_an_unfinished_fold(tmp_path, capsys):
    from pattnet.evaluate import evaluate_run

    toy_store(tmp_path / "store", n=36)
    assert main(["train", str(tmp_path / "store"), "--out", str(tmp_path / "run"),
                 "--no-progress", "--set", "epochs=1", "num_workers=0", "max_batches=1",
                 "model=pattnet-multilabel"]) == 0
    (tmp_path / "run" / "fold2" / "selected.json").unlink()  # killed between its last steps
    res = evaluate_run(tmp_path / "run", write=False)
    assert res.run.folds == (1, 2, 3) and 2 in res.missing_folds and 2 not in res.folds
    capsys.readouterr()
    assert main(["export", str(tmp_path / "run"), "--out", str(tmp_path / "m.pt"), "--fold",
                 "2"]) == 2
    assert "fold not finished (no selected.json)" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "run"), "--out", str(tmp_path / "m.pt")]) == 0
    assert "fold 2" not in capsys.readouterr().out  # the default is chosen among finished folds
