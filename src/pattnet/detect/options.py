"""The detector's AU, threshold and registration settings, checked before any model runs.

Why apart from the detector: each is a rule of its own (which AUs a model can report, one
threshold per reported AU, the registration a face count asks for), each refused with one line.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pattnet.constants import au_name
from pattnet.errors import PattnetError


def select_aus(aus: Sequence[int] | None, trained: Sequence[int]) -> list[int]:
    """The AUs to report: all the model's, or the requested ones if it was trained for them."""
    if aus is None:
        return list(trained)
    want = [int(a) for a in aus]
    lacking = [a for a in want if a not in trained]
    if lacking:
        raise PattnetError(
            f"the model was trained for {', '.join(au_name(a) for a in trained)}; it has no "
            f"{', '.join(au_name(a) for a in lacking)}")
    if len(set(want)) != len(want):
        raise PattnetError(f"AUs requested twice: {want}")
    return want


def thresholds(threshold: float | None, trained: Sequence[float], cols: np.ndarray) -> np.ndarray:
    """One threshold per reported AU: the given one for all, else the checkpoint's own."""
    if threshold is not None:
        if not 0.0 <= float(threshold) <= 1.0:
            raise PattnetError(f"threshold must lie in [0, 1], got {threshold}")
        return np.full(len(cols), float(threshold))
    return np.asarray(trained, dtype=np.float64)[cols]


def registration_settings(registration: Any, max_faces: int) -> Any:
    """The registration settings, with ``max_faces`` applied when it was asked for."""
    from pattnet.registration import RegistrationConfig

    if registration is None:
        return RegistrationConfig(max_faces=max_faces)
    if registration.max_faces != max_faces and max_faces != 1:
        return RegistrationConfig(**{**registration.__dict__, "max_faces": max_faces})
    return registration


__all__ = ["registration_settings", "select_aus", "thresholds"]
