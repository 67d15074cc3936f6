"""Reading a patch store: checked against its own description, arrays memory-mapped on demand.

Why check everything on open: a store is written over hours and may be copied between machines;
a missing column, a truncated chunk or a frame table that no longer matches ``store.json`` must
fail here with the file named, not as wrong labels or a crash mid-training.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pattnet.errors import StoreError
from pattnet.store.layout import (
    ARRAY_DTYPES,
    ARRAY_SHAPES,
    FORMAT,
    META_COLUMNS,
    META_FILE,
    TABLE_FILE,
    VERSION,
    array_bytes,
    au_columns,
    chunk_path,
    store_kinds,
)


def read_meta(path: str | Path) -> dict[str, Any]:
    """A store's ``store.json`` (complete or not), refused unless this code reads its version."""
    path = Path(path)
    meta_path = path / META_FILE
    if not path.exists():
        raise StoreError(f"{path}: store not found")
    if not path.is_dir():
        raise StoreError(f"{path}: is a file, not a store (a store is the folder 'pattnet "
                         "prepare --out' wrote)")
    if not meta_path.is_file():
        raise StoreError(f"{path}: not a pattnet store ({META_FILE} missing)")
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise StoreError(f"{meta_path}: corrupt {META_FILE} ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        fmt = meta.get("format") if isinstance(meta, dict) else None
        raise StoreError(f"{meta_path}: not a pattnet store (format={fmt!r})")
    if int(meta.get("version", 0)) > VERSION:
        raise StoreError(
            f"{meta_path}: store version {meta.get('version')} is newer than this pattnet "
            f"reads ({VERSION}); upgrade pattnet"
        )
    return meta


def read_frame_table(path: Path, aus: Sequence[int]) -> pd.DataFrame:
    """A frame table (the store's or one chunk's): its columns must be the store's and every
    label 1, 0 or -1, so that a table edited by hand cannot turn into wrong labels."""
    if not path.is_file():
        raise StoreError(f"{path}: frame table missing")
    try:
        table = pd.read_csv(path, dtype={"subject": str, "session": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise StoreError(f"{path}: unreadable frame table ({exc})") from exc
    cols = au_columns(aus)
    missing = [c for c in (*META_COLUMNS, *cols) if c not in table.columns]
    if missing:
        raise StoreError(f"{path}: columns {', '.join(missing)} missing; the frame table does not "
                         f"match {META_FILE} (AUs {list(aus)})")
    extra_aus = [c for c in table.columns if c.startswith("AU") and c not in cols]
    if extra_aus:
        raise StoreError(f"{path}: AU columns {', '.join(extra_aus)} are not in {META_FILE}'s AU "
                         f"list {list(aus)}; the frame table does not match the arrays")
    vals = table[cols].to_numpy()
    bad = ~np.isin(vals, (-1, 0, 1))
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise StoreError(f"{path}: line {r + 2}: {cols[c]} = {vals[r, c]!r}; labels must be 1, 0 "
                         "or -1")
    return table


@dataclass
class FrameLabels:
    """What a store says about its frames' labels, readable while ``prepare`` still runs."""

    table: pd.DataFrame  # subject, session, frame and the AU columns
    dataset: str | None
    notes: list[str] = field(default_factory=list)


def read_frame_labels(path: str | Path, registered_only: bool = True) -> FrameLabels:
    """The labels of a store's frames, without touching its arrays.

    Works on a store whose preparation is still running (the chunks recorded so far are
    counted, and a note says so), because label statistics are what a user checks while a
    long prepare runs. ``registered_only`` keeps the frames training can use (registration
    succeeded), which is what the fold weights must describe.
    """
    path = Path(path)
    meta = read_meta(path)
    aus = [int(a) for a in meta["aus"]]
    notes = []
    if meta.get("complete", False):
        table = read_frame_table(path / TABLE_FILE, aus)
    else:
        notes.append("the store is incomplete (prepare has not finished); counts cover the "
                     "frames written so far")
        parts = [read_frame_table(chunk_path(path, str(ch["name"]), "csv"), aus)
                 for ch in meta.get("chunks", [])]
        table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
            columns=[*META_COLUMNS, *au_columns(aus)])
    if registered_only:
        ok = table["success"].astype(str).str.lower().isin(("1", "true", "1.0"))
        if (~ok).any():
            notes.append(f"{int((~ok).sum())} frame(s) whose registration failed are left out "
                         "(training never sees them; --all-frames counts them)")
        table = table[ok].reset_index(drop=True)
    ds = meta.get("dataset")
    return FrameLabels(table[["subject", "session", "frame", *au_columns(aus)]],
                       str(ds) if ds else None, notes)


@dataclass
class _Chunk:
    name: str
    n: int
    start: int
    maps: dict[str, np.memmap] = field(default_factory=dict, repr=False)


class PatchStore:
    """Read side of a patch store. Arrays are memory-mapped: memory is bounded by the batch read.

    ``store.patches(idx)`` / ``store.holistic(idx)`` / ``store.mesh(idx)`` (or
    ``store.read(kind, idx)``) accept an int or an index array and return uint8 arrays (float32
    canonical meshes); ``store.labels`` is an (N, A) int8 array of 1/0/-1. ``store.kinds`` says
    which arrays the store holds: a store of format 1 has no meshes.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.meta: dict[str, Any] = self._read_meta()
        self.aus: list[int] = [int(a) for a in self.meta["aus"]]
        self.n = int(self.meta["n"])
        self.version = int(self.meta.get("version", 1))
        self.kinds: tuple[str, ...] = store_kinds(self.meta)
        self.table = self._read_table()
        self.labels = self._read_labels()
        self._chunks: list[_Chunk] = self._check_chunks()
        self._starts = np.array([c.start for c in self._chunks] + [self.n], dtype=np.int64)

    # -- opening --------------------------------------------------------------------------
    def _read_meta(self) -> dict[str, Any]:
        """``store.json``, refused unless it is a complete store of a version this code reads."""
        meta = read_meta(self.path)
        if not meta.get("complete", False):
            raise StoreError(
                f"{self.path}: store is incomplete (preparation did not finish); "
                "run the same prepare command again to resume"
            )
        return meta

    def _read_table(self) -> pd.DataFrame:
        """``frames.csv``, whose columns and length must match ``store.json``."""
        frames_path = self.path / TABLE_FILE
        table = read_frame_table(frames_path, self.aus)
        if len(table) != self.n:
            raise StoreError(
                f"{frames_path}: {len(table)} rows but store.json says {self.n} frames"
            )
        return table

    def _read_labels(self) -> np.ndarray:
        return self.table[au_columns(self.aus)].to_numpy(dtype=np.int8)

    def _check_chunks(self) -> list[_Chunk]:
        """The chunks in frame order, each array file present at the size its frame count needs."""
        chunks: list[_Chunk] = []
        start = 0
        for ch in self.meta["chunks"]:
            c = _Chunk(name=str(ch["name"]), n=int(ch["n"]), start=start)
            for kind in self.kinds:
                f = self.chunk_file(c.name, kind)
                expected = array_bytes(kind, c.n)
                if not f.is_file():
                    raise StoreError(f"{f}: chunk file missing")
                size = f.stat().st_size
                if size != expected:
                    raise StoreError(
                        f"{f}: truncated or corrupt chunk ({size} bytes, expected {expected} for "
                        f"{c.n} frames)"
                    )
            chunks.append(c)
            start += c.n
        if start != self.n:
            raise StoreError(f"{self.path / META_FILE}: chunks hold {start} frames but n = {self.n}")
        return chunks

    # -- paths ----------------------------------------------------------------------------
    def chunk_file(self, name: str, kind: str) -> Path:
        return chunk_path(self.path, name, kind)

    def __len__(self) -> int:
        return self.n

    def __repr__(self) -> str:
        return f"PatchStore({str(self.path)!r}, n={self.n}, aus={self.aus})"

    def __getstate__(self) -> dict[str, Any]:
        # DataLoader workers re-open the memory maps instead of pickling them.
        state = self.__dict__.copy()
        state["_chunks"] = [_Chunk(c.name, c.n, c.start) for c in self._chunks]
        return state

    # -- arrays ---------------------------------------------------------------------------
    def _map(self, c: _Chunk, kind: str) -> np.memmap:
        arr = c.maps.get(kind)
        if arr is None:
            arr = np.memmap(self.chunk_file(c.name, kind), dtype=ARRAY_DTYPES[kind], mode="r",
                            shape=(c.n, *ARRAY_SHAPES[kind]))
            c.maps[kind] = arr
        return arr

    def _check_unchanged(self, c: _Chunk, kind: str) -> None:
        """The chunk file is still there at its size: a file truncated under a memory map ends
        the process with SIGBUS and no word, a deleted store with a raw FileNotFoundError, so
        each read looks first (one stat per chunk and batch) and says what happened."""
        f = self.chunk_file(c.name, kind)
        try:
            size = os.stat(f).st_size
        except FileNotFoundError:
            raise StoreError(f"{f}: chunk file gone while the store was in use (the store was "
                             "deleted or moved during the run)") from None
        if size != array_bytes(kind, c.n):
            raise StoreError(f"{f}: chunk file changed while the store was in use ({size} bytes, "
                             f"expected {array_bytes(kind, c.n)}); prepare the store again")

    def read(self, kind: str, idx: int | Sequence[int] | np.ndarray) -> np.ndarray:
        """Frames ``idx`` of array ``kind`` (one of :attr:`kinds`), in the order asked."""
        if kind not in self.kinds:
            if kind in ARRAY_SHAPES and self.version >= VERSION:
                raise StoreError(
                    f"{self.path}: the store holds {', '.join(self.kinds)} only (a store of "
                    f"meshes, pattnet synth --meshes), no {kind}; models of the {kind} need a "
                    "store made by pattnet prepare")
            if kind in ARRAY_SHAPES:
                raise StoreError(
                    f"{self.path}: the store has no {kind} array (store format {self.version}, "
                    f"written by an older pattnet); run pattnet prepare again into a new folder "
                    f"to add it")
            raise StoreError(f"unknown store array {kind!r}; a store holds {', '.join(self.kinds)}")
        scalar = np.isscalar(idx)
        ids = np.atleast_1d(np.asarray(idx, dtype=np.int64))
        if ids.size and (ids.min() < 0 or ids.max() >= self.n):
            raise IndexError(f"store index out of range 0..{self.n - 1}")
        out = np.empty((len(ids), *ARRAY_SHAPES[kind]), dtype=ARRAY_DTYPES[kind])
        which = np.searchsorted(self._starts, ids, side="right") - 1
        for ci in np.unique(which):
            sel = np.nonzero(which == ci)[0]
            c = self._chunks[int(ci)]
            self._check_unchanged(c, kind)
            local = ids[sel] - c.start
            order = np.argsort(local, kind="stable")  # sequential reads from the page cache
            out[sel[order]] = self._map(c, kind)[local[order]]
        return out[0] if scalar else out

    def patches(self, idx: int | Sequence[int] | np.ndarray) -> np.ndarray:
        """uint8 patches, (9, 100, 100, 3) for an int, (B, 9, 100, 100, 3) for an index array."""
        return self.read("patches", idx)

    def holistic(self, idx: int | Sequence[int] | np.ndarray) -> np.ndarray:
        """uint8 registered faces at 200x200, (200, 200, 3) or (B, 200, 200, 3)."""
        return self.read("holistic", idx)

    def mesh(self, idx: int | Sequence[int] | np.ndarray) -> np.ndarray:
        """float32 canonical meshes, (478, 3) or (B, 478, 3); NaN where registration failed."""
        return self.read("mesh", idx)

    @property
    def subjects(self) -> np.ndarray:
        return self.table["subject"].to_numpy(dtype=str)

    @property
    def success(self) -> np.ndarray:
        return self.table["success"].to_numpy().astype(bool)

    @property
    def dataset(self) -> str | None:
        return self.meta.get("dataset")
