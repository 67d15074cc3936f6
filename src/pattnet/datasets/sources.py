"""Where a labels table comes from: a patch store's frame table, or a raw dataset root's label files.

Why the store is read here from its files and not through :mod:`pattnet.store`: datasets sits
below store in the layering, and statistics must also work on a store whose preparation is
still running, which the store's reader rightly refuses. Only ``store.json`` and ``frames.csv``
are read, never the arrays.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pattnet.datasets.registry import detect_dataset, get_adapter
from pattnet.errors import PattnetError, StoreError

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


def is_store(path: str | Path) -> bool:
    return (Path(path) / "store.json").is_file()


def read_store_labels(path: str | Path, registered_only: bool = True) -> Labels:
    """The frame table of a patch store. Reads only ``store.json`` and ``frames.csv``, so it
    also works on a store whose preparation is still running.

    ``registered_only`` keeps the frames training can use (``success`` true), which is what the
    fold weights must describe."""
    path = Path(path)
    meta = _read_meta(path / "store.json")
    frames_path = path / "frames.csv"
    table = _read_frame_table(frames_path)
    cols = au_columns(table)
    notes = []
    if not meta.get("complete", True):
        notes.append("the store is incomplete (prepare has not finished); counts cover the "
                     "frames written so far")
    if registered_only and "success" in table.columns:
        ok = table["success"].astype(str).str.lower().isin(("1", "true", "1.0"))
        if (~ok).any():
            notes.append(f"{int((~ok).sum())} frame(s) whose registration failed are left out "
                         "(training never sees them; --all-frames counts them)")
        table = table[ok].reset_index(drop=True)
    ds = meta.get("dataset")
    return Labels(table[["subject", "session", "frame", *cols]], "store",
                  str(ds) if ds else None, notes)


def _read_meta(meta_path: Path) -> dict[str, Any]:
    try:
        return json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise StoreError(f"{meta_path}: unreadable store.json ({exc})") from exc


def _read_frame_table(frames_path: Path) -> pd.DataFrame:
    """``frames.csv`` with its key and AU columns checked and every label 1, 0 or -1."""
    if not frames_path.is_file():
        raise StoreError(f"{frames_path}: frame table missing")
    try:
        table = pd.read_csv(frames_path, dtype={"subject": str, "session": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise StoreError(f"{frames_path}: unreadable frame table ({exc})") from exc
    missing = [c for c in ("subject", "session", "frame") if c not in table.columns]
    cols = au_columns(table)
    if missing or not cols:
        raise StoreError(f"{frames_path}: not a frame table (missing "
                         f"{', '.join(missing) or 'AU columns'})")
    vals = table[cols].to_numpy()
    bad = ~np.isin(vals, (-1, 0, 1))
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise StoreError(f"{frames_path}: line {r + 2}: {cols[c]} = {vals[r, c]!r}; labels must "
                         "be 1, 0 or -1")
    return table


def load_labels(
    path: str | Path,
    dataset: str | None = None,
    registered_only: bool = True,
    **adapter_opts: Any,
) -> Labels:
    """Labels of a patch store (detected by ``store.json``) or of a raw dataset root through
    its adapter (``dataset`` or the layout decides which)."""
    path = Path(path).expanduser()
    if path.is_dir() and is_store(path):
        given = sorted(k for k, v in adapter_opts.items() if v is not None)
        if given:
            raise PattnetError(
                f"{path} is a patch store, whose labels are already fixed; "
                f"{', '.join(given)} applies to a dataset root only"
            )
        labels = read_store_labels(path, registered_only)
        if dataset is not None:
            labels.dataset = dataset
        return labels
    name = dataset or detect_dataset(path)
    adapter = get_adapter(name, path, **adapter_opts)
    table = adapter.labels_table()
    return Labels(table, name, name, [], [str(p) for p in adapter.problems])
