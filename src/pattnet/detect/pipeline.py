"""The two-thread pipeline of one input: frames made ready on a background thread, scored in batches.

Pipeline::

    background thread:  decode (PyAV) -> register (MediaPipe + warp) -> crop 9 patches (+ mesh)
                             |  bounded queue (a few batches: memory does not grow with length)
    calling thread:     batch faces -> model (bf16 autocast where the CPU has it) -> rows

Why two threads: decoding and registration are C++ (PyAV, MediaPipe, OpenCV) and the model is
PyTorch; all of them release the GIL, so even on a small CPU registration of frame n+1 runs
while the model scores frame n. The queue is bounded, so a slow model makes the decoder wait
instead of filling memory.
"""

from __future__ import annotations

import collections
import contextlib
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pattnet.detect.schema import FaceResult, FrameResult
from pattnet.io.stream import put_until_stopped

if TYPE_CHECKING:
    from pattnet.detect.calibration import Calibration
    from pattnet.io import Frame

#: One face's model inputs (or references), by input kind: ``patches``, ``holistic``, ``mesh``.
Arrays = dict[str, np.ndarray]
Predict = Callable[[Arrays, "Arrays | None"], "tuple[np.ndarray, np.ndarray | None]"]


@dataclass
class _Item:
    index: int
    timestamp: float
    faces: list[FaceResult]
    inputs: list[Arrays]  # the model's inputs per successful face, in ``faces`` order
    rgb: np.ndarray | None
    refs: list[Arrays] | None = None  # person references by kind (running per-face means)

    def face_ids(self) -> list[int]:
        return [f.face_id for f in self.faces if f.success]


class _End:
    pass


@dataclass
class _Failure:
    exc: BaseException


class FrameProducer:
    """The background thread of one input: decode -> register -> crop, into a bounded queue.

    Why errors travel on the queue: the consumer must see every frame before a failure (a
    video damaged part way) and then the failure itself, in the calling thread.
    """

    def __init__(self, source: str | Path | int, registrar_for: Callable[[Any], tuple[Any, bool]],
                 *, kinds: tuple[str, ...], maxsize: int, keep_frames: bool,
                 max_frames: int | None, max_side: int | None) -> None:
        self.source = source
        self._registrar_for = registrar_for
        self._kinds = kinds
        self._keep_frames = keep_frames
        self._max_frames = max_frames
        self._max_side = max_side
        self._queue: queue.Queue = queue.Queue(maxsize=maxsize)
        self._stop = threading.Event()
        self._shown: dict[int, np.ndarray] = {}  # the frames in flight, when the caller wants them
        self._thread = threading.Thread(target=self._run, name="pattnet-detect-decode", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def get(self) -> _Item | _End | _Failure:
        return self._queue.get()

    def empty(self) -> bool:
        return self._queue.empty()

    def close(self) -> None:
        """Stop the thread: emptying the queue frees a producer blocked on a full one."""
        self._stop.set()
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()
        self._thread.join(timeout=5.0)

    def _run(self) -> None:
        reg = None
        owned = False
        cv_level = _quiet_opencv() if isinstance(self.source, int) else None
        try:
            reg, owned = self._registrar_for(self.source)
            # held here, so the decoding chain is closed only after the registrar
            registered = reg.register_stream(self._frames())
            if self._put_all(registered):
                put_until_stopped(self._queue, _End(), self._stop)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put_until_stopped(self._queue, _Failure(exc), self._stop)
        finally:
            _restore_opencv(cv_level)
            if owned and reg is not None:
                reg.close()

    def _frames(self) -> Iterator[Frame]:
        from pattnet.io import iter_frames
        from pattnet.io.stream import read_ahead

        decoded: Iterator[Frame] = iter_frames(self.source, max_side=self._max_side)
        if not isinstance(self.source, int):  # a file: decode ahead (a camera: latest frame)
            decoded = read_ahead(decoded)
        for fr in decoded:
            if self._keep_frames:
                self._shown[fr.index] = fr.rgb
            yield fr

    def _put_all(self, registered: Iterator[Any]) -> bool:
        """Queue every registered frame; False when the consumer went away first."""
        for n, fr in enumerate(registered, start=1):
            if self._stop.is_set():
                break
            if not put_until_stopped(self._queue, self._item(fr), self._stop):
                return False
            if self._max_frames is not None and n >= self._max_frames:
                break
        return True

    def _item(self, fr: Any) -> _Item:
        from pattnet.patches import crop_patches

        faces, inputs = [], []
        for f in fr.faces:
            x0, y0, x1, y1 = (float(v) for v in f.bbox)
            res = FaceResult(int(f.face_id), bool(f.success), float(f.confidence),
                             float(f.pitch), float(f.yaw), float(f.roll), (x0, y0, x1, y1))
            faces.append(res)
            if f.success:
                patches, whole = crop_patches(f.image)
                arrays = {"patches": patches, "holistic": whole, "mesh": f.landmarks_3d}
                inputs.append({k: arrays[k] for k in self._kinds})
        return _Item(fr.index, fr.timestamp, faces, inputs, self._shown.pop(fr.index, None))


class Batcher:
    """Items gathered until they hold a batch's worth of faces (the model's unit of work)."""

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self._pending: list[_Item] = []
        self._faces = 0

    def add(self, item: _Item) -> bool:
        """Add ``item``; True when the batch is full."""
        self._pending.append(item)
        self._faces += len(item.inputs)
        return self._faces >= self.batch_size

    def take(self) -> list[_Item]:
        batch, self._pending, self._faces = self._pending, [], 0
        return batch


class InOrderScorer:
    """Scores batches on ``workers`` threads and hands the results back in frame order.

    Why a bounded number in flight: a batch waits for the oldest one once every worker is busy,
    so results stay in order and memory stays bounded.
    """

    def __init__(self, score: Callable[[list[_Item]], list[FrameResult]], workers: int) -> None:
        self._score = score
        self._workers = workers
        self._pool: Any = None
        if workers > 1:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(workers, thread_name_prefix="pattnet-detect-model")
        self._inflight: collections.deque = collections.deque()  # futures, in frame order

    def submit(self, batch: list[_Item]) -> Iterator[FrameResult]:
        """Score ``batch``; with several workers, yield the batches already finished, in order."""
        if self._pool is None:
            yield from self._score(batch)
            return
        self._inflight.append(self._pool.submit(self._score, batch))
        while len(self._inflight) >= self._workers or (self._inflight and self._inflight[0].done()):
            yield from self._inflight.popleft().result()

    def drain(self) -> Iterator[FrameResult]:
        while self._inflight:
            yield from self._inflight.popleft().result()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


def score_items(items: list[_Item], predict: Predict) -> list[FrameResult]:
    """Run the model on every successful face of ``items`` (one batch) -> frame results."""
    inputs = [x for it in items for x in it.inputs]
    prob = att = None
    if inputs:
        refs = None
        if all(it.refs is not None for it in items):
            per_face = [r for it in items if it.refs is not None for r in it.refs]
            refs = {k: np.stack([r[k] for r in per_face]) for k in per_face[0]}
        prob, att = predict({k: np.stack([x[k] for x in inputs]) for k in inputs[0]}, refs)
    k = 0
    out = []
    for it in items:
        for f in it.faces:
            if f.success:
                assert prob is not None
                f.prob = prob[k]
                f.attention = att[k] if att is not None else None
                k += 1
        out.append(FrameResult(it.index, it.timestamp, it.faces, it.rgb))
    return out


def consume(producer: FrameProducer, scorer: InOrderScorer, calibration: Calibration,
            batch_size: int, live: bool) -> Iterator[FrameResult]:
    """The frame results of ``producer``'s queue, in order; a failure is raised after the frames
    before it. ``live`` scores whatever is ready as soon as the queue runs dry."""
    batcher = Batcher(batch_size)
    while True:
        item = producer.get()
        if isinstance(item, _End | _Failure):
            # frames before the damage are kept
            yield from scorer.submit(batcher.take() + calibration.flush())
            yield from scorer.drain()
            if isinstance(item, _Failure):
                raise item.exc
            return
        for it in calibration.ready(item):
            if batcher.add(it) or (live and producer.empty()):
                yield from scorer.submit(batcher.take())


def _quiet_opencv() -> int | None:
    """Silence OpenCV's own warnings (a missing camera index prints two lines of them; pattnet's
    one-line error says it better). Returns the previous level for :func:`_restore_opencv`."""
    try:
        import cv2

        prev = int(cv2.getLogLevel())
        cv2.setLogLevel(0)  # 0 = silent
        return prev
    except Exception:  # pragma: no cover - OpenCV without the logging API
        return None


def _restore_opencv(level: int | None) -> None:
    if level is not None:
        import cv2

        cv2.setLogLevel(level)


__all__ = ["Batcher", "FrameProducer", "InOrderScorer", "consume", "score_items"]
