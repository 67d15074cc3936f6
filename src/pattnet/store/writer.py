"""Writing a patch store a chunk at a time, so that a killed job leaves only whole chunks.

Why chunks: prepare writes one per session, and resuming or merging shards means listing chunks
instead of rewriting arrays. A chunk's files are written under temporary names and renamed, and
the chunk exists only once ``store.json`` records it; ``frames.csv`` is written last, when the
store is finalised.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from pattnet.constants import HOLISTIC_SIZE, MESH_SHAPE, N_PATCHES, PATCH_SIZE, au_name
from pattnet.errors import StoreError
from pattnet.io.atomic import atomic_path, atomic_write_json
from pattnet.store.layout import (
    ARRAY_DTYPES,
    ARRAY_SHAPES,
    CHUNK_KINDS,
    CHUNKS_DIR,
    FORMAT,
    META_COLUMNS,
    META_FILE,
    TABLE_FILE,
    VERSION,
    array_bytes,
    au_columns,
    check_kinds,
    chunk_path,
    store_kinds,
)
from pattnet.store.reader import PatchStore, read_meta


def _write_header(fh: IO[str], cols: Sequence[str]) -> None:
    """The header row of a frame table, written the way pandas writes the rows below it."""
    pd.DataFrame(columns=list(cols)).to_csv(fh, index=False)


class StoreWriter:
    """Write side: add chunks (each atomically), then :meth:`finalize`.

    A chunk is a unit of resumability: ``prepare`` writes one per session, and a killed job leaves
    only whole chunks behind (arrays are written under a temporary name and renamed; the chunk is
    recorded in ``store.json`` only after its files are in place). Re-opening a writer on an
    incomplete store keeps its chunks, so the job continues where it stopped.
    """

    def __init__(self, path: str | Path, aus: Sequence[int], meta: dict[str, Any] | None = None,
                 kinds: Sequence[str] | None = None):
        self.path = Path(path)
        self.aus = [int(a) for a in aus]
        full = ARRAY_SHAPES.keys()
        self.kinds = check_kinds(tuple(full) if kinds is None else kinds)
        if (self.path / META_FILE).is_file():
            self.meta = self._existing_meta(meta)
        else:
            self.path.mkdir(parents=True, exist_ok=True)
            self.meta = self._new_meta(meta)
            if self.kinds != tuple(full):
                self.meta["arrays"] = list(self.kinds)
        (self.path / CHUNKS_DIR).mkdir(exist_ok=True)
        self._save_meta()

    def _existing_meta(self, meta: dict[str, Any] | None) -> dict[str, Any]:
        """The store being resumed: its chunks kept, marked incomplete again, ``meta`` updated."""
        existing = read_meta(self.path)
        if int(existing.get("version", 1)) != VERSION:
            raise StoreError(
                f"{self.path}: a store of format {existing.get('version', 1)} (an older pattnet, "
                "without face meshes) cannot be added to; prepare into a new folder")
        if [int(a) for a in existing["aus"]] != self.aus:
            raise StoreError(
                f"{self.path}: existing store has AUs {existing['aus']}, not {self.aus}"
            )
        if store_kinds(existing) != self.kinds:
            raise StoreError(f"{self.path}: existing store holds {', '.join(store_kinds(existing))}, "
                             f"not {', '.join(self.kinds)}")
        existing["complete"] = False
        existing.update(meta or {})
        return existing

    def _new_meta(self, meta: dict[str, Any] | None) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "aus": self.aus,
            "n_patches": N_PATCHES,
            "patch_size": PATCH_SIZE,
            "holistic_size": HOLISTIC_SIZE,
            "complete": False,
            "n": 0,
            "chunks": [],
            **(meta or {}),
        }

    @property
    def chunk_names(self) -> set[str]:
        return {c["name"] for c in self.meta["chunks"]}

    def _save_meta(self) -> None:
        self.meta["n"] = int(sum(c["n"] for c in self.meta["chunks"]))
        atomic_write_json(self.path / META_FILE, self.meta)

    def add_chunk(self, name: str, table: pd.DataFrame, patches: np.ndarray | None,
                  holistic: np.ndarray | None, mesh: np.ndarray | None = None) -> None:
        """Write one chunk: ``table`` rows (META_COLUMNS + AU columns) and their arrays (None
        for an array the store does not hold)."""
        if name in self.chunk_names:
            raise StoreError(f"{self.path}: chunk {name!r} already written")
        cw = ChunkWriter(self.path, name, self.aus, self.kinds)
        try:
            cw.append(table, patches, holistic, mesh)
            n = cw.commit()
        except BaseException:
            cw.abort()
            raise
        self.record_chunk(name, n)

    def record_chunk(self, name: str, n: int, **info: Any) -> None:
        """Enter a chunk whose files a :class:`ChunkWriter` has committed into ``store.json``.

        Why separate from writing: worker processes write chunk files, and only the parent, the
        one writer of ``store.json``, records them. Until this call a chunk does not exist, so a
        job killed between the two simply redoes it. ``info`` (JSON-able) is kept in the chunk's
        entry (prepare keeps the session and its problems there); the reader ignores it.
        """
        if name in self.chunk_names:
            raise StoreError(f"{self.path}: chunk {name!r} already written")
        for kind in self.kinds:
            f = chunk_path(self.path, name, kind)
            expected = array_bytes(kind, n)
            size = f.stat().st_size if f.is_file() else -1
            if size != expected:
                raise StoreError(f"{f}: {size} bytes, expected {expected} for {n} frames")
        if not chunk_path(self.path, name, "csv").is_file():
            raise StoreError(f"{chunk_path(self.path, name, 'csv')}: chunk table missing")
        self.meta["chunks"].append({"name": name, "n": int(n), **info})
        self._save_meta()

    def drop_chunks(self, names: set[str]) -> None:
        """Forget chunks (a resumed prepare redoes sessions whose sources changed): out of
        ``store.json`` first, then their files, so a kill in between leaves only strays that
        :meth:`remove_stray_files` clears."""
        if not names:
            return
        self.meta["chunks"] = [c for c in self.meta["chunks"] if c["name"] not in names]
        self.meta["complete"] = False
        self._save_meta()
        for name in names:
            for kind in CHUNK_KINDS:  # whatever kinds this store holds
                chunk_path(self.path, name, kind).unlink(missing_ok=True)

    def remove_stray_files(self) -> list[Path]:
        """Delete files in ``chunks/`` that no recorded chunk owns (temporaries and chunks of a
        killed job that were written but never recorded). Only call while no one else writes
        this store."""
        keep = {chunk_path(self.path, c["name"], k).name
                for c in self.meta["chunks"] for k in CHUNK_KINDS}
        removed = []
        for f in (self.path / CHUNKS_DIR).iterdir():
            if f.is_file() and f.name not in keep:
                f.unlink()
                removed.append(f)
        return removed

    def finalize(self, order: Sequence[str] | None = None) -> PatchStore:
        """Concatenate the chunk tables into ``frames.csv`` and mark the store complete.

        ``order`` (chunk names, a permutation of the recorded ones) fixes the frame order, so
        that a store does not depend on which worker or shard finished first.
        """
        if order is not None:
            by_name = {c["name"]: c for c in self.meta["chunks"]}
            if sorted(order) != sorted(by_name) or len(set(order)) != len(order):
                raise StoreError(f"{self.path}: finalize order does not list each chunk once")
            self.meta["chunks"] = [by_name[nm] for nm in order]
        self._write_frames()
        self.meta["complete"] = True
        self._save_meta()
        return PatchStore(self.path)

    def _write_frames(self) -> None:
        """``frames.csv`` streamed chunk table by chunk table (never the whole table in memory),
        under a temporary name until it is whole."""
        cols = [*META_COLUMNS, *au_columns(self.aus)]
        with atomic_path(self.path / TABLE_FILE) as tmp, open(tmp, "w", newline="") as out:
            _write_header(out, cols)
            for ch in self.meta["chunks"]:
                part = pd.read_csv(chunk_path(self.path, ch["name"], "csv"),
                                   dtype={"subject": str, "session": str})
                if len(part) != ch["n"]:
                    raise StoreError(f"{self.path}: chunk {ch['name']} table has {len(part)} rows, "
                                     f"expected {ch['n']}")
                part[cols].to_csv(out, index=False, header=False)


class _Aborted(Exception):
    """Raised into a chunk's pending files so that none of them is renamed."""


class ChunkWriter:
    """Write one chunk's files incrementally, a batch at a time, under temporary names.

    Why: a BP4D session can hold thousands of frames, so a chunk is streamed to disk batch by
    batch and memory is bounded by the batch, not by the session. Nothing carries the final names
    until :meth:`commit` (fsync, then rename), and the chunk only counts once
    :meth:`StoreWriter.record_chunk` enters it in ``store.json``; so a kill at any moment leaves
    either a whole chunk or none. Touches only ``chunks/``, never ``store.json``: safe to use
    from worker processes.
    """

    def __init__(self, store: str | Path, name: str, aus: Sequence[int],
                 kinds: Sequence[str] | None = None):
        self.store = Path(store)
        self.name = name
        self.kinds = check_kinds(tuple(ARRAY_SHAPES) if kinds is None else kinds)
        self.cols = [*META_COLUMNS, *au_columns(aus)]
        self.n = 0
        (self.store / CHUNKS_DIR).mkdir(parents=True, exist_ok=True)
        # Each file goes through io.atomic's atomic_path; the stack unwinds last-in first-out, so
        # entering the kinds in reverse renames the table last: its presence marks the arrays as
        # complete.
        self._files = contextlib.ExitStack()
        self._tmp = {k: self._files.enter_context(atomic_path(chunk_path(self.store, name, k)))
                     for k in reversed(CHUNK_KINDS) if k == "csv" or k in self.kinds}
        # held open across append() calls on purpose: closed by commit() / abort()
        self._fh = {k: open(self._tmp[k], "wb") for k in self.kinds}  # noqa: SIM115
        self._csv = open(self._tmp["csv"], "w", newline="")  # noqa: SIM115
        _write_header(self._csv, self.cols)
        self._closed = False

    def append(self, table: pd.DataFrame, patches: np.ndarray | None, holistic: np.ndarray | None,
               mesh: np.ndarray | None = None) -> None:
        """Append a batch: ``table`` rows (META_COLUMNS + AU columns), their uint8 patches and
        holistic faces, and their canonical meshes (None: not known, stored as NaN). An array
        the chunk does not hold must be None."""
        n = len(table)
        if mesh is None and "mesh" in self.kinds:
            mesh = np.full((n, *MESH_SHAPE), np.nan, dtype=np.float32)
        given = {"patches": patches, "holistic": holistic, "mesh": mesh}
        extra = [k for k, a in given.items() if a is not None and k not in self.kinds]
        if extra:
            raise StoreError(f"chunk {self.name}: the store holds no {', '.join(extra)}")
        arrays: dict[str, np.ndarray] = {}
        for kind in self.kinds:
            if given[kind] is None:
                raise StoreError(f"chunk {self.name}: {kind} missing")
            a = np.ascontiguousarray(given[kind], dtype=ARRAY_DTYPES[kind])
            if a.shape != (n, *ARRAY_SHAPES[kind]):
                raise StoreError(f"chunk {self.name}: {kind} shape {a.shape}, expected "
                                 f"{(n, *ARRAY_SHAPES[kind])}")
            arrays[kind] = a
        missing = [c for c in self.cols if c not in table.columns]
        if missing:
            raise StoreError(f"chunk {self.name}: frame table lacks columns {', '.join(missing)}")
        if n == 0:
            return
        for kind, a in arrays.items():
            self._fh[kind].write(a.data.cast("B"))
        table[self.cols].to_csv(self._csv, index=False, header=False)
        self.n += n

    def commit(self) -> int:
        """Flush, fsync and move the files to their final names; returns the frame count."""
        for fh in (*self._fh.values(), self._csv):
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
        self._closed = True
        self._files.close()  # each temporary renamed to its final name, the table last
        return self.n

    def abort(self) -> None:
        """Close and delete the temporaries (after an error in this process)."""
        if not self._closed:
            for fh in (*self._fh.values(), self._csv):
                with contextlib.suppress(OSError):  # its flush fails again on a full disk
                    fh.close()
            self._closed = True
        with contextlib.suppress(_Aborted), self._files:
            raise _Aborted  # unwinds each atomic_path unrenamed, which deletes its temporary

    def __enter__(self) -> ChunkWriter:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is not None or not self._closed:
            self.abort()


def frame_table(
    subjects: Sequence[str],
    sessions: Sequence[str],
    frames: Sequence[int],
    labels: np.ndarray,
    aus: Sequence[int],
    **columns: Any,
) -> pd.DataFrame:
    """A frame table with defaults for the pose/success columns (handy for tests and tools)."""
    n = len(subjects)
    df = pd.DataFrame(
        {
            "subject": list(map(str, subjects)),
            "session": list(map(str, sessions)),
            "frame": np.asarray(frames, dtype=np.int64),
            "success": np.ones(n, dtype=np.int8),
            "confidence": np.ones(n, dtype=np.float32),
            "pitch": np.zeros(n, dtype=np.float32),
            "yaw": np.zeros(n, dtype=np.float32),
            "roll": np.zeros(n, dtype=np.float32),
            "visible_fraction": np.ones(n, dtype=np.float32),
        }
    )
    for k, v in columns.items():
        df[k] = v
    labels = np.asarray(labels, dtype=np.int8).reshape(n, len(aus))
    for j, a in enumerate(aus):
        df[au_name(a)] = labels[:, j]
    return df


def write_store(
    path: str | Path,
    table: pd.DataFrame,
    patches: np.ndarray | None,
    holistic: np.ndarray | None,
    aus: Sequence[int],
    meta: dict[str, Any] | None = None,
    mesh: np.ndarray | None = None,
) -> PatchStore:
    """Write a complete single-chunk store (tests, small tools, the demo); with no patches and
    no holistic faces, a store of meshes alone."""
    kinds = None if patches is not None or holistic is not None else ("mesh",)
    w = StoreWriter(path, aus, meta, kinds)
    w.add_chunk("chunk-000000", table, patches, holistic, mesh)
    return w.finalize()
