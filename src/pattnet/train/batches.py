"""Which store rows a fold trains, validates and tests on, and how they reach the model.

The batch order depends only on the seed and the epoch, never on the process or on earlier
epochs, so that a resumed run and every DDP rank see exactly the batches an uninterrupted
single-process run would.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from pattnet.datasets.folds import Split
from pattnet.errors import PattnetError
from pattnet.store import PatchStore


class EpochBatches(torch.utils.data.Sampler):
    """Batches of store indices, shuffled by (seed, epoch) and sharded by DDP rank.

    The order depends only on the seed and the epoch number, so a resumed run sees exactly the
    batches an uninterrupted one would.
    """

    def __init__(self, indices: np.ndarray, batch_size: int, seed: int, rank: int = 0,
                 world: int = 1, shuffle: bool = True, max_batches: int | None = None):
        self.indices = np.asarray(indices, dtype=np.int64)
        self.batch_size = batch_size
        self.seed, self.rank, self.world = seed, rank, world
        self.shuffle = shuffle
        self.max_batches = max_batches
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _batches(self) -> list[np.ndarray]:
        idx = self.indices
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            idx = idx[torch.randperm(len(idx), generator=g).numpy()]
        out = [idx[i:i + self.batch_size] for i in range(0, len(idx), self.batch_size)]
        if self.max_batches is not None:
            out = out[: self.max_batches]
        if self.world > 1:
            # Every rank takes its share of every global batch (equal number of steps).
            out = [b[self.rank::self.world] for b in out if len(b) >= self.world]
        return out

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter(self._batches())

    def __len__(self) -> int:
        return len(self._batches())


class _SubjectTable:
    """subject -> reference, as one stacked array and a code per store row."""

    def __init__(self, store: PatchStore, refs: dict[str, np.ndarray]) -> None:
        names = sorted(refs)
        self.refs = np.stack([refs[n] for n in names])
        lookup = {n: i for i, n in enumerate(names)}
        self.codes = np.array([lookup.get(s, -1) for s in store.subjects], dtype=np.int64)

    def rows(self, store: PatchStore, idx: np.ndarray, kind: str) -> np.ndarray:
        codes = self.codes[idx]
        if (codes < 0).any():
            raise PattnetError(f"{store.path}: no {kind} reference for subject "
                               f"{store.subjects[idx[codes < 0][0]]!r}")
        return self.refs[codes]


class StoreBatches(torch.utils.data.Dataset):
    """Maps a batch of indices to one batch of each input kind (one memmap read per batch and
    kind, not per frame): ``x`` and ``ref`` are dicts by kind.

    ``references`` (kind -> subject -> reference array): each batch also carries, per kind, the
    reference of every row's subject (person-specific normalisation, the mesh's reference,
    :mod:`pattnet.store.reference`). With ``priors`` (kind -> population reference) and
    ``prior_share`` > 0, that share of the rows gets the population reference instead, as a
    photo of an unknown person does at detection; which rows depends only on the batch's
    indices and ``seed``, so a resumed run sees the same.
    """

    def __init__(self, store: PatchStore, kinds: Sequence[str], au_cols: np.ndarray,
                 references: dict[str, dict[str, np.ndarray]] | None = None,
                 priors: dict[str, np.ndarray] | None = None, prior_share: float = 0.0,
                 seed: int = 0):
        self.store, self.kinds, self.au_cols = store, tuple(kinds), au_cols
        self.refs = {k: _SubjectTable(store, r) for k, r in (references or {}).items() if r}
        self.priors = priors or {}
        self.prior_share, self.seed = float(prior_share), int(seed)

    def __len__(self) -> int:
        return len(self.store)

    def __getitem__(self, idx: np.ndarray) -> dict[str, Any]:
        idx = np.asarray(idx, dtype=np.int64)
        out: dict[str, Any] = {
            "x": {k: torch.from_numpy(self.store.read(k, idx)) for k in self.kinds},
            "y": torch.from_numpy(self.store.labels[idx][:, self.au_cols].astype(np.int8)),
            "index": torch.from_numpy(idx),
        }
        if self.refs:
            refs = {k: t.rows(self.store, idx, k) for k, t in self.refs.items()}
            if self.prior_share > 0 and len(idx):
                rng = np.random.default_rng([self.seed, *idx[:8].tolist()])
                unknown = rng.random(len(idx)) < self.prior_share
                for k, prior in self.priors.items():
                    if k in refs:
                        refs[k][unknown] = prior
            out["ref"] = {k: torch.from_numpy(v) for k, v in refs.items()}
        return out


def batch_loader(ds: StoreBatches, sampler: EpochBatches, workers: int, pin: bool = False
                 ) -> torch.utils.data.DataLoader:
    """A loader that yields the sampler's batches whole (``batch_size=None``): the dataset
    already reads a batch at once, as uint8 (normalising happens on the device).

    ``workers`` background processes read ahead, at most two batches each (memory stays bounded
    by the batch); ``pin`` puts batches in page-locked memory so that the copy to a GPU can
    overlap the step (``non_blocking``). More workers than cores only compete with the step
    (and a thousand of them never finish starting), so at most one per core is started.
    """
    workers = min(workers, os.cpu_count() or 1)
    return torch.utils.data.DataLoader(
        ds, sampler=sampler, batch_size=None, num_workers=workers,
        persistent_workers=False, prefetch_factor=2 if workers > 0 else None, pin_memory=pin,
    )


@dataclass
class FoldData:
    """A fold's subject split and the usable store rows of each part."""

    split: Split
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def fold_indices(store: PatchStore, split: Split, au_cols: np.ndarray,
                 include_failed: bool) -> FoldData:
    """Store rows of each part of ``split``, without frames that cannot teach or be scored."""
    subj = store.subjects
    usable = np.ones(len(store), dtype=bool) if include_failed else store.success.copy()
    usable &= (store.labels[:, au_cols] >= 0).any(1)  # frames with no coded AU teach nothing

    def sel(subjects: Sequence[str]) -> np.ndarray:
        return np.nonzero(np.isin(subj, list(subjects)) & usable)[0]

    return FoldData(split, sel(split.train), sel(split.val), sel(split.test))


__all__ = ["EpochBatches", "FoldData", "StoreBatches", "batch_loader", "fold_indices"]
