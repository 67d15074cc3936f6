"""The patch store: the contract between ``prepare`` (which writes it) and ``train`` (which reads it).

Layout of a store directory::

    store.json            format, version, AU list, array shapes, chunk list, free-form meta
    frames.csv            one row per frame, in chunk order: subject, session, frame, success,
                          confidence, pitch, yaw, roll, visible_fraction, AU01, AU02, ... (1/0/-1)
    chunks/<name>.patches.u8    raw uint8, C order, shape (n, 9, 100, 100, 3)
    chunks/<name>.holistic.u8   raw uint8, C order, shape (n, 200, 200, 3)

Why raw chunks rather than one ``.npy``: BP4D's patches alone are about 38 GB, so the arrays are
never held in memory (they are memory-mapped and read a batch at a time), and ``prepare`` can
write one chunk per session, atomically, and resume or merge shards by listing chunks instead of
copying tens of gigabytes. The sizes in ``store.json`` let the reader detect a truncated chunk.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pattnet.constants import HOLISTIC_SHAPE, HOLISTIC_SIZE, N_PATCHES, PATCH_SHAPE, PATCH_SIZE, au_name
from pattnet.errors import StoreError
from pattnet.io.atomic import atomic_write_json, tmp_path_for

FORMAT = "pattnet-store"
VERSION = 1
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


def au_columns(aus: Sequence[int]) -> list[str]:
    return [au_name(a) for a in aus]


@dataclass
class _Chunk:
    name: str
    n: int
    start: int
    patches: np.memmap | None = field(default=None, repr=False)
    holistic: np.memmap | None = field(default=None, repr=False)


class PatchStore:
    """Read side of a patch store. Arrays are memory-mapped: memory is bounded by the batch read.

    ``store.patches(idx)`` / ``store.holistic(idx)`` accept an int or an index array and return
    uint8 arrays; ``store.labels`` is an (N, A) int8 array of 1/0/-1.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        meta_path = self.path / "store.json"
        if not self.path.exists():
            raise StoreError(f"{self.path}: store not found")
        if not meta_path.is_file():
            raise StoreError(f"{self.path}: not a pattnet store (store.json missing)")
        try:
            meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError as exc:
            raise StoreError(f"{meta_path}: corrupt store.json ({exc.msg}, line {exc.lineno})") from exc
        if meta.get("format") != FORMAT:
            raise StoreError(f"{meta_path}: not a pattnet store (format={meta.get('format')!r})")
        if int(meta.get("version", 0)) > VERSION:
            raise StoreError(
                f"{meta_path}: store version {meta.get('version')} is newer than this pattnet "
                f"reads ({VERSION}); upgrade pattnet"
            )
        if not meta.get("complete", False):
            raise StoreError(
                f"{self.path}: store is incomplete (preparation did not finish); "
                "run the same prepare command again to resume"
            )
        self.meta: dict[str, Any] = meta
        self.aus: list[int] = [int(a) for a in meta["aus"]]
        self.n = int(meta["n"])
        frames_path = self.path / "frames.csv"
        if not frames_path.is_file():
            raise StoreError(f"{frames_path}: frame table missing")
        try:
            table = pd.read_csv(frames_path, dtype={"subject": str, "session": str})
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise StoreError(f"{frames_path}: unreadable frame table ({exc})") from exc
        missing = [c for c in (*META_COLUMNS, *au_columns(self.aus)) if c not in table.columns]
        if missing:
            raise StoreError(
                f"{frames_path}: columns {', '.join(missing)} missing; the frame table does not "
                f"match store.json (AUs {self.aus})"
            )
        extra_aus = [c for c in table.columns if c.startswith("AU") and c not in au_columns(self.aus)]
        if extra_aus:
            raise StoreError(
                f"{frames_path}: AU columns {', '.join(extra_aus)} are not in store.json's AU "
                f"list {self.aus}; the frame table does not match the arrays"
            )
        if len(table) != self.n:
            raise StoreError(
                f"{frames_path}: {len(table)} rows but store.json says {self.n} frames"
            )
        self.table = table
        self.labels = table[au_columns(self.aus)].to_numpy(dtype=np.int8)
        bad = ~np.isin(self.labels, (-1, 0, 1))
        if bad.any():
            r, c = np.argwhere(bad)[0]
            raise StoreError(
                f"{frames_path}: line {r + 2}: {au_columns(self.aus)[c]} = {self.labels[r, c]}, "
                "labels must be 1, 0 or -1"
            )
        self._chunks: list[_Chunk] = []
        start = 0
        for ch in meta["chunks"]:
            c = _Chunk(name=str(ch["name"]), n=int(ch["n"]), start=start)
            for kind, shape in (("patches", PATCH_SHAPE), ("holistic", HOLISTIC_SHAPE)):
                f = self.chunk_file(c.name, kind)
                expected = c.n * int(np.prod(shape))
                if not f.is_file():
                    raise StoreError(f"{f}: chunk file missing")
                size = f.stat().st_size
                if size != expected:
                    raise StoreError(
                        f"{f}: truncated or corrupt chunk ({size} bytes, expected {expected} for "
                        f"{c.n} frames)"
                    )
            self._chunks.append(c)
            start += c.n
        if start != self.n:
            raise StoreError(f"{meta_path}: chunks hold {start} frames but n = {self.n}")
        self._starts = np.array([c.start for c in self._chunks] + [self.n], dtype=np.int64)

    # -- paths ----------------------------------------------------------------------------
    def chunk_file(self, name: str, kind: str) -> Path:
        return self.path / "chunks" / f"{name}.{kind}.u8"

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
        arr = getattr(c, kind)
        if arr is None:
            shape = PATCH_SHAPE if kind == "patches" else HOLISTIC_SHAPE
            arr = np.memmap(self.chunk_file(c.name, kind), dtype=np.uint8, mode="r",
                            shape=(c.n, *shape))
            setattr(c, kind, arr)
        return arr

    def _read(self, kind: str, idx: int | Sequence[int] | np.ndarray) -> np.ndarray:
        scalar = np.isscalar(idx)
        ids = np.atleast_1d(np.asarray(idx, dtype=np.int64))
        if ids.size and (ids.min() < 0 or ids.max() >= self.n):
            raise IndexError(f"store index out of range 0..{self.n - 1}")
        shape = PATCH_SHAPE if kind == "patches" else HOLISTIC_SHAPE
        out = np.empty((len(ids), *shape), dtype=np.uint8)
        which = np.searchsorted(self._starts, ids, side="right") - 1
        for ci in np.unique(which):
            sel = np.nonzero(which == ci)[0]
            c = self._chunks[int(ci)]
            local = ids[sel] - c.start
            order = np.argsort(local, kind="stable")  # sequential reads from the page cache
            out[sel[order]] = self._map(c, kind)[local[order]]
        return out[0] if scalar else out

    def patches(self, idx: int | Sequence[int] | np.ndarray) -> np.ndarray:
        """uint8 patches, (9, 100, 100, 3) for an int, (B, 9, 100, 100, 3) for an index array."""
        return self._read("patches", idx)

    def holistic(self, idx: int | Sequence[int] | np.ndarray) -> np.ndarray:
        """uint8 registered faces at 200x200, (200, 200, 3) or (B, 200, 200, 3)."""
        return self._read("holistic", idx)

    @property
    def subjects(self) -> np.ndarray:
        return self.table["subject"].to_numpy(dtype=str)

    @property
    def success(self) -> np.ndarray:
        return self.table["success"].to_numpy().astype(bool)

    @property
    def dataset(self) -> str | None:
        return self.meta.get("dataset")


class StoreWriter:
    """Write side: add chunks (each atomically), then :meth:`finalize`.

    A chunk is a unit of resumability: ``prepare`` writes one per session, and a killed job leaves
    only whole chunks behind (arrays are written under a temporary name and renamed; the chunk is
    recorded in ``store.json`` only after its files are in place). Re-opening a writer on an
    incomplete store keeps its chunks, so the job continues where it stopped.
    """

    def __init__(self, path: str | Path, aus: Sequence[int], meta: dict[str, Any] | None = None):
        self.path = Path(path)
        self.aus = [int(a) for a in aus]
        meta_path = self.path / "store.json"
        if meta_path.is_file():
            existing = json.loads(meta_path.read_text())
            if existing.get("format") != FORMAT:
                raise StoreError(f"{self.path}: exists and is not a pattnet store")
            if [int(a) for a in existing["aus"]] != self.aus:
                raise StoreError(
                    f"{self.path}: existing store has AUs {existing['aus']}, not {self.aus}"
                )
            self.meta = existing
            self.meta["complete"] = False
            self.meta.update(meta or {})
        else:
            self.path.mkdir(parents=True, exist_ok=True)
            self.meta = {
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
        (self.path / "chunks").mkdir(exist_ok=True)
        self._save_meta()

    @property
    def chunk_names(self) -> set[str]:
        return {c["name"] for c in self.meta["chunks"]}

    def _save_meta(self) -> None:
        self.meta["n"] = int(sum(c["n"] for c in self.meta["chunks"]))
        atomic_write_json(self.path / "store.json", self.meta)

    def add_chunk(
        self, name: str, table: pd.DataFrame, patches: np.ndarray, holistic: np.ndarray
    ) -> None:
        """Write one chunk: ``table`` rows (META_COLUMNS + AU columns), uint8 arrays."""
        if name in self.chunk_names:
            raise StoreError(f"{self.path}: chunk {name!r} already written")
        cw = ChunkWriter(self.path, name, self.aus)
        try:
            cw.append(table, patches, holistic)
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
        for kind, shape in (("patches", PATCH_SHAPE), ("holistic", HOLISTIC_SHAPE)):
            f = chunk_path(self.path, name, kind)
            expected = int(n) * int(np.prod(shape))
            size = f.stat().st_size if f.is_file() else -1
            if size != expected:
                raise StoreError(f"{f}: {size} bytes, expected {expected} for {n} frames")
        if not chunk_path(self.path, name, "csv").is_file():
            raise StoreError(f"{chunk_path(self.path, name, 'csv')}: chunk table missing")
        self.meta["chunks"].append({"name": name, "n": int(n), **info})
        self._save_meta()

    def remove_stray_files(self) -> list[Path]:
        """Delete files in ``chunks/`` that no recorded chunk owns (temporaries and chunks of a
        killed job that were written but never recorded). Only call while no one else writes
        this store."""
        keep = {chunk_path(self.path, c["name"], k).name
                for c in self.meta["chunks"] for k in CHUNK_KINDS}
        removed = []
        for f in (self.path / "chunks").iterdir():
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
        frames_tmp = tmp_path_for(self.path / "frames.csv")
        cols = [*META_COLUMNS, *au_columns(self.aus)]
        with open(frames_tmp, "w", newline="") as out:
            out.write(",".join(cols) + "\n")
            for ch in self.meta["chunks"]:
                part = pd.read_csv(self.path / "chunks" / f"{ch['name']}.csv",
                                   dtype={"subject": str, "session": str})
                if len(part) != ch["n"]:
                    raise StoreError(f"{self.path}: chunk {ch['name']} table has {len(part)} rows, "
                                     f"expected {ch['n']}")
                part[cols].to_csv(out, index=False, header=False)
        os.replace(frames_tmp, self.path / "frames.csv")
        self.meta["complete"] = True
        self._save_meta()
        return PatchStore(self.path)


#: The files of one chunk: ``chunks/<name>.patches.u8``, ``.holistic.u8`` and ``.csv``.
CHUNK_KINDS = ("patches", "holistic", "csv")


def chunk_path(store: str | Path, name: str, kind: str) -> Path:
    """Path of one file of chunk ``name`` (``kind`` in :data:`CHUNK_KINDS`)."""
    suffix = ".csv" if kind == "csv" else f".{kind}.u8"
    return Path(store) / "chunks" / f"{name}{suffix}"


class ChunkWriter:
    """Write one chunk's files incrementally, a batch at a time, under temporary names.

    Why: a BP4D session is up to ~3,000 frames (about 1 GB of patches), so a chunk is streamed to
    disk batch by batch and memory is bounded by the batch, not by the session. Nothing carries
    the final names until :meth:`commit` (fsync, then rename), and the chunk only counts once
    :meth:`StoreWriter.record_chunk` enters it in ``store.json``; so a kill at any moment leaves
    either a whole chunk or none. Touches only ``chunks/``, never ``store.json``: safe to use
    from worker processes.
    """

    def __init__(self, store: str | Path, name: str, aus: Sequence[int]):
        self.store = Path(store)
        self.name = name
        self.cols = [*META_COLUMNS, *au_columns(aus)]
        self.n = 0
        (self.store / "chunks").mkdir(parents=True, exist_ok=True)
        self._final = {k: chunk_path(self.store, name, k) for k in CHUNK_KINDS}
        self._tmp = {k: tmp_path_for(f) for k, f in self._final.items()}
        # held open across append() calls on purpose: closed by commit() / abort()
        self._fh = {k: open(self._tmp[k], "wb") for k in ("patches", "holistic")}  # noqa: SIM115
        self._csv = open(self._tmp["csv"], "w", newline="")  # noqa: SIM115
        self._csv.write(",".join(self.cols) + "\n")
        self._closed = False

    def append(self, table: pd.DataFrame, patches: np.ndarray, holistic: np.ndarray) -> None:
        """Append a batch: ``table`` rows (META_COLUMNS + AU columns) and their uint8 arrays."""
        n = len(table)
        patches = np.ascontiguousarray(patches, dtype=np.uint8)
        holistic = np.ascontiguousarray(holistic, dtype=np.uint8)
        if patches.shape != (n, *PATCH_SHAPE):
            raise StoreError(
                f"chunk {self.name}: patches shape {patches.shape}, expected {(n, *PATCH_SHAPE)}")
        if holistic.shape != (n, *HOLISTIC_SHAPE):
            raise StoreError(
                f"chunk {self.name}: holistic shape {holistic.shape}, expected "
                f"{(n, *HOLISTIC_SHAPE)}")
        missing = [c for c in self.cols if c not in table.columns]
        if missing:
            raise StoreError(f"chunk {self.name}: frame table lacks columns {', '.join(missing)}")
        if n == 0:
            return
        self._fh["patches"].write(memoryview(patches).cast("B"))
        self._fh["holistic"].write(memoryview(holistic).cast("B"))
        table[self.cols].to_csv(self._csv, index=False, header=False)
        self.n += n

    def commit(self) -> int:
        """Flush, fsync and move the files to their final names; returns the frame count."""
        for fh in (*self._fh.values(), self._csv):
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
        self._closed = True
        for k in CHUNK_KINDS:  # the table last: its presence marks the arrays as complete
            os.replace(self._tmp[k], self._final[k])
        return self.n

    def abort(self) -> None:
        """Close and delete the temporaries (after an error in this process)."""
        if not self._closed:
            for fh in (*self._fh.values(), self._csv):
                fh.close()
            self._closed = True
        for f in self._tmp.values():
            if f.exists():
                f.unlink()

    def __enter__(self) -> ChunkWriter:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is not None or not self._closed:
            self.abort()


def _link_or_copy(src: Path, dst: Path) -> str:
    """Put ``src``'s bytes at ``dst`` atomically: a hard link when the file system allows (no
    bytes copied: shards on one disk merge instantly), else a streamed copy. Returns which."""
    tmp = tmp_path_for(dst)
    if tmp.exists():
        tmp.unlink()
    try:
        os.link(src, tmp)
        how = "link"
    except OSError:
        with open(src, "rb") as fi, open(tmp, "wb") as fo:
            shutil.copyfileobj(fi, fo, 16 << 20)
            fo.flush()
            os.fsync(fo.fileno())
        how = "copy"
    os.replace(tmp, dst)
    return how


def merge_stores(
    sources: Iterable[str | Path],
    out: str | Path,
    meta: dict[str, Any] | None = None,
    order: Callable[[list[dict[str, Any]]], list[str]] | None = None,
    on_chunk: Callable[[dict[str, Any], str], None] | None = None,
) -> PatchStore:
    """Merge complete stores (e.g. the shards of one prepare) into ``out`` without rewriting
    arrays: chunk files are hard-linked where possible, copied in a streaming way otherwise.

    Resumable like prepare: chunks already recorded in ``out`` are skipped. Two sources holding
    a chunk of the same name are an error (the same session prepared twice). ``order`` maps the
    merged chunk entries to the final chunk order (default: sources' order).
    """
    stores = [PatchStore(s) for s in sources]
    if not stores:
        raise StoreError("nothing to merge")
    aus = stores[0].aus
    for st in stores[1:]:
        if st.aus != aus:
            raise StoreError(f"{st.path}: AUs {st.aus} differ from {stores[0].path}'s {aus}")
    seen: dict[str, Path] = {}
    for st in stores:
        for ch in st.meta["chunks"]:
            if ch["name"] in seen:
                raise StoreError(f"chunk {ch['name']!r} is in both {seen[ch['name']]} and "
                                 f"{st.path}; a session was prepared twice")
            seen[ch["name"]] = st.path
    w = StoreWriter(out, aus, meta)
    done = w.chunk_names
    for st in stores:
        for ch in st.meta["chunks"]:
            if ch["name"] in done:
                continue
            how = ""
            for k in CHUNK_KINDS:
                how = _link_or_copy(chunk_path(st.path, ch["name"], k), chunk_path(out, ch["name"], k))
            info = {k: v for k, v in ch.items() if k not in ("name", "n")}
            w.record_chunk(ch["name"], int(ch["n"]), **info)
            if on_chunk is not None:
                on_chunk(ch, how)
    names = order(w.meta["chunks"]) if order is not None else [c["name"] for c in w.meta["chunks"]]
    return w.finalize(names)


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
    patches: np.ndarray,
    holistic: np.ndarray,
    aus: Sequence[int],
    meta: dict[str, Any] | None = None,
) -> PatchStore:
    """Write a complete single-chunk store (tests, small tools, the demo)."""
    w = StoreWriter(path, aus, meta)
    w.add_chunk("chunk-000000", table, patches, holistic)
    return w.finalize()
