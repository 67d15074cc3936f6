"""``pattnet reproduce STORE --out DIR``: the paper's whole experiment grid, then its report."""

from __future__ import annotations

import argparse

HELP = ("train the paper's experiment grid (PAttNet, softmax, holistic, P1..P9, multi-label), "
        "3 folds each, resumable, on every GPU, then the report")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", help="patch store (made by `pattnet prepare`)")
    p.add_argument("--out", required=True, help="folder of the grid: one run per experiment, "
                                                "and report/")
    p.add_argument("--only", nargs="+", default=None, metavar="NAME",
                   help="these experiments only (pattnet, pattnet-softmax, holistic, "
                        "single-patch or single-patch-P1..P9, pattnet-multilabel)")
    p.add_argument("--skip", nargs="+", default=None, metavar="NAME", help="all but these")
    p.add_argument("--gpus", default="auto",
                   help="GPUs to spread the experiments over, one process each (default: all "
                        "there are; 0 = this process, on the CPU or one GPU)")
    p.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="TrainConfig settings every experiment shares (default: the paper's)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan and a time estimate from a short measured step, run "
                        "nothing")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)  # k/n: one GPU's share
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _gpus(text: str) -> int:
    from pattnet.errors import PattnetError

    if text == "auto":
        import torch

        return torch.cuda.device_count()
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise PattnetError(f"--gpus {text!r}: expected a number of GPUs (0, 1, 2, ...) or auto")
    if n > 1:  # more workers than GPUs would run on the CPU without a word
        import torch

        have = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n > have:
            raise PattnetError(f"--gpus {n}: this machine's torch sees {have} GPU(s); give at "
                               f"most {have}, or 0 to run on the CPU")
    return n


def run(args: argparse.Namespace) -> int:
    from pattnet.config import load_config
    from pattnet.reproduce import estimate, plan, reproduce
    from pattnet.train import TrainConfig

    base = load_config(TrainConfig, None, args.set)
    if args.dry_run:
        estimate(plan(args.store, args.out, base, args.only, args.skip))
        return 0
    worker = None
    if args.worker:
        k, n = (int(v) for v in args.worker.split("/"))
        worker = (k, n)
    reproduce(args.store, args.out, base, only=args.only, skip=args.skip,
              gpus=0 if worker else _gpus(args.gpus), worker=worker,
              argv=_worker_argv(args), progress_bars=not args.no_progress)
    return 0


def _worker_argv(args: argparse.Namespace) -> list[str]:
    """The command each GPU's worker repeats, made from the parsed arguments (``sys.argv`` is
    not this command when ``pattnet.cli.main`` is called from Python)."""
    argv = ["reproduce", str(args.store), "--out", str(args.out)]
    for flag, values in (("--only", args.only), ("--skip", args.skip), ("--set", args.set)):
        if values:
            argv += [flag, *values]
    return argv + (["--no-progress"] if args.no_progress else [])
