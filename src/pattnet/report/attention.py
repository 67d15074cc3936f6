"""Figure 4's data: each attention run's mean attention per AU and patch, over two frame sets.

The "present" map exists besides the paper's "coded" map because attention here is strongly
conditional on the AU showing: averaged over all coded frames, where most AUs are absent, the map
mostly shows what the model looks at when nothing is there.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from pattnet.evaluate import FoldPredictions, load_fold, patch_columns
from pattnet.evaluate.metrics import mean_attention
from pattnet.report.runs import ReportRun

#: Attention rows of Figure 4: which test frames each mean is over.
CODED, PRESENT = "coded frames", "AU present"

#: One run's maps: frame set (CODED, PRESENT) -> (AU x P1..P9 means, frames counted per AU).
RunMaps = dict[str, tuple[pd.DataFrame, np.ndarray]]


def _fold_masks(fp: FoldPredictions, aus: Sequence[int]) -> tuple[dict[str, np.ndarray], list[str]]:
    """The frames each map averages over in one fold, and the map's row names."""
    att, lab = fp.attention, fp.label
    if att is not None and att.ndim == 3 and att.shape[1] == lab.shape[1]:
        return {CODED: lab >= 0, PRESENT: lab == 1}, [f"AU{a}" for a in aus]
    # one attention shared by all AUs: rows "all" and "any AU present"
    return {CODED: np.ones(lab.shape[0], bool), PRESENT: (lab == 1).any(axis=1)}, ["all"]


def _mean_over_folds(maps: list[np.ndarray], rows: list[str], counts: Any) -> tuple[pd.DataFrame,
                                                                                   np.ndarray]:
    with warnings.catch_warnings():  # an AU never present in any fold stays NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(np.stack(maps), axis=0)
    frame = pd.DataFrame(mean, index=pd.Index(rows, name="au"), columns=patch_columns(mean.shape[1]))
    return frame, np.asarray(counts).reshape(-1)


def attention_maps(rr: ReportRun) -> RunMaps | None:
    """Mean attention of one run over the coded test frames and over the frames where the AU is
    present, each as ``(AU x P1..P9 frame, frames counted per AU)``; None without attention.

    Means are taken per fold over that fold's frames, then averaged over folds (the paper's
    Fig. 4; the "coded" map equals ``evaluate``'s ``attention``).
    """
    res = rr.result
    if res.attention is None:
        return None
    per: dict[str, list[np.ndarray]] = {CODED: [], PRESENT: []}
    counts: dict[str, Any] = {CODED: 0, PRESENT: 0}
    rows: list[str] = []
    for f in res.folds:
        fp = load_fold(res.run, f)
        if fp.attention is None:
            return None
        masks, rows = _fold_masks(fp, res.run.aus)
        for k, m in masks.items():
            per[k].append(mean_attention(fp.attention, m))
            counts[k] = counts[k] + (m.sum(axis=0) if m.ndim == 2 else np.array([m.sum()]))
        del fp
    return {k: _mean_over_folds(maps, rows, counts[k]) for k, maps in per.items()}


def all_attention_maps(runs: Sequence[ReportRun]) -> dict[str, RunMaps]:
    """Maps of every run with attention, keyed by run, sigmoid runs before softmax ones."""
    def order(rr: ReportRun) -> int:
        from pattnet.models import table_rank

        return table_rank(rr.run.model, "table1")

    maps: dict[str, RunMaps] = {}
    for rr in sorted((rr for rr in runs if rr.result.attention is not None), key=order):
        m = attention_maps(rr)
        if m is not None:
            maps[rr.key] = m
    return maps


def attention_long(maps: Mapping[str, RunMaps], runs: Mapping[str, ReportRun]) -> pd.DataFrame:
    """All maps in one long table: run, model, frames, au, n (frames averaged over), P1..P9."""
    parts = []
    for key, by_frames in maps.items():
        for frames, (df, n) in by_frames.items():
            d = df.reset_index()
            d.insert(0, "frames", "coded" if frames == CODED else "present")
            d.insert(0, "model", runs[key].run.label)
            d.insert(0, "run", key)
            d.insert(4, "n", n.astype(np.int64))
            parts.append(d)
    return pd.concat(parts, ignore_index=True)


__all__ = ["CODED", "PRESENT", "RunMaps", "all_attention_maps",
           "attention_long", "attention_maps"]
