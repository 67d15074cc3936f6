"""``pattnet prepare``: register every labelled frame of a dataset and write the patch store.

Two forms::

    pattnet prepare --dataset bp4d --root /data/BP4D --out bp4d.store [--workers 8]
    pattnet prepare --dataset bp4d --root /data/BP4D --out shard3.store --shard 3/16   # cluster
    pattnet prepare --merge shard*.store --out bp4d.store

Kill it at any time and run the same command again: it resumes where it stopped.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "register a dataset's frames and write the patch store (resumable, parallel, shardable)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (
        "examples:\n"
        "  pattnet prepare --dataset bp4d --root /data/BP4D --out bp4d.store --workers 8\n"
        "  # SLURM: #SBATCH --array=0-15\n"
        "  pattnet prepare --dataset bp4d --root /data/BP4D --out shards/$SLURM_ARRAY_TASK_ID "
        "--shard $SLURM_ARRAY_TASK_ID/16\n"
        "  pattnet prepare --merge shards/* --out bp4d.store\n"
        "Re-run the same command after a crash or kill: finished sessions are kept."
    )
    parser.add_argument("--dataset", choices=("bp4d", "disfa", "manifest"), default=None,
                        help="dataset layout (guessed from the root when left out)")
    parser.add_argument("--root", type=Path, default=None,
                        help="dataset root (BP4D, DISFA folder) or manifest CSV")
    parser.add_argument("--out", type=Path, required=True, metavar="STORE",
                        help="patch store folder to write (or resume)")
    parser.add_argument("--merge", nargs="+", type=Path, default=None, metavar="SHARD_STORE",
                        help="merge the shard stores of a --shard run into --out instead of "
                             "preparing")
    parser.add_argument("--workers", type=int, default=1,
                        help="worker processes on this machine (default 1; each holds one "
                             "MediaPipe, ~250 MB)")
    parser.add_argument("--shard", default=None, metavar="I/N",
                        help="prepare only shard I of N (0-based; every N-th session of the "
                             "sorted session list), e.g. $SLURM_ARRAY_TASK_ID/16")
    parser.add_argument("--batch-size", type=int, default=32,
                        help="frames per write; bounds memory (default 32)")
    parser.add_argument("--static", action="store_true",
                        help="detect the face in every frame instead of tracking it through a "
                             "session (for shuffled or unrelated frames)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    g = parser.add_argument_group("dataset options (passed to the adapter)")
    g.add_argument("--images", type=Path, default=None,
                   help="BP4D/DISFA: folder of the frame images when not under the root")
    g.add_argument("--videos", type=Path, default=None, help="DISFA: folder of the videos")
    g.add_argument("--camera", choices=("left", "right"), default=None,
                   help="DISFA: camera (default left)")
    g.add_argument("--threshold", type=int, default=None,
                   help="DISFA: intensity at which an AU counts as present (default 2)")
    g.add_argument("--frame-offset", type=int, default=None,
                   help="DISFA: added to label frame numbers to find the source frame")
    g.add_argument("--aus", default=None,
                   help="comma-separated AU numbers to keep (default: the dataset's)")
    g.add_argument("--strict", action="store_true", default=None,
                   help="stop at the first problem in the labels instead of reporting it")


def run(args: argparse.Namespace) -> int:
    from pattnet.errors import PattnetError
    from pattnet.prepare import format_report, merge, parse_shard, prepare

    if args.merge is not None:
        given = [f"--{k.replace('_', '-')}" for k in ("root", "dataset", "shard", "images",
                                                       "videos", "camera", "threshold",
                                                       "frame_offset", "aus", "strict")
                 if getattr(args, k) is not None]
        if given:
            raise PattnetError(f"--merge takes only shard stores and --out ({', '.join(given)} "
                               "belong to the prepare that made the shards)")
        result = merge(args.merge, args.out)
    else:
        if args.root is None:
            raise PattnetError("--root is required (the dataset root or manifest CSV)")
        aus = None
        if args.aus is not None:
            try:
                aus = [int(a) for a in str(args.aus).replace(" ", "").split(",") if a]
            except ValueError as exc:
                raise PattnetError(f"--aus {args.aus!r}: expected numbers like 1,2,4,12") from exc
        opts = {"images": args.images, "videos": args.videos, "camera": args.camera,
                "threshold": args.threshold, "frame_offset": args.frame_offset, "aus": aus,
                "strict": args.strict}
        result = prepare(
            args.root, args.out, args.dataset, adapter_opts=opts, workers=args.workers,
            shard=parse_shard(args.shard) if args.shard is not None else None,
            batch_size=args.batch_size, track=not args.static, progress=not args.no_progress,
        )
        if result.frames_done:
            rate = result.report.get("frames_per_second_this_run")
            print(f"prepared {result.frames_done} frames this run"
                  + (f" ({rate:.1f} frames/s)" if rate else ""))
        else:
            print("nothing left to prepare; store re-finalised")
    print(format_report(result.report))
    print(f"store: {result.store.path} ({len(result.store)} frames)")
    return 0
