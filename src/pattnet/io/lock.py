"""One writer per output folder: a store being prepared, a run being trained.

Why a lock library (filelock) rather than ``fcntl`` by hand: it takes the operating system's own
lock on every platform (``flock`` on Linux and macOS, ``msvcrt`` on Windows), and that lock dies
with its process, so a kill -9 never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from pattnet.errors import PattnetError


@contextlib.contextmanager
def folder_lock(folder: Path, name: str, holder: str) -> Iterator[bool]:
    """Hold ``folder/name`` for the block, creating ``folder`` if need be; fail at once, in one
    line, when another process holds it (``holder`` says who: "another pattnet train").

    Yields whether this call created ``folder``, so that a block failing before any work can
    take away what it made.
    """
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock = FileLock(folder / name, timeout=0)
        lock.acquire()
    except Timeout as exc:
        raise PattnetError(f"{folder}: {holder} is writing here now; wait for it to finish or "
                           "choose another folder") from exc
    except OSError as exc:
        raise PattnetError(f"{folder}: cannot write this folder ({exc.strerror or exc})") from exc
    try:
        yield created
    finally:
        lock.release()


__all__ = ["folder_lock"]
