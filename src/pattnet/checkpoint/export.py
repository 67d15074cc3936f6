"""Training run -> one deployable checkpoint: which fold and epoch, and what goes with them.

Reads the run through :class:`pattnet.runs.RunDir` (the one place that knows the run folder's
layout) and never imports ``pattnet.train``: exporting a model must not need the trainer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pattnet.checkpoint.format import save_checkpoint
from pattnet.errors import PattnetError
from pattnet.runs import FoldDir, RunDir

_RUN_SETTINGS = ("select_metric", "threshold", "mean", "std", "normalize")


@dataclass
class ExportResult:
    path: Path
    fold: int
    epoch: int
    criterion: str | None
    value: float | None
    reason: str  # why this fold


def _finite(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None


def choose_fold(run_dir: str | Path, select_metric: str = "f1") -> tuple[int, str]:
    """The fold ``export`` uses by default, and why.

    Every fold's model is a valid model trained on different subjects; the default is the
    finished fold whose *selected* epoch scored best on its validation subjects (the
    ``selected.json`` value, by the run's ``select_metric``: highest F1/AUC or lowest loss), ties
    to the lower fold number. The test subjects are never used for this choice: picking the fold
    by test score would leak the evaluation into the deployed model. A run without validation
    (no values) falls back to the lowest finished fold.
    """
    rd = RunDir(run_dir)
    found: list[tuple[int, float | None]] = []
    for fd in rd.folds():
        sel = fd.read_selected() if fd.finished else None
        if sel is not None:
            found.append((fd.number, _finite(sel.get("value"))))
    if not found:
        raise PattnetError(f"{rd.path}: no finished fold (foldK/selected.json and "
                           "predictions.npz); finish training or pass --fold K --epoch N")
    found.sort()
    scored = [(f, v) for f, v in found if v is not None]
    if not scored:
        return found[0][0], "lowest finished fold (no validation scores)"
    lower = select_metric == "loss"
    best = min(scored, key=lambda fv: (fv[1] if lower else -fv[1], fv[0]))
    return best[0], (f"best validation {select_metric} of folds "
                     f"{', '.join(str(f) for f, _ in scored)}")


def _read_run(rd: RunDir) -> tuple[dict[str, Any], dict[str, Any]]:
    """The run's config and ``run.json``, refused unless ``pattnet train`` wrote them."""
    if not rd.path.is_dir():
        raise PattnetError(f"{rd.path}: no such run directory")
    if not rd.config.is_file() or not rd.info.is_file():
        raise PattnetError(f"{rd.path}: not a training run (config.yaml and run.json expected)")
    cfg = rd.read_config()
    missing = [k for k in _RUN_SETTINGS if k not in cfg]
    if missing:
        raise PattnetError(f"{rd.config}: lacks {', '.join(missing)}; not written by pattnet train")
    return cfg, rd.read_info()


def _fold(rd: RunDir, fold: int) -> FoldDir:
    fd = rd.fold(fold)
    if not fd.path.is_dir():
        have = [f.path.name for f in rd.folds()]
        raise PattnetError(f"{rd.path}: no fold {fold} (has {', '.join(have) or 'none'})")
    return fd


def _selected_epoch(fd: FoldDir) -> tuple[int, str | None, float | None]:
    """The epoch chosen on the fold's validation subjects, with its criterion and value."""
    sel = fd.read_selected() if fd.finished else None
    if sel is None:
        raise PattnetError(f"{fd.unfinished_reason()}, or pass --epoch N to export a given epoch")
    return int(sel["epoch"]), sel.get("criterion"), sel.get("value")


def _trained_model(fd: FoldDir, epoch: int, cfg: dict[str, Any], aus: list[int]) -> Any:
    """The run's model with the weights of one training checkpoint (``weights_only``)."""
    from pattnet.models import model_from_settings

    ck_path = fd.checkpoint(epoch)
    if not ck_path.is_file():
        raise PattnetError(f"{ck_path}: checkpoint not found")
    try:
        ck = torch.load(ck_path, map_location="cpu", weights_only=True)
        state = ck["model"]
    except Exception as exc:
        raise PattnetError(f"{ck_path}: unreadable checkpoint ({type(exc).__name__})") from exc
    model = model_from_settings(cfg, aus)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise PattnetError(f"{ck_path}: weights do not fit the run's model "
                           f"({str(exc).splitlines()[0]})") from exc
    return model


def _population_reference(rd: RunDir, test_subjects: list[Any] | None, kind: str) -> Any:
    """Mean ``kind`` reference (face, or mesh) of the fold's training population: the test
    subjects never shape it."""
    from pattnet.store.reference import load_references, population_reference

    refs = load_references(rd.references_of(kind))
    test = set(test_subjects or [])
    return population_reference(refs, [s for s in refs if s not in test])


def export_run(
    run_dir: str | Path,
    out: str | Path,
    fold: int | None = None,
    epoch: int | None = None,
    threshold: float | Sequence[float] | None = None,
    weights_dtype: str | None = None,
    provenance: dict[str, Any] | None = None,
) -> ExportResult:
    """Turn a training run directory into one deployable checkpoint file.

    ``fold`` None picks one with :func:`choose_fold`; ``epoch`` None takes the fold's selected
    epoch (``selected.json``). ``threshold`` (one for all AUs, or one per AU) None takes the
    run's own (``run.json``, the value its F1 was computed at). ``weights_dtype="float16"``
    halves the file. ``provenance`` replaces entries of the recorded ``source`` (the run and store
    paths, say, for a file that must not depend on where it was built).
    """
    from pattnet.io.atomic import check_output_file

    check_output_file(out, "--out")
    rd = RunDir(run_dir)
    cfg, info = _read_run(rd)
    aus = [int(a) for a in info["aus"]]
    if fold is None:
        fold, reason = choose_fold(rd.path, str(cfg["select_metric"]))
    else:
        reason = "chosen with --fold"
    fd = _fold(rd, fold)
    criterion: str | None = None
    value: float | None = None
    if epoch is None:
        epoch, criterion, value = _selected_epoch(fd)
    model = _trained_model(fd, epoch, cfg, aus)
    thr = float(cfg["threshold"]) if threshold is None else threshold  # one, or one per AU
    fold_subjects = info.get("fold_subjects") or []
    source = {"run": str(rd.path.resolve()), "fold": int(fold), "epoch": int(epoch),
              "criterion": criterion, "value": value, "fold_choice": reason,
              "dataset": info.get("dataset"), "store": info.get("store"),
              "test_subjects": list(fold_subjects[fold - 1]) if len(fold_subjects) >= fold else None,
              **(provenance or {})}
    normalize = str(cfg["normalize"])
    kinds = model.input_kinds
    test = source["test_subjects"]
    image = next((k for k in kinds if k != "mesh"), None)
    reference = (_population_reference(rd, test, image)
                 if normalize == "subject" and image is not None else None)
    mesh_reference = _population_reference(rd, test, "mesh") if "mesh" in kinds else None
    path = save_checkpoint(out, model, threshold=thr, mean=float(cfg["mean"]),
                           std=float(cfg["std"]), source=source, normalize=normalize,
                           reference=reference, mesh_reference=mesh_reference,
                           weights_dtype=weights_dtype,
                           person_reference=str(cfg.get("reference", "mean")))
    return ExportResult(path=path, fold=int(fold), epoch=int(epoch), criterion=criterion,
                        value=value, reason=reason)
