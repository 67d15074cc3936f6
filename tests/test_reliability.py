"""Nothing silently wrong, part 2: each case a user met (a run resumed on another store, a model
file whose contents are not numbers, settings out of reach), reproduced and refused in one line
that names the file or setting."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from helpers import toy_store
from pattnet.cli import main

FAST = ["--no-progress", "--set", "epochs=2", "batch_size=12", "num_workers=0",
        "model=pattnet-multilabel", "max_batches=1"]


# -- a run resumed on another store ------------------------------------------------------------
def test_resume_on_another_store_is_refused_and_the_run_kept(tmp_path, capsys):
    from pattnet.train import TrainConfig, train

    toy_store(tmp_path / "a", n=36)
    toy_store(tmp_path / "b", n=24, seed=1)
    cfg = TrainConfig(model="pattnet-multilabel", epochs=2, batch_size=12, num_workers=0,
                      max_batches=1)
    train(tmp_path / "a", tmp_path / "run", cfg, folds=[1], progress=False, stop_after=1)
    info = (tmp_path / "run" / "run.json").read_bytes()
    split = sorted(p.name for p in (tmp_path / "run").rglob("*"))
    rc = main(["train", str(tmp_path / "b"), "--out", str(tmp_path / "run"), "--fold", "1",
               "--resume", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert "store it was started on" in err[0] and str((tmp_path / "a").resolve()) in err[0]
    assert (tmp_path / "run" / "run.json").read_bytes() == info
    assert sorted(p.name for p in (tmp_path / "run").rglob("*")) == split  # nothing trained


def test_resume_on_the_same_path_holding_other_frames_is_refused(tmp_path, capsys):
    import shutil

    from pattnet.train import TrainConfig, train

    toy_store(tmp_path / "a", n=36)
    cfg = TrainConfig(model="pattnet-multilabel", epochs=2, batch_size=12, num_workers=0,
                      max_batches=1)
    train(tmp_path / "a", tmp_path / "run", cfg, folds=[1], progress=False, stop_after=1)
    shutil.rmtree(tmp_path / "a")
    toy_store(tmp_path / "a", n=24, seed=1)
    rc = main(["train", str(tmp_path / "a"), "--out", str(tmp_path / "run"), "--fold", "1",
               "--resume", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "no longer holds the frames" in err[0], err


# -- a model file whose contents are not a trained model ---------------------------------------
def _geometry(aus=(1, 2)):
    from pattnet.models import create_model

    torch.manual_seed(0)
    return create_model("pattnet-geometry", aus=list(aus)).eval()


def _raw_file(path, data):
    """Write a checkpoint dict as another writer would, with a checksum that matches it: the
    damage is in the contents, not in the bytes."""
    from pattnet.checkpoint.format import weights_digest

    data["weights_sha256"] = weights_digest(data)
    torch.save(data, path)
    return path


BAD_CONTENTS = {
    "nan-weights": ("weight ", "holds NaN"),
    "inf-weights": ("weight ", "holds infinite"),
    "nan-mean": ("mean is nan", ""),
    "inf-std": ("std is inf", ""),
    "zero-std": ("std is 0.0", "above 0"),
    "nan-mesh-reference": ("mesh_reference holds NaN", ""),
    "au-99": ("AU 99 is not a FACS action unit", ""),
}


def _spoil(data, case):
    if case in ("nan-weights", "inf-weights"):
        k = sorted(k for k, v in data["state_dict"].items() if v.is_floating_point())[0]
        data["state_dict"][k] = torch.full_like(data["state_dict"][k],
                                                math.nan if case == "nan-weights" else math.inf)
    elif case == "nan-mean":
        data["mean"] = math.nan
    elif case == "inf-std":
        data["std"] = math.inf
    elif case == "zero-std":
        data["std"] = 0.0
    elif case == "nan-mesh-reference":
        data["mesh_reference"] = torch.full((478, 3), math.nan)
    elif case == "au-99":
        data["aus"] = [99, 2]
    return data


@pytest.mark.parametrize("case", list(BAD_CONTENTS))
def test_a_model_file_with_unusable_contents_is_refused_on_load(tmp_path, case):
    from pattnet.checkpoint import CheckpointError, load_checkpoint
    from pattnet.checkpoint.format import checkpoint_dict

    data = checkpoint_dict(_geometry(), mesh_reference=np.zeros((478, 3), np.float32))
    path = _raw_file(tmp_path / "m.pt", _spoil(data, case))
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: not a usable model") and "\n" not in msg, msg
    for part in BAD_CONTENTS[case]:
        assert part in msg, msg


@pytest.mark.parametrize("case", ["nan-weights", "nan-mean", "inf-std", "zero-std",
                                  "nan-mesh-reference", "au-99"])
def test_save_checkpoint_refuses_to_write_unusable_contents(tmp_path, case):
    from pattnet.checkpoint import CheckpointError, save_checkpoint

    model = _geometry((99, 2) if case == "au-99" else (1, 2))
    if case == "nan-weights":
        with torch.no_grad():
            next(model.parameters()).fill_(math.nan)
    kw = {"mesh_reference": np.zeros((478, 3), np.float32)}
    if case == "nan-mean":
        kw["mean"] = math.nan
    if case == "inf-std":
        kw["std"] = math.inf
    if case == "zero-std":
        kw["std"] = 0.0
    if case == "nan-mesh-reference":
        kw["mesh_reference"] = np.full((478, 3), np.nan, np.float32)
    with pytest.raises(CheckpointError, match=r"m\.pt: refused to write a model whose "):
        save_checkpoint(tmp_path / "m.pt", model, **kw)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("threshold", [0.0, 1.0, math.nan])
def test_thresholds_that_decide_nothing_are_refused(tmp_path, threshold):
    from pattnet.checkpoint import CheckpointError, save_checkpoint

    with pytest.raises(CheckpointError, match="between 0 and 1"):
        save_checkpoint(tmp_path / "m.pt", _geometry(), threshold=[0.5, threshold],
                        mesh_reference=np.zeros((478, 3), np.float32))


def test_detect_with_a_nan_model_is_one_line_and_never_no_au(tmp_path, capsys, astronaut):
    import cv2

    from pattnet.checkpoint.format import checkpoint_dict

    data = checkpoint_dict(_geometry(), mesh_reference=np.zeros((478, 3), np.float32))
    path = _raw_file(tmp_path / "m.pt", _spoil(data, "nan-weights"))
    cv2.imwrite(str(tmp_path / "face.png"), astronaut[:, :, ::-1])
    rc = main(["detect", str(tmp_path / "face.png"), "--model", str(path), "--out",
               str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "not a usable model" in err[0], err
    assert not list(tmp_path.glob("out/*.csv"))


def test_a_model_that_computes_nan_is_an_error_of_the_model(tmp_path, astronaut):
    """Finite weights can still compute NaN (an overflow in a layer): the detector says so."""
    import cv2

    from pattnet.checkpoint import save_checkpoint
    from pattnet.detect import Detector
    from pattnet.errors import PattnetError

    model = _geometry()
    path = save_checkpoint(tmp_path / "m.pt", model,
                           mesh_reference=np.zeros((478, 3), np.float32))
    with Detector(path) as det:
        head = det.checkpoint.model.net.head
        with torch.no_grad():
            head.weight.fill_(3e38)  # finite, but its products overflow
            head.bias.fill_(-3e38)
        cv2.imwrite(str(tmp_path / "face.png"), astronaut[:, :, ::-1])
        with pytest.raises(PattnetError, match=r"m\.pt: the model gave a non-finite probability"):
            det.detect(tmp_path / "face.png")


@pytest.mark.parametrize("source", ["array", True, 2.5])
def test_detect_on_what_is_not_a_source_is_pattnets_error(source, astronaut):
    from pattnet.detect import Detector
    from pattnet.errors import PattnetError

    with Detector() as det, pytest.raises(PattnetError, match="camera index"):
        det.detect(astronaut if source == "array" else source)


# -- settings out of reach ---------------------------------------------------------------------
@pytest.mark.parametrize("setting,words", [
    ("std=inf", "config key 'std'"), ("lr=inf", "config key 'lr'"),
    ("weight_decay=inf", "config key 'weight_decay'"), ("mean=nan", "config key 'mean'"),
    (f"seed={2**70}", "config key 'seed'"),
    ("device=bogus", "device 'bogus': not a device name"),
    ("device=cuda:7", "device 'cuda:7'"),
])
def test_settings_torch_cannot_use_leave_no_run_folder(tmp_path, capsys, setting, words):
    if setting.startswith("device=cuda") and torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    toy_store(tmp_path / "store", n=12)
    rc = main(["train", str(tmp_path / "store"), "--out", str(tmp_path / "run"), "--no-progress",
               "--set", setting])
    err = capsys.readouterr().err
    assert rc == 2 and words in err and err.count("\n") == 1 and "Traceback" not in err, err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("device", ["bogus", "cuda:7"])
def test_detect_on_a_device_this_machine_lacks_is_one_line(tmp_path, capsys, astronaut, device):
    import cv2

    if torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    cv2.imwrite(str(tmp_path / "a.png"), astronaut[:, :, ::-1])
    rc = main(["detect", str(tmp_path / "a.png"), "--out", str(tmp_path / "out"),
               "--no-progress", "--device", device])
    err = capsys.readouterr().err
    assert rc == 2 and f"device {device!r}" in err and err.count("\n") == 1, err


def test_more_loader_workers_than_cores_are_not_started():
    import os

    from pattnet.train.batches import EpochBatches, batch_loader

    loader = batch_loader([], EpochBatches(np.arange(4), 2, seed=0), 1000)
    assert loader.num_workers == (os.cpu_count() or 1)


# -- output paths checked before any work -------------------------------------------------------
@pytest.mark.parametrize("overlay", ["folder", "noext", "x.xyz"])
def test_a_bad_overlay_name_is_one_line_before_any_file(tmp_path, capsys, astronaut, overlay):
    import cv2

    cv2.imwrite(str(tmp_path / "face.png"), astronaut[:, :, ::-1])
    (tmp_path / "folder").mkdir()
    rc = main(["detect", str(tmp_path / "face.png"), "--out", str(tmp_path / "out"),
               "--no-progress", "--overlay", str(tmp_path / overlay)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "--overlay" in err and "Traceback" not in err, err
    assert (".mp4" in err) and ("is a folder" in err) == (overlay == "folder"), err
    assert not (tmp_path / "out").exists()


def test_the_api_checks_the_overlay_before_the_csv(tmp_path, astronaut):
    import cv2

    from pattnet.detect import Detector
    from pattnet.errors import PattnetError

    cv2.imwrite(str(tmp_path / "face.png"), astronaut[:, :, ::-1])
    with Detector() as det, pytest.raises(PattnetError, match="--overlay must end in"):
        det.detect_to_files(tmp_path / "face.png", tmp_path / "out" / "face.csv",
                            overlay=tmp_path / "o.xyz")
    assert not list(tmp_path.glob("out/*"))


def test_a_model_folder_leaves_no_output_folder(tmp_path, capsys, astronaut):
    import cv2

    cv2.imwrite(str(tmp_path / "face.png"), astronaut[:, :, ::-1])
    (tmp_path / "models").mkdir()
    rc = main(["detect", str(tmp_path / "face.png"), "--model", str(tmp_path / "models"),
               "--out", str(tmp_path / "out")])
    assert rc == 2 and "is a folder" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_export_into_an_existing_folder_is_one_line(tmp_path, capsys):
    toy_store(tmp_path / "store", n=24)
    assert main(["train", str(tmp_path / "store"), "--out", str(tmp_path / "run"), "--fold", "1",
                 *FAST]) == 0
    (tmp_path / "models").mkdir()
    capsys.readouterr()
    rc = main(["export", str(tmp_path / "run"), "--out", str(tmp_path / "models")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "--out is a folder; give a file name" in err, err
    assert not list((tmp_path / "models").iterdir())


# -- photos and videos the right way up ---------------------------------------------------------
def _stored_for(up: np.ndarray, code: int) -> np.ndarray:
    """The pixels a camera stores for an upright picture ``up`` under EXIF Orientation
    ``code``: what a viewer's transform turns back into ``up``."""
    return np.ascontiguousarray({
        1: up, 2: up[:, ::-1], 3: np.rot90(up, 2), 4: up[::-1], 5: up.transpose(1, 0, 2),
        6: np.rot90(up, 1), 7: np.rot90(up, 2).transpose(1, 0, 2), 8: np.rot90(up, -1)}[code])


@pytest.mark.parametrize("code", range(1, 9))
def test_every_exif_orientation_reads_as_pillow_shows_it(tmp_path, code):
    from PIL import Image, ImageOps

    from pattnet.io.frames import read_image

    rng = np.random.default_rng(code)
    up = rng.integers(0, 255, (40, 64, 3), dtype=np.uint8)
    ex = Image.Exif()
    ex[274] = code
    Image.fromarray(_stored_for(up, code)).save(tmp_path / "o.png", exif=ex)
    got = read_image(tmp_path / "o.png")
    shown = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "o.png")).convert("RGB"))
    assert np.array_equal(got, shown) and np.array_equal(got, up)


def _pose_and_aus(path):
    from pattnet.detect import Detector

    with Detector() as det:
        df = det.detect(path)
    row = df[df["success"] == 1].iloc[0]
    aus = np.array([row[c] for c in df.columns if c.endswith("_p")], dtype=float)
    return np.array([row["pitch"], row["yaw"], row["roll"]], dtype=float), aus


def test_a_phone_photo_stored_sideways_gives_the_upright_result(tmp_path, faces_dir):
    from PIL import Image

    up = np.asarray(Image.open(faces_dir / "single_face.jpg").convert("RGB"))
    Image.fromarray(up).save(tmp_path / "upright.jpg", quality=95)
    up = np.asarray(Image.open(tmp_path / "upright.jpg"))  # what a phone would hold
    ex = Image.Exif()
    ex[274] = 6
    Image.fromarray(_stored_for(up, 6)).save(tmp_path / "phone.png", exif=ex)
    pose_up, aus_up = _pose_and_aus(tmp_path / "upright.jpg")
    pose, aus = _pose_and_aus(tmp_path / "phone.png")
    assert np.abs(pose - pose_up).max() <= 1.0, (pose, pose_up)
    assert np.abs(aus - aus_up).max() <= 0.02, np.abs(aus - aus_up).max()
    assert main(["detect", str(tmp_path / "phone.png"), "--out", str(tmp_path / "out"),
                 "--no-progress"]) == 0
    first = (tmp_path / "out" / "phone.csv").read_text().splitlines()[0]
    assert first == "# orientation: EXIF Orientation 6 applied (read upright)", first
    from pattnet.detect import read_detections

    assert len(read_detections(tmp_path / "out" / "phone.csv")) == 1


def test_a_video_with_a_rotation_matrix_gives_the_upright_result(tmp_path, faces_dir):
    import av
    from PIL import Image

    up = np.asarray(Image.open(faces_dir / "single_face.jpg").convert("RGB"))
    up = up[: up.shape[0] // 2 * 2, : up.shape[1] // 2 * 2]

    def write(path, frame, rotation):
        with av.open(str(path), "w") as c:  # lossless: only the orientation differs
            st = c.add_stream("png", rate=10)
            st.height, st.width = frame.shape[:2]
            st.pix_fmt = "rgb24"
            if rotation:
                st.set_display_rotation(rotation)
            for _ in range(3):
                for p in st.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    c.mux(p)
            for p in st.encode():
                c.mux(p)

    write(tmp_path / "upright.mov", up, 0)
    # stored a quarter turn counter-clockwise, shown a quarter turn clockwise (-90)
    write(tmp_path / "phone.mov", np.ascontiguousarray(np.rot90(up, 1)), -90)
    pose_up, aus_up = _pose_and_aus(tmp_path / "upright.mov")
    pose, aus = _pose_and_aus(tmp_path / "phone.mov")
    assert np.abs(pose - pose_up).max() <= 1.0, (pose, pose_up)
    assert np.abs(aus - aus_up).max() <= 0.02, np.abs(aus - aus_up).max()
    from pattnet.io import source_orientation

    assert source_orientation(tmp_path / "phone.mov") == \
        "orientation: display matrix -90 degrees applied (read upright)"
    assert source_orientation(tmp_path / "upright.mov") is None


# -- names at the length limit ------------------------------------------------------------------
def test_an_input_name_of_the_longest_legal_length_is_detected(tmp_path, capsys, astronaut):
    """A 251-character name (legal) once failed on the partial file's longer name."""
    import cv2

    src = tmp_path / ("f" * 247 + ".png")
    cv2.imwrite(str(src), astronaut[:, :, ::-1])
    rc = main(["detect", str(src), "--out", str(tmp_path / "out"), "--no-progress", "--overlay",
               "--plot"])
    assert rc == 0, capsys.readouterr().err
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert len(names) == 3 and all(n.startswith("ffff") and "~" in n for n in names), names
    assert [n.split("~")[1].split("_")[0].split(".")[1:] for n in names] == [["csv"], [], []]
    assert main(["register", str(src), "--out", str(tmp_path / "reg")]) == 0
    assert len(list((tmp_path / "reg").iterdir())) == 2  # the table and the frames folder


def test_long_names_keep_apart_when_shortened():
    from pattnet.io.atomic import NAME_MAX, fit_name

    a, b = "a" * 250 + "1.csv", "a" * 250 + "2.csv"
    assert fit_name(a, 30) != fit_name(b, 30)
    assert len(fit_name(a, 30).encode()) + 30 <= NAME_MAX
    assert fit_name("short.csv", 30) == "short.csv"
    assert len(fit_name("é" * 200, 30).encode()) + 30 <= NAME_MAX


# -- signals -------------------------------------------------------------------------------------
def _long_video(path, astronaut, frames=400):
    import av

    img = np.ascontiguousarray(astronaut[:256, 128:384])
    with av.open(str(path), "w") as c:
        st = c.add_stream("mpeg4", rate=25)
        st.height, st.width = img.shape[:2]
        st.pix_fmt = "yuv420p"
        for k in range(frames):
            frame = np.roll(img, k % 5, axis=1)
            for p in st.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                c.mux(p)
        for p in st.encode():
            c.mux(p)
    return path


def _start_detect(tmp_path, video):
    import subprocess
    import sys

    return subprocess.Popen([sys.executable, "-m", "pattnet", "detect", str(video), "--out",
                             str(tmp_path / "out"), "--no-progress", "--overlay"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_rows(tmp_path, proc, rows=40, timeout=120):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        parts = list((tmp_path / "out").glob("*.partial"))
        if parts and parts[0].read_text().count("\n") > rows:
            return
        time.sleep(0.05)
    raise AssertionError("detect wrote no rows in time")


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_an_interrupted_detect_keeps_its_rows_says_so_and_leaves_nothing_half_written(
        tmp_path, astronaut, sig):
    import signal

    video = _long_video(tmp_path / "clip.mp4", astronaut)
    proc = _start_detect(tmp_path, video)
    _wait_for_rows(tmp_path, proc)
    proc.send_signal(getattr(signal, sig))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    assert "incomplete" in err and "interrupted" in err and "Traceback" not in err, err
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["clip.csv", "clip_overlay.mp4"], names
    text = (tmp_path / "out" / "clip.csv").read_text()
    assert text.rstrip().splitlines()[-1].endswith(": interrupted")


def test_the_rerun_removes_what_a_killed_detect_left(tmp_path, astronaut):
    import signal

    video = _long_video(tmp_path / "clip.mp4", astronaut, frames=200)
    proc = _start_detect(tmp_path, video)
    _wait_for_rows(tmp_path, proc, rows=20)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    left = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert any(n.endswith(".partial") for n in left), left  # the rows so far, kept
    proc = _start_detect(tmp_path, video)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["clip.csv",
                                                                     "clip_overlay.mp4"]


# -- one training per run folder -----------------------------------------------------------------
def test_a_second_train_into_a_running_run_is_refused(tmp_path, capsys):
    import subprocess
    import sys
    import time

    toy_store(tmp_path / "store", n=60)
    first = subprocess.Popen([sys.executable, "-m", "pattnet", "train", str(tmp_path / "store"),
                              "--out", str(tmp_path / "run"), "--no-progress", "--set",
                              "epochs=3", "batch_size=6", "num_workers=0", "model=pattnet"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (tmp_path / "run" / "run.json").is_file() and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        rc = main(["train", str(tmp_path / "store"), "--out", str(tmp_path / "run"), "--resume",
                   "--no-progress"])
        err = capsys.readouterr().err
        assert first.poll() is None, "the first training ended before the second started"
        assert rc == 2 and "another pattnet train is writing here now" in err, err
    finally:
        first.kill()
        first.communicate()
    # the lock died with the process (SIGKILL): the next train may take it
    from pattnet.io.lock import folder_lock
    from pattnet.train.api import LOCK_NAME

    with folder_lock(tmp_path / "run", LOCK_NAME, "another pattnet train"):
        pass


def test_train_into_an_unwritable_folder_is_one_line(tmp_path, capsys):
    toy_store(tmp_path / "store", n=12)
    rc = main(["train", str(tmp_path / "store"), "--out", "/proc/pattnet-run", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "/proc/pattnet-run" in err, err


# -- every command's output check is the same one -----------------------------------------------
READ_ONLY = "/sys"  # nothing can be created there, also for root

ARGV = {
    "demo": ["demo", "--out", f"{READ_ONLY}/demo"],
    "synth": ["synth", "--out", f"{READ_ONLY}/synth"],
    "register": ["register", "in.png", "--out", f"{READ_ONLY}/reg"],
    "prepare": ["prepare", "--dataset", "manifest", "--root", "m.csv", "--out",
                f"{READ_ONLY}/store"],
    "stats": ["stats", "store", "--out", f"{READ_ONLY}/stats"],
    "train": ["train", "store", "--out", f"{READ_ONLY}/run"],
    "evaluate": ["evaluate", READ_ONLY],
    "report": ["report", "run", "--out", f"{READ_ONLY}/report"],
    "export": ["export", "run", "--out", f"{READ_ONLY}/model.pt"],
    "detect": ["detect", "in.png", "--out", f"{READ_ONLY}/det"],
    "reproduce": ["reproduce", "store", "--out", f"{READ_ONLY}/grid"],
}


def test_every_command_that_writes_is_listed():
    from pattnet.cli import COMMANDS

    assert sorted(ARGV) == sorted(c for c in COMMANDS if c != "models")


@pytest.mark.parametrize("command", sorted(ARGV))
def test_every_command_refuses_a_read_only_output_folder_in_one_line(command, capsys):
    rc = main(ARGV[command])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and err.startswith("pattnet: error:"), err
    assert READ_ONLY in err and "Traceback" not in err, err


def test_in_a_folder_run_one_input_that_cannot_be_written_never_stops_the_others(
        tmp_path, capsys, astronaut):
    import cv2

    (tmp_path / "in").mkdir()
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(tmp_path / "in" / name), astronaut[:, :, ::-1])
    (tmp_path / "out" / "a.csv").mkdir(parents=True)  # a's table cannot be written
    rc = main(["detect", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1 and "skipped" in err and "a.csv" in err, err
    assert (tmp_path / "out" / "b.csv").is_file()


@pytest.mark.parametrize("gpus", ["-1", "x", "64"])
def test_reproduce_on_gpus_the_machine_lacks_is_one_line(tmp_path, capsys, gpus):
    if torch.cuda.device_count() >= 64:
        pytest.skip("a machine with 64 GPUs")
    toy_store(tmp_path / "store", n=12)
    rc = main(["reproduce", str(tmp_path / "store"), "--out", str(tmp_path / "g"), "--gpus",
               gpus, "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and f"--gpus {gpus}" in err.replace("'", ""), err


# -- a store that changes under its reader ---------------------------------------------------------
@pytest.mark.parametrize("change", ["truncated", "deleted"])
def test_a_store_changed_while_in_use_is_one_line_not_sigbus(tmp_path, change):
    import shutil

    from pattnet.errors import StoreError
    from pattnet.store import PatchStore

    st = toy_store(tmp_path / "store", n=12)
    st = PatchStore(tmp_path / "store")
    assert st.patches([0, 1]).shape[0] == 2  # mapped
    f = st.chunk_file(st._chunks[0].name, "patches")
    if change == "truncated":
        with open(f, "r+b") as fh:
            fh.truncate(100)
    else:
        shutil.rmtree(tmp_path / "store")
    with pytest.raises(StoreError, match="while the store was in use"):
        st.patches([5, 11])


def test_an_error_from_a_loader_worker_is_pattnets_one_line():
    from pattnet.cli import _one_line
    from pattnet.errors import StoreError

    wrapped = StoreError("Caught StoreError in DataLoader worker process 0.\nOriginal Traceback "
                         "(most recent call last):\n  File \"x.py\", line 1, in f\n"
                         "pattnet.errors.StoreError: /s/chunk: chunk file gone while the store "
                         "was in use")
    assert _one_line(wrapped) == "/s/chunk: chunk file gone while the store was in use"
    assert _one_line(StoreError("plain")) == "plain"


# -- a full disk ---------------------------------------------------------------------------------
def _limited(limit_bytes):
    """A child process whose files may not grow past ``limit_bytes`` (as a full disk would stop
    them: the write fails with EFBIG instead of ENOSPC)."""
    import resource
    import signal

    def setup():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))
    return setup


def _run_limited(argv, limit_bytes, cwd):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "pattnet", *argv], cwd=cwd, capture_output=True,
                          text=True, preexec_fn=_limited(limit_bytes), timeout=300)


def test_a_full_disk_during_detect_is_one_line_and_leaves_nothing(tmp_path, astronaut):
    video = _long_video(tmp_path / "clip.mp4", astronaut, frames=150)
    r = _run_limited(["detect", str(video), "--out", str(tmp_path / "out"), "--no-progress",
                      "--overlay"], 20_000, tmp_path)
    err = [ln for ln in r.stderr.splitlines() if not ln.startswith(("W0000", "I0000"))]
    assert r.returncode == 2 and len(err) == 1 and "File too large" in err[0], r.stderr[-2000:]
    assert "Traceback" not in r.stderr and "terminate called" not in r.stderr
    assert list((tmp_path / "out").iterdir()) == []


def test_a_full_disk_during_prepare_is_one_line_and_leaves_no_store(tmp_path, astronaut):
    import cv2

    cv2.imwrite(str(tmp_path / "a.png"), astronaut[:, :, ::-1])
    (tmp_path / "m.csv").write_text("path,subject,AU12\na.png,S1,1\n")
    r = _run_limited(["prepare", "--dataset", "manifest", "--root", "m.csv", "--out", "st",
                      "--no-progress"], 100_000, tmp_path)
    err = [ln for ln in r.stderr.splitlines() if not ln.startswith(("W0000", "I0000"))]
    assert r.returncode == 2 and len(err) == 1 and "File too large" in err[0], r.stderr[-2000:]
    assert not (tmp_path / "st").exists()


def test_a_full_disk_during_train_is_one_line(tmp_path):
    toy_store(tmp_path / "store", n=24)
    r = _run_limited(["train", "store", "--out", "run", *FAST, "--fold", "1"], 200_000,
                     tmp_path)
    err = [ln for ln in r.stderr.splitlines() if " INFO " not in ln]
    assert r.returncode == 2 and len(err) == 1, r.stderr[-3000:]
    assert "File too large" in err[0] and "epoch-01.pt" in err[0], err
    assert not list((tmp_path / "run").rglob(".*tmp*"))


# -- paths of the wrong kind say what they are ------------------------------------------------------
def test_a_path_of_the_wrong_kind_is_named_for_what_it_is(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    (tmp_path / "folder").mkdir()
    toy_store(tmp_path / "store", n=12)
    cases = [
        (["train", str(tmp_path / "store"), "--out", str(tmp_path / "r"), "--config",
          str(tmp_path / "folder")], "is a folder; give a config file"),
        (["evaluate", str(tmp_path / "file")], "is a file, not a run directory"),
        (["train", str(tmp_path / "file"), "--out", str(tmp_path / "r")], "is a file, not a store"),
    ]
    for argv, words in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert words in err and err.count("\n") == 1, (argv, err)
    assert not (tmp_path / "r").exists()


def test_a_store_without_a_usable_frame_is_an_error(tmp_path, capsys):
    import cv2

    cv2.imwrite(str(tmp_path / "gray.png"), np.full((200, 200, 3), 128, np.uint8))  # no face
    (tmp_path / "m.csv").write_text("path,subject,AU12\ngray.png,S1,1\n")
    rc = main(["prepare", "--dataset", "manifest", "--root", str(tmp_path / "m.csv"), "--out",
               str(tmp_path / "st"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "no usable frame" in err and err.count("\n") == 1, err


@pytest.mark.parametrize("setting", ["extra.lr=0.5", "lrr=0.1"])
def test_a_setting_that_is_not_one_is_refused_naming_the_valid_keys(tmp_path, capsys, setting):
    toy_store(tmp_path / "store", n=12)
    rc = main(["train", str(tmp_path / "store"), "--out", str(tmp_path / "run"), "--no-progress",
               "--set", setting])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "unknown config key" in err, err
    assert "known: model, mode" in err and " lr," in err
    assert not (tmp_path / "run").exists()


def test_a_run_saved_with_the_old_empty_extra_still_resumes(tmp_path):
    import yaml

    from pattnet.runs import RunDir

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.yaml").write_text(yaml.safe_dump({"lr": 0.01, "extra": {}}))
    assert RunDir(tmp_path / "run").read_config() == {"lr": 0.01}


def test_a_store_of_one_person_is_said_to_be_untrainable(tmp_path, capsys, faces_dir):
    import shutil

    shutil.copy(faces_dir / "single_face.jpg", tmp_path / "a.jpg")
    (tmp_path / "m.csv").write_text("path,subject,AU12\na.jpg,S1,1\n")
    rc = main(["prepare", "--dataset", "manifest", "--root", str(tmp_path / "m.csv"), "--out",
               str(tmp_path / "st"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 0 and "warning" in err and "1 subject(s) only" in err, err
    rc = main(["train", str(tmp_path / "st"), "--out", str(tmp_path / "run"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1, err


def test_one_picture_labelled_twice_differently_is_a_conflict_not_two_frames(tmp_path, capsys,
                                                                           faces_dir):
    import shutil

    shutil.copy(faces_dir / "single_face.jpg", tmp_path / "a.jpg")
    (tmp_path / "m.csv").write_text("path,subject,AU12\na.jpg,S1,1\na.jpg,S1,0\n")
    rc = main(["prepare", "--dataset", "manifest", "--root", str(tmp_path / "m.csv"), "--out",
               str(tmp_path / "st"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "no usable frame" in err, err
    report = (tmp_path / "st" / "prepare_report.csv").read_text()
    assert "a.jpg at lines 2, 3" in report and "rows conflict" in report
