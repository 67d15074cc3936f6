"""The report's text: tables as the paper prints them, figure links and notes, in ``report.md``.

Why the notes are part of the text and not a log: a report is shared on its own, so everything
that keeps a comparison honest (another dataset, missing folds, undefined metrics, skipped
figures) must travel inside it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pattnet.io.tables import markdown_table
from pattnet.paper import PAPER_DATASET
from pattnet.report.attention import RunMaps
from pattnet.report.runs import Report, ReportRun

#: What Tables 1 and 2 mean by their numbers, printed under each.
POOLED_NOTE = ("Pooled over folds (each metric computed once on the concatenated test "
               "predictions); percent; paper columns are BP4D, 3 folds, as printed; "
               "Avg = over each column's own AUs.")


def _cell(v: Any) -> str:
    if isinstance(v, str):
        return v or "–"
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{float(v):.1f}"


def frame_markdown(df: pd.DataFrame, first: str = "AU") -> str:
    """A table of percent values as the paper prints them (one decimal, missing as –)."""
    return markdown_table(df, index_label=first, cell=_cell)


def metric_section(title: str, df: pd.DataFrame) -> str:
    """``table1_f1.md`` / ``table2_auc.md``: one of Tables 1 and 2 with what its numbers mean."""
    return f"## {title}\n\n" + frame_markdown(df) + f"\n\n- {POOLED_NOTE}\n"


def _attention_md(df: pd.DataFrame, n: np.ndarray) -> str:
    cells = [["–" if math.isnan(v) else f"{v:.2f}" for v in row] + [str(int(k))]
             for row, k in zip(df.to_numpy(dtype=float), n, strict=True)]
    text = pd.DataFrame(cells, index=df.index, columns=[*map(str, df.columns), "frames"],
                        dtype=object)
    return markdown_table(text, index_label="AU")


def run_notes(runs: Sequence[ReportRun]) -> list[str]:
    """Where a run differs from the paper's protocol, and which of its metrics are undefined."""
    notes = []
    for rr in runs:
        r, res = rr.run, rr.result
        if r.dataset != PAPER_DATASET:
            notes.append(f"{rr.key}: dataset {r.dataset or 'unnamed'}, not BP4D; the paper's "
                         "numbers are context, not a like-for-like comparison.")
        if res.missing_folds or len(res.folds) < 3:
            notes.append(f"{rr.key}: folds {', '.join(map(str, res.folds))} evaluated"
                         + (f" (missing {', '.join(map(str, res.missing_folds))})"
                            if res.missing_folds else "")
                         + "; the paper's protocol is 3 folds.")
        undefined = [f"{n}: {t}" for n, t in zip(res.pooled["name"], res.pooled["note"],
                                                   strict=True) if t]
        if undefined:
            notes.append(f"{rr.key}: " + "; ".join(undefined) + ".")
    return notes


def _fig_md(title: str, paths: Sequence[Path] | None, out: Path) -> list[str]:
    if not paths:
        return []
    png = next((p for p in paths if p.suffix == ".png"), paths[0])
    others = ", ".join(f"[{p.suffix.lstrip('.').upper()}]({p.relative_to(out)})" for p in paths)
    return [f"![{title}]({png.relative_to(out)})", "", f"Files: {others}", ""]


def _images(paths: Sequence[Path]) -> list[Path]:
    """A figure's files without its data CSV."""
    return [p for p in paths if p.suffix != ".csv"]


def _runs_section(rep: Report) -> list[str]:
    lines = ["# PAttNet report", "", "## Runs", ""]
    for rr in rep.runs:
        r, res = rr.run, rr.result
        frames = sum(res.frames.values())
        lines.append(f"- **{rr.key}**: model {r.model}, dataset {r.dataset or 'unknown'}, AUs "
                     f"{', '.join(map(str, r.aus))}, folds {', '.join(map(str, res.folds))} "
                     f"({frames} test frames), threshold {res.threshold:g}; `{r.path}`")
    return lines


def _fig4_section(rep: Report, maps: Mapping[str, RunMaps]) -> list[str]:
    lines = ["## Figure 4: attention maps", ""]
    if not maps:
        return lines + ["Not drawn: no attention run.", ""]
    lines += ["AU rows x patch columns, colour scale fixed to [0, 1]. Mean over the test "
              "frames of each fold, then over folds: first over the frames where the AU is "
              "coded (the paper's Fig. 4), then over those where it is present, because the "
              "attention is strongly conditional on the AU showing.", ""]
    lines += _fig_md("Figure 4", _images(rep.files["fig4_attention"]), rep.out)
    for key, by_frames in maps.items():
        for frames, (df, n) in by_frames.items():
            lines += [f"### {key}, {frames}", "", _attention_md(df, n), ""]
    return lines


def _source_figures(rep: Report, fig2_desc: str, fig3_desc: str) -> list[str]:
    out, files = rep.out, rep.files
    lines = ["## Figure 2: the 9 patches", ""]
    lines += ([f"Source: {fig2_desc}.", ""] + _fig_md("Figure 2", files["fig2_patches"], out)
              if "fig2_patches" in files else ["Not drawn (see notes).", ""])
    lines += ["## Figure 3: AU co-occurrence (Jaccard)", ""]
    lines += ([f"Labels: {fig3_desc}.", ""]
              + _fig_md("Figure 3", _images(files["fig3_cooccurrence"]), out)
              if "fig3_cooccurrence" in files else ["Not drawn (see notes).", ""])
    return lines


def report_markdown(rep: Report, tables: Sequence[str], maps: Mapping[str, RunMaps],
                    fig2_desc: str, fig3_desc: str) -> str:
    """``report.md``: runs, ``tables`` (markdown of Tables 1-3, the empty ones left out),
    the figures with their data, and every note."""
    lines = _runs_section(rep) + [""] + [t for t in tables if t]
    lines += _fig4_section(rep, maps)
    lines += _source_figures(rep, fig2_desc, fig3_desc)
    lines += ["## F1 and AUC per AU: ours vs the paper", ""]
    lines += _fig_md("F1 per AU", rep.files.get("bars_f1"), rep.out)
    lines += _fig_md("AUC per AU", rep.files.get("bars_auc"), rep.out)
    if rep.notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in rep.notes]
    return "\n".join(lines).rstrip() + "\n"


__all__ = ["POOLED_NOTE", "frame_markdown", "metric_section", "report_markdown", "run_notes"]
