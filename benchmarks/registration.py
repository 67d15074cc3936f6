#!/usr/bin/env python
"""Registration speed against MediaPipe Face Mesh alone, on the same frames, in one run.

Prints the machine, frames/s of MediaPipe Face Mesh (tracking mode, 478 points) and of the full
registration (the same Face Mesh + pose fit + frontalisation + dense warp to 512x512), the
landmark jitter on WolfgangLanger_Pexels.mp4 (mean frame-to-frame movement of the canonical
landmarks, px) and, as its last line, ``ratio: X`` = registration cost / MediaPipe cost.

Frames are decoded before timing, so decoding is not counted in either figure. The full
registration is timed as ``register_video`` runs it (``Registrar.register_stream``: MediaPipe finds
the landmarks of frame i+1 while a worker thread fits the pose and warps frame i) and, for the
CPU cost, on one thread (``pipelined=False``). All passes run ``--repeats`` times alternately and
the fastest pass of each is kept (the machine is shared).

Run: .venv/bin/python benchmarks/registration.py [--video PATH] [--frames 240]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import numpy as np  # noqa: E402


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", type=Path,
                    default=REPO.parent / "shared" / "data" / "faces" / "WolfgangLanger_Pexels.mp4")
    ap.add_argument("--frames", type=int, default=240)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    from mediapipe.python.solutions import face_mesh

    from pattnet.io import iter_frames
    from pattnet.registration import Registrar, register_video

    print(f"machine: {cpu_model()}, {os.cpu_count()} logical cores, {platform.system()} "
          f"{platform.machine()}, python {platform.python_version()}")
    if args.video.is_file():
        frames = []
        for fr in iter_frames(args.video):
            frames.append(fr.rgb)
            if len(frames) >= args.frames:
                break
        src = f"{args.video.name}, first {len(frames)} frames {frames[0].shape[1]}x" \
              f"{frames[0].shape[0]}"
    else:  # a fresh clone without ../shared: the astronaut, slowly turning
        import cv2
        from skimage import data

        a = data.astronaut()
        frames = [cv2.warpAffine(a, cv2.getRotationMatrix2D((256, 256), 10 * np.sin(i / 20), 1),
                                 (512, 512)) for i in range(args.frames)]
        src = f"skimage astronaut, {len(frames)} rotated frames 512x512"
    print(f"frames: {src}")

    def mp_pass() -> float:
        mesh = face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1,
                                  refine_landmarks=True)
        mesh.process(frames[0])  # start-up (graph, delegate) is not per-frame cost
        t = time.perf_counter()
        for f in frames:
            mesh.process(f)
        dt = time.perf_counter() - t
        mesh.close()
        return dt

    def reg_pass(pipelined: bool) -> tuple[float, int]:
        with Registrar(static_image_mode=False) as reg:
            reg.register(frames[0])
            n = 0
            t = time.perf_counter()
            for fr in reg.register_stream(frames, pipelined=pipelined):
                n += len(fr.faces)
            return time.perf_counter() - t, n

    mp_t, reg_t, seq_t, n_faces = [], [], [], 0
    for _ in range(args.repeats):
        mp_t.append(mp_pass())
        dt, n_faces = reg_pass(True)
        reg_t.append(dt)
        seq_t.append(reg_pass(False)[0])
    n = len(frames)
    t_mp, t_reg, t_seq = min(mp_t), min(reg_t), min(seq_t)
    print(f"mediapipe face mesh alone: {n / t_mp:7.1f} frames/s ({1000 * t_mp / n:.2f} ms/frame)")
    print(f"full registration, one thread: {n / t_seq:7.1f} frames/s "
          f"({1000 * t_seq / n:.2f} ms/frame; ratio {t_seq / t_mp:.2f})")
    print(f"full registration (Registrar.register_stream, as register_video runs it: landmarks of "
          f"frame i+1 while frame i is warped): {n / t_reg:7.1f} frames/s ({1000 * t_reg / n:.2f} "
          f"ms/frame, faces in {n_faces}/{n} frames)")
    print(f"registration beyond mediapipe, one thread (landmark copy, pose, warp): "
          f"{1000 * (t_seq - t_mp) / n:.2f} ms/frame")

    if args.video.is_file():
        prev, moves, total = None, [], 0
        for fr in register_video(args.video):
            total += 1
            cur = fr.faces[0].landmarks if fr.faces else None
            if cur is not None and prev is not None:
                moves.append(float(np.linalg.norm(cur - prev, axis=1).mean()))
            prev = cur
        print(f"landmark jitter on {args.video.name}: {np.mean(moves):.2f} px mean frame-to-frame "
              f"movement of canonical landmarks (median {np.median(moves):.2f}, "
              f"{len(moves) + 1}/{total} frames with a face)")
    print(f"ratio: {t_reg / t_mp:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
