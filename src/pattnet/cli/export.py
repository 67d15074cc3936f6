"""``pattnet export RUN --out model.pt``: a training run -> one deployable model file.

Default fold: the finished fold whose selected epoch scored best on its *validation* subjects
(the run's ``select_metric``, F1 by default; ties to the lower fold). The test subjects never
take part in the choice, so the fold's test score in ``evaluate`` stays an honest estimate of
the exported model. Default epoch: the fold's selected epoch (``foldK/selected.json``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "turn a training run into one model file for 'pattnet detect' (weights + what they need)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN", type=Path, help="run directory written by 'pattnet train'")
    parser.add_argument("--out", required=True, type=Path, metavar="FILE", help="model file to write (.pt)")
    parser.add_argument("--fold", type=int, default=None, metavar="K",
                        help="fold to export (default: the best validation score of the finished "
                             "folds)")
    parser.add_argument("--epoch", type=int, default=None, metavar="N",
                        help="epoch to export (default: the fold's selected epoch)")
    parser.add_argument("--threshold", type=float, default=None,
                        help="occurrence threshold stored in the model (default: the run's, 0.5)")
    parser.add_argument("--fp16", action="store_true",
                        help="store the weights at half precision: half the file size, "
                             "probabilities within about 1e-3 of the full-precision model's")


def run(args: argparse.Namespace) -> int:
    from pattnet.checkpoint import export_run, load_checkpoint
    from pattnet.constants import au_name
    from pattnet.errors import PattnetError

    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        raise PattnetError(f"--threshold must lie in [0, 1], got {args.threshold}")
    res = export_run(args.run, args.out, fold=args.fold, epoch=args.epoch, threshold=args.threshold,
                     weights_dtype="float16" if args.fp16 else None)
    ck = load_checkpoint(res.path)  # prove the file loads before saying it was written
    score = f", {res.criterion}={res.value:.4f}" if isinstance(res.value, float) else ""
    print(f"fold {res.fold} ({res.reason}), epoch {res.epoch}{score}")
    print(f"{ck.model.name}, {len(ck.aus)} AUs ({', '.join(au_name(a) for a in ck.aus)}), "
          f"threshold {ck.threshold[0]:g}, template {ck.template_version}")
    print(f"wrote {res.path}")
    return 0
