"""``pattnet stats``: AU base rates, w_pos per fold and the AU co-occurrence figure.

Works on a patch store (``store.json``) or straight on a dataset root, so a user can check the
labels (and the weights training will use) before spending hours on preparation.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from pattnet.constants import N_FOLDS, SPLIT_SEED, VAL_FRACTION

if TYPE_CHECKING:
    from pattnet.datasets import Labels

HELP = "AU base rates, positive-class weights per fold and the AU co-occurrence (Jaccard) figure"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", metavar="STORE_OR_ROOT",
                        help="a patch store (folder with store.json) or a dataset root / "
                             "manifest CSV")
    parser.add_argument("--dataset", choices=("bp4d", "disfa", "manifest"), default=None,
                        help="dataset layout of a root (guessed from the layout when left out); "
                             "for a store, the published folds to use")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: STORE/stats for a store, ./stats otherwise)")
    parser.add_argument("--threshold", type=int, default=None,
                        help="DISFA: intensity at which an AU counts as present (default 2)")
    parser.add_argument("--folds", type=int, default=N_FOLDS,
                        help=f"k for k-fold by subject (default {N_FOLDS}, as training)")
    parser.add_argument("--seed", type=int, default=SPLIT_SEED,
                        help="seed of the fold and val split (default: training's)")
    parser.add_argument("--val-fraction", type=float, default=VAL_FRACTION,
                        help="share of training subjects held out for validation "
                             f"(default {VAL_FRACTION}, as training)")
    parser.add_argument("--all-frames", action="store_true",
                        help="store: also count frames whose registration failed")


def run(args: argparse.Namespace) -> int:
    from pattnet.datasets import compute_stats, format_stats, write_stats
    from pattnet.io.atomic import check_output_dir
    from pattnet.store import is_store

    path = Path(args.path).expanduser()
    _check_split(args)
    out = args.out or (path / "stats" if is_store(path) else Path("stats"))
    check_output_dir(out)  # the default one too, before the labels are read
    labels = _labels(path, args)
    stats = compute_stats(labels.table, labels.dataset, args.folds, args.seed, args.val_fraction)
    files = write_stats(stats, out, {"source": str(path), "kind": labels.kind,
                                     "dataset": labels.dataset, "notes": labels.notes,
                                     "problems": labels.problems})
    for note in labels.notes:
        print(f"note: {note}")
    if labels.problems:
        print(f"{len(labels.problems)} problem(s) in the labels (listed in {out}/stats.json):")
        for p in labels.problems[:10]:
            print(f"  {p}")
        if len(labels.problems) > 10:
            print(f"  ... {len(labels.problems) - 10} more")
    print(format_stats(stats))
    print(f"wrote {', '.join(str(f) for f in files)}")
    return 0


def _labels(path: Path, args: argparse.Namespace) -> Labels:
    """A store's frame labels or a dataset root's, as one :class:`~pattnet.datasets.Labels`."""
    from pattnet.datasets import Labels, dataset_labels
    from pattnet.errors import PattnetError
    from pattnet.store import is_store, read_frame_labels

    if not (path.is_dir() and is_store(path)):
        return dataset_labels(path, args.dataset, threshold=args.threshold)
    if args.threshold is not None:
        raise PattnetError(f"{path} is a patch store, whose labels are already fixed; threshold "
                           "applies to a dataset root only")
    fl = read_frame_labels(path, registered_only=not args.all_frames)
    return Labels(fl.table, "store", args.dataset or fl.dataset, fl.notes)


def _check_split(args: argparse.Namespace) -> None:
    """--folds, --seed and --val-fraction within the ranges training accepts (one rule for both)."""
    from pattnet.config import validate
    from pattnet.train import TrainConfig

    validate(TrainConfig(folds=args.folds, seed=args.seed, val_fraction=args.val_fraction))
