"""Running session jobs, in this process or in a pool of worker processes, and recording
each finished chunk in the store as it arrives.

Why spawned workers: MediaPipe and fork do not mix. Why a progress queue: a session takes
long, and the bar should move per frame, not per session.
"""

from __future__ import annotations

import os
import queue as queue_mod
import signal
import sys
from collections.abc import Callable, Iterator
from typing import Any

from pattnet.prepare.jobs import JobSettings, SessionJob, SessionResult
from pattnet.prepare.session import FrameProcessor, process_session

#: Sessions in flight per worker: enough to keep each busy, few enough that the records of
#: queued sessions stay small.
IN_FLIGHT_PER_WORKER = 2
#: Frames a worker counts before it reports progress (one queue message per frame is wasteful).
PROGRESS_EVERY = 4

# worker-process state, set by _init_worker in each spawned worker
_WORKER: dict[str, Any] = {}


def _init_worker(settings: JobSettings, queue: Any, parent: int) -> None:
    os.environ.setdefault("GLOG_minloglevel", "2")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    _WORKER.update(settings=settings, queue=queue, parent=parent,
                   processor=FrameProcessor(settings), pending=0)


def _worker_progress(n: int) -> None:
    if os.getppid() != _WORKER["parent"]:
        os._exit(1)  # the parent was killed: stop rather than race a resumed run
    _WORKER["pending"] += n
    if _WORKER["pending"] >= PROGRESS_EVERY:
        _WORKER["queue"].put(_WORKER["pending"])
        _WORKER["pending"] = 0


def _worker_run(job: SessionJob) -> SessionResult:
    try:
        return process_session(job, _WORKER["settings"], _WORKER["processor"], _worker_progress)
    finally:
        if _WORKER["pending"]:
            _WORKER["queue"].put(_WORKER["pending"])
            _WORKER["pending"] = 0


def run_jobs(
    jobs: Iterator[SessionJob],
    settings: JobSettings,
    workers: int,
    record: Callable[[SessionResult], None],
    update: Callable[[int], Any],
) -> None:
    """Prepare every job, with ``workers`` processes; ``record`` each result in the main
    process (the only writer of store.json), ``update`` the progress by frames."""
    if workers == 1:
        proc = FrameProcessor(settings)
        try:
            for job in jobs:
                record(process_session(job, settings, proc, update))
        finally:
            proc.close()
    else:
        _Pool(settings, workers, update).run(jobs, record)


class _Pool:
    """A process pool fed a bounded number of sessions at a time."""

    def __init__(self, settings: JobSettings, workers: int, update: Callable[[int], Any]):
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        ctx = mp.get_context("spawn")
        self.workers = workers
        self.update = update
        self.queue = ctx.Queue()
        self.pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx,
                                        initializer=_init_worker,
                                        initargs=(settings, self.queue, os.getpid()))

    def run(self, jobs: Iterator[SessionJob], record: Callable[[SessionResult], None]) -> None:
        from concurrent.futures import FIRST_COMPLETED, wait

        ok = False
        try:
            pending: set[Any] = set()
            exhausted = False
            while pending or not exhausted:
                if not exhausted:
                    exhausted = self._top_up(jobs, pending)
                if not pending:
                    break
                finished, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
                self._drain()
                for fut in finished:
                    record(fut.result())
            ok = True
        finally:
            self._stop(ok)

    def _top_up(self, jobs: Iterator[SessionJob], pending: set[Any]) -> bool:
        """Submit jobs until the in-flight limit; True when ``jobs`` is exhausted."""
        while len(pending) < IN_FLIGHT_PER_WORKER * self.workers:
            job = next(jobs, None)
            if job is None:
                return True
            pending.add(self.pool.submit(_worker_run, job))
        return False

    def _drain(self) -> None:
        while True:
            try:
                self.update(self.queue.get_nowait())
            except queue_mod.Empty:
                return

    def _stop(self, ok: bool) -> None:
        if not ok:
            # Ctrl-C or a failed session: stop the workers now rather than let them finish
            # sessions nobody will record (they ignore SIGINT; the next run redoes those)
            for p in list(getattr(self.pool, "_processes", {}).values()):
                p.terminate()
        self.pool.shutdown(wait=ok, cancel_futures=True)
        self._drain()
        self.queue.close()


def progress_bar(n_frames: int, enabled: bool) -> Any:
    """The tqdm bar of a prepare, on stderr so that stdout stays the summary."""
    from tqdm import tqdm

    return tqdm(total=n_frames, unit="frame", desc="prepare", disable=not enabled,
                dynamic_ncols=True, smoothing=0.05, mininterval=0.5, file=sys.stderr)
