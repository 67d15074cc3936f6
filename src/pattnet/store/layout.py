"""Where a patch store keeps what: format name and version, frame-table columns, chunk file names.

Why one module: the reader, the writer, the merge and prepare's workers must agree on every
name and size, so they take them from here rather than spelling them out each.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pattnet.constants import HOLISTIC_SHAPE, MESH_SHAPE, PATCH_SHAPE, au_name

FORMAT = "pattnet-store"
#: 1: patches and holistic faces; 2: also each face's canonical mesh (``mesh``).
VERSION = 2
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
#: The array files of a chunk: the shape and type of one frame in each. ``mesh`` is NaN for a
#: frame that was not registered (its patches are zeros).
ARRAY_SHAPES: dict[str, tuple[int, ...]] = {"patches": PATCH_SHAPE, "holistic": HOLISTIC_SHAPE,
                                           "mesh": MESH_SHAPE}
ARRAY_DTYPES: dict[str, np.dtype] = {"patches": np.dtype(np.uint8),
                                     "holistic": np.dtype(np.uint8),
                                     "mesh": np.dtype("<f4")}
#: The files of a chunk: ``chunks/<name>.patches.u8``, ``.holistic.u8``, ``.mesh.f4``, ``.csv``.
CHUNK_KINDS = ("patches", "holistic", "mesh", "csv")


def array_kinds(version: int) -> tuple[str, ...]:
    """The arrays a store of format ``version`` holds (version 1 predates the mesh)."""
    return ("patches", "holistic") if version < 2 else ("patches", "holistic", "mesh")


def store_kinds(meta: dict[str, Any]) -> tuple[str, ...]:
    """The arrays a store holds: the ``arrays`` its store.json lists (a store of meshes alone,
    written by ``pattnet synth --meshes``, has no pixels to keep), else all of its format's."""
    listed = meta.get("arrays")
    if listed is None:
        return array_kinds(int(meta.get("version", 1)))
    return tuple(k for k in ARRAY_SHAPES if k in listed)


def check_kinds(kinds: Sequence[str]) -> tuple[str, ...]:
    """``kinds`` in the store's order, each a known array and at least one."""
    unknown = [k for k in kinds if k not in ARRAY_SHAPES]
    if unknown or not kinds:
        raise ValueError(f"a store holds one or more of {', '.join(ARRAY_SHAPES)}, not "
                         f"{', '.join(map(str, unknown)) or 'none'}")
    return tuple(k for k in ARRAY_SHAPES if k in kinds)


def au_columns(aus: Sequence[int]) -> list[str]:
    return [au_name(a) for a in aus]


def chunk_path(store: str | Path, name: str, kind: str) -> Path:
    """Path of one file of chunk ``name`` (``kind`` in :data:`CHUNK_KINDS`)."""
    if kind == "csv":
        suffix = ".csv"
    else:
        dt = ARRAY_DTYPES[kind]
        suffix = f".{kind}.{dt.kind}{dt.itemsize}" if dt.kind == "f" else f".{kind}.u8"
    return Path(store) / CHUNKS_DIR / f"{name}{suffix}"


def array_bytes(kind: str, n: int) -> int:
    """Size of a chunk's ``kind`` array file holding ``n`` frames: how a truncated file shows."""
    return int(n) * int(np.prod(ARRAY_SHAPES[kind])) * ARRAY_DTYPES[kind].itemsize


def is_store(path: str | Path) -> bool:
    """Whether ``path`` is a patch store (complete or not) rather than, say, a dataset root."""
    return (Path(path) / META_FILE).is_file()
