"""What to prepare: the session list read from the adapter, this shard's part of it, the
settings a resumed run must share, and the jobs of the sessions still to do.

Why the adapter is read twice: the planning pass keeps only counts and problems, and the work
pass holds only the records of the sessions in flight, so memory does not grow with the dataset.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pattnet.datasets import LOGGER_NAME
from pattnet.errors import PattnetError
from pattnet.prepare.jobs import (
    SessionJob,
    chunk_name,
    jsonable,
    problem_dict,
    session_fingerprint,
    sessions_digest,
)

#: Settings that must match when a prepare resumes into an existing store.
RESUME_KEYS = ("dataset", "root", "adapter_options", "aus", "track", "registration", "shard")


@dataclass
class SessionPlan:
    """A session as planned: its size and its adapter problems, not its records."""

    subject: str
    session: str
    n_records: int
    problems: list[dict[str, Any]]
    fingerprint: str = ""  # of its labels and source files (session_fingerprint)

    @property
    def key(self) -> tuple[str, str]:
        return (self.subject, self.session)

    @property
    def name(self) -> str:
        return chunk_name(self.subject, self.session)


@dataclass
class DatasetPlan:
    """Every session of the dataset, and the part of it this run (or shard) owns."""

    sessions: list[SessionPlan]
    global_problems: list[dict[str, Any]]
    keys: list[tuple[str, str]]  # sorted session keys of the whole dataset
    mine: list[SessionPlan]

    @property
    def digest(self) -> str:
        return sessions_digest(self.keys)


@contextlib.contextmanager
def quiet_adapters() -> Iterator[None]:
    """The adapters log each problem as a warning; prepare reads them twice and reports them
    itself (summary on screen, everything in the report), so their log lines are held back."""
    lg = logging.getLogger(LOGGER_NAME)
    old = lg.level
    lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        lg.setLevel(old)


def plan_sessions(adapter: Any, shard: tuple[int, int] | None) -> DatasetPlan:
    """Pass 1: counts and problems of every session (the records are dropped again).

    A shard ``(i, n)`` owns every n-th session of the sorted session list, so the shards of one
    dataset are disjoint and together cover it, whatever order the adapter yields sessions in.
    """
    plans: list[SessionPlan] = []
    with quiet_adapters():
        for s in adapter.iter_sessions():
            plans.append(SessionPlan(s.subject, s.session, len(s.records),
                                     [problem_dict(p) for p in s.problems],
                                     session_fingerprint(s.records)))
        global_problems = [problem_dict(p) for p in adapter.problems if p.subject is None]
    keys = sorted({p.key for p in plans})
    owned = set(keys) if shard is None else {k for i, k in enumerate(keys)
                                             if i % shard[1] == shard[0]}
    return DatasetPlan(plans, global_problems, keys, [p for p in plans if p.key in owned])


def stale_sessions(plan: DatasetPlan, chunks: list[dict[str, Any]]) -> list[SessionPlan]:
    """The sessions already in the store whose labels or source files changed since they were
    prepared (their recorded fingerprint differs, or a chunk from before fingerprints has none):
    a resumed prepare redoes them, so the store never disagrees with its sources."""
    recorded = {c["name"]: c.get("fingerprint") for c in chunks}
    return [p for p in plan.mine if p.name in recorded and recorded[p.name] != p.fingerprint]


def iter_jobs(adapter: Any, todo_names: set[str]) -> Iterator[SessionJob]:
    """Pass 2: the sessions still to do, with their records, one at a time."""
    with quiet_adapters():
        for s in adapter.iter_sessions():
            nm = chunk_name(s.subject, s.session)
            if nm in todo_names and s.records:
                yield SessionJob(s.subject, s.session, nm, s.records)


def registration_meta() -> tuple[dict[str, Any], str | None]:
    """Registration settings and face template version, recorded so a resume can check them."""
    from pattnet.registration import RegistrationConfig, load_template

    try:
        version = str(load_template().version)
    except PattnetError:  # pragma: no cover - broken install
        version = None
    return dataclasses.asdict(RegistrationConfig()), version


def settings_meta(
    name: str, root: Path, opts: dict[str, Any], aus: list[int], track: bool,
    registration: dict[str, Any], shard: tuple[int, int] | None,
) -> dict[str, Any]:
    """The ``prepare`` settings as store.json keeps them (JSON types, for comparisons)."""
    return jsonable({
        "dataset": name, "root": str(root), "adapter_options": opts, "aus": aus, "track": track,
        "registration": registration,
        "shard": None if shard is None else {"index": shard[0], "count": shard[1]},
    })


def check_resumable(out: Path, existing: dict[str, Any] | None, settings: dict[str, Any]) -> None:
    """Refuse to resume a store made otherwise: its chunks would not match the new ones."""
    if existing is None:
        return
    old = existing.get("prepare")
    if old is None:
        raise PattnetError(f"{out}: a patch store not made by prepare; choose a new --out")
    diff = [k for k in RESUME_KEYS if jsonable(old.get(k)) != settings.get(k)]
    if diff:
        raise PattnetError(
            f"{out}: this store was prepared with different settings "
            f"({', '.join(f'{k}: {old.get(k)!r}' for k in diff)}); run the original "
            "command to resume it, or choose a new --out")
