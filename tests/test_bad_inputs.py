"""The bad-input corpus: every command against each bad input it takes.

Each case runs the real command (in process) and asserts what a user must get: the exit code
(0 for inputs that are merely unusual and must work, 1 when an output was written but something
was wrong, 2 when nothing could be done), no traceback, a last line that names the file or the
setting at fault, and no half-written file where a finished output would be. Inputs are built
here from small fixtures (bundled faces, a few encoded frames), so the corpus runs anywhere.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from helpers import toy_store
from pattnet.cli import main

UNWRITABLE = Path("/sys")  # a folder nobody can create files in, root included


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]  # {C} is the corpus folder, {O} a fresh output folder
    code: int  # expected exit code
    names: str = ""  # what the last stderr line must contain ({C}/{O} expanded)


def _video(path: Path, frames: list[np.ndarray], codec: str = "mpeg4") -> Path:
    """An MP4 with its index first (as streaming sites write them): cut short, it still plays
    up to the cut."""
    import av

    h, w = (frames[0].shape[0] // 2) * 2, (frames[0].shape[1] // 2) * 2
    with av.open(str(path), "w", options={"movflags": "faststart"}) as c:
        st = c.add_stream(codec, rate=25)
        st.width, st.height, st.pix_fmt = w, h, "yuv420p"
        for f in frames:
            for p in st.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f[:h, :w]), "rgb24")):
                c.mux(p)
        for p in st.encode():
            c.mux(p)
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, astronaut) -> Path:
    """Every bad (and unusual but valid) input, built once."""
    c = tmp_path_factory.mktemp("corpus")
    bgr = astronaut[:, :, ::-1]
    cv2.imwrite(str(c / "ok.png"), bgr)
    cv2.imwrite(str(c / "gray.png"), cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(c / "rgba.png"), np.dstack([bgr, np.full(bgr.shape[:2], 255, np.uint8)]))
    cv2.imwrite(str(c / "deep16.png"), bgr.astype(np.uint16) * 257)
    cv2.imwrite(str(c / "one_px.png"), np.zeros((1, 1, 3), np.uint8))
    cv2.imwrite(str(c / "huge.jpg"), cv2.resize(bgr, (5000, 5000)))
    shutil.copy(c / "ok.png", c / "nön-ascii 漢字.png")
    (c / "zero.png").write_bytes(b"")
    (c / "text.png").write_text("this is not an image\n" * 20)
    jpg = cv2.imencode(".jpg", bgr)[1].tobytes()
    (c / "truncated.jpg").write_bytes(jpg[: len(jpg) // 3])
    # videos: a good one, one cut short, one damaged in the middle, empty, not a video
    frames = [np.roll(astronaut, 2 * i, axis=1) for i in range(40)]
    _video(c / "ok.mp4", frames[:8])
    long = _video(c / "long.mp4", frames).read_bytes()
    (c / "truncated.mp4").write_bytes(long[: len(long) // 2])
    mid = bytearray(long)
    mid[len(mid) // 2: len(mid) // 2 + 2048] = b"\x00" * 2048
    (c / "damaged.mp4").write_bytes(bytes(mid))
    (c / "zero.mp4").write_bytes(b"")
    (c / "text.mp4").write_text("not a video\n" * 50)
    # model files
    (c / "random.pt").write_bytes(np.random.default_rng(0).bytes(50_000))
    from pattnet.checkpoint import bundled_model_path

    model = bundled_model_path().read_bytes()
    (c / "truncated.pt").write_bytes(model[: len(model) // 2])
    (c / "zero.pt").write_bytes(b"")
    (c / "taken").write_text("a file where a folder is expected\n")
    # manifests: good, header only, empty, binary, a bad label, a missing image
    rows = [{"path": "ok.png", "subject": s, "AU12": k % 2} for k, s in enumerate("ABC")]
    pd.DataFrame(rows).to_csv(c / "manifest.csv", index=False)
    (c / "header_only.csv").write_text("path,subject,AU12\n")
    (c / "empty.csv").write_bytes(b"")
    (c / "binary.csv").write_bytes(np.random.default_rng(1).bytes(2000))
    (c / "bad_label.csv").write_text("path,subject,AU12\nok.png,A,maybe\n")
    (c / "missing_image.csv").write_text("path,subject,AU12\nnope.png,A,1\nok.png,B,0\n")
    # stores and runs
    toy_store(c / "store", n=24)
    shutil.copytree(c / "store", c / "store_v1")
    meta = json.loads((c / "store_v1" / "store.json").read_text())
    meta["version"] = 1
    (c / "store_v1" / "store.json").write_text(json.dumps(meta))
    for f in (c / "store_v1" / "chunks").glob("*.mesh.f4"):
        f.unlink()
    shutil.copytree(c / "store", c / "store_cut")
    for f in (c / "store_cut" / "chunks").glob("*.patches.u8"):
        f.write_bytes(f.read_bytes()[:1000])
    shutil.copytree(c / "store", c / "store_badjson")
    (c / "store_badjson" / "store.json").write_text("{ not json")
    (c / "run_unfinished").mkdir()
    (c / "run_unfinished" / "config.yaml").write_text("model: pattnet\n")
    return c


D, R = ("detect",), ("register",)
CASES = [
    # register
    Case("register-ok-gray-rgba-16bit-nonascii", (*R, "{C}/gray.png", "{C}/rgba.png", "{C}/deep16.png",
                                                  "{C}/nön-ascii 漢字.png", "--out", "{O}"), 0),
    Case("register-huge", (*R, "{C}/huge.jpg", "--out", "{O}", "--no-images"), 0),
    Case("register-missing", (*R, "{C}/nope.png", "--out", "{O}"), 2, "{C}/nope.png"),
    Case("register-zero-byte", (*R, "{C}/zero.png", "--out", "{O}"), 2, "{C}/zero.png"),
    Case("register-wrong-type", (*R, "{C}/text.png", "--out", "{O}"), 2, "{C}/text.png"),
    Case("register-truncated-image", (*R, "{C}/truncated.jpg", "--out", "{O}"), 2,
         "{C}/truncated.jpg"),
    Case("register-1x1", (*R, "{C}/one_px.png", "--out", "{O}"), 2, "{C}/one_px.png"),
    Case("register-truncated-video", (*R, "{C}/truncated.mp4", "--out", "{O}", "--no-images"), 1,
         "{C}/truncated.mp4"),
    Case("register-zero-video", (*R, "{C}/zero.mp4", "--out", "{O}"), 2, "{C}/zero.mp4"),
    Case("register-folder-with-bad-files", (*R, "{C}/one_px.png", "{C}/ok.png", "--out", "{O}"), 1,
         "{C}/one_px.png"),
    Case("register-out-is-a-file", (*R, "{C}/ok.png", "--out", "{C}/taken"), 2, "{C}/taken"),
    Case("register-out-read-only", (*R, "{C}/ok.png", "--out", str(UNWRITABLE)), 2,
         str(UNWRITABLE)),
    Case("register-bad-setting", (*R, "{C}/ok.png", "--out", "{O}", "--set", "max_faces=0"), 2,
         "max_faces"),
    Case("register-unknown-setting", (*R, "{C}/ok.png", "--out", "{O}", "--set", "bogus=1"), 2,
         "bogus"),
    # detect (the bundled model unless a model file is the bad input)
    Case("detect-ok-gray-rgba-16bit-nonascii", (*D, "{C}/gray.png", "{C}/rgba.png", "{C}/deep16.png",
                                                "{C}/nön-ascii 漢字.png", "--out", "{O}",
                                                "--no-progress"), 0),
    Case("detect-video", (*D, "{C}/ok.mp4", "--out", "{O}", "--no-progress"), 0),
    Case("detect-missing", (*D, "{C}/nope.mp4", "--out", "{O}"), 2, "{C}/nope.mp4"),
    Case("detect-zero-byte", (*D, "{C}/zero.png", "--out", "{O}", "--no-progress"), 2,
         "{C}/zero.png"),
    Case("detect-wrong-type", (*D, "{C}/text.mp4", "--out", "{O}", "--no-progress"), 2,
         "{C}/text.mp4"),
    Case("detect-1x1", (*D, "{C}/one_px.png", "--out", "{O}", "--no-progress"), 2,
         "{C}/one_px.png"),
    Case("detect-truncated-video", (*D, "{C}/truncated.mp4", "--out", "{O}", "--no-progress"), 1,
         "{C}/truncated.mp4"),
    # zeros in the middle of the stream: the decoder conceals them, every frame comes out
    Case("detect-damaged-video", (*D, "{C}/damaged.mp4", "--out", "{O}", "--no-progress"), 0),
    Case("detect-model-random-bytes", (*D, "{C}/ok.png", "--model", "{C}/random.pt", "--out",
                                       "{O}"), 2, "{C}/random.pt"),
    Case("detect-model-truncated", (*D, "{C}/ok.png", "--model", "{C}/truncated.pt", "--out",
                                    "{O}"), 2, "{C}/truncated.pt"),
    Case("detect-model-zero-byte", (*D, "{C}/ok.png", "--model", "{C}/zero.pt", "--out", "{O}"),
         2, "{C}/zero.pt"),
    Case("detect-model-missing", (*D, "{C}/ok.png", "--model", "{C}/nope.pt", "--out", "{O}"), 2,
         "{C}/nope.pt"),
    Case("detect-out-is-a-file", (*D, "{C}/ok.png", "--out", "{C}/taken"), 2, "{C}/taken"),
    Case("detect-out-read-only", (*D, "{C}/ok.png", "--out", str(UNWRITABLE)), 2,
         str(UNWRITABLE)),
    Case("detect-batch-size-0", (*D, "{C}/ok.png", "--out", "{O}", "--batch-size", "0"), 2,
         "batch size"),
    Case("detect-threshold-2", (*D, "{C}/ok.png", "--out", "{O}", "--threshold", "2"), 2,
         "threshold"),
    Case("detect-aus-not-numbers", (*D, "{C}/ok.png", "--out", "{O}", "--aus", "smile"), 2,
         "--aus"),
    Case("detect-hysteresis", (*D, "{C}/ok.png", "--out", "{O}", "--hysteresis", "0.7"), 2,
         "hysteresis"),
    # prepare
    Case("prepare-manifest-missing", ("prepare", "--dataset", "manifest", "--root",
                                      "{C}/nope.csv", "--out", "{O}"), 2, "{C}/nope.csv"),
    Case("prepare-manifest-empty", ("prepare", "--dataset", "manifest", "--root",
                                    "{C}/empty.csv", "--out", "{O}"), 2, "{C}/empty.csv"),
    Case("prepare-manifest-header-only", ("prepare", "--dataset", "manifest", "--root",
                                          "{C}/header_only.csv", "--out", "{O}"), 2,
         "{C}/header_only.csv"),
    Case("prepare-manifest-binary", ("prepare", "--dataset", "manifest", "--root",
                                     "{C}/binary.csv", "--out", "{O}"), 2, "{C}/binary.csv"),
    Case("prepare-bad-label", ("prepare", "--dataset", "manifest", "--root", "{C}/bad_label.csv",
                               "--out", "{O}", "--strict"), 2, "{C}/bad_label.csv"),
    Case("prepare-out-is-a-file", ("prepare", "--dataset", "manifest", "--root",
                                   "{C}/manifest.csv", "--out", "{C}/taken"), 2, "{C}/taken"),
    Case("prepare-out-read-only", ("prepare", "--dataset", "manifest", "--root",
                                   "{C}/manifest.csv", "--out", str(UNWRITABLE)), 2,
         str(UNWRITABLE)),
    Case("prepare-workers-0", ("prepare", "--dataset", "manifest", "--root", "{C}/manifest.csv",
                               "--out", "{O}", "--workers", "0"), 2, "--workers"),
    Case("prepare-bad-shard", ("prepare", "--dataset", "manifest", "--root", "{C}/manifest.csv",
                               "--out", "{O}", "--shard", "5/2"), 2, "--shard"),
    # stats
    Case("stats-missing", ("stats", "{C}/nope", "--out", "{O}"), 2, "{C}/nope"),
    Case("stats-corrupt-store", ("stats", "{C}/store_badjson", "--out", "{O}"), 2,
         "{C}/store_badjson/store.json"),
    Case("stats-bad-fraction", ("stats", "{C}/store", "--out", "{O}", "--val-fraction", "2"), 2,
         "val"),
    # train
    Case("train-store-missing", ("train", "{C}/nope", "--out", "{O}"), 2, "{C}/nope"),
    Case("train-store-truncated", ("train", "{C}/store_cut", "--out", "{O}"), 2,
         "{C}/store_cut/chunks"),
    Case("train-store-corrupt", ("train", "{C}/store_badjson", "--out", "{O}"), 2,
         "{C}/store_badjson/store.json"),
    Case("train-epochs-negative", ("train", "{C}/store", "--out", "{O}", "--set", "epochs=-1"), 2,
         "epochs"),
    Case("train-unknown-setting", ("train", "{C}/store", "--out", "{O}", "--set", "bogus=1"), 2,
         "bogus"),
    Case("train-fold-7", ("train", "{C}/store", "--out", "{O}", "--fold", "7"), 2, "--fold 7"),
    Case("train-unknown-model", ("train", "{C}/store", "--out", "{O}", "--model", "resnet"), 2,
         "resnet"),
    Case("train-mesh-model-on-format-1-store", ("train", "{C}/store_v1", "--out", "{O}",
                                                "--model", "pattnet-fusion"), 2,
         "{C}/store_v1"),
    Case("train-out-is-a-file", ("train", "{C}/store", "--out", "{C}/taken"), 2, "{C}/taken"),
    # evaluate, report, export
    Case("evaluate-missing", ("evaluate", "{C}/nope"), 2, "{C}/nope"),
    Case("evaluate-unfinished", ("evaluate", "{C}/run_unfinished"), 2, "{C}/run_unfinished"),
    Case("report-missing", ("report", "{C}/nope", "--out", "{O}"), 2, "{C}/nope"),
    Case("export-missing", ("export", "{C}/nope", "--out", "{O}/m.pt"), 2, "{C}/nope"),
    Case("export-unfinished", ("export", "{C}/run_unfinished", "--out", "{O}/m.pt"), 2,
         "{C}/run_unfinished"),
    Case("export-threshold-2", ("export", "{C}/run_unfinished", "--out", "{O}/m.pt",
                                "--threshold", "2"), 2, "--threshold"),
    # synth
    Case("synth-faces-missing", ("synth", "--faces", "{C}/nope.jpg", "--out", "{O}"), 2,
         "{C}/nope.jpg"),
    Case("synth-per-identity-0", ("synth", "--out", "{O}", "--per-identity", "0"), 2,
         "--per-identity"),
    Case("synth-out-is-a-file", ("synth", "--out", "{C}/taken", "--no-video", "--per-identity",
                                 "1"), 2, "{C}/taken"),
    Case("synth-too-few-faces", ("synth", "--faces", "{C}/ok.png", "{C}/one_px.png",
                                 "--out", "{O}", "--no-video"), 2, "identit"),
]


def _expand(s: str, corpus: Path, out: Path) -> str:
    return s.replace("{C}", str(corpus)).replace("{O}", str(out))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, corpus: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    argv = [_expand(a, corpus, out) for a in case.argv]
    rc = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert rc == case.code, err
    if case.code:
        last = [ln for ln in err.splitlines() if ln.startswith("pattnet:")][-1]
        assert _expand(case.names, corpus, out) in last, last
    # nothing half-written where a finished output would be
    if out.exists():
        leftovers = [p.name for p in out.rglob("*") if p.name.endswith((".partial", ".tmp"))
                     or ".tmp." in p.name]
        assert leftovers == []
    assert (corpus / "taken").read_text() == "a file where a folder is expected\n"
