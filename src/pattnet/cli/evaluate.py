"""``pattnet evaluate RUN``: F1/AUC per fold and pooled, tables beside the paper's."""

from __future__ import annotations

import argparse

HELP = "evaluate a training run: per-AU F1/AUC per fold and pooled, tables beside the paper's"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN", help="run directory written by 'pattnet train'")
    parser.add_argument(
        "--threshold", type=float, default=None,
        help="probability threshold for F1 (default: the run's own, else 0.5)",
    )


def run(args: argparse.Namespace) -> int:
    from pattnet.evaluate import evaluate_run

    res = evaluate_run(args.run, threshold=args.threshold)
    print(res.markdown)
    print("Files:")
    for path in res.files.values():
        print(f"  {path}")
    return 0
