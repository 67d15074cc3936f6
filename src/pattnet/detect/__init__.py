"""AU detection on videos, images and webcams: checkpoint + streaming frames -> per-frame table.

:class:`Detector` (:mod:`~pattnet.detect.detector`) runs the two-thread pipeline of
:mod:`~pattnet.detect.pipeline` on one input at a time; the table it yields is defined in
:mod:`~pattnet.detect.schema` and written to files by :mod:`~pattnet.detect.writers`.
"""

from __future__ import annotations

from pattnet.detect.calibration import PersonReference
from pattnet.detect.detector import Detector
from pattnet.detect.openface import compare_detections, read_openface
from pattnet.detect.schema import (
    BASE_COLUMNS,
    PROB_DECIMALS,
    FaceResult,
    FrameResult,
    columns,
    frame_rows,
    read_detections,
    to_dataframe,
)
from pattnet.detect.sources import (
    check_source,
    default_threads,
    default_workers,
    frame_count,
    frame_rate,
)
from pattnet.detect.writers import DetectSummary

__all__ = ["BASE_COLUMNS", "PROB_DECIMALS", "DetectSummary", "Detector", "FaceResult", "FrameResult",
           "PersonReference",
           "check_source", "columns", "default_threads", "default_workers", "frame_count",
           "compare_detections", "frame_rate", "frame_rows", "read_detections", "read_openface",
           "to_dataframe"]
