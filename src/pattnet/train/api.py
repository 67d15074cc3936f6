"""``train()``: a model trained under k-fold subject-independent cross-validation, into a run folder.

The entry point the CLI and the demo call; it decides the run (its config, AUs and folds),
records it in ``RUN/config.yaml`` and ``RUN/run.json``, and hands each fold to a
:class:`~pattnet.train.trainer.Trainer`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from pattnet.config import from_dict, save_config, validate
from pattnet.datasets.folds import subject_folds
from pattnet.errors import PattnetError
from pattnet.io.atomic import atomic_write_json
from pattnet.io.lock import folder_lock
from pattnet.runs import RunDir
from pattnet.runtime import resolve_device
from pattnet.store import PatchStore
from pattnet.train.config import TrainConfig
from pattnet.train.trainer import Trainer

LOCK_NAME = ".train.lock"


def train(
    store_path: str | Path,
    out: str | Path,
    cfg: TrainConfig | None = None,
    folds: Sequence[int] | str = "all",
    resume: bool = False,
    progress: bool = True,
    stop_after: int | None = None,
) -> Path:
    """Train ``cfg.model`` on the store under k-fold subject-independent cross-validation.

    ``resume`` continues a run directory from its last checkpoints; the config saved there wins
    (a resumed run must be the same run). ``stop_after`` ends each fold after that epoch (used to
    test resumption).
    """
    run = RunDir(out)
    world_rank = int(os.environ.get("RANK", "0"))
    # one training per run folder: a second train (or --resume) into it while the first runs
    # would train the same folds twice and keep whichever wrote last. Rank 0 holds it for all.
    lock = folder_lock(run.path, LOCK_NAME, "another pattnet train") if world_rank == 0 and \
        not (run.path.exists() and not run.path.is_dir()) else contextlib.nullcontext(False)
    with lock as created:
        try:
            _train_locked(run, store_path, cfg, folds, resume, progress, stop_after, world_rank)
        except BaseException:
            if created and not run.config.is_file():  # refused before any work: leave nothing
                shutil.rmtree(run.path, ignore_errors=True)
            raise
    return run.path


def _train_locked(run: RunDir, store_path: str | Path, cfg: TrainConfig | None,
                  folds: Sequence[int] | str, resume: bool, progress: bool,
                  stop_after: int | None, world_rank: int) -> None:
    cfg = _run_config(run, cfg, resume, world_rank)
    store = PatchStore(store_path)
    aus, au_cols = _run_aus(store, cfg)
    _check_model(cfg, aus, store)
    dataset = cfg.dataset or store.dataset
    subjects = np.unique(store.subjects)
    fold_lists = subject_folds(subjects, dataset, cfg.folds, cfg.seed)
    which = _folds(folds, len(fold_lists))
    if resume:
        _check_same_store(run, store, fold_lists)
    resolve_device(cfg.device)
    # everything above is checked before the run's files are written: a corrected retry can
    # use the same --out
    if world_rank == 0:
        _write_run(run, cfg, store_path, aus, which, dataset, fold_lists, len(store))
    for f in which:
        trainer = Trainer(cfg, store, run.path, f, fold_lists, au_cols, aus, progress)
        trainer.run(stop_after=stop_after)


def _run_config(run: RunDir, cfg: TrainConfig | None, resume: bool, world_rank: int) -> TrainConfig:
    """The run's config: the one saved in the run when resuming, else ``cfg`` (or the defaults);
    checked before anything is written, so a corrected call can reuse the same folder.

    A resumed run is the run that was started: a ``cfg`` that differs from the saved one is
    refused (naming the settings that differ) rather than silently ignored or half applied.
    """
    if run.path.exists() and not run.path.is_dir():
        raise PattnetError(f"{run.path}: exists and is not a folder; choose another --out")
    # Only rank 0 decides whether the run exists: under DDP the other ranks may look after rank 0
    # has already written config.yaml for this very run.
    if run.config.is_file() and (resume or world_rank == 0):
        if not resume:
            raise PattnetError(f"{run.path}: a run already exists here; pass --resume to continue "
                               "it or choose another --out")
        saved = from_dict(TrainConfig, run.read_config())
        if cfg is not None and validate(cfg) != saved:
            diff = [f"{k}={getattr(cfg, k)!r} (run: {getattr(saved, k)!r})"
                    for k in saved.__dataclass_fields__ if getattr(cfg, k) != getattr(saved, k)]
            raise PattnetError(f"{run.path}: --resume continues the run with the settings it was "
                               f"started with; these differ: {', '.join(diff)}")
        cfg = saved
    return validate(cfg if cfg is not None else TrainConfig())


def _check_same_store(run: RunDir, store: PatchStore, fold_lists: list[list[str]]) -> None:
    """A resumed run trains on the store it was started on: another store (or the same path
    holding other frames) would mix two datasets in one model and one evaluation."""
    if not run.info.is_file():
        return
    have = run.read_info()
    here = str(store.path.resolve())
    if have.get("store") not in (None, here):
        raise PattnetError(f"{run.path}: --resume continues the run on the store it was started "
                           f"on ({have['store']}), not {here}; choose another --out for a new "
                           "run")
    frames = have.get("store_frames")
    if (frames is not None and frames != len(store)) or \
            have.get("fold_subjects", fold_lists) != fold_lists:
        raise PattnetError(f"{run.path}: --resume: the store {here} no longer holds the frames "
                           f"the run was started on ({frames} frames then, {len(store)} now); "
                           "choose another --out for a new run")


def _check_model(cfg: TrainConfig, aus: list[int], store: PatchStore) -> None:
    """The model exists and the store holds every input it takes."""
    from pattnet.models import create_model, list_models

    if cfg.model not in list_models():
        raise PattnetError(f"config key 'model': unknown model {cfg.model!r}; available: "
                           f"{', '.join(list_models())}")
    kinds = create_model(cfg.model, aus=aus[:1], **({"mode": cfg.mode} if cfg.mode else {})
                         ).input_kinds
    for kind in kinds:
        if kind not in store.kinds:
            store.read(kind, [])  # its one-line error says why and what to do


def _folds(folds: Sequence[int] | str, n: int) -> list[int]:
    if folds == "all":
        return list(range(1, n + 1))
    which = [int(f) for f in folds]
    bad = [f for f in which if not 1 <= f <= n]
    if bad:
        raise PattnetError(f"--fold {bad[0]}: the run has folds 1..{n}")
    return which


def _run_aus(store: PatchStore, cfg: TrainConfig) -> tuple[list[int], np.ndarray]:
    """The AUs trained (``cfg.aus`` or all of the store's) and their label columns in the store."""
    aus = list(store.aus) if cfg.aus is None else [int(a) for a in cfg.aus]
    missing = [a for a in aus if a not in store.aus]
    if missing:
        raise PattnetError(f"AUs {missing} are not in {store.path} (it has {store.aus})")
    au_cols = np.array([store.aus.index(a) for a in aus], dtype=np.int64)
    return aus, au_cols


def _write_run(run: RunDir, cfg: TrainConfig, store_path: str | Path, aus: list[int],
               which: list[int], dataset: str | None, fold_lists: list[list[str]],
               n_frames: int) -> None:
    """``RUN/config.yaml`` (kept when resuming) and ``RUN/run.json``, what later stages read."""
    run.path.mkdir(parents=True, exist_ok=True)
    if not run.config.is_file():
        save_config(cfg, run.config)
    info = {
        "model": cfg.model, "aus": aus, "folds": which, "dataset": dataset,
        "store": str(Path(store_path).resolve()), "store_frames": n_frames,
        "threshold": cfg.threshold,
        "n_folds": len(fold_lists), "fold_subjects": fold_lists,
        "torch": torch.__version__,
    }
    from pattnet.models import one_patch_model

    if one_patch_model(cfg.model):
        info["patch"] = cfg.patch
    atomic_write_json(run.info, info)


__all__ = ["train"]
