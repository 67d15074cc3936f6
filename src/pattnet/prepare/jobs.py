"""What one unit of work (a session) is: its settings, its result, and the names and keys
derived from sessions, identical in the main process, in workers and across shards."""

from __future__ import annotations

import hashlib
import json
import os
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pattnet.errors import PattnetError

#: Frame numbers quoted per problem in store.json and the report (the count is always given).
MAX_FRAME_EXAMPLES = 20


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


def session_sort_key(entry: dict[str, Any]) -> tuple[str, str, str]:
    """Order of a store's chunks: by session, so every way of preparing gives the same store."""
    return (str(entry.get("subject", "")), str(entry.get("session", "")), str(entry["name"]))


def chunk_order(chunks: Sequence[dict[str, Any]]) -> list[str]:
    """Chunk names of store.json entries in :func:`session_sort_key` order."""
    return [c["name"] for c in sorted(chunks, key=session_sort_key)]


def sessions_digest(keys: Sequence[tuple[str, str]]) -> str:
    """Fingerprint of a session list, so a merge can tell that shards saw the same dataset."""
    h = hashlib.sha1()
    for s, t in sorted(keys):
        h.update(f"{s}\x1f{t}\n".encode())
    return h.hexdigest()


def session_fingerprint(records: Sequence[Any]) -> str:
    """Fingerprint of what a session's chunk is made from: every record (frame, source, decoded
    frame, labels) and each source file's size and modification time. A label edited in place
    or an image replaced under the same name changes it; reading it costs one stat per file."""
    h = hashlib.sha1()
    seen: set[str] = set()
    for r in records:
        h.update(f"{r.frame}|{r.source}|{r.source_frame}|{r.labels}\n".encode())
        src = str(r.source)
        if src not in seen:
            seen.add(src)
            try:
                st = os.stat(src)
                h.update(f"{src}|{st.st_size}|{st.st_mtime_ns}\n".encode())
            except OSError:
                h.update(f"{src}|missing\n".encode())
    return h.hexdigest()


def jsonable(obj: Any) -> Any:
    """Adapter options as JSON (paths to str, tuples to lists), for store.json comparisons."""
    return json.loads(json.dumps(obj, default=str))


def problem_dict(p: Any) -> dict[str, Any]:
    """An adapter problem as the report and store.json keep it."""
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
