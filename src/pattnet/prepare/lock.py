"""Claiming the output folder: one writer per store, and only over a store or an empty folder.

Why a lock: a second prepare (or merge) writing the same STORE would lose chunk records. The
lock (:func:`pattnet.io.lock.folder_lock`) dies with its process, so kill -9 never leaves a stale
lock behind.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pattnet.errors import PattnetError
from pattnet.io.lock import folder_lock
from pattnet.store import is_store, read_meta

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
    """A store folder this run created and then failed in before any chunk was recorded (a bad
    input, a full disk): take away everything the run put there, chunk files written but never
    recorded included (no resume can use them), so the corrected retry finds no debris and a
    full disk gets its space back."""
    if is_store(path) and read_meta(path).get("chunks"):
        return  # work was recorded: keep it for the resume
    shutil.rmtree(path, ignore_errors=True)


def existing_store_meta(out: Path) -> dict[str, Any] | None:
    """``store.json`` of the store at ``out``, None for a new store; refuses anything else, so
    a typo in ``--out`` cannot write into an unrelated folder."""
    if is_store(out):
        return read_meta(out)
    if out.exists() and (not out.is_dir() or any(p.name != LOCK_NAME for p in out.iterdir())):
        raise PattnetError(f"{out}: exists and is not a patch store; choose a new --out")
    return None
