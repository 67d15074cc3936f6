"""The runs a report is made of: each evaluated once, read-only, under a unique column label.

Why labels are made here: every table and figure names a run by the same key, so two runs of the
same kind (say two seeds of PAttNet) must get distinct keys before anything is drawn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pattnet.errors import PattnetError
from pattnet.evaluate import EvalResult, RunInfo, evaluate_run, model_order_key


@dataclass
class ReportRun:
    """One run in the report: its unique column label and its evaluation."""

    key: str
    result: EvalResult

    @property
    def run(self) -> RunInfo:
        return self.result.run


@dataclass
class Report:
    """What :func:`make_report` computed and wrote; tables are in percent."""

    out: Path
    runs: list[ReportRun]
    tables: dict[str, pd.DataFrame]  # "table1_f1", "table2_auc", "table3_ablation"
    attention: pd.DataFrame | None  # long: run, model, frames, au, n, P1..P9
    files: dict[str, list[Path]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    markdown: str = ""


def load_runs(run_dirs: Sequence[str | Path], threshold: float | None = None) -> list[ReportRun]:
    """Evaluate each run (without writing into it), in Table 3's order: single patches,
    holistic, softmax, sigmoid, then anything else. A directory given twice counts once; two
    runs of the same kind are told apart by their directory name."""
    if not run_dirs:
        raise PattnetError("no run directories given")
    seen: set[Path] = set()
    results: list[EvalResult] = []
    for d in run_dirs:
        p = Path(d)
        key = p.resolve() if p.exists() else p
        if key in seen:
            continue
        seen.add(key)
        results.append(evaluate_run(p, threshold=threshold, write=False))
    results.sort(key=lambda r: model_order_key(r.run))
    labels = [r.run.label for r in results]
    runs: list[ReportRun] = []
    for r, label in zip(results, labels, strict=True):
        name = label if labels.count(label) == 1 else f"{label} ({r.run.path.name})"
        if any(x.key == name for x in runs):
            name = f"{name} [{r.run.path}]"
        runs.append(ReportRun(name, r))
    return runs


__all__ = ["Report", "ReportRun", "load_runs"]
