"""The layout of a training run folder: written by ``train``, read by ``evaluate``, ``export``
and ``report``.

One type instead of path strings in each stage, so that the four can never disagree on where a
fold's checkpoints, its selected epoch or its test predictions live::

    RUN/config.yaml  run.json  references.npz (subject normalisation: each subject's mean face)
    RUN/references-mesh.npz    (models of the mesh: each subject's mean mesh)
    RUN/foldK/split.json  history.csv  selected.json  predictions.npz
    RUN/foldK/checkpoints/epoch-NN.pt
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pattnet.errors import PattnetError
from pattnet.io.atomic import read_json

_FOLD = re.compile(r"^fold(\d+)$")
_EPOCH = re.compile(r"^epoch-(\d+)\.pt$")


@dataclass(frozen=True)
class FoldDir:
    """``RUN/foldK``: one fold's training state and results."""

    path: Path
    number: int

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    def checkpoint(self, epoch: int) -> Path:
        return self.checkpoints / f"epoch-{epoch:02d}.pt"

    def epochs(self) -> list[int]:
        """Epochs that have a checkpoint, ascending."""
        if not self.checkpoints.is_dir():
            return []
        found = (_EPOCH.match(p.name) for p in self.checkpoints.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    @property
    def split(self) -> Path:
        return self.path / "split.json"

    @property
    def history(self) -> Path:
        return self.path / "history.csv"

    @property
    def selected(self) -> Path:
        return self.path / "selected.json"

    @property
    def predictions(self) -> Path:
        return self.path / "predictions.npz"

    @property
    def finished(self) -> bool:
        """The one rule every stage uses: training chose the epoch (``selected.json``) and wrote
        its test predictions, its last two steps. A fold lacking either is unfinished for
        ``evaluate``, ``export`` and ``report`` alike."""
        return self.selected.is_file() and self.predictions.is_file()

    def unfinished_reason(self) -> str:
        missing = [p.name for p in (self.selected, self.predictions) if not p.is_file()]
        return f"{self.path}: fold not finished (no {' or '.join(missing)}); resume its training"

    def read_selected(self) -> dict[str, Any] | None:
        """``selected.json`` (the epoch chosen on validation subjects), None when absent."""
        if not self.selected.is_file():
            return None
        sel = read_json(self.selected)
        if not isinstance(sel, dict):
            raise PattnetError(f"{self.selected} must hold a JSON object")
        return sel


@dataclass(frozen=True)
class RunDir:
    """``RUN``: one model trained under k-fold cross-validation."""

    path: Path

    def __init__(self, path: str | Path):
        object.__setattr__(self, "path", Path(path))

    @property
    def config(self) -> Path:
        return self.path / "config.yaml"

    @property
    def info(self) -> Path:
        return self.path / "run.json"

    @property
    def references(self) -> Path:
        """Each subject's mean face (of the model's image input)."""
        return self.path / "references.npz"

    def references_of(self, kind: str) -> Path:
        """Each subject's mean ``kind`` input: the image kind's in :attr:`references` (where
        runs kept it before models took several kinds), another kind's beside it."""
        return self.references if kind in ("patches", "holistic") else \
            self.path / f"references-{kind}.npz"

    def fold(self, k: int) -> FoldDir:
        return FoldDir(self.path / f"fold{int(k)}", int(k))

    def folds(self) -> list[FoldDir]:
        """The ``foldK`` folders on disk, by fold number."""
        if not self.path.is_dir():
            return []
        found = ((_FOLD.match(d.name), d) for d in self.path.iterdir() if d.is_dir())
        return sorted((FoldDir(d, int(m.group(1))) for m, d in found if m), key=lambda f: f.number)

    def read_info(self) -> dict[str, Any]:
        """``run.json``, checked to be an object; errors name the file."""
        if self.path.exists() and not self.path.is_dir():
            raise PattnetError(f"{self.path}: is a file, not a run directory (give the folder "
                               "'pattnet train --out' wrote)")
        if not self.path.is_dir():
            raise PattnetError(f"run directory {self.path} does not exist")
        if not self.info.is_file():
            raise PattnetError(f"{self.path} is not a run directory: {self.info.name} is missing")
        info = read_json(self.info)
        if not isinstance(info, dict):
            raise PattnetError(f"{self.info} must hold a JSON object")
        return info

    def read_config(self) -> dict[str, Any]:
        """``config.yaml`` as written by ``train`` (every field of its config)."""
        from pattnet.config import read_config_file

        if not self.config.is_file():
            raise PattnetError(f"{self.path}: not a training run ({self.config.name} is missing)")
        cfg = read_config_file(self.config)
        # runs written before the never-read ``extra`` mapping was removed (a typo under it,
        # --set extra.lr=0.5, used to be taken silently): an empty one carries nothing
        if cfg.get("extra") == {}:
            del cfg["extra"]
        return cfg


__all__ = ["FoldDir", "RunDir"]
