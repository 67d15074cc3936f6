"""Small helpers shared by every stage: atomic writes and logging set-up."""

from __future__ import annotations

import json
import logging
import os
import queue
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

log = logging.getLogger("pattnet")


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half.

    Why: a job killed mid-write (kill -9, power loss) must not leave a truncated result that a
    resumed run would trust.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; results are meant to be shared
        os.replace(tmp, p)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def tmp_path_for(path: str | Path) -> Path:
    """A sibling temporary name for writers that need a path (pandas, matplotlib, torch.save)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    return p.with_name(f".{p.name}.{os.getpid()}.tmp{p.suffix}")


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )


def write_png_atomic(path: str | Path, rgb: Any) -> None:
    """RGB uint8 array -> PNG via temp + rename, without an fsync per image.

    Why no fsync: a video writes hundreds of frames; losing the last few to a power cut is
    acceptable, a half-written PNG that looks complete is not (the rename prevents that).
    """
    import cv2

    p = Path(path)
    ok, buf = cv2.imencode(".png", rgb[:, :, ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:  # pragma: no cover
        raise OSError(f"{p}: PNG encoding failed")
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    tmp.write_bytes(buf.tobytes())
    os.replace(tmp, p)


def box_iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes (face tracking across frames)."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


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
