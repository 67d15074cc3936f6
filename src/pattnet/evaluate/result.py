"""What an evaluation of one run holds, shared by the code that computes, tabulates and writes it.

Why a module of its own: the tables and the files both read an :class:`EvalResult`, and the
evaluation builds one; keeping the type apart lets each of them import it without importing
the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from pattnet.evaluate.cells import join
from pattnet.evaluate.run import RunInfo


@dataclass
class EvalResult:
    """Everything ``evaluate_run`` computed; metric values are fractions in [0, 1]."""

    run: RunInfo
    threshold: float
    folds: tuple[int, ...]  # folds evaluated
    missing_folds: tuple[int, ...]  # declared/present folds without predictions
    per_fold: pd.DataFrame  # au_metrics rows with a leading "fold" column
    pooled: pd.DataFrame  # au_metrics on concatenated folds + *_fold_mean columns
    attention: pd.DataFrame | None  # AU x P1..P9, mean over frames then folds
    selected: dict[int, dict[str, Any]]
    frames: dict[int, int]  # test frames per fold
    markdown: str = ""
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def pooling(self) -> str:
        """The sentence that says what "pooled" means for this result."""
        return (f"pooled = metrics on the concatenated test predictions of folds "
                f"{join(self.folds)}; fold mean = mean of the per-fold values")

    def fold(self, fold: int) -> pd.DataFrame:
        """Per-AU metrics of one fold."""
        df = self.per_fold[self.per_fold["fold"] == fold].drop(columns="fold")
        df.index = pd.Index(df["name"].tolist())
        return df


__all__ = ["EvalResult"]
