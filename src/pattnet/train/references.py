"""The subject references of a run: every subject's mean face, computed once per run.

Stored in ``RUN/references.npz`` so that the other folds, a resumed run and ``export`` reuse the
same faces instead of each averaging the store again.
"""

from __future__ import annotations

import numpy as np

from pattnet.runs import RunDir
from pattnet.runtime import Dist
from pattnet.store import PatchStore
from pattnet.store.reference import load_references, save_references, subject_references
from pattnet.train.config import TrainConfig


def run_references(store: PatchStore, run: RunDir, cfg: TrainConfig, dist: Dist,
                   kind: str) -> dict[str, np.ndarray]:
    """Every subject's mean ``kind`` input, computed once per run (RUN/references.npz) and
    reused by the other folds, a resumed run and ``export``. Under DDP rank 0 writes it and the
    others wait."""
    if dist.main and not run.references.is_file():
        usable = None if cfg.include_failed else store.success
        refs = subject_references(store, kind, np.unique(store.subjects), usable,
                                  max_frames=cfg.reference_frames)
        save_references(run.references, refs)
    if dist.world > 1:
        import torch.distributed as tdist

        tdist.barrier()
    return load_references(run.references)

__all__ = ["run_references"]
