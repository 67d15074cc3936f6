"""Atomic file writes: a reader sees the old file or the new one, never half of one.

Every output of pattnet reaches its final name through this module, for three reasons:

- a job killed mid-write (kill -9, power loss) must not leave a truncated result that a resumed
  run would trust;
- two processes writing the same output must not share a temporary file: each temporary name
  holds the process id and a random token, so one process never renames or deletes another's;
- an output that must not be replaced silently (a finished detection CSV, a model file) is
  published with ``overwrite=False``: the link that publishes it fails when the name exists, so
  the second writer learns it lost the race instead of destroying the first writer's result.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import json
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from pattnet.errors import PattnetError


class OutputExistsError(PattnetError):
    """A finished output is already at the name and the caller asked not to replace it."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: The longest file name most file systems take (ext4, APFS, NTFS: 255 bytes).
NAME_MAX = 255


def fit_name(name: str, extra: int) -> str:
    """``name``, shortened when ``extra`` more characters would not fit a file name: its start
    and a digest of the whole (so two long names stay apart), its ending kept."""
    if len(name.encode()) + extra <= NAME_MAX:
        return name
    import hashlib

    digest = hashlib.sha256(name.encode()).hexdigest()[:12]
    keep = max(1, (NAME_MAX - extra - len(digest) - 8) // 4)  # 4: the widest UTF-8 character
    return f"{name[:keep]}~{digest}"


def _token() -> str:
    return f"{os.getpid()}-{secrets.token_hex(4)}"


def unique_tmp(path: str | Path, suffix: str = ".tmp") -> Path:
    """A hidden sibling name no other process or thread will pick (pid + random token), short
    enough for any legal ``path``; the final suffix is kept so that writers choosing a format by
    suffix (matplotlib, PyAV) work."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tail = f".{_token()}{suffix}{p.suffix}"
    return p.with_name(f".{fit_name(p.name, len(tail) + 1)}{tail}")


def publish(tmp: Path, path: Path, *, overwrite: bool = True) -> Path:
    """Give the finished file ``tmp`` its name ``path``.

    ``overwrite=False`` never replaces an existing ``path``: the hard link that publishes it is
    atomic and fails on an existing name (a file system without hard links falls back to an
    existence check before the rename). ``tmp`` is gone afterwards either way.
    """
    try:
        if overwrite:
            os.replace(tmp, path)
        elif not _link_new(tmp, path):
            raise OutputExistsError(f"{path}: already exists (written by another run); not "
                                    "replaced")
        return path
    finally:
        tmp.unlink(missing_ok=True)


def _link_new(tmp: Path, path: Path) -> bool:
    """Give ``tmp``'s file the name ``path`` too, unless ``path`` exists: False then. Atomic where
    the file system has hard links; elsewhere an existence check before the rename."""
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV,
                             errno.EMLINK):
            raise
        if path.exists():
            return False
        os.replace(tmp, path)
        return True


def apart(path: Path, k: int) -> Path:
    """The ``k``-th name beside ``path`` (``clip.csv`` -> ``clip-2.csv``, k >= 2)."""
    return path if k < 2 else path.with_name(f"{path.stem}-{k}{path.suffix}")


def publish_apart(tmp: Path, path: Path, tries: int = 1000) -> Path:
    """Give ``tmp`` the name ``path``, or, when a finished file already holds it, the first free
    one of ``path-2``, ``path-3``, ...: never replaces anything, also when another process
    publishes at the same moment (each try is an atomic no-clobber link). Returns the name."""
    try:
        for k in range(1, tries + 1):
            if _link_new(tmp, apart(path, k)):
                return apart(path, k)
        raise OutputExistsError(f"{path}: {tries} files of this name exist already")
    finally:
        tmp.unlink(missing_ok=True)


def publish_as(tmp: Path, path: Path, *, overwrite: bool) -> Path:
    """:func:`publish` (``overwrite``: replace what is there) or :func:`publish_apart` (never
    replace: take the next free name); returns the name the file got."""
    return publish(tmp, path) if overwrite else publish_apart(tmp, path)


def _output_folder(path: str | Path, flag: str) -> Path:
    """``path``, refused in one line when a file holds the name."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise PattnetError(f"{p}: {flag} names a file, not a folder; choose another {flag}")
    return p


def _write_probe(folder: Path) -> None:
    """Create and remove a file in ``folder``: the one sure test that this process may write."""
    fd, probe = tempfile.mkstemp(prefix=".pattnet-write-test.", dir=folder)
    os.close(fd)
    os.unlink(probe)


def check_output_dir(path: str | Path, flag: str = "--out") -> Path:
    """Refuse, in one line, an output folder this process could not create or write in, without
    creating anything (a run that then fails on its inputs leaves no empty folder behind)."""
    p = _output_folder(path, flag)
    probe_in = p if p.exists() else next((a for a in p.absolute().parents if a.exists()), None)
    if probe_in is None or not probe_in.is_dir():
        raise PattnetError(f"{p}: cannot create this {flag} folder ({probe_in} is not a folder)")
    try:
        _write_probe(probe_in)
    except OSError as exc:
        raise PattnetError(f"{p}: cannot write {'in this' if probe_in == p else 'this'} {flag} "
                           f"folder ({exc.strerror or exc})") from exc
    return p


def check_output_file(path: str | Path, flag: str, suffixes: Sequence[str] | None = None
                      ) -> Path:
    """Refuse, in one line and before any work, an output file name that cannot be written as
    asked: a folder of that name, an ending none of ``suffixes`` (the formats the writer
    has; None: any), a folder above it that cannot be created or written in. Creates nothing."""
    p = Path(path)
    endings = ", ".join(suffixes or ())
    if p.is_dir():
        raise PattnetError(f"{p}: {flag} is a folder; give a file name"
                           + (f" ending in {endings}" if suffixes else " (e.g. model.pt)"))
    if suffixes is not None and p.suffix.lower() not in suffixes:
        got = f"'{p.suffix}'" if p.suffix else "no ending"
        raise PattnetError(f"{p}: {flag} must end in one of {endings} (got {got})")
    check_output_dir(p.parent, flag)
    return p


def ensure_output_dir(path: str | Path, flag: str = "--out") -> Path:
    """``path`` as a folder this process can write in, created if need be; otherwise one line
    naming it and saying why (a file of that name, no permission, a read-only disk)."""
    p = _output_folder(path, flag)
    try:
        p.mkdir(parents=True, exist_ok=True)
        _write_probe(p)
    except OSError as exc:
        raise PattnetError(f"{p}: cannot write in this {flag} folder ({exc.strerror or exc})") from exc
    return p


def atomic_write_bytes(path: str | Path, data: bytes, *, overwrite: bool = True) -> None:
    """Write ``data`` to ``path`` durably (fsync) and atomically; results are created readable
    by the group and others as the umask allows (``mkstemp`` would make them private)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp adds 8 random characters to the prefix
    fd, name = tempfile.mkstemp(prefix=f".{fit_name(p.name, 30)}.{os.getpid()}-", suffix=".tmp",
                                dir=p.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        publish(tmp, p, overwrite=overwrite)
    except OSError as exc:
        if exc.filename is not None:
            raise
        # a write or flush error names no file: name the one being written
        raise OSError(exc.errno, exc.strerror or str(exc), str(p)) from exc
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: str | Path, text: str, *, overwrite: bool = True) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), overwrite=overwrite)


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


#: errno values that mean "the disk (or this process's share of it) is full".
DISK_FULL = frozenset({errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)})


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in DISK_FULL


def os_error_line(exc: OSError, where: str | Path | None = None) -> str:
    """One line for an OS error on a write: the path, the reason, and for a full disk the space
    left where it was writing. ``where``: the output folder, named when the error names no
    file (a buffered write's flush)."""
    name = exc.filename or (str(where) if where is not None else None)
    text = f"{name}: {exc.strerror or exc}" if name else str(exc.strerror or exc)
    if exc.errno in DISK_FULL and name:
        folder = next((p for p in Path(name).absolute().parents if p.exists()), None)
        if folder is not None:
            free = shutil.disk_usage(folder).free
            text += f" ({free / 1e6:.1f} MB free in {folder}; free some space and run it again)"
    return text


def _as_disk_full(tmp: Path, exc: Exception) -> OSError | None:
    """Writers that report a full disk in their own words (torch.save: "unexpected pos", an
    encoder's "Invalid argument") as the OS error it is, when the disk is in fact full."""
    code, words = errno.ENOSPC, "No space left on device"
    try:
        full = shutil.disk_usage(tmp.parent).free < 1 << 20
        if not full and tmp.exists():  # a file-size limit (ulimit -f, RLIMIT_FSIZE) reached
            import resource

            soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
            full = soft != resource.RLIM_INFINITY and tmp.stat().st_size >= soft - (1 << 16)
            code, words = errno.EFBIG, "File too large (the file-size limit, ulimit -f)"
    except (OSError, ImportError):
        return None
    if not full:
        return None
    return OSError(code, words, str(tmp))


@contextlib.contextmanager
def atomic_path(path: str | Path, *, overwrite: bool = True) -> Iterator[Path]:
    """A temporary sibling name to write ``path`` through, for writers that need a file name
    (torch.save, np.savez, pandas, matplotlib, a video encoder).

    The file appears at ``path`` only when the block ends normally; if it raises, the partial
    file is removed and ``path`` keeps what it had.
    """
    p = Path(path)
    tmp = unique_tmp(p)
    try:
        yield tmp
        publish(tmp, p, overwrite=overwrite)
    except (RuntimeError, ValueError) as exc:
        full = _as_disk_full(tmp, exc)
        if full is None:
            raise
        raise full from exc
    finally:
        tmp.unlink(missing_ok=True)


class GrowingFile:
    """A text file that grows under a name of its own (``<name>.<pid>-<token>.partial``) and
    takes its final name only when complete: replacing what is there (``overwrite``), refusing
    to (``overwrite=False``), or taking the next free name beside it (``apart``, see
    :func:`publish_apart`; :meth:`commit` returns the name it got).

    Why not :func:`atomic_path`: a long job (detection of a long video) should leave the rows
    written so far readable when it dies, so the partial file is visible and kept on request.
    """

    def __init__(self, path: str | Path, *, overwrite: bool = True, apart: bool = False) -> None:
        self.path = Path(path)
        self.apart = apart
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tail = f".{_token()}.partial"
        self.partial = self.path.with_name(f"{fit_name(self.path.name, len(tail))}{tail}")
        self.overwrite = overwrite
        self._fh: IO[str] | None = None

    def open(self) -> IO[str]:
        self._fh = self.partial.open("w", newline="", encoding="utf-8")
        return self._fh

    def commit(self) -> Path:
        """Make the content durable, then give the file its name."""
        fh = self._fh
        assert fh is not None, "GrowingFile.commit before open"
        fh.flush()
        os.fsync(fh.fileno())
        fh.close()
        self._fh = None
        if self.apart:
            final = publish_apart(self.partial, self.path)
        else:
            final = publish(self.partial, self.path, overwrite=self.overwrite)
        remove_dead_leftovers(self.path)
        return final

    def abort(self, keep: bool) -> Path | None:
        """Close after a failure; the partial file stays (and is returned) only when ``keep``.
        Never raises: closing flushes, and on a full disk that flush fails again."""
        if self._fh is not None:
            with contextlib.suppress(OSError):
                self._fh.close()
            self._fh = None
        if keep and self.partial.exists():
            return self.partial
        with contextlib.suppress(OSError):
            self.partial.unlink(missing_ok=True)
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def remove_dead_leftovers(path: str | Path) -> list[Path]:
    """Remove what writers of ``path`` that were killed (SIGKILL, a power cut) left beside it:
    ``<name>.<pid>-<token>.partial`` and ``.<name>.<pid>-<token>...`` files of processes that no
    longer run. Called once a new ``path`` is complete, so the finished result replaces them;
    a live writer's files are never touched. Returns what was removed."""
    p = Path(path)
    gone = []
    pattern = re.compile(r"\.(\d+)-[0-9a-f]{8}(\.|$)")
    for cand in [*p.parent.glob(f"{glob.escape(p.name)}.*.partial"),
                 *p.parent.glob(f".{glob.escape(p.stem)}*")]:
        m = pattern.search(cand.name)
        if m is None or int(m.group(1)) == os.getpid() or _alive(int(m.group(1))):
            continue
        with contextlib.suppress(OSError):
            cand.unlink()
            gone.append(cand)
    return gone


def write_png_atomic(path: str | Path, rgb: Any) -> None:
    """RGB uint8 array -> PNG via temp + rename, without an fsync per image.

    Why no fsync: a video writes hundreds of frames; losing the last few to a power cut is
    acceptable, a half-written PNG that looks complete is not (the rename prevents that).
    """
    import cv2

    ok, buf = cv2.imencode(".png", rgb[:, :, ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:  # pragma: no cover
        raise OSError(f"{path}: PNG encoding failed")
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.tobytes())


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
