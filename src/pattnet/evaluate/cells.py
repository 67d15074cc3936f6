"""How evaluate writes one value: percent as the paper prints it, JSON-safe floats, CSV floats.

Why one place: the per-run tables, Table 3 and ``summary.json`` must agree on how a fraction
becomes text (one decimal, undefined as "n/a", NaN as JSON null), or two files of the same run
would show different numbers for the same metric.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import pandas as pd

from pattnet.constants import N_PATCHES, PATCH_IDS

#: CSV float format: enough digits to recompute any table, none that are noise.
CSV_FLOAT_FORMAT = "%.6g"


def join(xs: Iterable[Any]) -> str:
    """``1, 2, 3``: how lists of folds and AUs read in prose."""
    return ", ".join(str(x) for x in xs)


def json_number(x: Any) -> float | None:
    """JSON-safe float (NaN -> null)."""
    if x is None or x is pd.NA:
        return None
    x = float(x)
    return None if math.isnan(x) else x


def pct(x: Any) -> str:
    """A fraction as the paper prints it: percent with one decimal; undefined -> n/a."""
    v = json_number(x)
    return "n/a" if v is None else f"{100.0 * v:.1f}"


def csv_text(df: pd.DataFrame, **kw: Any) -> str:
    """``df`` as CSV text with evaluate's float format."""
    return df.to_csv(float_format=CSV_FLOAT_FORMAT, **kw)


def patch_columns(n: int) -> list[str]:
    """Column names of ``n`` attention weights: the paper's P1..P9, numbered on past them."""
    return list(PATCH_IDS[:n]) if n <= N_PATCHES else [f"P{i + 1}" for i in range(n)]


__all__ = ["CSV_FLOAT_FORMAT", "csv_text", "join", "json_number", "patch_columns", "pct"]
