"""Merging complete stores (the shards of one prepare) into one, without rewriting the arrays.

Why link rather than copy: shards on one file system become one store instantly and take no
extra space; only across file systems are the bytes streamed over.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from pattnet.errors import StoreError
from pattnet.io.atomic import atomic_path
from pattnet.store.layout import VERSION, chunk_path
from pattnet.store.reader import PatchStore
from pattnet.store.writer import StoreWriter

#: Bytes per read when a chunk file has to be copied: large, so a copy streams at disk speed.
_COPY_BUFFER = 16 << 20


def link_or_copy(src: Path, dst: Path) -> str:
    """Put ``src``'s bytes at ``dst`` atomically: a hard link when the file system allows (no
    bytes copied: shards on one disk merge instantly), else a streamed copy. Returns which."""
    with atomic_path(dst) as tmp:
        if tmp.exists():  # left by a killed run; os.link will not overwrite it
            tmp.unlink()
        try:
            os.link(src, tmp)
            return "link"
        except OSError:
            with open(src, "rb") as fi, open(tmp, "wb") as fo:
                shutil.copyfileobj(fi, fo, _COPY_BUFFER)
                fo.flush()
                os.fsync(fo.fileno())
            return "copy"


def _check_sources(stores: Sequence[PatchStore]) -> None:
    """One AU list for all, and no chunk in two sources (the same session prepared twice)."""
    if not stores:
        raise StoreError("nothing to merge")
    aus = stores[0].aus
    for st in stores:
        if st.version != VERSION:
            raise StoreError(f"{st.path}: store format {st.version} (an older pattnet, without "
                             "face meshes) cannot be merged into a new store; prepare it again")
    for st in stores[1:]:
        if st.aus != aus:
            raise StoreError(f"{st.path}: AUs {st.aus} differ from {stores[0].path}'s {aus}")
        if st.kinds != stores[0].kinds:
            raise StoreError(f"{st.path}: holds {', '.join(st.kinds)}, {stores[0].path} "
                             f"{', '.join(stores[0].kinds)}; stores of other arrays do not merge")
    seen: dict[str, Path] = {}
    for st in stores:
        for ch in st.meta["chunks"]:
            if ch["name"] in seen:
                raise StoreError(f"chunk {ch['name']!r} is in both {seen[ch['name']]} and "
                                 f"{st.path}; a session was prepared twice")
            seen[ch["name"]] = st.path


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
    _check_sources(stores)
    w = StoreWriter(out, stores[0].aus, meta, stores[0].kinds)
    done = w.chunk_names
    for st in stores:
        for ch in st.meta["chunks"]:
            if ch["name"] in done:
                continue
            how = ""
            for k in (*st.kinds, "csv"):
                how = link_or_copy(chunk_path(st.path, ch["name"], k), chunk_path(out, ch["name"], k))
            info = {k: v for k, v in ch.items() if k not in ("name", "n")}
            w.record_chunk(ch["name"], int(ch["n"]), **info)
            if on_chunk is not None:
                on_chunk(ch, how)
    names = order(w.meta["chunks"]) if order is not None else [c["name"] for c in w.meta["chunks"]]
    return w.finalize(names)
