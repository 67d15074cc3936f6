"""``prepare``: dataset root -> registered faces -> 9 patches + holistic face -> patch store.

Resumable (kill -9 included), parallel and shardable; :mod:`pattnet.prepare.run` explains how
the work is cut and why. :func:`merge` joins the stores of a sharded prepare.
"""

from pattnet.prepare.jobs import (
    MAX_FRAME_EXAMPLES,
    JobSettings,
    SessionJob,
    SessionResult,
    chunk_name,
    parse_shard,
)
from pattnet.prepare.merging import merge
from pattnet.prepare.report import (
    REPORT_CSV,
    REPORT_JSON,
    PrepareResult,
    format_report,
    write_report,
)
from pattnet.prepare.run import prepare
from pattnet.prepare.session import FrameProcessor, process_session

__all__ = [
    "MAX_FRAME_EXAMPLES",
    "REPORT_CSV",
    "REPORT_JSON",
    "FrameProcessor",
    "JobSettings",
    "PrepareResult",
    "SessionJob",
    "SessionResult",
    "chunk_name",
    "format_report",
    "merge",
    "parse_shard",
    "prepare",
    "process_session",
    "write_report",
]
