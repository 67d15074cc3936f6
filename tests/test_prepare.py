"""``pattnet prepare``: layouts, failures, kill -9 + resume, shards + merge, workers.

Fixture datasets are tiny trees in the exact BP4D, DISFA and manifest layouts, built in tmp_path
from frames of ../shared/data/faces/WolfgangLanger_Pexels.mp4 (or, in a fresh clone without
../shared, from skimage's astronaut photo shifted a little per frame).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from conftest import SHARED_FACES
from pattnet.cli import main
from pattnet.constants import BP4D_AUS, DISFA_AUS, au_name
from pattnet.datasets import get_adapter
from pattnet.errors import PattnetError
from pattnet.prepare import REPORT_CSV, merge, prepare
from pattnet.store import PatchStore

REPO = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------------------------
# fixture data
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    """16 RGB frames with a face, in video order."""
    video = SHARED_FACES / "WolfgangLanger_Pexels.mp4"
    if video.is_file():
        from pattnet.io import iter_frames

        out = []
        for fr in iter_frames(video):
            if fr.index % 3 == 0:
                out.append(fr.rgb)
            if len(out) == 16:
                break
        return out
    from skimage import data

    img = data.astronaut()
    return [np.ascontiguousarray(np.roll(img, (i, 2 * i), axis=(0, 1))) for i in range(16)]


def write_jpg(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), rgb[:, :, ::-1])


def labels_of(rng: np.random.Generator, n: int, n_aus: int) -> np.ndarray:
    return rng.choice([0, 1, 9], size=(n, n_aus), p=[0.45, 0.45, 0.1])


@pytest.fixture(scope="module")
def manifest_root(tmp_path_factory, frames) -> Path:
    """3 sessions x 4 image frames; the main subject of the kill / shard / workers tests."""
    root = tmp_path_factory.mktemp("manifest")
    rng = np.random.default_rng(3)
    rows = []
    for i in range(12):
        name = f"img/{i:03d}.jpg"
        write_jpg(root / name, frames[i])
        y = rng.integers(0, 2, 3)
        rows.append({"subject": f"S{i // 4}", "session": "T1", "path": name,
                     "AU1": y[0], "AU6": y[1], "AU12": y[2]})
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    return root


@pytest.fixture(scope="module")
def reference(tmp_path_factory, manifest_root) -> Path:
    """The manifest prepared in one uninterrupted, single-worker, unsharded run."""
    out = tmp_path_factory.mktemp("ref") / "store"
    prepare(manifest_root, out, "manifest", progress=False, echo=lambda s: None)
    return out


def assert_same_store(a: Path, b: Path) -> None:
    """frames.csv and every array byte identical, chunks in the same order."""
    assert (a / "frames.csv").read_bytes() == (b / "frames.csv").read_bytes()
    ca = json.loads((a / "store.json").read_text())["chunks"]
    cb = json.loads((b / "store.json").read_text())["chunks"]
    assert [(c["name"], c["n"]) for c in ca] == [(c["name"], c["n"]) for c in cb]
    for c in ca:
        for kind in ("patches", "holistic"):
            fa = a / "chunks" / f"{c['name']}.{kind}.u8"
            fb = b / "chunks" / f"{c['name']}.{kind}.u8"
            assert fa.read_bytes() == fb.read_bytes(), f"{c['name']} {kind} differ"


#: sitecustomize.py of a prepare subprocess that must die by kill -9 at a deterministic point.
#: As sitecustomize it runs in every interpreter started with its folder on PYTHONPATH, so the
#: spawned workers of ``--workers N`` get the same patch as the main process.
KILL_HOOK = '''"""Test hook from tests/test_prepare.py: SIGKILL this process when it is asked to
register a frame after it has registered KILL_AFTER frames."""
import os
import signal

from pattnet.prepare.session import FrameProcessor

_register = FrameProcessor.__call__
_frames = [0]


def _register_or_die(self, rgb):
    if _frames[0] >= KILL_AFTER:
        os.kill(os.getpid(), signal.SIGKILL)
    _frames[0] += 1
    return _register(self, rgb)


FrameProcessor.__call__ = _register_or_die
'''


@pytest.fixture
def kill_after_frames(tmp_path) -> Callable[[int], dict[str, str]]:
    """``env(n)``: the environment of a ``pattnet prepare`` subprocess that kills itself with
    SIGKILL once it has prepared ``n`` frames, like a real kill -9 at a known point."""

    def env(n: int) -> dict[str, str]:
        hook = tmp_path / "kill_hook"
        hook.mkdir(exist_ok=True)
        (hook / "sitecustomize.py").write_text(KILL_HOOK.replace("KILL_AFTER", str(int(n))))
        return {**os.environ, "PYTHONPATH": os.pathsep.join([str(hook), str(REPO / "src")])}

    return env


def adapter_rows(name: str, root: Path, **opts) -> pd.DataFrame:
    ad = get_adapter(name, root, **opts)
    rows = [{"subject": r.subject, "session": r.session, "frame": r.frame,
             **{au_name(a): v for a, v in zip(ad.aus, r.labels, strict=True)}}
            for s in ad.iter_sessions() for r in s.records]
    return pd.DataFrame(rows).sort_values(["subject", "session", "frame"]).reset_index(drop=True)


def store_rows(st: PatchStore) -> pd.DataFrame:
    cols = ["subject", "session", "frame", *[au_name(a) for a in st.aus]]
    return st.table[cols].reset_index(drop=True)


def report(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / REPORT_CSV, dtype={"subject": str, "session": str, "frames": str})


# --------------------------------------------------------------------------------------------
# layouts
# --------------------------------------------------------------------------------------------
def test_bp4d_layout_missing_and_unreadable_images(tmp_path, frames):
    root = tmp_path / "BP4D"
    labels_dir = root / "AUCoding" / "AU_OCC"
    labels_dir.mkdir(parents=True)
    rng = np.random.default_rng(0)
    head = "frame," + ",".join(str(a) for a in BP4D_AUS)
    sessions = {("F001", "T1"): range(120, 125), ("M002", "T4"): range(7, 10)}
    k = 0
    for (subj, task), frame_nums in sessions.items():
        y = labels_of(rng, len(frame_nums), len(BP4D_AUS))
        y[:, 0] = 1  # every frame coded at least once
        lines = [head] + [f"{f}," + ",".join(map(str, row)) for f, row in zip(frame_nums, y, strict=True)]
        (labels_dir / f"{subj}_{task}.csv").write_text("\n".join(lines) + "\n")
        for f in frame_nums:
            write_jpg(root / subj / task / f"{f:04d}.jpg", frames[k])
            k += 1
    (root / "F001" / "T1" / "0124.jpg").unlink()  # labelled frame without its image
    (root / "M002" / "T4" / "0008.jpg").write_bytes(b"\x00garbage, not a JPEG" * 10)
    (labels_dir / "F002_T1.csv").write_text(head + "\n5," + ",".join(["9"] * 12) + "\n")

    out = tmp_path / "store"
    res = prepare(root, out, "bp4d", progress=False, echo=lambda s: None)
    st = PatchStore(out)
    want = adapter_rows("bp4d", root)
    pd.testing.assert_frame_equal(store_rows(st), want, check_dtype=False)
    assert 124 not in set(st.table["frame"]) and len(st) == 7
    assert st.aus == list(BP4D_AUS) and st.meta["dataset"] == "bp4d"
    assert st.meta["template_version"] and st.meta["pattnet_version"]

    bad = st.table.index[(st.table["session"] == "T4") & (st.table["frame"] == 8)][0]
    assert st.table.loc[bad, "success"] == 0
    assert not st.patches(int(bad)).any() and not st.holistic(int(bad)).any()
    good = st.table.index[st.table["success"] == 1]
    assert len(good) >= 5, "real faces should register"
    assert all(st.patches(int(i)).std() > 5 for i in good)
    # the canonical mesh of every registered face, NaN where there was none
    mesh = st.mesh(np.arange(len(st)))
    assert np.isfinite(mesh[good]).all() and np.isnan(mesh[bad]).all()
    iod = np.linalg.norm(mesh[good][:, 473, :2] - mesh[good][:, 468, :2], axis=1)
    assert (abs(iod - 96) < 10).all(), iod  # pose and scale removed: the canonical frame

    rep = report(out)
    kinds = set(zip(rep["subject"], rep["kind"], strict=True))
    assert ("F001", "missing_image") in kinds
    assert ("M002", "unreadable_frame") in kinds
    assert ("F002", "empty_session") in kinds
    assert rep.loc[rep["kind"] == "missing_image", "frames"].iloc[0] == "124"
    s = res.summary
    assert s["frames"] == 7 and s["failed"] == 7 - len(good) and s["sessions_empty"] == 1
    assert set(res.report["base_rates_registered"]) == {au_name(a) for a in BP4D_AUS}


def test_disfa_layout_decodes_video(tmp_path, frames):
    root = tmp_path / "DISFA"
    vdir = root / "Videos_LeftCamera"
    vdir.mkdir(parents=True)
    h, w = frames[0].shape[:2]
    vw = cv2.VideoWriter(str(vdir / "LeftVideoSN001_comp.avi"), cv2.VideoWriter_fourcc(*"MJPG"),
                         20, (w, h))
    for f in frames[:8]:
        vw.write(f[:, :, ::-1])
    vw.release()
    ldir = root / "ActionUnit_Labels" / "SN001"
    ldir.mkdir(parents=True)
    rng = np.random.default_rng(1)
    coded = [1, 2, 3, 5, 6, 30]  # frame 30 lies beyond the 8-frame video
    for au in DISFA_AUS:
        (ldir / f"SN001_au{au}.txt").write_text(
            "".join(f"{f},{rng.integers(0, 6)}\n" for f in coded))

    out = tmp_path / "store"
    prepare(root, out, "disfa", progress=False, echo=lambda s: None)
    st = PatchStore(out)
    pd.testing.assert_frame_equal(store_rows(st), adapter_rows("disfa", root), check_dtype=False)
    assert list(st.table["frame"]) == [1, 2, 3, 5, 6]
    assert st.success.sum() >= 4
    assert st.meta["adapter_options"] == {} and st.meta["prepare"]["dataset"] == "disfa"
    rep = report(out)
    assert (rep["kind"] == "missing_image").any()  # frame 30

    # decoding: one sequential pass per increasing run; frames past the end are errors
    from pattnet.datasets import FrameRecord
    from pattnet.io import iter_frames
    from pattnet.prepare.sources import iter_sources as _iter_sources

    video = vdir / "LeftVideoSN001_comp.avi"
    decoded = [f.rgb for f in iter_frames(video)]
    recs = [FrameRecord("SN001", "x", i, video, i, ()) for i in (1, 5, 3, 30)]
    got = list(_iter_sources(recs))
    for (_rec, rgb, err), want in zip(got[:3], (1, 5, 3), strict=True):
        assert err is None and np.array_equal(rgb, decoded[want])
    assert got[3][1] is None and "ends after frame 7" in got[3][2]


def test_manifest_images_and_video(tmp_path, frames, faces_dir):
    root = tmp_path / "m"
    write_jpg(root / "a.jpg", frames[0])
    write_jpg(root / "b.jpg", frames[5])
    video = faces_dir / "single_face.mp4"  # referenced in place, not copied
    rows = ["subject,session,path,video,frame,AU1,AU12",
            "P1,s1,a.jpg,,,1,0", "P1,s1,b.jpg,,,0,1", "P1,s1,gone.jpg,,,1,1",
            f"P2,clip,,{video},3,1,0", f"P2,clip,,{video},10,0,0", f"P2,clip,,{video},11,1,1"]
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "store"
    prepare(root / "manifest.csv", out, progress=False, echo=lambda s: None)
    st = PatchStore(out)
    pd.testing.assert_frame_equal(store_rows(st), adapter_rows("manifest", root / "manifest.csv"),
                                  check_dtype=False)
    assert list(zip(st.table["session"], st.table["frame"], strict=True)) == [
        ("s1", 0), ("s1", 1), ("clip", 3), ("clip", 10), ("clip", 11)]
    assert st.success.all()
    assert (report(out)["kind"] == "missing_image").sum() == 1


# --------------------------------------------------------------------------------------------
# resume, shards, workers: all byte-identical to one plain run
# --------------------------------------------------------------------------------------------
def test_kill_9_and_resume_gives_identical_store(tmp_path, manifest_root, reference,
                                                  kill_after_frames):
    out = tmp_path / "store"
    cmd = [sys.executable, "-m", "pattnet.cli", "prepare", "--root", str(manifest_root),
           "--out", str(out), "--no-progress"]
    env = kill_after_frames(6)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr[-2000:]  # SIGKILL in the middle of session 2
    meta = json.loads((out / "store.json").read_text())
    assert not meta["complete"] and [c["n"] for c in meta["chunks"]] == [4]
    assert any(".tmp" in p.name for p in (out / "chunks").iterdir())  # half-written session
    with pytest.raises(PattnetError, match="incomplete"):
        PatchStore(out)

    res = prepare(manifest_root, out, "manifest", progress=False, echo=lambda s: None)
    assert res.frames_done == 8  # only the two unfinished sessions were redone
    assert not any(".tmp" in p.name for p in (out / "chunks").iterdir())
    assert_same_store(out, reference)


def test_two_shards_merged_equal_single_run(tmp_path, manifest_root, reference):
    shards = []
    for i in range(2):
        shards.append(tmp_path / f"shard{i}")
        prepare(manifest_root, shards[-1], "manifest", shard=(i, 2), progress=False,
                echo=lambda s: None)
    assert [len(PatchStore(s)) for s in shards] == [8, 4]  # sessions S0, S2 | S1
    with pytest.raises(PattnetError, match="1/2 missing"):
        merge(shards[:1], tmp_path / "bad", echo=lambda s: None)
    res = merge(shards, tmp_path / "merged", echo=lambda s: None)
    assert res.report["chunks_linked"] + res.report["chunks_copied"] == 3
    assert_same_store(tmp_path / "merged", reference)
    assert res.summary["frames"] == 12 and res.summary["sessions_done"] == 3
    # the merged store's files are links, so the shards can be deleted afterwards
    with pytest.raises(PattnetError, match="different settings"):
        prepare(manifest_root, shards[0], "manifest", shard=(1, 2), progress=False,
                echo=lambda s: None)


def test_two_workers_equal_one(tmp_path, manifest_root, reference):
    out = tmp_path / "store"
    prepare(manifest_root, out, "manifest", workers=2, progress=False, echo=lambda s: None)
    assert_same_store(out, reference)


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["prepare", "--root", str(tmp_path / "nope"), "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("pattnet: error:")
    assert main(["prepare", "--merge", str(tmp_path), "--out", str(tmp_path / "s"),
                 "--shard", "0/2"]) == 2
    assert main(["prepare", "--root", str(tmp_path), "--out", str(tmp_path / "s"),
                 "--shard", "2/2"]) == 2
