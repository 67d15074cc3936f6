"""Claiming the output folder: one writer per store, and only over a store or an empty folder.

Why a lock: a second prepare (or merge) writing the same STORE would lose chunk records. The
lock (:func:`pattnet.io.lock.folder_lock`) dies with its process, so kill -9 never leaves a stale
lock behind.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pattnet.errors import PattnetError
from pattnet.io.lock import folder_lock
from pattnet.store import CHUNKS_DIR, META_FILE, is_store, read_meta

LOCK_NAME = ".prepare.lock"


@contextlib.contextmanager
def store_lock(path: Path) -> Iterator[None]:
    """Hold the store's lock for the block; fail at once when another process holds it."""
    with folder_lock(path, LOCK_NAME, "another pattnet prepare") as created:
        try:
            yield
        except BaseException:
            if created:
                _remove_if_unused(path)
            raise


def _remove_if_unused(path: Path) -> None:
    """A store folder this run created and then failed in before any chunk was recorded: take
    away what the run put there, so the corrected retry finds no debris."""
    if is_store(path) and read_meta(path).get("chunks"):
        return  # work was recorded: keep it for the resume
    for name in (LOCK_NAME, META_FILE):
        (path / name).unlink(missing_ok=True)
    for sub in (path / CHUNKS_DIR, path):
        with contextlib.suppress(OSError):  # not empty: something else is there, keep it
            sub.rmdir()


def existing_store_meta(out: Path) -> dict[str, Any] | None:
    """``store.json`` of the store at ``out``, None for a new store; refuses anything else, so
    a typo in ``--out`` cannot write into an unrelated folder."""
    if is_store(out):
        return read_meta(out)
    if out.exists() and (not out.is_dir() or any(p.name != LOCK_NAME for p in out.iterdir())):
        raise PattnetError(f"{out}: exists and is not a patch store; choose a new --out")
    return None
