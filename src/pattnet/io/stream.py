"""Bounded producer threads: items made ahead on a background thread, memory bounded by a depth."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


def put_until_stopped(q: queue.Queue, item: Any, stop: threading.Event) -> bool:
    """Put ``item`` on a bounded queue, giving up (False) once ``stop`` is set.

    Why: a producer thread blocked on a full queue must not outlive a consumer that went away.
    """
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


_DONE = object()


def read_ahead(items: Iterable[T], depth: int = 4) -> Iterator[T]:
    """The items of ``items``, in order, produced by a background thread up to ``depth`` ahead.

    Why: video decoding (PyAV) releases the GIL, so the next frames decode while the caller
    registers this one; memory stays bounded by ``depth``. An exception raised by ``items`` (a
    video damaged part way) is re-raised here after every item before it. Closing the returned
    generator stops the thread and closes ``items`` on it.
    """
    q: queue.Queue = queue.Queue(max(1, depth))
    stop = threading.Event()

    def produce() -> None:
        it = iter(items)
        error: BaseException | None = None
        try:
            for x in it:
                if not put_until_stopped(q, (x, None), stop):
                    return
        except BaseException as exc:  # handed to the consumer, which re-raises it
            error = exc
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()
        put_until_stopped(q, (_DONE, error), stop)

    th = threading.Thread(target=produce, name="pattnet-read-ahead", daemon=True)
    th.start()
    try:
        while True:
            x, error = q.get()
            if x is _DONE:
                if error is not None:
                    raise error
                return
            yield x
    finally:
        stop.set()
        th.join()
