"""``pattnet demo``: the main job on its embedded default, offline, on a fresh install."""

from __future__ import annotations

import argparse

HELP = "run the whole pipeline on a small built-in data set (offline, minutes on a CPU)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="pattnet-demo", help="output folder [pattnet-demo]")
    p.add_argument("--tiny", action="store_true", help="smallest possible run (CI smoke test)")
    p.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    from pattnet.demo import run_demo

    run_demo(args.out, tiny=args.tiny, progress=not args.no_progress)
    return 0
