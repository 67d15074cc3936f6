"""The subject references of a run: every subject's mean face (and mean mesh), once per run.

Stored in the run folder (``RunDir.references_of(kind)``) so that the other folds, a resumed run
and ``export`` reuse the same references instead of each averaging the store again.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pattnet.models.inputs import MESH
from pattnet.runs import RunDir
from pattnet.runtime import Dist
from pattnet.store import PatchStore
from pattnet.store.reference import (
    load_references,
    population_reference,
    save_references,
    subject_references,
)
from pattnet.train.config import TrainConfig


def run_references(store: PatchStore, run: RunDir, cfg: TrainConfig, dist: Dist,
                   kind: str) -> dict[str, np.ndarray]:
    """Every subject's mean ``kind`` input, computed once per run and reused by the other
    folds, a resumed run and ``export``. Under DDP rank 0 writes it and the others wait."""
    path = run.references_of(kind)
    if dist.main and not path.is_file():
        usable = None if cfg.include_failed else store.success
        # under reference=neutral every subject's labelled neutral frames: training uses those
        # of its training subjects only (and their mean as the population's prior); held-out
        # subjects are scored against a reference estimated without labels (Trainer)
        refs = subject_references(store, kind, np.unique(store.subjects), usable,
                                  max_frames=cfg.reference_frames, reference=cfg.reference)
        save_references(path, refs)
    if dist.world > 1:
        import torch.distributed as tdist

        tdist.barrier()
    return load_references(path)


def fold_references(store: PatchStore, run: RunDir, cfg: TrainConfig, dist: Dist,
                    kinds: Sequence[str], train_subjects: Sequence[str]
                    ) -> dict[str, dict[str, np.ndarray]]:
    """The references each input kind of a fold's model is fed with, by kind and subject.

    Images get their person's mean face only under ``normalize: subject``. The mesh always has
    a reference: the person's mean mesh under ``subject``, else the mean over the fold's
    training subjects for everyone (the prior a photo is scored against), so that the
    network sees what the expression does, not the shape of the face.
    """
    out: dict[str, dict[str, np.ndarray]] = {}
    for kind in kinds:
        if kind != MESH and cfg.normalize != "subject":
            continue
        refs = run_references(store, run, cfg, dist, kind)
        if cfg.normalize != "subject":
            prior = population_reference(refs, train_subjects)
            refs = dict.fromkeys(np.unique(store.subjects).tolist(), prior)
        out[kind] = refs
    return out

__all__ = ["fold_references", "run_references"]
