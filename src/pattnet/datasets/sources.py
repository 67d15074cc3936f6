"""A labels table and where it came from: a raw dataset root's label files, read by its adapter.

A patch store's labels are read by :func:`pattnet.store.read_frame_labels`; ``pattnet stats``
takes either, as a :class:`Labels`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from pattnet.datasets.registry import detect_dataset, get_adapter

_AU_RE = re.compile(r"AU\d+")


def au_columns(df: pd.DataFrame) -> list[str]:
    """The AU columns of a labels table (``AU01``, ``AU02``, ...), in table order."""
    return [c for c in df.columns if isinstance(c, str) and _AU_RE.fullmatch(c)]


@dataclass
class Labels:
    """A labels table and where it came from."""

    table: pd.DataFrame
    kind: str                        # "store" or the adapter name
    dataset: str | None              # for the published folds (bp4d, disfa) or None: k-fold
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def dataset_labels(path: str | Path, dataset: str | None = None, **adapter_opts: Any) -> Labels:
    """Labels of a raw dataset root, read through its adapter (``dataset`` or the layout decides
    which); every problem the adapter met is kept, so statistics never hide a skipped frame."""
    path = Path(path).expanduser()
    name = dataset or detect_dataset(path)
    adapter = get_adapter(name, path, **adapter_opts)
    table = adapter.labels_table()
    return Labels(table, name, name, [], [str(p) for p in adapter.problems])
