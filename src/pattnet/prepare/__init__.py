"""``prepare``: dataset root -> registered faces -> 9 patches + holistic face -> patch store.

How the work is cut, and why:

* **A session is the unit of work, of resumption and of sharding.** Each session becomes one
  chunk of the store (:mod:`pattnet.store`), streamed to disk a batch at a time under
  temporary names, renamed when whole, then recorded in ``store.json``. A job killed at any
  moment (``kill -9`` included) leaves whole chunks or none; running the same command again skips
  the recorded sessions and redoes the interrupted one from its start, so no frame is duplicated
  or missing. Registration tracks the face through a session (MediaPipe's video mode) with a
  fresh tracker per session, so a session's result does not depend on which worker, shard or
  run prepared it: ``--workers``, ``--shard`` and resumption all give byte-identical stores.
* **Memory is bounded by a batch**, not by the dataset nor by a session: the adapter is read
  twice (a cheap planning pass that keeps only counts and problems, then the work pass that
  holds the records of the sessions in flight), frames are decoded one at a time (videos
  sequentially with PyAV, never seeking), and patches go to disk every ``batch_size`` frames.
* **Nothing is silently lost.** A frame that cannot be read or registered stays in the frame
  table with ``success=0`` and zero patches (training leaves it out by default); labelled frames
  without an image, empty sessions and every other adapter problem go to
  ``STORE/prepare_report.csv`` / ``.json`` and are summarised on screen.
* **Shards** (``shard=(i, n)``) take every n-th session of the sorted session list, so a SLURM
  array or a Kubernetes indexed job can spread a dataset over machines; :func:`merge` joins the
  shard stores (hard links where possible) after checking that they are the n shards of one
  dataset (same session list digest) and that none is missing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import os
import re
import signal
import sys
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pattnet.errors import PattnetError, StoreError
from pattnet.io.atomic import atomic_write_json, atomic_write_text
from pattnet.store import (
    HOLISTIC_SHAPE,
    PATCH_SHAPE,
    ChunkWriter,
    PatchStore,
    StoreWriter,
    au_columns,
    merge_stores,
)

log = logging.getLogger(__name__)

REPORT_JSON = "prepare_report.json"
REPORT_CSV = "prepare_report.csv"
#: Test hook: SIGKILL this process after it has prepared this many frames (a real kill -9 at a
#: deterministic point, used by the resumption test).
KILL_ENV = "PATTNET_TEST_KILL_AFTER_FRAMES"
#: Frame numbers quoted per problem in store.json and the report (the count is always given).
MAX_FRAME_EXAMPLES = 20
#: Settings that must match when a prepare resumes into an existing store.
_RESUME_KEYS = ("dataset", "root", "adapter_options", "aus", "track", "registration", "shard")
#: Settings that must match between the shards of one merge (roots may differ per machine).
_MERGE_KEYS = ("dataset", "aus", "track", "registration", "template_version")


# --------------------------------------------------------------------------------------------
# small pieces
# --------------------------------------------------------------------------------------------
def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` -> (i, n), 0-based: ``--shard $SLURM_ARRAY_TASK_ID/16`` with ``--array=0-15``."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not m:
        raise PattnetError(f"--shard {text!r}: expected i/n, e.g. 0/8 (i counts from 0)")
    i, n = int(m.group(1)), int(m.group(2))
    if n < 1 or i >= n:
        raise PattnetError(f"--shard {text}: need 0 <= i < n (shards are numbered 0..n-1)")
    return i, n


def chunk_name(subject: str, session: str) -> str:
    """File-system-safe, unique chunk name of a session (readable part + CRC of the exact key)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{subject}_{session}").strip(".-")[:80] or "session"
    crc = zlib.crc32((subject + "\x1f" + session).encode("utf-8"))
    return f"{safe}-{crc:08x}"


def _session_sort_key(entry: dict[str, Any]) -> tuple[str, str, str]:
    return (str(entry.get("subject", "")), str(entry.get("session", "")), str(entry["name"]))


def _sessions_digest(keys: Sequence[tuple[str, str]]) -> str:
    h = hashlib.sha1()
    for s, t in sorted(keys):
        h.update(f"{s}\x1f{t}\n".encode())
    return h.hexdigest()


def _jsonable(obj: Any) -> Any:
    """Adapter options as JSON (paths to str, tuples to lists), for store.json comparisons."""
    return json.loads(json.dumps(obj, default=str))


def _problem_dict(p: Any) -> dict[str, Any]:
    frames = [int(f) for f in getattr(p, "frames", ())]
    return {
        "subject": p.subject,
        "session": p.session,
        "kind": p.kind,
        "n_frames": len(frames),
        "frames": frames[:MAX_FRAME_EXAMPLES],
        "path": str(p.path) if p.path is not None else None,
        "message": p.message,
    }


@contextlib.contextmanager
def _quiet_adapters() -> Iterator[None]:
    """The adapters log each problem as a warning; prepare reads them twice and reports them
    itself (summary on screen, everything in the report), so their log lines are held back."""
    lg = logging.getLogger("pattnet.datasets.adapters")
    old = lg.level
    lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        lg.setLevel(old)


@contextlib.contextmanager
def _store_lock(path: Path) -> Iterator[None]:
    """One writer per store: a second prepare on the same STORE would lose chunk records. The
    lock (flock) dies with its process, so kill -9 never leaves a stale lock behind."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on Windows
        yield
        return
    path.mkdir(parents=True, exist_ok=True)
    fh = open(path / ".prepare.lock", "w")  # noqa: SIM115 - held for the whole block
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise PattnetError(f"{path}: another pattnet prepare is writing this store") from exc
        yield
    finally:
        fh.close()


# --------------------------------------------------------------------------------------------
# one session (runs in the main process or in a worker)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class JobSettings:
    """What a worker needs besides the session: picklable, identical for every session."""

    store: str
    aus: tuple[int, ...]
    batch_size: int = 32
    track: bool = True
    registration: dict[str, Any] = field(default_factory=dict)


@dataclass
class SessionJob:
    subject: str
    session: str
    name: str
    records: list[Any]  # FrameRecord


@dataclass
class SessionResult:
    name: str
    subject: str
    session: str
    n: int
    failed: int
    problems: list[dict[str, Any]]
    seconds: float


def _iter_sources(records: Sequence[Any]) -> Iterator[tuple[Any, np.ndarray | None, str | None]]:
    """``(record, rgb, error)`` for each record, in order; ``rgb`` None with a one-line error
    when the frame cannot be read. Video records are decoded sequentially: a run of records of
    one video with increasing frame index is one pass over the video (PyAV, no seeking)."""
    from pattnet.io import read_image

    i = 0
    while i < len(records):
        r = records[i]
        if r.source_frame is None:
            try:
                yield r, read_image(r.source), None
            except PattnetError as exc:
                yield r, None, str(exc)
            i += 1
            continue
        j = i + 1
        while (j < len(records) and records[j].source == r.source
               and records[j].source_frame is not None
               and records[j].source_frame > records[j - 1].source_frame):
            j += 1
        yield from _decode_run(records[i:j])
        i = j


def _decode_run(run: Sequence[Any]) -> Iterator[tuple[Any, np.ndarray | None, str | None]]:
    from pattnet.io import iter_frames

    k = 0
    last = -1
    err: str | None = None
    frames = iter_frames(run[0].source)
    try:
        for fr in frames:
            last = fr.index
            if fr.index == run[k].source_frame:
                yield run[k], fr.rgb, None
                k += 1
                if k == len(run):
                    break
    except PattnetError as exc:
        err = str(exc)
    finally:
        frames.close()
    for r in run[k:]:
        yield r, None, err or (f"{r.source}: video ends after frame {last}, before frame "
                               f"{r.source_frame}")


class FrameProcessor:
    """Register one frame and cut its patches; a fresh tracker per session (see module doc)."""

    def __init__(self, settings: JobSettings):
        from pattnet.registration import RegistrationConfig

        self.settings = settings
        self.config = RegistrationConfig(**settings.registration)
        self._reg: Any = None

    def start_session(self) -> None:
        from pattnet.registration import Registrar

        if self._reg is not None and not self.settings.track:
            return  # photo mode keeps no state between frames: reuse MediaPipe
        self.close()
        self._reg = Registrar(self.config, static_image_mode=not self.settings.track)

    def end_session(self) -> None:
        """Drop the tracker (video mode) and hand freed memory back to the OS.

        Why the trim: each session's MediaPipe graph and 512x512 warps leave glibc's heap
        fragmented, and over hundreds of sessions a worker's RSS would ratchet up by tens of MB
        instead of staying flat.
        """
        if self.settings.track:
            self.close()
        _malloc_trim()

    def close(self) -> None:
        if self._reg is not None:
            self._reg.close()
            self._reg = None

    def __call__(self, rgb: np.ndarray) -> tuple[dict[str, Any], np.ndarray | None, np.ndarray | None,
                                                 str | None]:
        """``(row values, patches, holistic, failure reason)``; arrays None when not registered."""
        from pattnet.patches import crop_patches

        if self._reg is None:
            self.start_session()
        faces = self._reg.register(rgb)
        if not faces:
            return _failed_row(), None, None, "no face found"
        f = faces[0]
        row = {"confidence": round(float(f.confidence), 5), "pitch": round(float(f.pitch), 4),
               "yaw": round(float(f.yaw), 4), "roll": round(float(f.roll), 4),
               "visible_fraction": round(float(f.visible_fraction), 5)}
        if not f.success:
            return {**row, "success": 0}, None, None, "fit below the confidence threshold"
        patches, holistic = crop_patches(f)
        return {**row, "success": 1}, patches, holistic, None


def _malloc_trim() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # musl or another libc: nothing to trim
        pass


def _failed_row() -> dict[str, Any]:
    return {"success": 0, "confidence": 0.0, "pitch": math.nan, "yaw": math.nan, "roll": math.nan,
            "visible_fraction": 0.0}


_KILL_AFTER = [int(os.environ.get(KILL_ENV, "0") or 0), 0]


def _maybe_kill() -> None:
    if _KILL_AFTER[0] > 0:
        _KILL_AFTER[1] += 1
        if _KILL_AFTER[1] >= _KILL_AFTER[0]:
            os.kill(os.getpid(), signal.SIGKILL)


def process_session(
    job: SessionJob,
    settings: JobSettings,
    processor: FrameProcessor,
    progress: Callable[[int], None] | None = None,
) -> SessionResult:
    """Prepare one session into the chunk ``job.name`` (files committed, not yet recorded).

    Every record gives exactly one row, in record order: unreadable or unregistered frames get
    ``success=0`` and zero patches, and are counted in the session's problems.
    """
    t0 = time.monotonic()
    cols = au_columns(settings.aus)
    b = max(1, int(settings.batch_size))
    patches = np.zeros((b, *PATCH_SHAPE), dtype=np.uint8)
    holistic = np.zeros((b, *HOLISTIC_SHAPE), dtype=np.uint8)
    rows: list[dict[str, Any]] = []
    unreadable: list[tuple[int, str]] = []
    not_registered: dict[str, list[int]] = {}
    processor.start_session()

    with ChunkWriter(settings.store, job.name, settings.aus) as cw:

        def flush() -> None:
            if rows:
                cw.append(pd.DataFrame(rows), patches[: len(rows)], holistic[: len(rows)])
                rows.clear()

        for rec, rgb, err in _iter_sources(job.records):
            k = len(rows)
            p = h = None
            if rgb is not None:
                try:
                    values, p, h, why = processor(rgb)
                except PattnetError as exc:  # e.g. an image too small to hold a face
                    values, why, err = _failed_row(), None, str(exc)
                if why is not None:
                    not_registered.setdefault(why, []).append(rec.frame)
            else:
                values = _failed_row()
            if err is not None:
                unreadable.append((rec.frame, err))
            if p is None:
                patches[k] = 0
                holistic[k] = 0
            else:
                patches[k] = p
                holistic[k] = h
            row = {"subject": rec.subject, "session": rec.session, "frame": int(rec.frame), **values}
            row.update({c: int(v) for c, v in zip(cols, rec.labels, strict=True)})
            rows.append(row)
            if len(rows) == b:
                flush()
            if progress is not None:
                progress(1)
            _maybe_kill()
        flush()
        n = cw.commit()
    processor.end_session()

    problems = []
    if unreadable:
        frames = [f for f, _ in unreadable]
        shown = "; ".join(m for _, m in unreadable[:3])
        problems.append({
            "subject": job.subject, "session": job.session, "kind": "unreadable_frame",
            "n_frames": len(frames), "frames": frames[:MAX_FRAME_EXAMPLES], "path": None,
            "message": f"{len(frames)} frame(s) could not be read ({shown}"
                       f"{'; ...' if len(unreadable) > 3 else ''}); kept with success=0",
        })
    failed_reg = sorted(f for fr in not_registered.values() for f in fr)
    if failed_reg:
        why = ", ".join(f"{len(v)} {k}" for k, v in sorted(not_registered.items()))
        problems.append({
            "subject": job.subject, "session": job.session, "kind": "registration_failed",
            "n_frames": len(failed_reg), "frames": failed_reg[:MAX_FRAME_EXAMPLES], "path": None,
            "message": f"{len(failed_reg)} of {n} frame(s) not registered ({why}); kept with "
                       "success=0, left out of training",
        })
    return SessionResult(job.name, job.subject, job.session, n,
                         len(unreadable) + len(failed_reg), problems, time.monotonic() - t0)


# worker-process state (spawned workers: MediaPipe and fork do not mix)
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
    if _WORKER["pending"] >= 4:
        _WORKER["queue"].put(_WORKER["pending"])
        _WORKER["pending"] = 0


def _worker_run(job: SessionJob) -> SessionResult:
    try:
        return process_session(job, _WORKER["settings"], _WORKER["processor"], _worker_progress)
    finally:
        if _WORKER["pending"]:
            _WORKER["queue"].put(_WORKER["pending"])
            _WORKER["pending"] = 0


# --------------------------------------------------------------------------------------------
# the whole dataset
# --------------------------------------------------------------------------------------------
@dataclass
class _Plan:
    subject: str
    session: str
    n_records: int
    problems: list[dict[str, Any]]

    @property
    def key(self) -> tuple[str, str]:
        return (self.subject, self.session)

    @property
    def name(self) -> str:
        return chunk_name(self.subject, self.session)


@dataclass
class PrepareResult:
    """What a prepare (or merge) produced: the store and its report."""

    store: PatchStore
    report: dict[str, Any]
    report_paths: list[Path]
    frames_done: int = 0  # frames prepared by this run (0 when everything was already done)
    seconds: float = 0.0

    @property
    def summary(self) -> dict[str, Any]:
        return self.report["summary"]


def _check_out(out: Path) -> dict[str, Any] | None:
    meta_path = out / "store.json"
    if meta_path.is_file():
        try:
            return json.loads(meta_path.read_text())
        except json.JSONDecodeError as exc:
            raise StoreError(f"{meta_path}: corrupt store.json ({exc.msg})") from exc
    if out.exists() and (not out.is_dir() or any(p.name != ".prepare.lock" for p in out.iterdir())):
        raise PattnetError(f"{out}: exists and is not a patch store; choose a new --out")
    return None


def _registration_meta() -> tuple[dict[str, Any], str | None]:
    from pattnet.registration import RegistrationConfig, load_template

    try:
        version = str(load_template().version)
    except PattnetError:  # pragma: no cover - broken install
        version = None
    return dataclasses.asdict(RegistrationConfig()), version


def prepare(
    root: str | Path,
    out: str | Path,
    dataset: str | None = None,
    *,
    adapter_opts: dict[str, Any] | None = None,
    workers: int = 1,
    shard: tuple[int, int] | None = None,
    batch_size: int = 32,
    track: bool = True,
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> PrepareResult:
    """Prepare (or resume preparing) the store ``out`` from a dataset root.

    ``dataset`` is ``bp4d``, ``disfa`` or ``manifest`` (guessed from the layout when None);
    ``adapter_opts`` go to the adapter (``images``, ``threshold``, ``aus``...); ``shard=(i, n)``
    prepares every n-th session only (merge the n shard stores with :func:`merge`); ``track``
    follows the face through each session (video mode) rather than detecting it in every frame.
    """
    from pattnet import __version__
    from pattnet.datasets.adapters import detect_dataset, get_adapter

    t_start = time.monotonic()
    root = Path(root).expanduser().resolve()
    out = Path(out).expanduser()
    if workers < 1:
        raise PattnetError(f"--workers must be at least 1, got {workers}")
    if batch_size < 1:
        raise PattnetError(f"--batch-size must be at least 1, got {batch_size}")
    name = (dataset or detect_dataset(root)).lower()
    opts = {k: v for k, v in (adapter_opts or {}).items() if v is not None}
    adapter = get_adapter(name, root, **opts)
    aus = [int(a) for a in adapter.aus]
    registration, template_version = _registration_meta()
    settings_meta = _jsonable({
        "dataset": name, "root": str(root), "adapter_options": opts, "aus": aus, "track": track,
        "registration": registration,
        "shard": None if shard is None else {"index": shard[0], "count": shard[1]},
    })

    with _store_lock(out):
        existing = _check_out(out)
        if existing is not None:
            old = existing.get("prepare")
            if old is None:
                raise PattnetError(f"{out}: a patch store not made by prepare; choose a new --out")
            diff = [k for k in _RESUME_KEYS if _jsonable(old.get(k)) != settings_meta.get(k)]
            if diff:
                raise PattnetError(
                    f"{out}: this store was prepared with different settings "
                    f"({', '.join(f'{k}: {old.get(k)!r}' for k in diff)}); run the original "
                    "command to resume it, or choose a new --out")

        # pass 1: plan (counts and problems only; the records are dropped again)
        plans: list[_Plan] = []
        with _quiet_adapters():
            for s in adapter.iter_sessions():
                plans.append(_Plan(s.subject, s.session, len(s.records),
                                   [_problem_dict(p) for p in s.problems]))
            global_problems = [_problem_dict(p) for p in adapter.problems if p.subject is None]
        keys = sorted({p.key for p in plans})
        digest = _sessions_digest(keys)
        owned = set(keys) if shard is None else {k for i, k in enumerate(keys)
                                                 if i % shard[1] == shard[0]}
        mine = [p for p in plans if p.key in owned]

        meta = {
            "dataset": name,
            "pattnet_version": __version__,
            "template_version": template_version,
            "adapter_options": settings_meta["adapter_options"],
            "prepare": {**settings_meta, "template_version": template_version,
                        "sessions": len(keys), "sessions_digest": digest},
        }
        writer = StoreWriter(out, aus, meta)
        writer.remove_stray_files()  # temporaries of a killed run (we hold the lock)
        done = writer.chunk_names
        todo = [p for p in mine if p.n_records > 0 and p.name not in done]
        todo_names = {p.name for p in todo}
        n_total = sum(p.n_records for p in mine)
        n_todo = sum(p.n_records for p in todo)
        where = "" if shard is None else f" (shard {shard[0]}/{shard[1]}: {len(mine)} sessions)"
        echo(f"{name} {root}: {len(plans)} sessions, {sum(p.n_records for p in plans)} labelled "
             f"frames with a source{where}")
        n_done_sessions = sum(1 for p in mine if p.name in done)
        if n_done_sessions:
            echo(f"resuming {out}: {n_done_sessions} session(s) already prepared, "
                 f"{len(todo)} to go ({n_todo} of {n_total} frames)")

        settings = JobSettings(str(out), tuple(aus), batch_size, track, registration)
        frames_done = 0
        t_work = time.monotonic()
        if todo:
            frames_done = _run_jobs(adapter, todo_names, settings, writer, workers, n_todo,
                                    progress)
        work_s = time.monotonic() - t_work
        writer.remove_stray_files()
        order = [c["name"] for c in sorted(writer.meta["chunks"], key=_session_sort_key)]
        store = writer.finalize(order)
        report = _build_report(store, mine, global_problems, {
            "dataset": name, "root": str(root), "shard": settings_meta["shard"],
            "frames_prepared_this_run": frames_done,
            "seconds_this_run": round(work_s, 2),
            "frames_per_second_this_run": round(frames_done / work_s, 2) if work_s > 0 else None,
        })
        paths = write_report(out, report)
    return PrepareResult(store, report, paths, frames_done, time.monotonic() - t_start)


def _run_jobs(
    adapter: Any,
    todo_names: set[str],
    settings: JobSettings,
    writer: StoreWriter,
    workers: int,
    n_frames: int,
    progress: bool,
) -> int:
    """Pass 2: feed the sessions to do to ``workers`` processes, record each finished chunk."""
    from tqdm import tqdm

    bar = tqdm(total=n_frames, unit="frame", desc="prepare", disable=not progress,
               dynamic_ncols=True, smoothing=0.05, mininterval=0.5, file=sys.stderr)
    done_frames = 0

    def record(res: SessionResult) -> None:
        nonlocal done_frames
        writer.record_chunk(res.name, res.n, subject=res.subject, session=res.session,
                            failed=res.failed, problems=res.problems)
        done_frames += res.n

    def jobs() -> Iterator[SessionJob]:
        with _quiet_adapters():
            for s in adapter.iter_sessions():
                nm = chunk_name(s.subject, s.session)
                if nm in todo_names and s.records:
                    yield SessionJob(s.subject, s.session, nm, s.records)

    try:
        if workers == 1:
            proc = FrameProcessor(settings)
            try:
                for job in jobs():
                    record(process_session(job, settings, proc, bar.update))
            finally:
                proc.close()
        else:
            _run_pool(jobs(), settings, workers, record, bar)
    finally:
        bar.close()
    return done_frames


def _run_pool(
    jobs: Iterator[SessionJob],
    settings: JobSettings,
    workers: int,
    record: Callable[[SessionResult], None],
    bar: Any,
) -> None:
    import multiprocessing as mp
    import queue as queue_mod
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                               initargs=(settings, q, os.getpid()))

    def drain() -> None:
        while True:
            try:
                bar.update(q.get_nowait())
            except queue_mod.Empty:
                return

    ok = False
    try:
        pending: set[Any] = set()
        exhausted = False
        while pending or not exhausted:
            # at most 2 sessions per worker in flight: records of queued sessions stay small
            while not exhausted and len(pending) < 2 * workers:
                job = next(jobs, None)
                if job is None:
                    exhausted = True
                else:
                    pending.add(pool.submit(_worker_run, job))
            if not pending:
                break
            finished, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
            drain()
            for fut in finished:
                record(fut.result())
        ok = True
    finally:
        if not ok:
            # Ctrl-C or a failed session: stop the workers now rather than let them finish
            # sessions nobody will record (they ignore SIGINT; the next run redoes those)
            for p in list(getattr(pool, "_processes", {}).values()):
                p.terminate()
        pool.shutdown(wait=ok, cancel_futures=True)
        drain()
        q.close()


# --------------------------------------------------------------------------------------------
# merge
# --------------------------------------------------------------------------------------------
def merge(
    shards: Sequence[str | Path], out: str | Path, echo: Callable[[str], None] = print
) -> PrepareResult:
    """Join the complete shard stores of one sharded prepare into ``out``.

    Refuses shards of different datasets or settings, a shard given twice, and a missing shard
    (the shards must be 0..n-1 of one ``--shard i/n`` run over the same session list).
    Chunk files are hard-linked when ``out`` is on the same file system, copied otherwise.
    """
    t0 = time.monotonic()
    out = Path(out).expanduser()
    if not shards:
        raise PattnetError("--merge needs at least one shard store")
    stores = [PatchStore(Path(s).expanduser()) for s in shards]
    metas = [st.meta.get("prepare") for st in stores]
    for st, m in zip(stores, metas, strict=True):
        if m is None or not m.get("shard"):
            raise PattnetError(f"{st.path}: not a shard of a sharded prepare (no --shard i/n)")
    first = metas[0]
    for st, m in zip(stores[1:], metas[1:], strict=True):
        diff = [k for k in (*_MERGE_KEYS, "sessions_digest") if m.get(k) != first.get(k)]
        if m["shard"]["count"] != first["shard"]["count"]:
            diff.append("shard count")
        if diff:
            detail = ("they saw different session lists" if "sessions_digest" in diff
                      else ", ".join(diff) + " differ")
            raise PattnetError(f"{st.path} and {stores[0].path} are not shards of one prepare "
                               f"({detail})")
    count = int(first["shard"]["count"])
    index_of: dict[int, Path] = {}
    for st, m in zip(stores, metas, strict=True):
        i = int(m["shard"]["index"])
        if i in index_of:
            raise PattnetError(f"shard {i}/{count} given twice: {index_of[i]} and {st.path}")
        index_of[i] = st.path
    missing = [i for i in range(count) if i not in index_of]
    if missing:
        raise PattnetError(f"shard(s) {', '.join(f'{i}/{count}' for i in missing)} missing; "
                           f"merge needs all {count} shards")
    roots = sorted({str(m.get("root")) for m in metas})
    stores.sort(key=lambda st: int(st.meta["prepare"]["shard"]["index"]))

    prep = {**first, "shard": None, "root": roots[0] if len(roots) == 1 else roots,
            "merged_from": [str(st.path) for st in stores]}
    meta = {k: v for k, v in stores[0].meta.items()
            if k not in ("format", "version", "aus", "n", "chunks", "complete", "n_patches",
                         "patch_size", "holistic_size")}
    meta["prepare"] = prep
    counts = {"link": 0, "copy": 0}

    def on_chunk(_ch: dict[str, Any], how: str) -> None:
        counts[how] += 1

    with _store_lock(out):
        existing = _check_out(out)
        if existing is not None and existing.get("prepare", {}).get("merged_from") != prep["merged_from"]:
            raise PattnetError(f"{out}: exists and is not a merge of these shards; choose a new --out")
        store = merge_stores([st.path for st in stores], out, meta,
                             order=lambda chunks: [c["name"] for c in
                                                   sorted(chunks, key=_session_sort_key)],
                             on_chunk=on_chunk)
        sessions: list[_Plan] = []
        problems: list[dict[str, Any]] = []
        seen: set[str] = set()
        globals_: list[dict[str, Any]] = []
        for st in stores:
            rep = _read_report(st.path)
            for s in rep.get("sessions", []):
                sessions.append(_Plan(s["subject"], s["session"], int(s["labelled_frames"]), []))
            for p in rep.get("problems", []):
                key = json.dumps(p, sort_keys=True)
                if key in seen or p.get("kind") in ("unreadable_frame", "registration_failed"):
                    continue  # chunk problems come back from store.json; globals once
                seen.add(key)
                (globals_ if p.get("subject") is None else problems).append(p)
        by_key = {p.key: p for p in sessions}
        for p in problems:
            plan = by_key.get((p["subject"], p["session"]))
            if plan is not None:
                plan.problems.append(p)
            else:
                globals_.append(p)
        report = _build_report(store, sorted(sessions, key=lambda p: p.key), globals_, {
            "dataset": first.get("dataset"), "root": prep["root"], "shard": None,
            "merged_from": prep["merged_from"], "chunks_linked": counts["link"],
            "chunks_copied": counts["copy"],
        })
        paths = write_report(out, report)
    echo(f"merged {len(stores)} shards into {out}: {counts['link']} chunk(s) hard-linked, "
         f"{counts['copy']} copied")
    return PrepareResult(store, report, paths, 0, time.monotonic() - t0)


def _read_report(path: Path) -> dict[str, Any]:
    f = path / REPORT_JSON
    if not f.is_file():
        raise PattnetError(f"{f}: missing; was {path} made by pattnet prepare?")
    try:
        return json.loads(f.read_text())
    except json.JSONDecodeError as exc:
        raise StoreError(f"{f}: corrupt report ({exc.msg})") from exc


# --------------------------------------------------------------------------------------------
# the report
# --------------------------------------------------------------------------------------------
def _build_report(
    store: PatchStore, plans: Sequence[_Plan], global_problems: list[dict[str, Any]],
    extra: dict[str, Any],
) -> dict[str, Any]:
    from pattnet.datasets.labels import base_rates

    chunks = {c["name"]: c for c in store.meta["chunks"]}
    sessions = []
    problems = list(global_problems)
    for p in plans:
        ch = chunks.get(p.name)
        status = "done" if ch is not None else ("empty" if p.n_records == 0 else "missing")
        sessions.append({"subject": p.subject, "session": p.session, "chunk": p.name if ch else None,
                         "labelled_frames": p.n_records,
                         "frames": int(ch["n"]) if ch else 0,
                         "failed": int(ch.get("failed", 0)) if ch else 0, "status": status})
        problems += p.problems
        if ch is not None:
            problems += ch.get("problems", [])
        if status == "empty" and not any(q["kind"] == "empty_session" for q in p.problems):
            problems.append({"subject": p.subject, "session": p.session, "kind": "empty_session",
                             "n_frames": 0, "frames": [], "path": None,
                             "message": "no usable frames (see the session's other problems); "
                                        "nothing prepared"})
    table = store.table
    ok = table["success"].astype(int) == 1
    rates = base_rates(table[ok]) if len(table) else None
    kinds: dict[str, int] = {}
    for q in problems:
        kinds[q["kind"]] = kinds.get(q["kind"], 0) + 1
    summary = {
        "frames": int(len(table)),
        "registered": int(ok.sum()),
        "failed": int((~ok).sum()),
        "failed_share": round(float((~ok).mean()), 4) if len(table) else 0.0,
        "subjects": int(table["subject"].nunique()),
        "sessions": len(sessions),
        "sessions_done": sum(1 for s in sessions if s["status"] == "done"),
        "sessions_empty": sum(1 for s in sessions if s["status"] == "empty"),
        "problems": len(problems),
        "problems_by_kind": dict(sorted(kinds.items())),
    }
    br = {}
    if rates is not None:
        for au, r in rates.iterrows():
            br[str(au)] = {"positives": int(r["positives"]), "coded": int(r["coded"]),
                           "base_rate": None if math.isnan(r["base_rate"])
                           else round(float(r["base_rate"]), 4)}
    return {**extra, "store": str(store.path), "summary": summary,
            "base_rates_registered": br, "sessions": sessions, "problems": problems}


def write_report(out: Path, report: dict[str, Any]) -> list[Path]:
    """``prepare_report.json`` (everything) and ``prepare_report.csv`` (one row per problem)."""
    atomic_write_json(out / REPORT_JSON, report)
    cols = ["subject", "session", "kind", "n_frames", "frames", "path", "message"]
    rows = [{**{c: q.get(c) for c in cols},
             "frames": " ".join(str(f) for f in q.get("frames", []))} for q in report["problems"]]
    atomic_write_text(out / REPORT_CSV, pd.DataFrame(rows, columns=cols).to_csv(index=False))
    return [out / REPORT_CSV, out / REPORT_JSON]


def format_report(report: dict[str, Any], max_problems: int = 10) -> str:
    """The on-screen summary: frames, failures, per-AU base rates, problems by session."""
    s = report["summary"]
    lines = [
        f"{s['frames']} frames in {s['sessions_done']} session(s) of {s['subjects']} subject(s): "
        f"{s['registered']} registered, {s['failed']} failed ({100 * s['failed_share']:.1f}%, "
        "kept with success=0, left out of training)",
    ]
    if s["sessions_empty"]:
        lines.append(f"{s['sessions_empty']} session(s) without usable frames")
    br = report.get("base_rates_registered") or {}
    if br:
        names = list(br)
        lines.append("")
        lines.append(f"{'':11s}" + "".join(f"{a:>7s}" for a in names))
        lines.append(f"{'positives':11s}" + "".join(f"{br[a]['positives']:7d}" for a in names))
        lines.append(f"{'base rate':11s}" + "".join(
            f"{'n/a':>7s}" if br[a]["base_rate"] is None else f"{br[a]['base_rate']:7.3f}"
            for a in names))
    probs = report["problems"]
    if probs:
        lines.append("")
        kinds = ", ".join(f"{k} {v}" for k, v in s["problems_by_kind"].items())
        lines.append(f"{len(probs)} problem(s) ({kinds}):")
        for q in probs[:max_problems]:
            where = f"{q['subject']}/{q['session']}: " if q.get("subject") is not None else ""
            lines.append(f"  {where}{q['message']}")
        if len(probs) > max_problems:
            lines.append(f"  ... {len(probs) - max_problems} more")
    lines.append(f"report: {Path(report['store']) / REPORT_CSV}, {REPORT_JSON}")
    return "\n".join(lines)
