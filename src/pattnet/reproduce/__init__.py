"""``pattnet reproduce``: the paper's experiment grid (Table 3 and pattnet's multi-label model)
in one command, resumable, spread over the GPUs, ending in the report beside the paper's numbers.
"""

from __future__ import annotations

from pattnet.reproduce.grid import GRID, Experiment, select
from pattnet.reproduce.run import PLAN_FILE, REPORT_DIR, Plan, estimate, plan, reproduce

__all__ = ["GRID", "PLAN_FILE", "REPORT_DIR", "Experiment", "Plan", "estimate", "plan",
           "reproduce", "select"]
