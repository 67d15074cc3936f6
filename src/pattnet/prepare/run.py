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
  twice (:mod:`pattnet.prepare.plan`), frames are decoded one at a time
  (:mod:`pattnet.prepare.sources`), and patches go to disk every ``batch_size`` frames
  (:mod:`pattnet.prepare.session`).
* **Nothing is silently lost** (:mod:`pattnet.prepare.report`).
* **Shards** (``shard=(i, n)``) take every n-th session of the sorted session list, so a SLURM
  array or a Kubernetes indexed job can spread a dataset over machines;
  :func:`pattnet.prepare.merging.merge` joins the shard stores.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pattnet.constants import N_FOLDS
from pattnet.errors import PattnetError
from pattnet.io.atomic import check_output_dir
from pattnet.prepare.jobs import JobSettings, SessionResult, chunk_order
from pattnet.prepare.lock import existing_store_meta, store_lock
from pattnet.prepare.plan import (
    DatasetPlan,
    SessionPlan,
    check_resumable,
    iter_jobs,
    plan_sessions,
    registration_meta,
    settings_meta,
    stale_sessions,
)
from pattnet.prepare.pool import progress_bar, run_jobs
from pattnet.prepare.report import PrepareResult, build_report, write_report
from pattnet.store import StoreWriter


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
    from pattnet.datasets import detect_dataset, get_adapter

    t_start = time.monotonic()
    root = Path(root).expanduser().resolve()
    out = Path(out).expanduser()
    _check_sizes(workers, batch_size)
    name = (dataset or detect_dataset(root)).lower()
    opts = {k: v for k, v in (adapter_opts or {}).items() if v is not None}
    adapter = get_adapter(name, root, **opts)
    aus = [int(a) for a in adapter.aus]
    registration, template_version = registration_meta()
    settings = settings_meta(name, root, opts, aus, track, registration, shard)

    check_output_dir(out)
    plan = plan_sessions(adapter, shard)  # a dataset with nothing to prepare fails here
    with store_lock(out):
        check_resumable(out, existing_store_meta(out), settings)
        writer = _open_writer(out, aus, settings, template_version, plan)
        _redo_stale(echo, writer, plan)
        todo = _Todo(plan.mine, writer.chunk_names)
        _announce(echo, name, root, out, shard, plan, todo)
        job_settings = JobSettings(str(out), tuple(aus), batch_size, track, registration)
        t_work = time.monotonic()
        frames_done = _work(adapter, todo, job_settings, writer, workers, progress, plan)
        work_s = time.monotonic() - t_work
        writer.remove_stray_files()
        store = writer.finalize(chunk_order(writer.meta["chunks"]))
        report = build_report(store, plan.mine, plan.global_problems, {
            "dataset": name, "root": str(root), "shard": settings["shard"],
            "frames_prepared_this_run": frames_done,
            "seconds_this_run": round(work_s, 2),
            "frames_per_second_this_run": round(frames_done / work_s, 2) if work_s > 0 else None,
        })
        paths = write_report(out, report)
    _check_trainable(out, store, paths[0], shard)
    return PrepareResult(store, report, paths, frames_done, time.monotonic() - t_start)


def _check_trainable(out: Path, store: Any, report: Path, shard: tuple[int, int] | None) -> None:
    """A store train would refuse, said now: none of its frames usable (an error), or fewer
    people than the protocol's folds (a warning: it still serves registration checks, stats)."""
    if int(store.success.sum()) == 0:  # train would fail on it later, with less to say
        raise PattnetError(f"{out}: no usable frame: {len(store)} frame(s), none registered "
                           f"with labels; each session's problems are in {report}")
    people = len(set(store.subjects[store.success.astype(bool)].tolist()))
    if shard is None and people < N_FOLDS:  # a shard may hold few people; merged, it may not
        # a store of few people still serves registration checks and stats: said, not refused
        print(f"pattnet: warning: {out}: usable frames of {people} subject(s) only; "
              f"subject-independent {N_FOLDS}-fold cross-validation needs at least {N_FOLDS}, so "
              "pattnet train will refuse this store (add people and run prepare again to extend "
              "it)", file=sys.stderr)


def _redo_stale(echo: Callable[[str], None], writer: StoreWriter, plan: DatasetPlan) -> None:
    """Drop the chunks of sessions whose labels or files changed, so they are prepared again."""
    stale = stale_sessions(plan, writer.meta["chunks"])
    if stale:
        shown = ", ".join(f"{p.subject}/{p.session}" for p in stale[:5])
        more = f" and {len(stale) - 5} more" if len(stale) > 5 else ""
        echo(f"preparing again {len(stale)} session(s) whose labels or source files changed "
             f"since they were prepared: {shown}{more}")
        writer.drop_chunks({p.name for p in stale})


def _check_sizes(workers: int, batch_size: int) -> None:
    if workers < 1:
        raise PattnetError(f"--workers must be at least 1, got {workers}")
    if batch_size < 1:
        raise PattnetError(f"--batch-size must be at least 1, got {batch_size}")


def _open_writer(
    out: Path, aus: list[int], settings: dict[str, Any], template_version: str | None,
    plan: DatasetPlan,
) -> StoreWriter:
    """The store writer, with the chunks of earlier runs kept and their leftovers removed."""
    from pattnet import __version__

    meta = {
        "dataset": settings["dataset"],
        "pattnet_version": __version__,
        "template_version": template_version,
        "adapter_options": settings["adapter_options"],
        "prepare": {**settings, "template_version": template_version,
                    "sessions": len(plan.keys), "sessions_digest": plan.digest},
    }
    writer = StoreWriter(out, aus, meta)
    writer.remove_stray_files()  # temporaries of a killed run (we hold the lock)
    return writer


@dataclass
class _Todo:
    """This run's sessions split into those already in the store and those still to do."""

    mine: list[SessionPlan]
    done: set[str]

    def __post_init__(self) -> None:
        self.sessions = [p for p in self.mine if p.n_records > 0 and p.name not in self.done]
        self.names = {p.name for p in self.sessions}
        self.n_total = sum(p.n_records for p in self.mine)
        self.n_frames = sum(p.n_records for p in self.sessions)
        self.n_done_sessions = sum(1 for p in self.mine if p.name in self.done)


def _announce(
    echo: Callable[[str], None], name: str, root: Path, out: Path,
    shard: tuple[int, int] | None, plan: DatasetPlan, todo: _Todo,
) -> None:
    where = "" if shard is None else f" (shard {shard[0]}/{shard[1]}: {len(plan.mine)} sessions)"
    echo(f"{name} {root}: {len(plan.sessions)} sessions, "
         f"{sum(p.n_records for p in plan.sessions)} labelled frames with a source{where}")
    if todo.n_done_sessions:
        echo(f"resuming {out}: {todo.n_done_sessions} session(s) already prepared, "
             f"{len(todo.sessions)} to go ({todo.n_frames} of {todo.n_total} frames)")


class _Recorder:
    """Records each finished chunk in store.json (main process only), with the fingerprint of
    what it was made from (so a later run can tell when the sources changed), and counts its
    frames."""

    def __init__(self, writer: StoreWriter, plan: DatasetPlan):
        self.writer = writer
        self.fingerprints = {p.name: p.fingerprint for p in plan.mine}
        self.frames = 0

    def __call__(self, res: SessionResult) -> None:
        self.writer.record_chunk(res.name, res.n, subject=res.subject, session=res.session,
                                 failed=res.failed, problems=res.problems,
                                 fingerprint=self.fingerprints.get(res.name))
        self.frames += res.n


def _work(
    adapter: Any, todo: _Todo, settings: JobSettings, writer: StoreWriter, workers: int,
    progress: bool, plan: DatasetPlan,
) -> int:
    """Pass 2: prepare the sessions still to do; the number of frames prepared."""
    if not todo.sessions:
        return 0
    record = _Recorder(writer, plan)
    bar = progress_bar(todo.n_frames, progress)
    try:
        run_jobs(iter_jobs(adapter, todo.names), settings, workers, record, bar.update)
    finally:
        bar.close()
    return record.frames
