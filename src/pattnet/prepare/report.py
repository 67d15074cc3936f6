"""The prepare report: every session's status and every problem, as JSON, CSV and on screen.

Why a report: nothing is silently lost. A frame that cannot be read or registered stays in the
store with ``success=0``; labelled frames without an image, empty sessions and every other
adapter problem are listed here, so a user can see what the store lacks and why.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pattnet.errors import PattnetError, StoreError
from pattnet.io.atomic import atomic_write_json, atomic_write_text
from pattnet.prepare.plan import SessionPlan
from pattnet.store import PatchStore

REPORT_JSON = "prepare_report.json"
REPORT_CSV = "prepare_report.csv"
#: Columns of the CSV report, one row per problem.
REPORT_COLUMNS = ["subject", "session", "kind", "n_frames", "frames", "path", "message"]


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


def build_report(
    store: PatchStore, plans: Sequence[SessionPlan], global_problems: list[dict[str, Any]],
    extra: dict[str, Any],
) -> dict[str, Any]:
    """The report of ``store``: ``extra`` (run facts), summary, base rates, sessions, problems."""
    sessions, problems = _sessions_and_problems(store, plans, global_problems)
    return {**extra, "store": str(store.path), "summary": _summary(store, sessions, problems),
            "base_rates_registered": _base_rates(store), "sessions": sessions,
            "problems": problems}


def _sessions_and_problems(
    store: PatchStore, plans: Sequence[SessionPlan], global_problems: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
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
    return sessions, problems


def _summary(
    store: PatchStore, sessions: list[dict[str, Any]], problems: list[dict[str, Any]]
) -> dict[str, Any]:
    table = store.table
    ok = table["success"].astype(int) == 1
    kinds: dict[str, int] = {}
    for q in problems:
        kinds[q["kind"]] = kinds.get(q["kind"], 0) + 1
    return {
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


def _base_rates(store: PatchStore) -> dict[str, dict[str, Any]]:
    """Per-AU positives and base rate over the registered frames (what training will see)."""
    from pattnet.datasets.labels import base_rates

    table = store.table
    if not len(table):
        return {}
    ok = table["success"].astype(int) == 1
    br = {}
    for au, r in base_rates(table[ok]).iterrows():
        br[str(au)] = {"positives": int(r["positives"]), "coded": int(r["coded"]),
                       "base_rate": None if math.isnan(r["base_rate"])
                       else round(float(r["base_rate"]), 4)}
    return br


def write_report(out: Path, report: dict[str, Any]) -> list[Path]:
    """``prepare_report.json`` (everything) and ``prepare_report.csv`` (one row per problem)."""
    atomic_write_json(out / REPORT_JSON, report)
    rows = [{**{c: q.get(c) for c in REPORT_COLUMNS},
             "frames": " ".join(str(f) for f in q.get("frames", []))} for q in report["problems"]]
    atomic_write_text(out / REPORT_CSV,
                      pd.DataFrame(rows, columns=REPORT_COLUMNS).to_csv(index=False))
    return [out / REPORT_CSV, out / REPORT_JSON]


def read_report(path: Path) -> dict[str, Any]:
    """The JSON report of the store at ``path`` (a merge rebuilds its sessions from them)."""
    f = path / REPORT_JSON
    if not f.is_file():
        raise PattnetError(f"{f}: missing; was {path} made by pattnet prepare?")
    try:
        return json.loads(f.read_text())
    except json.JSONDecodeError as exc:
        raise StoreError(f"{f}: corrupt report ({exc.msg})") from exc


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
    lines += _base_rate_lines(report.get("base_rates_registered") or {})
    lines += _problem_lines(report["problems"], s["problems_by_kind"], max_problems)
    lines.append(f"report: {Path(report['store']) / REPORT_CSV}, {REPORT_JSON}")
    return "\n".join(lines)


def _base_rate_lines(br: dict[str, dict[str, Any]]) -> list[str]:
    if not br:
        return []
    names = list(br)
    return [
        "",
        f"{'':11s}" + "".join(f"{a:>7s}" for a in names),
        f"{'positives':11s}" + "".join(f"{br[a]['positives']:7d}" for a in names),
        f"{'base rate':11s}" + "".join(
            f"{'n/a':>7s}" if br[a]["base_rate"] is None else f"{br[a]['base_rate']:7.3f}"
            for a in names),
    ]


def _problem_lines(probs: list[dict[str, Any]], by_kind: dict[str, int], max_problems: int) -> list[str]:
    if not probs:
        return []
    kinds = ", ".join(f"{k} {v}" for k, v in by_kind.items())
    lines = ["", f"{len(probs)} problem(s) ({kinds}):"]
    for q in probs[:max_problems]:
        where = f"{q['subject']}/{q['session']}: " if q.get("subject") is not None else ""
        lines.append(f"  {where}{q['message']}")
    if len(probs) > max_problems:
        lines.append(f"  ... {len(probs) - max_problems} more")
    return lines
