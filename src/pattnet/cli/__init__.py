"""The ``pattnet`` command: wires stages together and turns user errors into one line.

Each sub-command lives in ``pattnet.cli.<name>`` with ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``. Command modules import heavy libraries (torch, MediaPipe) inside ``run`` so
that ``pattnet --help`` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Any

from pattnet.errors import PattnetError

# Order is the order of the pipeline, which is the order ``--help`` shows.
COMMANDS = [
    "demo",
    "synth",
    "register",
    "prepare",
    "stats",
    "train",
    "evaluate",
    "report",
    "export",
    "detect",
    "models",
    "reproduce",
]


def _commands() -> list[tuple[str, Any]]:
    return [(name, importlib.import_module(f"pattnet.cli.{name}")) for name in COMMANDS]


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )


def build_parser() -> argparse.ArgumentParser:
    from pattnet import __version__

    parser = argparse.ArgumentParser(
        prog="pattnet",
        description="PAttNet facial action unit detection with open 3D face registration.",
    )
    parser.add_argument("--version", action="version", version=f"pattnet {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="debug logging, and the native libraries' own log lines (MediaPipe, "
                             "TensorFlow Lite), which are hidden otherwise")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, mod in _commands():
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def check_outputs(args: argparse.Namespace) -> None:
    """Every command's output paths, checked the same way before the command does any work: a
    folder it could not create or write in, or a file name that is a folder, is one line and
    nothing is created (each writer still publishes atomically; this is what makes a read-only
    or mistyped ``--out`` fail in the first second instead of after the work)."""
    from pathlib import Path

    from pattnet.io.atomic import check_output_dir, check_output_file

    command = args.command
    if command == "export":
        check_output_file(args.out, "--out")
    elif command == "stats":
        return  # its default folder depends on the input: pattnet.cli.stats checks it
    elif command == "evaluate":
        run = Path(args.run)
        if run.is_dir():
            check_output_dir(run / "eval", "RUN/eval")
    elif getattr(args, "out", None) is not None and not getattr(args, "dry_run", False):
        check_output_dir(args.out)


def _one_line(exc: PattnetError) -> str:
    """pattnet's own message. An error raised in a DataLoader worker comes back wrapped in the
    worker's traceback ("Caught StoreError in DataLoader worker process 0. Original Traceback
    ..."): its message is the last line, after the exception's name."""
    text = str(exc)
    if "\n" not in text or not text.startswith("Caught "):
        return text
    last = text.rstrip().splitlines()[-1]
    return last.split(": ", 1)[1] if last.startswith(type(exc).__module__) or \
        last.startswith(type(exc).__name__) else last


def _terminate_as_interrupt() -> None:
    """SIGTERM (a scheduler's or ``kill``'s stop) ends a command the way Ctrl-C does: what is
    finished is kept, nothing half-written is left. Python's default would end the process on
    the spot, leaving partial files behind."""
    import signal
    import threading

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread() and \
            signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, interrupt)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    if not args.verbose:
        from pattnet.io.native_log import quiet_native_logs

        quiet_native_logs()
    _terminate_as_interrupt()
    try:
        check_outputs(args)
        rc = args._run(args)
    except PattnetError as exc:
        print(f"pattnet: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:
        from pattnet.io.atomic import is_disk_full, os_error_line

        # a full disk while writing into --out may name no file; any other unnamed OS error is
        # not about a file the user named or made: a bug to report, with its traceback
        where = getattr(args, "out", None) if is_disk_full(exc) else None
        if args.verbose or not (exc.filename or where):
            raise
        print(f"pattnet: error: {os_error_line(exc, where)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        again = ("add --resume to the same command to continue" if args.command == "train"
                 else "run the same command to resume")
        print(f"pattnet: interrupted (completed work is kept; {again})", file=sys.stderr)
        return 130
    except BrokenPipeError:
        sys.stderr.close()
        return 1
    return int(rc or 0)

