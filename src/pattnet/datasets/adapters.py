"""Compatibility name for the adapter modules: re-exports what ``pattnet.datasets`` offers.

Why it stays: prepare and some tests still import from here, and prepare silences the adapters'
warnings by this logger name (:data:`~pattnet.datasets.base.LOGGER_NAME`). New code imports
from :mod:`pattnet.datasets`.
"""

from pattnet.datasets.base import LOGGER_NAME, DatasetAdapter
from pattnet.datasets.bp4d import BP4DAdapter
from pattnet.datasets.disfa import DISFAAdapter
from pattnet.datasets.frames import IMAGE_SUFFIXES
from pattnet.datasets.manifest import ManifestAdapter
from pattnet.datasets.records import FrameRecord, Problem, Session
from pattnet.datasets.registry import ADAPTERS, detect_dataset, get_adapter, list_adapters

__all__ = [
    "ADAPTERS",
    "IMAGE_SUFFIXES",
    "LOGGER_NAME",
    "BP4DAdapter",
    "DISFAAdapter",
    "DatasetAdapter",
    "FrameRecord",
    "ManifestAdapter",
    "Problem",
    "Session",
    "detect_dataset",
    "get_adapter",
    "list_adapters",
]
