"""A fold's per-epoch record: ``history.csv``, and the epoch chosen from it for testing.

The epoch is chosen on validation subjects drawn from the training fold, never on the test
subjects, so the test predictions stay an honest estimate.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pattnet.io.atomic import atomic_write_text


def write_history(path: Path, history: Sequence[dict[str, Any]]) -> None:
    """One row per epoch, the columns in order of first appearance (a cell is empty where an
    epoch lacks that column, e.g. validation metrics on a run without validation subjects)."""
    keys: list[str] = []
    for r in history:
        keys += [k for k in r if k not in keys]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(keys)
    # str() of each value, so a numpy scalar reads as a plain number (csv writes repr() of floats)
    writer.writerows([str(r[k]) if k in r else "" for k in keys] for r in history)
    atomic_write_text(path, buf.getvalue())


def select_epoch(history: Sequence[dict[str, Any]], metric: str) -> dict[str, Any]:
    """The epoch with the best finite ``val_<metric>`` (lowest loss, highest f1/auc); the last
    epoch when no epoch was validated."""
    key = f"val_{metric}"
    rows = [r for r in history if key in r and np.isfinite(r[key])]
    if not rows:
        return {"epoch": history[-1]["epoch"], "criterion": "last epoch (no validation)",
                "value": None}
    best = (min if metric == "loss" else max)(rows, key=lambda r: r[key])
    return {"epoch": int(best["epoch"]), "criterion": key, "value": float(best[key]),
            "note": "selected on validation subjects drawn from the training fold"}


__all__ = ["select_epoch", "write_history"]
