"""Markdown tables: the one writer every stage's ``.md`` output goes through.

Why one writer: tables in ``tables.md``, ``report.md`` and the CLI's output must pad and align
the same way, so a reader (or a test) parses them all with one rule. Cells are written as
text exactly as the caller formatted them (``disable_numparse``): "46.1" stays "46.1", never
re-rounded or re-aligned as a number, because the paper's one decimal is the point of the table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd


def markdown_table(
    frame: pd.DataFrame,
    *,
    index_label: str | None = None,
    cell: Callable[[Any], str] = str,
) -> str:
    """``frame`` as a GitHub-style pipe table, header = its column names.

    ``cell`` turns each value into its text (default ``str``: the frame already holds text).
    With ``index_label`` the index becomes the first column under that header, written with
    ``str``, because row names (AU labels, method names) are never numbers to format.
    """
    header = [str(c) for c in frame.columns]
    rows = [[cell(v) for v in values] for values in frame.itertuples(index=False, name=None)]
    if index_label is not None:
        header = [index_label, *header]
        rows = [[str(name), *r] for name, r in zip(frame.index, rows, strict=True)]
    text = pd.DataFrame(rows, columns=range(len(header)), dtype=object)
    return text.to_markdown(index=False, headers=header, tablefmt="pipe", disable_numparse=True)


__all__ = ["markdown_table"]
