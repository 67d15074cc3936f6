"""What happened to each input of a command that takes many (``register``, ``detect``), so that
both say the same thing the same way and end with the same exit code.

An input is **done**, **incomplete** (its output was written, but the input stopped early: a
video damaged part way keeps the frames before the damage and its CSV says where it stopped) or
**failed** (nothing written: unreadable, wrong type). Every message names the input. Exit code:
0 when all were done; 1 when any was incomplete or failed and something was written; a one-line
error (exit 2) when nothing could be processed, or when the only input failed.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pattnet.errors import PattnetError


def named(source: Path | int | str, message: str) -> str:
    """``message`` with the input it is about at its front, unless it names it already."""
    label = f"camera {source}" if isinstance(source, int) else str(source)
    return message if label in message else f"{label}: {message}"


class Outcome:
    """The per-input results of one command run over ``n`` inputs."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.failed: list[str] = []
        self.incomplete: list[str] = []

    def fail(self, source: Path | int | str, message: str) -> None:
        """Nothing was written for ``source``: say why (a single input ends the command)."""
        msg = named(source, message)
        if self.n == 1:
            raise PattnetError(msg)
        print(f"pattnet: skipped: {msg}", file=sys.stderr)
        self.failed.append(str(source))

    def stopped_early(self, source: Path | int | str, problem: str) -> None:
        """The output of ``source`` was written but the input ended early."""
        print(f"pattnet: incomplete: {named(source, problem)}", file=sys.stderr)
        self.incomplete.append(str(source))

    def exit_code(self) -> int:
        if self.failed and len(self.failed) == self.n:
            raise PattnetError(f"no input could be processed ({len(self.failed)} failed)")
        if not (self.failed or self.incomplete):
            return 0
        if self.n > 1:
            print(f"pattnet: {len(self.failed) + len(self.incomplete)} of {self.n} input(s) had "
                  "problems: " + ", ".join(self.failed + self.incomplete), file=sys.stderr)
        return 1


__all__ = ["Outcome", "named"]
