"""Subject-independent folds: the published BP4D and DISFA splits, k-fold by subject otherwise.

Why subject-independent: the same person in training and test inflates every AU metric, so the
paper (and JPML, JAA-Net, ME-GraphAU after it) splits by subject. Validation subjects for epoch
selection are carved out of the training subjects, never the test fold (the authors' test script
picked the epoch on the test fold; we do not).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pattnet.constants import N_FOLDS, SPLIT_SEED, VAL_FRACTION
from pattnet.errors import PattnetError

BP4D_PARTS: tuple[tuple[str, ...], ...] = (
    ("F001", "M007", "F018", "F008", "F002", "M004", "F010", "F009", "M012", "M001", "F016",
     "M014", "F023", "M008"),
    ("M011", "F003", "M010", "M002", "F005", "F022", "M018", "M017", "F013", "M016", "F020",
     "F011", "M013", "M005"),
    ("F007", "F015", "F006", "F019", "M006", "M009", "F012", "M003", "F004", "F021", "F017",
     "M015", "F014"),
)
DISFA_PARTS: tuple[tuple[str, ...], ...] = (
    ("SN002", "SN010", "SN001", "SN026", "SN027", "SN032", "SN030", "SN009", "SN016"),
    ("SN013", "SN018", "SN011", "SN028", "SN012", "SN006", "SN031", "SN021", "SN024"),
    ("SN003", "SN029", "SN023", "SN025", "SN008", "SN005", "SN007", "SN017", "SN004"),
)
PUBLISHED = {"bp4d": BP4D_PARTS, "disfa": DISFA_PARTS}


@dataclass(frozen=True)
class Split:
    """Subjects of one fold: train, validation (for epoch selection) and test."""

    fold: int
    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]


def subject_folds(
    subjects: Iterable[str], dataset: str | None = None, k: int = N_FOLDS, seed: int = SPLIT_SEED
) -> list[list[str]]:
    """Test subjects of each of the ``k`` folds.

    For ``bp4d`` and ``disfa`` the published parts are used (subjects missing from the data are
    dropped, unknown subjects are an error because they would silently leak into no fold).
    Anything else is split k-fold by subject after a seeded shuffle.
    """
    subs = sorted(set(map(str, subjects)))
    if dataset is not None and dataset.lower() in PUBLISHED:
        parts = PUBLISHED[dataset.lower()]
        known = {s for p in parts for s in p}
        unknown = sorted(set(subs) - known)
        if unknown:
            raise PattnetError(
                f"subjects {', '.join(unknown[:5])} are not in the published {dataset} folds; "
                "use --dataset manifest for k-fold by subject"
            )
        present = set(subs)
        return [[s for s in part if s in present] for part in parts]
    if len(subs) < k:
        raise PattnetError(
            f"{len(subs)} subject(s) cannot make {k} subject-independent folds; need at least {k}"
        )
    rng = random.Random(seed)
    order = subs[:]
    rng.shuffle(order)
    return [sorted(order[i::k]) for i in range(k)]


def make_split(
    folds: Sequence[Sequence[str]], fold: int, val_fraction: float = VAL_FRACTION,
    seed: int = SPLIT_SEED,
) -> Split:
    """Train/val/test subjects for 1-based ``fold``; val is a seeded subset of training subjects."""
    if not 1 <= fold <= len(folds):
        raise PattnetError(f"fold {fold} does not exist; folds are 1..{len(folds)}")
    test = tuple(folds[fold - 1])
    rest = sorted(s for i, f in enumerate(folds) if i != fold - 1 for s in f)
    if not rest:
        raise PattnetError(f"fold {fold} leaves no training subjects")
    n_val = 0
    if val_fraction > 0 and len(rest) >= 2:
        n_val = min(len(rest) - 1, max(1, round(val_fraction * len(rest))))
    rng = random.Random(seed * 1000 + fold)
    val = tuple(sorted(rng.sample(rest, n_val)))
    train = tuple(s for s in rest if s not in set(val))
    return Split(fold=fold, train=train, val=val, test=test)
