"""Evaluate a training run directory: per-fold and pooled metrics, tables beside the paper's.

Why it reads only the run directory: a run is self-describing (``run.json``, ``foldN/
predictions.npz``), so evaluation can be repeated, re-thresholded or done on another machine
without the patch store or the model. Two summaries over folds are reported because papers
differ in which they mean: *pooled* computes each metric once on the concatenated test
predictions of all folds; *fold mean* averages the per-fold metrics. Both are written, and
every output says which is which.

Layout written under ``RUN/eval/``: ``metrics_per_fold.csv``, ``metrics_pooled.csv``,
``attention_mean.csv`` (when the model has attention), ``tables.md`` and ``summary.json``.
"""

from __future__ import annotations

from pattnet.evaluate.cells import patch_columns
from pattnet.evaluate.compare import Comparison, compare_runs
from pattnet.evaluate.evaluation import evaluate_run, write_eval
from pattnet.evaluate.metrics import au_metrics, f1_thresholds, mean_attention
from pattnet.evaluate.result import EvalResult
from pattnet.evaluate.run import (
    FoldPredictions,
    RunInfo,
    find_folds,
    load_fold,
    model_order_key,
    read_run,
)
from pattnet.evaluate.tables import ours_label, tables_markdown

__all__ = [
    "Comparison",
    "EvalResult",
    "FoldPredictions",
    "RunInfo",
    "au_metrics",
    "f1_thresholds",
    "compare_runs",
    "evaluate_run",
    "find_folds",
    "load_fold",
    "mean_attention",
    "model_order_key",
    "ours_label",
    "patch_columns",
    "read_run",
    "tables_markdown",
    "write_eval",
]
