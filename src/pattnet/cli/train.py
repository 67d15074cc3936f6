"""``pattnet train STORE --out RUN``: k-fold training under the paper's protocol."""

from __future__ import annotations

import argparse

HELP = "train a model on a patch store (subject-independent k-fold, resumable)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", help="patch store directory (made by `pattnet prepare`)")
    p.add_argument("--out", required=True, help="run directory to create (or resume)")
    p.add_argument("--fold", default="all", help="1, 2, 3 (comma-separated) or all [all]")
    p.add_argument("--model", default=None,
                   help="a registered model (`pattnet models` lists and describes them; default "
                        "the config's, pattnet)")
    p.add_argument("--patch", type=int, default=None, help="single-patch baseline: 1..9")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--config", default=None, help="YAML/TOML file overriding TrainConfig fields")
    p.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="override config fields, e.g. --set lr=0.01 precision=fp32 (repeatable)")
    p.add_argument("--resume", action="store_true", help="continue a killed run from checkpoints")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from pattnet.config import load_config
    from pattnet.errors import PattnetError
    from pattnet.runs import RunDir
    from pattnet.train import TrainConfig, train

    overrides = list(args.set)
    if args.model:
        from pattnet.models import list_models

        if args.model not in list_models():
            raise PattnetError(f"unknown model {args.model!r}; available: {', '.join(list_models())}")
        overrides.append(f"model={args.model}")
    if args.patch is not None:
        overrides.append(f"patch={args.patch}")
    if args.epochs is not None:
        overrides.append(f"epochs={args.epochs}")
    cfg: TrainConfig | None = load_config(TrainConfig, args.config, overrides)
    saved = RunDir(args.out).config
    if args.resume and saved.is_file():
        if args.config:
            raise PattnetError(f"--config {args.config}: --resume continues the run with the "
                               f"settings it was started with ({saved})")
        # the saved settings, with the overrides given: train() refuses any that change them
        cfg = load_config(TrainConfig, saved, overrides) if overrides else None
    try:
        folds = "all" if args.fold == "all" else [int(f) for f in str(args.fold).split(",")]
    except ValueError as exc:
        raise PattnetError(f"--fold {args.fold!r}: expected 1, 2, 3 (comma-separated) or all") from exc
    run_dir = train(args.store, args.out, cfg, folds=folds, resume=args.resume,
                    progress=not args.no_progress)
    print(f"run written to {run_dir}; next: pattnet evaluate {run_dir}")
    return 0
