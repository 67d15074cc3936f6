"""``pattnet demo``: the main job on its embedded default, offline, on a fresh install."""

from __future__ import annotations

import argparse

HELP = ("run the whole pipeline on a controlled AU set made from real faces that ship with "
        "installed packages (offline, a few minutes on a CPU)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="pattnet-demo", help="output folder [pattnet-demo]")
    p.add_argument("--faces", nargs="+", default=None, metavar="PATH",
                   help="more face images, videos or folders (each person one identity)")
    p.add_argument("--paper", action="store_true",
                   help="train the paper's 12 per-AU networks instead of the multi-label model "
                        "(about 10x slower on a CPU)")
    p.add_argument("--tiny", action="store_true", help="smallest possible run (CI smoke test)")
    p.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    from pattnet.demo import check_faces, run_demo

    check_faces(args.faces)
    run_demo(args.out, faces=args.faces, paper=args.paper, tiny=args.tiny,
             progress=not args.no_progress)
    return 0
