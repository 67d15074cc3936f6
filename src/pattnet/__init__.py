"""pattnet: PAttNet facial action unit detection with open 3D face registration.

Heavy stages are imported lazily so that ``import pattnet`` stays cheap and so that MediaPipe is
only needed by code that registers faces.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# The paper's 12 BP4D action units, in the paper's order.
BP4D_AUS: tuple[int, ...] = (1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24)
DISFA_AUS: tuple[int, ...] = (1, 2, 4, 6, 9, 12, 25, 26)

_LAZY = {
    "create_model": "pattnet.models",
    "list_models": "pattnet.models",
    "PatchStore": "pattnet.data.store",
    "register_image": "pattnet.registration",
    "register_video": "pattnet.registration",
    "crop_patches": "pattnet.patches",
    "Detector": "pattnet.detect",
}


def au_name(au: int) -> str:
    """Column name of an AU everywhere in pattnet (``AU01``), as in OpenFace's output."""
    return f"AU{int(au):02d}"


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pattnet' has no attribute {name!r}")
