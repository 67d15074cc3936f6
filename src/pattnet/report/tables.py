"""The report's tables as frames in percent: Tables 1 and 2 (ours beside the paper's), Table 3.

Why frames and not markdown: the same numbers go to a CSV (for anyone re-plotting them), to the
bar charts and to the markdown, so they are computed once here and only formatted elsewhere.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from pattnet.constants import au_name
from pattnet.errors import PattnetError
from pattnet.evaluate import RunInfo, compare_runs
from pattnet.paper import (
    AUC_PATTNET,
    AUC_ROWS,
    BEST_SINGLE_PATCH,
    F1_BY_MODEL,
    F1_PATTNET,
    F1_ROWS,
    PAPER_AUS,
    PaperRow,
)
from pattnet.report.runs import ReportRun


def _table1_key(run: RunInfo) -> tuple[int, int]:
    """Column order of Tables 1 and 2 (the registry's): the paper's Table 1 rows (sigmoid,
    softmax, holistic) with our variants beside them."""
    from pattnet.models import table_rank

    return (table_rank(run.model, "table1"), run.patch or 0)


def au_union(runs: Sequence[ReportRun]) -> list[int]:
    """AUs of all runs: the paper's in its order, then the others ascending."""
    have = {a for r in runs for a in r.run.aus}
    return [a for a in PAPER_AUS if a in have] + sorted(have - set(PAPER_AUS))


def paper_row_for(model: str, metric: str) -> PaperRow | None:
    """The paper's row to print beside a run of ``model``. The multi-label variant has the
    paper's sigmoid attention (trained as one network for all AUs), so it sits beside PAttNet."""
    from pattnet.models import list_models, model_facts

    paper = model_facts(model).paper if model in list_models() else None
    if metric == "f1":
        return F1_BY_MODEL.get(paper) if paper else None
    if metric == "auc" and paper == "pattnet":  # the paper gives AUC for PAttNet only
        return AUC_PATTNET
    return None


class _Columns:
    """A metric table's columns in order, each with the AUs its "Avg shared" is over."""

    def __init__(self, aus: list[int], metric: str):
        self.aus, self.metric = aus, metric
        self.values: dict[str, list[float]] = {}
        self.shared_of: dict[str, list[int]] = {}
        self.used: list[PaperRow] = []

    def add_ours(self, rr: ReportRun) -> None:
        p, m = rr.result.pooled, self.metric
        vals = [100.0 * float(p.loc[au_name(a), m]) if a in rr.run.aus else np.nan
                for a in self.aus]
        vals.append(100.0 * float(p.loc["Avg", m]))
        key = f"ours: {rr.key}"
        self.values[key] = vals
        self.shared_of[key] = [a for a in rr.run.aus if a in PAPER_AUS]

    def add_paper(self, pr: PaperRow, over: Sequence[int]) -> None:
        col = [np.nan if (v := pr.get(a)) is None else float(v) for a in self.aus]
        col.append(float(pr.avg))
        self.values[pr.label] = col
        self.shared_of[pr.label] = [a for a in over if a in PAPER_AUS]
        self.used.append(pr)

    def frame(self) -> pd.DataFrame:
        index = [f"AU{a}" for a in self.aus] + ["Avg"]
        df = pd.DataFrame(self.values, index=pd.Index(index, name="au"), dtype=float)
        if set(self.aus) != set(PAPER_AUS) and any(self.shared_of.values()):
            with warnings.catch_warnings():  # a column with no shared AU stays NaN
                warnings.simplefilter("ignore", RuntimeWarning)
                df.loc["Avg shared"] = [
                    float(np.nanmean(df.loc[[f"AU{a}" for a in self.shared_of[c]], c]))
                    if self.shared_of[c] else np.nan for c in df.columns]
        return df


def metric_table(runs: Sequence[ReportRun], metric: str) -> pd.DataFrame:
    """Per-AU ``metric`` ("f1" or "auc") in percent: AU rows, one column per run ("ours: ..."),
    each followed by the paper's matching column; paper rows matching no run come last.
    Columns follow the paper's Table 1 order: sigmoid attention, softmax, holistic, patches.

    Rows: the AUs of the runs, then "Avg" (each run over its own AUs, the paper's as printed,
    over its 12) and, when the AUs are not exactly the paper's, "Avg shared": each run over the
    AUs it shares with the paper, and each paper column over the same AUs as the run beside it
    (over all shown AUs when it stands alone), so that unequal AU sets never pass for a
    like-for-like average.
    """
    if metric not in ("f1", "auc"):
        raise PattnetError(f"metric must be f1 or auc, got {metric!r}")
    aus = au_union(runs)
    cols = _Columns(aus, metric)
    for rr in sorted(runs, key=lambda r: _table1_key(r.run)):
        cols.add_ours(rr)
        pr = paper_row_for(rr.run.model, metric)
        if pr is not None and pr not in cols.used:
            cols.add_paper(pr, rr.run.aus)
    for pr in F1_ROWS if metric == "f1" else AUC_ROWS:
        if pr not in cols.used:
            cols.add_paper(pr, aus)
    return cols.frame()


def table3_frame(runs: Sequence[ReportRun], threshold: float | None) -> tuple[pd.DataFrame, str]:
    """Table 3 (F1 of every run side by side, AU rows) in percent, with the paper's best
    single patch and PAttNet columns, and its markdown from :func:`compare_runs`."""
    comp = compare_runs({rr.key: rr.run.path for rr in runs}, threshold=threshold)
    df = 100.0 * comp.f1
    df.index = pd.Index([i if i == "Avg" else f"AU{int(i[2:])}" for i in df.index], name="au")
    best_p, best_v, paper = [], [], []
    for name in df.index:
        a = None if name == "Avg" else int(name[2:])
        bp = BEST_SINGLE_PATCH.get(a) if a is not None else None
        best_p.append(f"P{bp[0]}" if bp else "")
        best_v.append(bp[1] if bp else np.nan)
        pv = F1_PATTNET.avg if a is None else F1_PATTNET.get(a)
        paper.append(np.nan if pv is None else pv)
    df["paper best patch"] = best_p
    df["paper best patch F1"] = best_v
    df["paper PAttNet"] = paper
    return df, comp.markdown


__all__ = ["au_union", "metric_table", "paper_row_for", "table3_frame"]
