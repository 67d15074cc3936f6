"""CSV tables written through the csv module, so any field (a source path with a quote, a comma,
a backslash or a newline) reads back unchanged with any CSV reader, pandas included."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from pathlib import Path

from pattnet.io.atomic import atomic_write_text

__all__ = ["write_csv"]


def write_csv(path: str | Path, header: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """Write ``header`` then ``rows`` atomically (``\\n`` line ends, fields quoted only where
    needed), so a reader never sees half a table."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())
