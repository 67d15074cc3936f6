"""Reading a training run for evaluation: ``run.json`` checked, each fold's test predictions.

Why checks here rather than in the metrics: a run may come from another machine or an older
version, and a wrong shape found late would surface as an index error deep in scikit-learn; every
error raised here names the file and what is wrong with it. Paths come from
:class:`pattnet.runs.RunDir`, the one description of the run-folder layout.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pattnet.errors import PattnetError
from pattnet.runs import FoldDir, RunDir


@dataclass(frozen=True)
class RunInfo:
    """What ``run.json`` says about a run, checked."""

    path: Path
    model: str
    aus: tuple[int, ...]
    folds: tuple[int, ...]  # folds the run declares
    dataset: str | None
    threshold: float
    patch: int | None = None  # single-patch runs only
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """Short description of the model, e.g. ``single-patch P7``."""
        return f"{self.model} P{self.patch}" if self.patch else self.model

    @property
    def run_dir(self) -> RunDir:
        return RunDir(self.path)


@dataclass
class FoldPredictions:
    """Test predictions of one fold, as training saved them."""

    fold: int
    prob: np.ndarray  # (N, A) float
    label: np.ndarray  # (N, A) int8 in {1, 0, -1}
    attention: np.ndarray | None  # (N, A, 9) or None
    selected: dict[str, Any] | None  # selected.json, if present


def model_order_key(run: RunInfo) -> tuple[int, int]:
    """Sort key putting runs in Table 3's order (the registry's: single patches P1..P9,
    holistic, softmax, sigmoid, then the other models), then models this version does not know."""
    from pattnet.models import table_rank

    return (table_rank(run.model, "table3"), run.patch or 0)


def read_run(run_dir: str | Path) -> RunInfo:
    """Read and check ``RUN/run.json``; errors name the file and what is wrong."""
    rd = RunDir(run_dir)
    meta = rd.read_info()
    rj = rd.info
    try:
        aus = tuple(int(a) for a in meta["aus"])
    except (KeyError, TypeError, ValueError) as exc:
        raise PattnetError(f"{rj} needs \"aus\": a list of AU numbers") from exc
    if not aus:
        raise PattnetError(f"{rj} lists no AUs")
    declared = meta.get("folds") or []
    try:
        folds = tuple(int(f) for f in declared)
        threshold = float(meta.get("threshold", 0.5))
        patch = int(meta["patch"]) if meta.get("patch") is not None else None
    except (TypeError, ValueError) as exc:
        raise PattnetError(f"{rj}: \"folds\", \"threshold\" or \"patch\" is malformed") from exc
    ds = meta.get("dataset")
    return RunInfo(path=rd.path, model=str(meta.get("model", "unknown")), aus=aus, folds=folds,
                   dataset=str(ds).lower() if ds else None, threshold=threshold, patch=patch,
                   meta=meta)


def find_folds(run: RunInfo) -> tuple[list[int], list[int]]:
    """(folds with predictions, folds declared or present but without predictions)."""
    rd = run.run_dir
    present = set(run.folds) | {fd.number for fd in rd.folds()}
    have = sorted(f for f in present if rd.fold(f).finished)
    missing = sorted(present - set(have))
    return have, missing


def _read_arrays(f: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(prob, label, attention or None) from ``predictions.npz``."""
    try:
        with np.load(f, allow_pickle=False) as z:
            keys = set(z.files)
            need = {"prob", "label"} - keys
            if need:
                raise PattnetError(f"{f} lacks {', '.join(sorted(need))}")
            prob = np.asarray(z["prob"])
            label = np.asarray(z["label"])
            att = np.asarray(z["attention"]) if "attention" in keys else None
    except (OSError, ValueError) as exc:  # truncated / not an npz
        raise PattnetError(f"cannot read {f}: {exc}") from exc
    return prob, label, att


def load_fold(run: RunInfo, fold: int) -> FoldPredictions:
    """Load ``foldN/predictions.npz`` and check shapes against the run's AU list."""
    fd: FoldDir = run.run_dir.fold(fold)
    f = fd.predictions
    prob, label, att = _read_arrays(f)
    if prob.ndim == 1:
        prob, label = prob[:, None], label.reshape(-1, 1)
    a = len(run.aus)
    if prob.ndim != 2 or prob.shape[1] != a or label.shape != prob.shape:
        raise PattnetError(
            f"{f}: prob {prob.shape} and label {label.shape} do not match the run's {a} AUs"
        )
    if att is not None:
        if att.size == 0 and prob.shape[0] > 0:
            att = None
        elif att.shape[0] != prob.shape[0] or att.ndim not in (2, 3):
            raise PattnetError(f"{f}: attention {att.shape} does not match prob {prob.shape}")
    return FoldPredictions(fold=fold, prob=prob, label=label, attention=att,
                           selected=fd.read_selected())


__all__ = ["FoldPredictions", "RunInfo", "find_folds", "load_fold",
           "model_order_key", "read_run"]
