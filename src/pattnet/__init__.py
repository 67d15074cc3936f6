"""pattnet: PAttNet facial action unit detection with open 3D face registration.

Heavy stages are imported lazily so that ``import pattnet`` stays cheap and so that MediaPipe is
only needed by code that registers faces.
"""

from __future__ import annotations

import importlib
from typing import Any

from pattnet.constants import BP4D_AUS, DISFA_AUS, au_name


def _version() -> str:
    """The installed distribution's version: pyproject.toml is its one home."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pattnet")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "0+unknown"


__version__ = _version()

_LAZY = {
    "create_model": "pattnet.models",
    "list_models": "pattnet.models",
    "PatchStore": "pattnet.store",
    "register_image": "pattnet.registration",
    "register_video": "pattnet.registration",
    "crop_patches": "pattnet.patches",
    "Detector": "pattnet.detect",
    "read_detections": "pattnet.detect",
    "read_openface": "pattnet.detect",
    "compare_detections": "pattnet.detect",
}

__all__ = ["BP4D_AUS", "DISFA_AUS", "__version__", "au_name", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pattnet' has no attribute {name!r}")
