"""``pattnet detect`` and ``pattnet.Detector`` end to end, with a model trained in-test.

Real faces come from ../shared/data/faces (skipped where absent); the model is a 1-epoch
multi-label PAttNet trained on a toy store and exported with ``export_run``: its probabilities
mean nothing, but everything between the video and the CSV is the real thing.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pandas as pd
import pytest

from pattnet.cli import main
from pattnet.detect import Detector, columns, read_detections
from pattnet.io import iter_frames

AUS = [1, 2, 12]


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    from helpers import toy_store
    from pattnet.checkpoint import export_run
    from pattnet.train import TrainConfig, train

    d = tmp_path_factory.mktemp("detect_model")
    store = toy_store(d / "store", n=48, aus=AUS, signal_patch={1: 0, 2: 1, 12: 7})
    cfg = TrainConfig(model="pattnet-multilabel", epochs=1, batch_size=16, num_workers=0)
    run = train(store.path, d / "run", cfg, folds=[1], progress=False)
    return export_run(run, d / "model.pt").path


def _decoded(path) -> int:
    return sum(1 for _ in iter_frames(path))


def _error_line(capfd) -> str:
    err = capfd.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("pattnet: error: "), err
    return lines[0]


@pytest.fixture(scope="module")
def video_cli(model_path, faces_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("detect_out")
    rc = main(["detect", str(faces_dir / "single_face.mp4"), "--model", str(model_path),
               "--out", str(out), "--overlay", "--plot", "--no-progress"])
    return rc, out


def test_video_one_row_per_frame_and_api_equals_csv(video_cli, model_path, faces_dir):
    rc, out = video_cli
    assert rc == 0
    csv = read_detections(out / "single_face.csv")
    assert list(csv.columns) == columns(AUS)
    n = _decoded(faces_dir / "single_face.mp4")
    assert len(csv) == n == 72 and csv["frame"].tolist() == list(range(n))
    assert csv["success"].all() and np.isfinite(csv["timestamp"]).all()
    assert (np.diff(csv["timestamp"]) > 0).all()
    p = csv[[f"AU{a:02d}_p" for a in AUS]].to_numpy()
    c = csv[[f"AU{a:02d}_c" for a in AUS]].to_numpy()
    assert ((p >= 0) & (p <= 1)).all() and np.array_equal(c, (p >= 0.5).astype(float))
    with Detector(model_path) as det:
        api = det.detect(faces_dir / "single_face.mp4")
    pd.testing.assert_frame_equal(api, csv)
    assert not list(out.glob("*.partial"))


def test_overlay_video_and_timeline(video_cli, faces_dir):
    _, out = video_cli
    frames = list(iter_frames(out / "single_face_overlay.mp4"))
    src = next(iter_frames(faces_dir / "single_face.mp4")).rgb
    assert len(frames) == 72
    h, w = src.shape[:2]
    assert frames[0].rgb.shape == (h // 2 * 2, w // 2 * 2, 3)
    png = cv2.imread(str(out / "single_face_timeline.png"))
    assert png is not None and png.shape[0] > 200


def test_faceless_frames_keep_their_row(model_path, faces_dir):
    path = faces_dir / "face_noface.mov"
    with Detector(model_path) as det:
        df = det.detect(path)
    n = _decoded(path)
    assert len(df) == n and df["frame"].tolist() == list(range(n))
    none = df[df["success"] == 0]
    assert len(none) > 20 and (df["success"] == 1).sum() > 20
    assert none[[f"AU{a:02d}_p" for a in AUS]].isna().all().all()
    assert none[[f"AU{a:02d}_c" for a in AUS]].isna().all().all()
    # the face comes first, then the faceless animation
    assert df.loc[df["success"] == 1, "frame"].min() < none["frame"].min()


def test_five_faces_in_one_photo(model_path, faces_dir, tmp_path):
    with Detector(model_path, max_faces=5) as det:
        df = det.detect(faces_dir / "multi_face.jpg")
        sub = Detector(det.checkpoint, aus=[12], threshold=0.0).detect(faces_dir / "multi_face.jpg")
    assert len(df) == 5 and df["face_id"].tolist() == [0, 1, 2, 3, 4]
    assert (df["frame"] == 0).all() and df["success"].all()
    assert np.isfinite(df[[f"AU{a:02d}_p" for a in AUS]].to_numpy()).all()
    assert list(sub.columns) == columns([12]) and len(sub) == 1 and (sub["AU12_c"] == 1).all()


def test_crash_mid_video_keeps_the_rows_so_far(model_path, faces_dir, tmp_path):
    class Crash(Exception):
        pass

    def on_frame(fr):
        if fr.index == 45:
            raise Crash

    with Detector(model_path, batch_size=8) as det, pytest.raises(Crash):
        det.detect_to_files(faces_dir / "single_face.mp4", tmp_path / "v.csv", on_frame=on_frame,
                            progress=False)
    assert not (tmp_path / "v.csv").exists()
    (kept,) = tmp_path.glob("v.csv.*.partial")  # named apart per process
    partial = read_detections(kept)
    assert len(partial) >= 32 and partial["frame"].tolist() == list(range(len(partial)))


def test_damaged_video_keeps_frames_before_the_damage(model_path, faces_dir, tmp_path):
    data = (faces_dir / "WolfgangLanger_Pexels.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 10])  # a truncated download (moov atom first)
    rc = main(["detect", str(cut), "--model", str(model_path), "--out", str(tmp_path),
               "--no-progress"])
    assert rc == 1
    text = (tmp_path / "cut.csv").read_text()
    assert text.rstrip().splitlines()[-1].startswith("# stopped after frame")
    df = read_detections(tmp_path / "cut.csv")
    assert 5 < len(df) < 472 and df["frame"].tolist() == list(range(len(df)))


def test_bad_inputs_one_error_line(model_path, tmp_path, capfd):
    import av
    import torch

    from pattnet.checkpoint import checkpoint_dict
    from pattnet.models import create_model

    img = tmp_path / "noise.png"
    cv2.imwrite(str(img), np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8))
    txt = tmp_path / "notes.txt"
    txt.write_text("not a video")
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00junk" * 100)
    empty = tmp_path / "empty.mp4"  # a valid container whose frames are all zeroed out
    with av.open(str(empty), "w") as c:
        st = c.add_stream("mpeg4", rate=25)
        st.width, st.height, st.pix_fmt = 64, 64, "yuv420p"
        for i in range(5):
            vf = av.VideoFrame.from_ndarray(np.full((64, 64, 3), 40 * i, np.uint8), format="rgb24")
            for packet in st.encode(vf):
                c.mux(packet)
        for packet in st.encode():
            c.mux(packet)
    b = bytearray(empty.read_bytes())
    i = b.find(b"mdat")
    size = int.from_bytes(b[i - 4:i], "big")
    b[i + 4:i - 4 + size] = bytes(size - 8)
    empty.write_bytes(bytes(b))
    d = checkpoint_dict(create_model("pattnet-multilabel", aus=(1, 2)))
    d["aus"], d["threshold"] = [1, 2, 4], [0.5] * 3
    torch.save(d, tmp_path / "mismatch.pt")
    out = str(tmp_path / "out")
    m = str(model_path)
    cases = [
        (["detect", str(txt), "--model", m, "--out", out], "unsupported file type"),
        (["detect", str(garbage), "--model", m, "--out", out], "not a readable video"),
        (["detect", str(empty), "--model", m, "--out", out], "decoding stopped after 0 frame"),
        (["detect", str(img), "--model", str(tmp_path / "none.pt"), "--out", out],
         "model file not found"),
        (["detect", str(img), "--model", m, "--out", out, "--aus", "1,4"], "it has no AU04"),
        (["detect", str(img), "--model", str(tmp_path / "mismatch.pt"), "--out", out],
         "weights do not match"),
        (["detect", "--webcam", "7", "--model", m, "--out", out], "camera 7"),
    ]
    for argv, expect in cases:
        assert main(argv + ["--no-progress"]) == 2, argv
        line = _error_line(capfd)
        assert expect in line, (argv, line)
    assert not list((tmp_path / "out").glob("*.csv*"))


def test_folder_with_one_bad_file(model_path, faces_dir, tmp_path, capfd):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a_broken.mp4").write_bytes(b"\x00junk" * 100)
    (folder / "b_face.jpg").symlink_to(faces_dir / "0-f1-su-ph.jpg")  # linked, never copied
    rc = main(["detect", str(folder), "--model", str(model_path), "--out", str(tmp_path / "o"),
               "--no-progress", "--plot"])
    err = capfd.readouterr().err
    assert rc == 1 and "Traceback" not in err
    assert "pattnet: skipped:" in err and "a_broken.mp4" in err
    df = read_detections(tmp_path / "o" / "b_face.csv")
    assert len(df) == 1 and df["success"].iloc[0] == 1
    assert not math.isnan(df["AU01_p"].iloc[0])
    assert (tmp_path / "o" / "b_face_timeline.png").is_file()


def test_saved_and_reloaded_checkpoint_detects_identically(faces_dir, tmp_path):
    import torch

    import pattnet
    from pattnet.checkpoint import Checkpoint, save_checkpoint
    from pattnet.models import create_model
    from pattnet.registration.template import load_template

    torch.manual_seed(3)
    model = create_model("pattnet-multilabel", aus=AUS).eval()
    path = save_checkpoint(tmp_path / "m.pt", model, threshold=0.5)
    in_memory = Checkpoint(model=model.to(memory_format=torch.channels_last), aus=AUS,
                           threshold=[0.5] * 3, mean=0.5, std=0.5,
                           template_version=load_template().version, pattnet_version="test")
    photo = faces_dir / "0-f1-su-ph.jpg"
    with pattnet.Detector(in_memory) as a, pattnet.Detector(path) as b:
        pa = [f.prob for fr in a.stream(photo) for f in fr.faces]
        pb = [f.prob for fr in b.stream(photo) for f in fr.faces]
        pd.testing.assert_frame_equal(a.detect(photo), b.detect(photo))
    assert len(pa) == len(pb) == 1 and np.array_equal(pa[0], pb[0])


def test_occurrence_holds_until_the_probability_clearly_crosses_back():
    from pattnet.detect.occurrence import Occurrence
    from pattnet.detect.schema import FaceResult, FrameResult, frame_rows

    occ = Occurrence(np.array([0.5]), margin=0.1)
    seq = [0.45, 0.55, 0.61, 0.52, 0.45, 0.41, 0.39, 0.55, 0.59, 0.65]
    want = [0, 0, 1, 1, 1, 1, 0, 0, 0, 1]
    got = []
    for i, p in enumerate(seq):
        fr = FrameResult(i, i / 25, [FaceResult(0, True, 1.0, 0, 0, 0, (0, 0, 1, 1), np.array([p]))])
        got.append(int(frame_rows(occ.update(fr), np.array([0.5]))[0][-1]))
    assert got == want
    plain = Occurrence(np.array([0.5]), margin=0.0)
    fr = FrameResult(0, 0.0, [FaceResult(0, True, 1.0, 0, 0, 0, (0, 0, 1, 1), np.array([0.52]))])
    assert plain.update(fr).faces[0].occurrence.tolist() == [True]
