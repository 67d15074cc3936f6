"""The paper's experiment grid: which runs ``pattnet reproduce`` makes, and what is left to do.

Table 3 of the paper compares PAttNet (sigmoid attention, one network per AU) with the softmax
ablation, the holistic CNN and the single-patch CNNs P1..P9; the grid adds pattnet's multi-label
model. Every experiment is one ordinary training run (``pattnet train``) with the paper's
defaults and validation-based epoch selection, so each can be inspected, evaluated or resumed
on its own.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from pattnet.constants import N_PATCHES
from pattnet.errors import PattnetError
from pattnet.runs import RunDir
from pattnet.train import TrainConfig


@dataclass(frozen=True)
class Experiment:
    """One run of the grid: its name (its folder under ``--out``) and the model it trains."""

    name: str
    model: str
    patch: int | None = None

    def config(self, base: TrainConfig) -> TrainConfig:
        return dataclasses.replace(base, model=self.model, mode=None,
                                   patch=self.patch if self.patch is not None else base.patch)


def _grid() -> tuple[Experiment, ...]:
    """The registry's grid models in its order; a one-patch model once per patch (P1..P9)."""
    from pattnet.models import grid_models, one_patch_model

    out: list[Experiment] = []
    for m in grid_models():
        if one_patch_model(m):
            out += [Experiment(f"{m}-P{p}", m, p) for p in range(1, N_PATCHES + 1)]
        else:
            out.append(Experiment(m, m))
    return tuple(out)


GRID: tuple[Experiment, ...] = _grid()


def select(only: list[str] | None, skip: list[str] | None) -> list[Experiment]:
    """The grid, or the named part of it (``single-patch`` names all nine P1..P9)."""
    names = {e.name for e in GRID}

    def expand(items: list[str], flag: str) -> set[str]:
        out: set[str] = set()
        for item in items:
            hit = {n for n in names if n == item or n.startswith(f"{item}-P")}
            if not hit:
                raise PattnetError(f"{flag} {item!r}: no such experiment; the grid has "
                                   f"{', '.join(e.name for e in GRID)}")
            out |= hit
        return out

    keep = expand(only, "--only") if only else names
    keep -= expand(skip or [], "--skip")
    if not keep:
        raise PattnetError("--only/--skip leave no experiment to run")
    return [e for e in GRID if e.name in keep]


@dataclass(frozen=True)
class Progress:
    """How far an experiment is: its folds finished, of ``total``."""

    experiment: Experiment
    finished: int
    total: int

    @property
    def done(self) -> bool:
        return self.finished >= self.total


def progress(out: Path, exps: list[Experiment], folds: int) -> list[Progress]:
    return [Progress(e, sum(RunDir(out / e.name).fold(k).finished for k in range(1, folds + 1)),
                     folds) for e in exps]


__all__ = ["GRID", "Experiment", "Progress", "progress", "select"]
