"""The model that ships inside pattnet: what ``pattnet detect`` uses when no ``--model`` is given.

Built by ``scripts/build_bundled_model.py`` from data that ships inside installed packages only
(real faces with synthetic AU deformations, :mod:`pattnet.synth`), deterministically; beside it,
``bundled.json`` says what it was trained on, its AUs and thresholds, and what was measured on
synthetic held-out identities and on real faces (each figure with the command that made it).
A model trained on BP4D or DISFA (``pattnet prepare`` + ``train`` + ``export``) is expected to
do better on spontaneous expressions: say ``--model`` to use one.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from pattnet.checkpoint.format import CheckpointError

MODEL_FILE = "bundled.pt"
ABOUT_FILE = "bundled.json"


def _asset(name: str) -> Path:
    return Path(str(resources.files("pattnet.checkpoint") / "assets" / name))


def bundled_model_path() -> Path:
    """The bundled model file; a one-line error when this install lacks it."""
    p = _asset(MODEL_FILE)
    if not p.is_file():
        raise CheckpointError(f"{p}: the bundled model is missing from this install; reinstall "
                              "pattnet, or give --model (a file made by 'pattnet export')")
    return p


def bundled_model_about() -> dict[str, Any]:
    """What ``bundled.json`` records: training data, AUs, thresholds, measured results."""
    p = _asset(ABOUT_FILE)
    if not p.is_file():
        return {}
    return json.loads(p.read_text(encoding="utf-8"))


__all__ = ["ABOUT_FILE", "MODEL_FILE", "bundled_model_about", "bundled_model_path"]
