"""``pattnet report``: the paper's Tables 1-3 and Figures 2-4 from one or more run directories.

Why a separate stage from ``evaluate``: ``evaluate`` looks at one run; the paper's results are a
comparison of several (sigmoid vs softmax attention, single patches, holistic), so the report
takes any number of runs, finds out from each ``run.json`` what kind of run it is, and lays them
out side by side with the paper's numbers beside ours. It evaluates each run without writing into
it (``evaluate_run(write=False)``), so a report can be made from runs on a read-only disk or
shared with others.

Everything lands in one output directory: ``report.md`` (all tables, figure links, notes),
``table1_f1.{csv,md}``, ``table2_auc.{csv,md}``, ``table3_ablation.{csv,md}`` (more than one kind
of run), ``fig4_attention.{png,pdf,csv}`` (attention runs), ``fig2_patches.{png,pdf}``,
``fig3_cooccurrence.{png,pdf,csv}`` (when a patch store is at hand) and ``bars_f1``/``bars_auc``
``.{png,pdf}``. Table CSVs are in percent, like the paper; values are *pooled* over folds (each
metric computed once on the concatenated test predictions), the definition ``compare_runs`` uses.
"""

from __future__ import annotations

from pattnet.report.attention import CODED, PRESENT, attention_long, attention_maps
from pattnet.report.build import make_report
from pattnet.report.faces import face_from_image, face_from_store
from pattnet.report.markdown import frame_markdown
from pattnet.report.runs import Report, ReportRun, load_runs
from pattnet.report.tables import metric_table, paper_row_for, table3_frame

__all__ = [
    "CODED",
    "PRESENT",
    "Report",
    "ReportRun",
    "attention_long",
    "attention_maps",
    "face_from_image",
    "face_from_store",
    "frame_markdown",
    "load_runs",
    "make_report",
    "metric_table",
    "paper_row_for",
    "table3_frame",
]
