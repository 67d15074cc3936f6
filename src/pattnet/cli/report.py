"""``pattnet report RUN [RUN ...] --out DIR``: the paper's Tables 1-3 and Figures 2-4 from runs."""

from __future__ import annotations

import argparse

HELP = ("tables (F1, AUC, ablation) beside the paper's and figures (attention maps, patches, "
        "co-occurrence) from one or more training runs")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", metavar="RUN", nargs="+",
                        help="run directories written by 'pattnet train' (e.g. a sigmoid, a "
                             "softmax, single-patch and holistic run)")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="directory for report.md, the tables (CSV + markdown) and figures "
                             "(PNG + PDF)")
    parser.add_argument("--face", metavar="IMAGE", default=None,
                        help="photo to register for Figure 2 (default: a frame of the runs' "
                             "patch store, when it still exists)")
    parser.add_argument("--frame", type=int, default=None, metavar="ROW",
                        help="store row to show in Figure 2 (default: the first registered frame)")
    parser.add_argument("--threshold", type=float, default=None,
                        help="probability threshold for F1 (default: each run's own, else 0.5)")


def run(args: argparse.Namespace) -> int:
    from pattnet.report import make_report

    rep = make_report(args.runs, args.out, face=args.face, frame=args.frame,
                      threshold=args.threshold)
    print(f"Report: {rep.out / 'report.md'}")
    for rr in rep.runs:
        print(f"  run {rr.key}: {rr.run.path}")
    print("Files:")
    for name, paths in rep.files.items():
        if name == "report":
            continue
        print(f"  {name}: " + ", ".join(str(p) for p in paths))
    for note in rep.notes:
        print(f"Note: {note}")
    return 0
