"""Atomic file writes: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pattnet.errors import PattnetError


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


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary sibling name to write ``path`` through, for writers that need a file name
    (torch.save, np.savez, pandas, matplotlib, a video encoder).

    The file appears at ``path`` only when the block ends normally; if it raises, the partial
    file is removed and ``path`` keeps what it had.
    """
    p = Path(path)
    tmp = tmp_path_for(p)
    try:
        yield tmp
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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


def read_json(path: str | Path) -> Any:
    """A JSON file written by the writers above; errors name the file and the problem."""
    p = Path(path)
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise PattnetError(f"{p} is not valid JSON ({exc.msg}, line {exc.lineno})") from exc
    except UnicodeDecodeError as exc:
        raise PattnetError(f"{p} is not valid JSON (not UTF-8 text)") from exc
    except OSError as exc:
        raise PattnetError(f"cannot read {p}: {exc.strerror}") from exc
