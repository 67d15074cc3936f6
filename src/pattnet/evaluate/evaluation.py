"""Evaluating one run: per-fold and pooled metrics from its saved predictions, and their files.

Two summaries over folds are computed because papers differ in which they mean: *pooled*
computes each metric once on the concatenated test predictions of all folds; *fold mean*
averages the per-fold metrics. Files are written atomically, so a killed evaluation never
leaves half a CSV.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pattnet.constants import au_name
from pattnet.errors import PattnetError
from pattnet.evaluate.cells import csv_text, join, json_number, patch_columns
from pattnet.evaluate.metrics import au_metrics, mean_attention
from pattnet.evaluate.result import EvalResult
from pattnet.evaluate.run import FoldPredictions, RunInfo, find_folds, load_fold, read_run
from pattnet.evaluate.tables import tables_markdown
from pattnet.io.atomic import atomic_write_json, atomic_write_text
from pattnet.runs import RunDir

#: Metrics that also get a ``<metric>_fold_mean`` column in the pooled frame.
_FOLD_MEAN = ("f1", "auc", "precision", "recall")


def evaluate_run(
    run_dir: str | Path, threshold: float | None = None, write: bool = True
) -> EvalResult:
    """Metrics of every fold with predictions, pooled over folds, and tables beside the paper.

    ``threshold`` defaults to the run's own (``run.json`` "threshold", else 0.5). With
    ``write`` the results go to ``RUN/eval/`` (atomically, so a killed evaluation never leaves
    half a CSV); ``compare_runs`` evaluates without writing.
    """
    run = read_run(run_dir)
    thr = run.threshold if threshold is None else float(threshold)
    if not 0.0 <= thr <= 1.0:
        raise PattnetError(f"threshold must be between 0 and 1, got {thr}")
    have, missing = find_folds(run)
    if not have:
        relative = RunDir("")  # names relative to the run folder
        expect = join(f"{relative.fold(f).selected} and {relative.fold(f).predictions}"
                      for f in (run.folds or (1, 2, 3)))
        raise PattnetError(
            f"no finished fold in {run.path}: expected {expect} (has training finished?)"
        )
    folds = _FoldResults(run, thr)
    for f in have:
        folds.add(load_fold(run, f))
    per_fold = pd.concat(folds.metrics, ignore_index=True)
    res = EvalResult(run=run, threshold=thr, folds=tuple(have), missing_folds=tuple(missing),
                     per_fold=per_fold, pooled=folds.pooled(per_fold, have),
                     attention=folds.attention_frame(len(have)), selected=folds.selected,
                     frames=folds.frames)
    res.markdown = tables_markdown(res)
    if write:
        res.files = write_eval(res)
    return res


@dataclass
class _FoldResults:
    """What each fold contributes, gathered one fold at a time: attention weights, the largest
    arrays, are reduced to their mean as soon as a fold is read, so only one fold's are held."""

    run: RunInfo
    threshold: float
    metrics: list[pd.DataFrame] = field(default_factory=list)
    probs: list[np.ndarray] = field(default_factory=list)
    labels: list[np.ndarray] = field(default_factory=list)
    attention: list[np.ndarray] = field(default_factory=list)
    selected: dict[int, dict[str, Any]] = field(default_factory=dict)
    frames: dict[int, int] = field(default_factory=dict)

    def add(self, fp: FoldPredictions) -> None:
        m = au_metrics(fp.prob, fp.label, self.run.aus, threshold=self.threshold)
        m.insert(0, "fold", fp.fold)
        self.metrics.append(m)
        self.frames[fp.fold] = int(fp.prob.shape[0])
        self.probs.append(fp.prob)
        self.labels.append(fp.label)
        if fp.attention is not None:
            self.attention.append(mean_attention(fp.attention, _att_mask(fp)))
        if fp.selected is not None:
            self.selected[fp.fold] = fp.selected

    def pooled(self, per_fold: pd.DataFrame, have: list[int]) -> pd.DataFrame:
        """Metrics on the concatenated predictions, with the per-fold means beside them."""
        pooled = au_metrics(np.concatenate(self.probs), np.concatenate(self.labels),
                            self.run.aus, threshold=self.threshold)
        for col in _FOLD_MEAN:
            pooled[f"{col}_fold_mean"] = (
                _fold_mean(per_fold, col).reindex(pooled.index).to_numpy())
        pooled["folds"] = join(have)
        pooled["pooling"] = "concatenated predictions"
        return pooled

    def attention_frame(self, n_folds: int) -> pd.DataFrame | None:
        """AU x P1..P9, mean over folds; None unless every evaluated fold has attention."""
        atts = self.attention
        if not atts or len(atts) != n_folds:
            return None
        mean = np.nanmean(np.stack(atts), axis=0) if len(atts) > 1 else atts[0]
        aus = self.run.aus
        rows = [au_name(a) for a in aus] if mean.shape[0] == len(aus) else ["all"]
        return pd.DataFrame(mean, index=pd.Index(rows, name="au"),
                            columns=patch_columns(mean.shape[1]))


def _fold_mean(per_fold: pd.DataFrame, col: str) -> pd.Series:
    """Mean over folds of ``col`` per AU row name, skipping folds where it is NaN."""
    return per_fold.groupby("name", sort=False)[col].mean()


def _att_mask(fp: FoldPredictions) -> np.ndarray | None:
    """Average attention over the frames where that AU was coded (the frames it is tested on)."""
    att = fp.attention
    if att is None or att.ndim != 3 or att.shape[1] != fp.label.shape[1]:
        return None  # shared attention: all test frames
    return fp.label >= 0


def write_eval(res: EvalResult) -> dict[str, Path]:
    """Write the CSVs, ``tables.md`` and ``summary.json`` under ``RUN/eval/``."""
    out = res.run.path / "eval"
    files = {
        "metrics_per_fold": out / "metrics_per_fold.csv",
        "metrics_pooled": out / "metrics_pooled.csv",
        "tables": out / "tables.md",
        "summary": out / "summary.json",
    }
    atomic_write_text(files["metrics_per_fold"], csv_text(res.per_fold, index=False))
    atomic_write_text(files["metrics_pooled"], csv_text(res.pooled, index=False))
    if res.attention is not None:
        files["attention_mean"] = out / "attention_mean.csv"
        atomic_write_text(files["attention_mean"], csv_text(res.attention))
    else:
        stale = out / "attention_mean.csv"
        if stale.exists():
            stale.unlink()
    atomic_write_text(files["tables"], res.markdown)
    atomic_write_json(files["summary"], _summary(res))
    return files


def _summary(res: EvalResult) -> dict[str, Any]:
    avg = res.pooled.loc["Avg"]
    per = {}
    for f in res.folds:
        fa = res.fold(f).loc["Avg"]
        per[str(f)] = {"f1": json_number(fa["f1"]), "auc": json_number(fa["auc"]),
                       "frames": res.frames[f]}
    return {
        "run": str(res.run.path),
        "model": res.run.model,
        "patch": res.run.patch,
        "dataset": res.run.dataset,
        "aus": list(res.run.aus),
        "threshold": res.threshold,
        "folds_evaluated": list(res.folds),
        "folds_missing": list(res.missing_folds),
        "pooling": res.pooling,
        "pooled": {"f1": json_number(avg["f1"]), "auc": json_number(avg["auc"])},
        "fold_mean": {"f1": json_number(avg["f1_fold_mean"]),
                      "auc": json_number(avg["auc_fold_mean"])},
        "per_fold": per,
        "selected": {str(k): v for k, v in res.selected.items()},
    }


__all__ = ["evaluate_run", "write_eval"]
