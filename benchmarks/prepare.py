"""``pattnet prepare`` throughput and memory: frames/s with 1 and 2 workers, and peak RSS of the
whole process tree for two input sizes (the larger 4x the smaller).

Input: a manifest over frames of ../shared/data/faces/WolfgangLanger_Pexels.mp4, in sessions of
``--session`` frames, as extracted JPGs (BP4D-like, the default) or as video rows (DISFA-like,
``--source video``); without ../shared, generated frames (skimage's astronaut, shifted).
Each prepare runs as ``python -m pattnet.cli prepare`` in a subprocess; its tree (the process and
its workers) is sampled from /proc every 50 ms, so the RSS is the sum over all processes.

Memory must not grow with the input (prepare streams a batch at a time). Last line:
``rss_ratio: X`` = peak tree RSS of the larger input / of the smaller (the worse of the worker
counts); the goal is <= 1.2.

    python benchmarks/prepare.py [--frames 112] [--session 14] [--source images|video]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
VIDEO = REPO.parent / "shared" / "data" / "faces" / "WolfgangLanger_Pexels.mp4"


def source_frames(n: int) -> list[np.ndarray]:
    if VIDEO.is_file():
        from pattnet.io import iter_frames

        out: list[np.ndarray] = []
        while len(out) < n:  # wrap around the 472-frame video if more is asked
            for fr in iter_frames(VIDEO):
                out.append(fr.rgb)
                if len(out) == n:
                    break
        return out
    from skimage import data

    img = data.astronaut()
    return [np.roll(img, (i % 7, (3 * i) % 11), axis=(0, 1)) for i in range(n)]


def make_manifest(folder: Path, n: int, session: int, source: str) -> Path:
    folder.mkdir(parents=True)
    rows = ["subject,session,path,video,frame,AU1,AU12"]
    frames = source_frames(n) if source == "images" or not VIDEO.is_file() else None
    for i in range(n):
        subj, sess = f"S{i // session:03d}", "T1"
        if frames is not None:
            name = f"img/{i:05d}.jpg"
            (folder / "img").mkdir(exist_ok=True)
            cv2.imwrite(str(folder / name), frames[i][:, :, ::-1])
            rows.append(f"{subj},{sess},{name},,,{i % 2},{(i // 3) % 2}")
        else:
            rows.append(f"{subj},{sess},,{VIDEO},{i % 472},{i % 2},{(i // 3) % 2}")
    (folder / "manifest.csv").write_text("\n".join(rows) + "\n")
    return folder / "manifest.csv"


def _tree_rss_kib(pid: int) -> int:
    """Sum of VmRSS over ``pid`` and all its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/status") as fh:
                ppid = vm = 0
                for line in fh:
                    if line.startswith("PPid:"):
                        ppid = int(line.split()[1])
                    elif line.startswith("VmRSS:"):
                        vm = int(line.split()[1])
        except (OSError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d))
        rss[int(d)] = vm
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo += children.get(p, [])
    return total


def run_prepare(manifest: Path, out: Path, workers: int) -> dict:
    cmd = [sys.executable, "-m", "pattnet.cli", "prepare", "--root", str(manifest), "--out",
           str(out), "--workers", str(workers), "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0]

    def sample() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], _tree_rss_kib(proc.pid))
            time.sleep(0.05)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    stdout, stderr = proc.communicate()
    wall = time.monotonic() - t0
    th.join()
    if proc.returncode != 0:
        sys.exit(f"prepare failed ({proc.returncode}):\n{stdout}\n{stderr[-3000:]}")
    rep = json.loads((out / "prepare_report.json").read_text())
    n = rep["summary"]["frames"]
    return {"frames": n, "registered": rep["summary"]["registered"], "wall_s": wall,
            "fps_wall": n / wall, "fps_work": rep.get("frames_per_second_this_run") or 0.0,
            "peak_rss_mib": peak[0] / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # 8 sessions in the smaller input: a worker's heap settles after its first few sessions
    # (then stays flat for hundreds), so fewer would measure the warm-up, not the growth
    ap.add_argument("--frames", type=int, default=112, help="smaller input (the larger is 4x)")
    ap.add_argument("--session", type=int, default=14, help="frames per session")
    ap.add_argument("--source", choices=("images", "video"), default="images")
    ap.add_argument("--workers", default="1,2")
    args = ap.parse_args()
    workers = [int(w) for w in args.workers.split(",")]
    print(f"machine: {machine()}")
    src = "WolfgangLanger_Pexels.mp4" if VIDEO.is_file() else "generated frames (no ../shared)"
    print(f"input: manifest over {src}, {args.source}, sessions of {args.session} frames")
    sizes = [args.frames, 4 * args.frames]
    results: dict[tuple[int, int], dict] = {}
    with tempfile.TemporaryDirectory(prefix="pattnet-bench-prepare-") as tmp:
        manifests = {n: make_manifest(Path(tmp) / f"in{n}", n, args.session, args.source)
                     for n in sizes}
        for w in workers:
            for n in sizes:
                r = run_prepare(manifests[n], Path(tmp) / f"store{n}w{w}", w)
                results[(w, n)] = r
                print(f"workers={w} frames={n:5d}: {r['fps_work']:6.2f} frames/s (work), "
                      f"{r['fps_wall']:6.2f} frames/s (wall incl. start-up, {r['wall_s']:.1f} s), "
                      f"{r['registered']}/{r['frames']} registered, peak tree RSS "
                      f"{r['peak_rss_mib']:.0f} MiB", flush=True)
    ratios = {w: results[(w, sizes[1])]["peak_rss_mib"] / results[(w, sizes[0])]["peak_rss_mib"]
              for w in workers}
    for w, r in ratios.items():
        print(f"workers={w}: peak RSS {sizes[1]} frames / {sizes[0]} frames = {r:.3f}")
    if 1 in workers and 2 in workers:
        print(f"speed-up 2 workers / 1 (larger input, work phase): "
              f"{results[(2, sizes[1])]['fps_work'] / results[(1, sizes[1])]['fps_work']:.2f}x")
    print(f"rss_ratio: {max(ratios.values()):.3f}")


if __name__ == "__main__":
    main()
