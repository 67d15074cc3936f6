"""Several runs side by side, as the paper's Table 3: pooled F1 per AU, one column per run.

Why it evaluates without writing: a comparison reads runs that may be shared or on a read-only
disk, and must never change what ``pattnet evaluate`` left in them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pattnet.constants import au_name
from pattnet.errors import PattnetError
from pattnet.evaluate.cells import csv_text, join, pct
from pattnet.evaluate.evaluation import evaluate_run
from pattnet.evaluate.run import RunInfo, find_folds, model_order_key
from pattnet.io.atomic import atomic_write_text
from pattnet.io.tables import markdown_table
from pattnet.paper import BEST_SINGLE_PATCH, F1_PATTNET


@dataclass
class Comparison:
    """F1 of several runs per AU in Table 3's layout (rows AUs, columns runs)."""

    f1: pd.DataFrame  # index AU names + "Avg", columns run labels, fractions
    runs: dict[str, RunInfo]
    markdown: str

    def to_csv(self) -> str:
        return csv_text(self.f1, index_label="au")

    def write(self, out_dir: str | Path, stem: str = "table3") -> dict[str, Path]:
        """Write ``<stem>.csv`` and ``<stem>.md`` into ``out_dir`` atomically."""
        out = Path(out_dir)
        files = {"csv": out / f"{stem}.csv", "markdown": out / f"{stem}.md"}
        atomic_write_text(files["csv"], self.to_csv())
        atomic_write_text(files["markdown"], self.markdown)
        return files


def compare_runs(
    runs: Mapping[str, str | Path], threshold: float | None = None
) -> Comparison:
    """Pooled F1 per AU of several runs side by side, as the paper's Table 3.

    ``runs`` maps a column label to a run directory. Columns are ordered as in the paper:
    single patches P1..P9, holistic, softmax attention, sigmoid attention (PAttNet), then
    anything else; the paper's best single patch per AU and its PAttNet F1 are added for
    reference, and our best single patch per AU is set in bold.
    """
    if not runs:
        raise PattnetError("no runs to compare")
    infos: dict[str, RunInfo] = {}
    cols: dict[str, pd.Series] = {}
    for label, d in runs.items():
        res = evaluate_run(d, threshold=threshold, write=False)
        infos[label] = res.run
        cols[label] = res.pooled["f1"]
    order = sorted(infos, key=lambda k: model_order_key(infos[k]))
    aus = sorted({a for r in infos.values() for a in r.aus})
    index = [au_name(a) for a in aus] + ["Avg"]
    f1 = pd.DataFrame({k: cols[k].reindex(index) for k in order}, index=index)
    ordered = {k: infos[k] for k in order}
    return Comparison(f1=f1, runs=ordered, markdown=_markdown(f1, ordered, aus))


def _best_patch(f1: pd.DataFrame, name: str, patch_cols: Sequence[str]) -> str | None:
    """Our single-patch column with the highest F1 in row ``name``; None if none is defined."""
    if not patch_cols:
        return None
    vals = f1.loc[name, list(patch_cols)].to_numpy(dtype=float)
    if np.isnan(vals).all():
        return None
    return patch_cols[int(np.nanargmax(vals))]


def _paper_cells(au: int | None) -> list[str]:
    """The paper's best single patch and PAttNet F1 for one AU row (``None``: the Avg row)."""
    if au is None:
        return ["–", f"{F1_PATTNET.avg:.1f}"]
    bp = BEST_SINGLE_PATCH.get(au)
    pv = F1_PATTNET.get(au)
    return [f"P{bp[0]} {bp[1]:.1f}" if bp else "–", f"{pv:.1f}" if pv is not None else "–"]


def _table(f1: pd.DataFrame, infos: Mapping[str, RunInfo], aus: list[int]) -> str:
    order = list(infos)
    from pattnet.models import one_patch_model

    patch_cols = [k for k in order if one_patch_model(infos[k].model)]
    header = ["AU"] + order + ["paper best patch", "paper PAttNet"]
    rows = []
    for a, name in zip([*aus, None], f1.index, strict=True):
        best = _best_patch(f1, name, patch_cols)
        cells = []
        for k in order:
            s = pct(f1.loc[name, k]) if (a is None or a in infos[k].aus) else "–"
            cells.append(f"**{s}**" if k == best and s not in ("–", "n/a") else s)
        rows.append([f"AU{a}" if a is not None else "Avg"] + cells + _paper_cells(a))
    return markdown_table(pd.DataFrame(rows, columns=header, dtype=object))


def _markdown(f1: pd.DataFrame, infos: Mapping[str, RunInfo], aus: list[int]) -> str:
    legend = [f"- {k}: {r.label}, dataset {r.dataset or 'unknown'}, "
              f"folds {join(find_folds(r)[0])} ({r.path})" for k, r in infos.items()]
    return "\n".join([
        "## Table 3: F1 (%) per AU, single patches and full models", "",
        _table(f1, infos, aus), "",
        "- Pooled F1 (concatenated test predictions of the evaluated folds); bold = our best "
        "single patch for that AU; the paper's columns are BP4D, 3 folds.",
        "- Each Avg is over that run's own AUs.",
        *legend,
    ]) + "\n"


__all__ = ["Comparison", "compare_runs"]
