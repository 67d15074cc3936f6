"""Joining the shard stores of one sharded prepare into one store, as if prepared in one run.

Why the checks: shards of different datasets or settings, a shard given twice or a missing one
would give a store that looks whole and is not; they must be shards 0..n-1 of one
``--shard i/n`` run over the same session list (same session list digest).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pattnet.errors import PattnetError
from pattnet.prepare.jobs import chunk_order
from pattnet.prepare.lock import existing_store_meta, store_lock
from pattnet.prepare.plan import SessionPlan
from pattnet.prepare.report import PrepareResult, build_report, read_report, write_report
from pattnet.store import PatchStore, merge_stores

#: Settings that must match between the shards of one merge (roots may differ per machine).
MERGE_KEYS = ("dataset", "aus", "track", "registration", "template_version")
#: store.json entries that describe the merged store's own contents, not the shards'.
_OWN_META = ("format", "version", "aus", "n", "chunks", "complete", "n_patches", "patch_size",
             "holistic_size")
#: Chunk problems: store.json carries them into the merged store, so the reports' copies go.
_CHUNK_PROBLEMS = ("unreadable_frame", "registration_failed")


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
    stores, metas = _open_shards(shards)
    _check_one_prepare(stores, metas)
    _check_all_shards(stores, metas)
    first = metas[0]
    roots = sorted({str(m.get("root")) for m in metas})
    stores.sort(key=lambda st: int(st.meta["prepare"]["shard"]["index"]))
    prep = {**first, "shard": None, "root": roots[0] if len(roots) == 1 else roots,
            "merged_from": [str(st.path) for st in stores]}
    meta = {k: v for k, v in stores[0].meta.items() if k not in _OWN_META}
    meta["prepare"] = prep
    counts = {"link": 0, "copy": 0}

    def on_chunk(_ch: dict[str, Any], how: str) -> None:
        counts[how] += 1

    with store_lock(out):
        existing = existing_store_meta(out)
        if existing is not None and existing.get("prepare", {}).get("merged_from") != prep["merged_from"]:
            raise PattnetError(f"{out}: exists and is not a merge of these shards; choose a new --out")
        store = merge_stores([st.path for st in stores], out, meta, order=chunk_order,
                             on_chunk=on_chunk)
        sessions, global_problems = _merged_sessions(stores)
        report = build_report(store, sessions, global_problems, {
            "dataset": first.get("dataset"), "root": prep["root"], "shard": None,
            "merged_from": prep["merged_from"], "chunks_linked": counts["link"],
            "chunks_copied": counts["copy"],
        })
        paths = write_report(out, report)
    echo(f"merged {len(stores)} shards into {out}: {counts['link']} chunk(s) hard-linked, "
         f"{counts['copy']} copied")
    return PrepareResult(store, report, paths, 0, time.monotonic() - t0)


def _open_shards(shards: Sequence[str | Path]) -> tuple[list[PatchStore], list[dict[str, Any]]]:
    """The shard stores and their ``prepare`` settings; each must come from a ``--shard`` run."""
    if not shards:
        raise PattnetError("--merge needs at least one shard store")
    stores = [PatchStore(Path(s).expanduser()) for s in shards]
    metas = [st.meta.get("prepare") for st in stores]
    for st, m in zip(stores, metas, strict=True):
        if m is None or not m.get("shard"):
            raise PattnetError(f"{st.path}: not a shard of a sharded prepare (no --shard i/n)")
    return stores, [m for m in metas if m is not None]


def _check_one_prepare(stores: list[PatchStore], metas: list[dict[str, Any]]) -> None:
    first = metas[0]
    for st, m in zip(stores[1:], metas[1:], strict=True):
        diff = [k for k in (*MERGE_KEYS, "sessions_digest") if m.get(k) != first.get(k)]
        if m["shard"]["count"] != first["shard"]["count"]:
            diff.append("shard count")
        if diff:
            detail = ("they saw different session lists" if "sessions_digest" in diff
                      else ", ".join(diff) + " differ")
            raise PattnetError(f"{st.path} and {stores[0].path} are not shards of one prepare "
                               f"({detail})")


def _check_all_shards(stores: list[PatchStore], metas: list[dict[str, Any]]) -> None:
    """Each of the shards 0..n-1 exactly once."""
    count = int(metas[0]["shard"]["count"])
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


def _merged_sessions(
    stores: list[PatchStore],
) -> tuple[list[SessionPlan], list[dict[str, Any]]]:
    """The sessions (with their adapter problems) and dataset-wide problems of the shards'
    reports; every shard saw the dataset-wide ones, so each is kept once."""
    sessions: list[SessionPlan] = []
    problems: list[dict[str, Any]] = []
    seen: set[str] = set()
    global_problems: list[dict[str, Any]] = []
    for st in stores:
        rep = read_report(st.path)
        for s in rep.get("sessions", []):
            sessions.append(SessionPlan(s["subject"], s["session"], int(s["labelled_frames"]), []))
        for p in rep.get("problems", []):
            key = json.dumps(p, sort_keys=True)
            if key in seen or p.get("kind") in _CHUNK_PROBLEMS:
                continue
            seen.add(key)
            (global_problems if p.get("subject") is None else problems).append(p)
    by_key = {p.key: p for p in sessions}
    for p in problems:
        plan = by_key.get((p["subject"], p["session"]))
        if plan is not None:
            plan.problems.append(p)
        else:
            global_problems.append(p)
    return sorted(sessions, key=lambda p: p.key), global_problems
