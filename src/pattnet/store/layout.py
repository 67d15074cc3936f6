"""Where a patch store keeps what: format name and version, frame-table columns, chunk file names.

Why one module: the reader, the writer, the merge and prepare's workers must agree on every
name and size, so they take them from here rather than spelling them out each.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pattnet.constants import HOLISTIC_SHAPE, PATCH_SHAPE, au_name

FORMAT = "pattnet-store"
VERSION = 1
#: The store's description (format, version, AUs, chunk list) and its frame table.
META_FILE = "store.json"
TABLE_FILE = "frames.csv"
CHUNKS_DIR = "chunks"
#: Columns every frame table has before its AU columns.
META_COLUMNS = (
    "subject",
    "session",
    "frame",
    "success",
    "confidence",
    "pitch",
    "yaw",
    "roll",
    "visible_fraction",
)
#: The files of one chunk: ``chunks/<name>.patches.u8``, ``.holistic.u8`` and ``.csv``.
CHUNK_KINDS = ("patches", "holistic", "csv")
#: The array files of a chunk and the shape of one frame in each.
ARRAY_SHAPES: dict[str, tuple[int, ...]] = {"patches": PATCH_SHAPE, "holistic": HOLISTIC_SHAPE}


def au_columns(aus: Sequence[int]) -> list[str]:
    return [au_name(a) for a in aus]


def chunk_path(store: str | Path, name: str, kind: str) -> Path:
    """Path of one file of chunk ``name`` (``kind`` in :data:`CHUNK_KINDS`)."""
    suffix = ".csv" if kind == "csv" else f".{kind}.u8"
    return Path(store) / CHUNKS_DIR / f"{name}{suffix}"


def array_bytes(kind: str, n: int) -> int:
    """Size of a chunk's ``kind`` array file holding ``n`` frames: how a truncated file shows."""
    return int(n) * int(np.prod(ARRAY_SHAPES[kind]))


def is_store(path: str | Path) -> bool:
    """Whether ``path`` is a patch store (complete or not) rather than, say, a dataset root."""
    return (Path(path) / META_FILE).is_file()
