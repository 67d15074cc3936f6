#!/usr/bin/env python
"""How model files do on real faces: posed photos with known AUs, and how steady videos stay.

Prints the machine, then, one column per model file given (``bundled`` = the model that ships
inside pattnet):

* **posed photos** (../shared/data/faces, README there): the probability of each expected AU
  (happy 0-f15-hao-ph: AU6, AU12; surprised 0-f1-su-ph: AU1, AU2; angry 15-f13-anc-ph: AU4) and
  of its antagonists, which should stay off (happy: AU4, AU15; surprised: AU4, AU12; angry:
  AU2, AU12), each against the model's own threshold; ``hits`` counts expected AUs at or above
  it, ``false alarms`` antagonists at or above it;
* **still face**: one photo (single_face.jpg) as a 3 s clip with camera noise, 1 px of shake
  and JPEG re-encoding per frame; nothing in the face changes, so every AU's output should too:
  ``switches/s`` (the reported occurrence, ``*_c``, turning on or off) and the std of each
  probability;
* **videos** (WolfgangLanger_Pexels.mp4: one woman, many expressions; single_face.mp4: a man
  talking and smiling): per AU the switches per second and the median length of an "on" run,
  mean over AUs; a detector that flickers has many switches and short runs.

None of these faces has AU labels from a FACS coder: the photos' AUs are what their posed
expressions are made of (the folder's README), so this is a sanity check of transfer to real
faces, not an accuracy figure. The last line is ``hits: X/5`` of the first model.

Run: .venv/bin/python benchmarks/real_faces.py [MODEL.pt|bundled ...] [--skip-videos]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

FACES = REPO.parent / "shared" / "data" / "faces"
#: photo -> (what it shows, expected AUs, antagonists that should stay off)
PHOTOS = {
    "0-f15-hao-ph.jpg": ("happy", (6, 12), (4, 15)),
    "0-f1-su-ph.jpg": ("surprised", (1, 2), (4, 12)),
    "15-f13-anc-ph.jpg": ("angry", (4,), (2, 12)),
}
VIDEOS = ("WolfgangLanger_Pexels.mp4", "single_face.mp4")


def still_clip(photo: Path, out: Path, seconds: float = 3.0, fps: int = 25, seed: int = 0) -> Path:
    """A clip of one photo with per-frame sensor noise, 1 px shake and JPEG re-encoding."""
    import av
    import cv2

    from pattnet.io import read_image

    rng = np.random.default_rng(seed)
    img = read_image(photo)
    h, w = (img.shape[0] // 2) * 2, (img.shape[1] // 2) * 2
    img = img[:h, :w]
    with av.open(str(out), "w") as c:
        st = c.add_stream("libx264", rate=fps)
        st.width, st.height, st.pix_fmt = w, h, "yuv420p"
        st.options = {"crf": "18"}
        for _ in range(int(seconds * fps)):
            m = np.float32([[1, 0, rng.uniform(-1, 1)], [0, 1, rng.uniform(-1, 1)]])
            f = cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT)
            f = np.clip(f + rng.normal(0, 3, f.shape), 0, 255).astype(np.uint8)
            ok, buf = cv2.imencode(".jpg", f[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 85])
            f = cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1]
            for p in st.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), "rgb24")):
                c.mux(p)
        for p in st.encode():
            c.mux(p)
    return out


def photo_rows(det, name: str) -> list[dict]:
    what, expected, contrary = PHOTOS[name]
    df = det.detect(FACES / name)
    ok = df[df["success"] == 1]
    rows = []
    for role, aus in (("expected", expected), ("off", contrary)):
        for au in aus:
            if au not in det.aus:
                continue
            p = float(ok[f"AU{au:02d}_p"].iloc[0]) if len(ok) else float("nan")
            thr = float(det.threshold[det.aus.index(au)])
            rows.append({"photo": what, "role": role, "au": au, "p": p, "thr": thr,
                         "on": bool(p >= thr)})
    return rows


def stability(det, path: Path) -> dict[str, float]:
    """Switches per second, median on-run (frames) and mean std of p, over the model's AUs."""
    from pattnet.io.probe import probe_video

    df = det.detect(path)
    df = df[(df["success"] == 1) & (df["face_id"] == 0)].sort_values("frame")
    fps = probe_video(path).rate or 25.0
    switches, runs, stds = [], [], []
    for au in det.aus:
        on = df[f"AU{au:02d}_c"].to_numpy().astype(np.int8)  # what the detector reports
        switches.append(np.abs(np.diff(on)).sum() / max(len(on) / fps, 1e-9))
        stds.append(float(df[f"AU{au:02d}_p"].std()))
        edges = np.flatnonzero(np.diff(np.r_[0, on, 0]))
        lengths = edges[1::2] - edges[::2]
        if len(lengths):
            runs.append(float(np.median(lengths)))
    return {"switches/s": float(np.mean(switches)),
            "median on-run (frames)": float(np.median(runs)) if runs else float("nan"),
            "std of p": float(np.mean(stds)), "frames": float(len(df))}


def model_path(name: str) -> Path | str:
    if name == "bundled":
        from pattnet.checkpoint import bundled_model_path

        return bundled_model_path()
    p = Path(name)
    if not p.is_file():
        raise SystemExit(f"{p}: model file not found")
    return p


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", default=["bundled"],
                    help="model files (pattnet export) or 'bundled' (default)")
    ap.add_argument("--skip-videos", action="store_true", help="photos and the still face only")
    args = ap.parse_args()
    if not FACES.is_dir():
        print(f"{FACES}: not found (the benchmark needs ../shared/data/faces)")
        return 2
    from _common import machine

    from pattnet.detect import Detector

    print(f"machine: {machine()}")
    photos, stable = {}, {}
    hits0 = None
    with tempfile.TemporaryDirectory() as tmp:
        still = still_clip(FACES / "single_face.jpg", Path(tmp) / "still.mp4")
        for name in args.models:
            t0 = time.perf_counter()
            with Detector(model_path(name)) as det:
                rows = [r for ph in PHOTOS for r in photo_rows(det, ph)]
                photos[name] = pd.DataFrame(rows)
                stable[(name, "still face")] = stability(det, still)
                if not args.skip_videos:
                    for v in VIDEOS:
                        stable[(name, v)] = stability(det, FACES / v)
            df = photos[name]
            hits = int(df[df.role == "expected"]["on"].sum())
            hits0 = hits if hits0 is None else hits0
            print(f"\n== {name}  ({time.perf_counter() - t0:.0f} s)")
            show = df.assign(AU=df["au"].map(lambda a: f"AU{a}"),
                             p=df["p"].map(lambda v: f"{v:.2f}"), thr=df["thr"].map(lambda v: f"{v:.2f}"),
                             on=df["on"].map({True: "ON", False: "-"}))
            print(show[["photo", "role", "AU", "p", "thr", "on"]].to_string(index=False))
            print(f"hits {hits}/{int((df.role == 'expected').sum())}, false alarms "
                  f"{int(df[df.role == 'off']['on'].sum())}/{int((df.role == 'off').sum())}")
            for (n, v), s in stable.items():
                if n == name:
                    print(f"  {v}: " + ", ".join(f"{k} {val:.2f}" for k, val in s.items()))
    if len(args.models) > 1:
        print("\n== side by side: p of each AU on each photo (ON at/above the model's threshold)")
        table = pd.concat({n: d.set_index(["photo", "role", "au"])["p"] for n, d in photos.items()},
                          axis=1)
        print(table.round(2).to_string())
        print("\nvideo stability (switches/s, lower is steadier)")
        sw = pd.DataFrame({n: {v: s["switches/s"] for (m, v), s in stable.items() if m == n}
                           for n in args.models})
        print(sw.round(2).to_string())
    print(f"hits: {hits0}/5")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
