#!/usr/bin/env python
"""End-to-end speed of ``pattnet detect`` against registration alone, in one run.

Prints the machine, then frames/s of

* registration alone: decode + MediaPipe + pose + warp (``register_video``), the floor any
  detector built on this registration must pay;
* ``detect`` end to end (decode -> register -> patches -> batched model -> CSV, exactly what
  ``pattnet detect`` does, model load excluded) with the multi-label model
  (``pattnet-multilabel``, all AUs in one network);
* the same with the paper's 12 per-AU networks (``pattnet``), on the first ``--per-au-frames``
  frames (it is about 10x slower, see below);
* the fusion model (``pattnet-fusion``: the multi-label network plus the mesh branch) and the
  bundled model (``pattnet-geometry`` on the mesh alone, the file shipped in the package);

and, as its last line, ``fps: X`` for the multi-label model.

The weights are NOT trained: speed does not depend on their values, so both models are created
with a fixed seed and exported through the checkpoint API (``save_checkpoint`` ->
``Detector``), the same path a trained model takes. Each measurement runs ``--repeats`` times
and the fastest is kept (the machine is shared).

Run: .venv/bin/python benchmarks/detect.py [--video PATH] [--repeats 2] [--per-au-frames 120]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", type=Path,
                    default=REPO.parent / "shared" / "data" / "faces" / "WolfgangLanger_Pexels.mp4")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--frames", type=int, default=None, help="cap frames (default: whole video)")
    ap.add_argument("--per-au-frames", type=int, default=120,
                    help="frames for the 12 per-AU networks (0 = skip)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads (default: as 'pattnet detect': CPUs - 1)")
    ap.add_argument("--workers", type=int, default=None,
                    help="model worker threads (default: as 'pattnet detect')")
    ap.add_argument("--precision", default="auto", choices=("auto", "bf16", "fp32"))
    args = ap.parse_args()
    if not args.video.is_file():
        print(f"{args.video}: not found (the benchmark needs ../shared/data/faces)", file=sys.stderr)
        return 2

    import torch
    from _common import machine

    from pattnet.checkpoint import bundled_model_path, save_checkpoint
    from pattnet.detect import Detector, default_threads, default_workers, frame_count
    from pattnet.models import create_model
    from pattnet.registration import load_template, register_video

    workers = args.workers or default_workers("cpu")
    threads = args.threads or default_threads(workers)
    torch.set_num_threads(threads)
    print(f"machine: {machine()}")
    with contextlib.suppress(OSError):
        print(f"load average: {os.getloadavg()[0]:.2f} (other jobs share these cores)")
    n_video = frame_count(args.video)
    print(f"video: {args.video.name}, {n_video} frames; {workers} model worker(s) x "
          f"{threads} torch thread(s), batch "
          f"{args.batch_size}, precision {args.precision}")
    print("weights: untrained (seeded), exported with pattnet.checkpoint.save_checkpoint; "
          "the bundled model as shipped")

    def best(fn, repeats: int) -> tuple[float, int]:
        rates = []
        for _ in range(repeats):
            n, dt = fn()
            rates.append((n / dt, n))
        return max(rates)

    def registration() -> tuple[int, float]:
        t = time.perf_counter()
        n = 0
        for _ in register_video(args.video):
            n += 1
            if args.frames and n >= args.frames:
                break
        return n, time.perf_counter() - t

    tmp = Path(tempfile.mkdtemp(prefix="pattnet-bench-"))
    results = {}
    fps_reg, n_reg = best(registration, args.repeats)
    print(f"registration alone (decode + register): {fps_reg:.1f} frames/s ({n_reg} frames)")
    prior = load_template().points  # the mesh reference a model of the mesh carries
    for name, frames in (("pattnet-multilabel", args.frames), ("pattnet", args.per_au_frames),
                         ("pattnet-fusion", args.frames), ("bundled", args.frames)):
        if name == "pattnet" and not args.per_au_frames:
            continue
        torch.manual_seed(0)
        if name == "bundled":
            ck = bundled_model_path()
        else:
            model = create_model(name)
            ck = save_checkpoint(tmp / f"{name}.pt", model,
                                 mesh_reference=prior if "mesh" in model.input_kinds else None)
        det = Detector(ck, batch_size=args.batch_size, precision=args.precision, threads=threads,
                       workers=workers)

        def run(det=det, frames=frames, name=name) -> tuple[int, float]:
            t = time.perf_counter()
            s = det.detect_to_files(args.video, tmp / f"{name}.csv", max_frames=frames,
                                    progress=False)
            return s.frames, time.perf_counter() - t

        fps, n = best(run, args.repeats)
        results[name] = fps
        label = {"pattnet": "12 per-AU networks (paper)", "pattnet-fusion": "patches + mesh",
                 "bundled": "pattnet-geometry, mesh only, trained"}.get(name, "multi-label")
        print(f"detect end to end, {name} ({label}): {fps:.1f} frames/s ({n} frames, "
              f"{'bf16' if det.amp_dtype == torch.bfloat16 else 'fp32'})")
        det.close()
    print(f"detect / registration: {results['pattnet-multilabel'] / fps_reg:.2f} of registration "
          "speed")
    print(f"fps: {results['pattnet-multilabel']:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
