"""The markdown of one run's evaluation: the paper's Tables 1 and 2 with this run's rows added.

Why the paper's rows sit in the same table as ours: the point of an evaluation is the comparison,
and the notes under each table say where it is not like-for-like (another dataset, missing folds,
AUs the paper lacks), so that a reader never compares unequal averages unawares.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from pattnet.constants import au_name
from pattnet.evaluate.cells import join, pct
from pattnet.evaluate.result import EvalResult
from pattnet.evaluate.run import RunInfo
from pattnet.io.tables import markdown_table
from pattnet.paper import (
    AUC_ROWS,
    F1_ROWS,
    LATER_BP4D_F1_AVG,
    PAPER_AUS,
    PAPER_DATASET,
)


def ours_label(run: RunInfo) -> str:
    """The first cell of this run's rows in the paper's tables."""
    return f"ours (this run, {run.label})"


def _rows_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    return markdown_table(pd.DataFrame(list(rows), columns=list(header), dtype=object))


def _paper_table(res: EvalResult, metric: str, paper_rows: Sequence[Any]) -> str:
    aus = list(res.run.aus)
    shared = [a for a in aus if a in PAPER_AUS]
    extra_col = bool(shared) and set(aus) != set(PAPER_AUS)
    header = ["Method"] + [f"AU{a}" for a in aus] + ["Avg"] + (["Avg shared"] if extra_col else [])
    rows = []
    for pr in paper_rows:
        r = [pr.label] + [("–" if pr.get(a) is None else f"{pr.get(a):.1f}") for a in aus]
        r.append(f"{pr.avg:.1f}")
        if extra_col:
            r.append(f"{np.mean([pr.get(a) for a in shared]):.1f}")
        rows.append(r)
    p = res.pooled
    name = ours_label(res.run)
    for suffix, col in ((", pooled", metric), (", fold mean", f"{metric}_fold_mean")):
        if suffix == ", fold mean" and len(res.folds) < 2:
            continue
        r = [name + suffix] + [pct(p.loc[au_name(a), col]) for a in aus]
        r.append(pct(p.loc["Avg", col]))
        if extra_col:
            vals = p.loc[[au_name(a) for a in shared], col].to_numpy(dtype=float)
            r.append(pct(np.nanmean(vals) if not np.isnan(vals).all() else np.nan))
        rows.append(r)
    return _rows_table(header, rows)


def _context_notes(res: EvalResult) -> list[str]:
    run, notes = res.run, []
    notes.append(f"Values in %, threshold {res.threshold:g}. {res.pooling[0].upper()}"
                 f"{res.pooling[1:]}.")
    if res.missing_folds:
        notes.append(f"Only folds {join(res.folds)} have predictions; fold(s) "
                     f"{join(res.missing_folds)} are missing, so this is not the paper's full "
                     "3-fold protocol.")
    if run.dataset != PAPER_DATASET:
        notes.append(f"The paper reports BP4D only; this run is on {run.dataset or 'an unnamed'} "
                     "data, so the paper's rows are context, not a like-for-like comparison.")
    lacking = [a for a in run.aus if a not in PAPER_AUS]
    if lacking:
        notes.append(f"{join(f'AU{a}' for a in lacking)}: not in the paper, ours only.")
    if set(run.aus) != set(PAPER_AUS):
        shared = [a for a in run.aus if a in PAPER_AUS]
        s = (f"The paper's Avg is over its {len(PAPER_AUS)} AUs, ours over this run's "
             f"{len(run.aus)}")
        s += (f"; 'Avg shared' averages both over the {len(shared)} AUs they share."
              if shared else "; the two share no AU.")
        notes.append(s)
    undefined = [f"{n}: {t}" for n, t in zip(res.pooled["name"], res.pooled["note"], strict=True)
                 if t]
    if undefined:
        notes.append("Undefined (n/a) or partial: " + "; ".join(undefined) + ".")
    return notes


def _heading(res: EvalResult) -> list[str]:
    run = res.run
    out = [f"# Evaluation of {run.path.name}", ""]
    out.append(f"- model: {run.label}; dataset: {run.dataset or 'unknown'}; "
               f"AUs: {join(run.aus)}")
    out.append(f"- folds evaluated: {join(res.folds)}"
               + (f" (missing: {join(res.missing_folds)})" if res.missing_folds else ""))
    out.append(f"- threshold: {res.threshold:g}")
    out.append(f"- {res.pooling}")
    for f, sel in sorted(res.selected.items()):
        val = sel.get("value")
        val_s = f"{val:.3f}" if isinstance(val, int | float) else str(val)
        out.append(f"- fold {f}: epoch {sel.get('epoch')} selected by "
                   f"{sel.get('criterion', '?')} = {val_s}")
    return out


def _paper_sections(res: EvalResult) -> list[str]:
    notes = _context_notes(res)
    out = ["", "## Table 1: F1 (%)", "", _paper_table(res, "f1", F1_ROWS), ""]
    out += [f"- {n}" for n in notes]
    out.append("- Later published BP4D F1 averages, same protocol (context): "
               + ", ".join(f"{k} {v:.1f}" for k, v in LATER_BP4D_F1_AVG.items()) + ".")
    out += ["", "## Table 2: AUC (%)", "", _paper_table(res, "auc", AUC_ROWS), ""]
    out += [f"- {n}" for n in notes[:1]]
    return out


def _per_fold_section(res: EvalResult) -> list[str]:
    aus = res.run.aus
    header = ["Fold", "Metric", "frames"] + [f"AU{a}" for a in aus] + ["Avg"]
    rows = []
    for f in res.folds:
        m = res.fold(f)
        for metric in ("f1", "auc"):
            rows.append([str(f), metric.upper(), str(res.frames[f])]
                        + [pct(m.loc[au_name(a), metric]) for a in aus]
                        + [pct(m.loc["Avg", metric])])
    out = ["", "## Per fold (ours)", "", _rows_table(header, rows), ""]
    fold_notes = [f"fold {f} {n}: {t}" for f in res.folds
                  for n, t in zip(res.fold(f)["name"], res.fold(f)["note"], strict=True) if t]
    return out + [f"- {n}" for n in fold_notes]


def _attention_section(att: pd.DataFrame) -> list[str]:
    return ["", "## Mean attention (Figure 4 data)", "",
            "Weights averaged over the coded test frames of each fold, then over folds.", "",
            markdown_table(att, index_label="AU", cell=lambda v: f"{v:.2f}")]


def tables_markdown(res: EvalResult) -> str:
    """Tables 1 and 2 of the paper with this run's row added, per-fold detail and attention."""
    out = _heading(res) + _paper_sections(res) + _per_fold_section(res)
    if res.attention is not None:
        out += _attention_section(res.attention)
    return "\n".join(out).rstrip() + "\n"


__all__ = ["ours_label", "tables_markdown"]
