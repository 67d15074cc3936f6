"""Start-up chatter of the native libraries kept off the user's screen.

Why: MediaPipe and TensorFlow Lite log from C++ straight to file descriptor 2 (``W0000 ...
inference_feedback_manager.cc:114] ...``, ``INFO: Created TensorFlow Lite XNNPACK delegate``),
before any Python code can set a level: absl writes everything logged before its
``InitializeLog()`` to stderr, and neither ``GLOG_minloglevel`` nor ``TF_CPP_MIN_LOG_LEVEL``
reaches it. So :func:`quiet_native_logs` puts a pipe on descriptor 2 and a thread in front of the
real stderr that passes everything on, in order, except lines in those libraries' log formats.
Python's own output (pattnet's messages, progress bars, tracebacks) goes through the same pipe
and is passed on as it comes, partial lines included, so a progress bar still moves.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import sys
import threading

__all__ = ["NATIVE_NOISE", "is_native_noise", "quiet_native_logs"]

#: A line the native libraries log: absl/glog's ``W0000 00:00:1796637226.143147  1986 file.cc:114]``
#: prefix (any severity), TensorFlow Lite's ``INFO: Created TensorFlow Lite ...`` and absl's notice
#: that it logs to stderr before initialisation.
NATIVE_NOISE = re.compile(
    rb"(?:[IWE]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [\w./-]+:\d+\]"
    rb"|INFO: Created TensorFlow Lite"
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called)")
_PREFIXES = (b"I0", b"W0", b"E0", b"INFO: Created", b"WARNING: All log")
_installed = False


def is_native_noise(line: bytes) -> bool:
    return NATIVE_NOISE.match(line) is not None


def _without_noise(piece: bytes) -> bytes:
    """``piece`` (one line, its terminator included) less a native log line that starts in it:
    such a line may follow a progress bar's text on the same line."""
    m = NATIVE_NOISE.search(piece)
    return piece if m is None else piece[: m.start()]


def _may_become_noise(part: bytes) -> bool:
    """A partial line that could still turn out to be a native log line: held until it ends."""
    return any(p.startswith(part[: len(p)]) for p in _PREFIXES) and len(part) < 200


class _Filter(threading.Thread):
    def __init__(self, read_fd: int, out_fd: int) -> None:
        super().__init__(name="pattnet-native-log", daemon=True)
        self.read_fd, self.out_fd = read_fd, out_fd

    def _write(self, data: bytes) -> None:
        while data:
            data = data[os.write(self.out_fd, data):]

    def run(self) -> None:
        pending = b""
        while True:
            chunk = os.read(self.read_fd, 65536)
            if not chunk:
                break
            pending += chunk
            out = []
            for piece in re.split(rb"(?<=[\n\r])", pending):
                if piece.endswith((b"\n", b"\r")):
                    out.append(_without_noise(piece))
                    pending = b""
                else:
                    pending = piece
            if pending and not _may_become_noise(pending):
                out.append(pending)
                pending = b""
            if out:
                self._write(b"".join(out))
        if pending:
            self._write(_without_noise(pending))
        os.close(self.read_fd)


def quiet_native_logs() -> None:
    """Filter the native libraries' log lines out of this process's stderr (once; a no-op
    where stderr is not a file descriptor, e.g. under some notebooks)."""
    global _installed
    if _installed:
        return
    try:
        sys.stderr.flush()
        real = os.dup(2)
    except (OSError, ValueError, AttributeError):
        return
    read_fd, write_fd = os.pipe()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    thread = _Filter(read_fd, real)
    thread.start()
    _installed = True

    def restore() -> None:
        # the last lines (an error message, say) must reach the screen before the process ends
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.flush()
        os.dup2(real, 2)  # closes the pipe's last writer: the thread drains it and stops
        thread.join(timeout=5.0)

    atexit.register(restore)
