"""Builders for small in-test patch stores."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pattnet.store import PatchStore, frame_table, write_store


def toy_store(path: Path, n: int = 240, aus=(1, 12), n_subjects: int = 6, signal_patch: dict | None = None,
              seed: int = 0, uncoded: float = 0.0) -> PatchStore:
    """Random patches; AU ``a`` shows as a bright square in patch ``signal_patch[a]`` (0-based)."""
    rng = np.random.default_rng(seed)
    aus = list(aus)
    subjects = [f"S{i % n_subjects:02d}" for i in range(n)]
    labels = rng.integers(0, 2, size=(n, len(aus))).astype(np.int8)
    if uncoded:
        labels[rng.random(labels.shape) < uncoded] = -1
    patches = rng.integers(0, 90, size=(n, 9, 100, 100, 3), dtype=np.uint8)
    holistic = rng.integers(0, 90, size=(n, 200, 200, 3), dtype=np.uint8)
    for j, au in enumerate(aus):
        p = (signal_patch or {}).get(au)
        if p is not None:
            patches[labels[:, j] == 1, p, 25:75, 25:75] = 230
    table = frame_table(subjects, ["T1"] * n, range(n), labels, aus)
    return write_store(path, table, patches, holistic, aus, {"dataset": "toy"})
