"""Builders for small in-test patch stores."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pattnet.store import PatchStore, frame_table, write_store

#: Lip corners (MediaPipe 61 and 291) and their neighbours: where a toy "smile" moves the mesh.
MOUTH_CORNERS = (61, 291, 185, 409, 40, 270)


def toy_store(path: Path, n: int = 240, aus=(1, 12), n_subjects: int = 6, signal_patch: dict | None = None,
              seed: int = 0, uncoded: float = 0.0, mesh_signal: dict | None = None) -> PatchStore:
    """Random patches; AU ``a`` shows as a bright square in patch ``signal_patch[a]`` (0-based)
    and/or, with ``mesh_signal[a]`` (landmark indices), as those landmarks moved 10 px up (about
    0.1 interocular distance) on a mesh that is otherwise the template with 1 px of noise and a
    per-subject face shape."""
    from pattnet.registration import load_template

    rng = np.random.default_rng(seed)
    aus = list(aus)
    subjects = [f"S{i % n_subjects:02d}" for i in range(n)]
    labels = rng.integers(0, 2, size=(n, len(aus))).astype(np.int8)
    if uncoded:
        labels[rng.random(labels.shape) < uncoded] = -1
    patches = rng.integers(0, 90, size=(n, 9, 100, 100, 3), dtype=np.uint8)
    holistic = rng.integers(0, 90, size=(n, 200, 200, 3), dtype=np.uint8)
    shape = {s: rng.normal(0, 3, (478, 3)).astype(np.float32) for s in sorted(set(subjects))}
    mesh = np.stack([load_template().points + shape[s] for s in subjects])
    mesh += rng.normal(0, 1, mesh.shape).astype(np.float32)
    for j, au in enumerate(aus):
        p = (signal_patch or {}).get(au)
        if p is not None:
            patches[labels[:, j] == 1, p, 25:75, 25:75] = 230
        pts = (mesh_signal or {}).get(au)
        if pts is not None:
            on = np.flatnonzero(labels[:, j] == 1)
            mesh[np.ix_(on, list(pts), [1])] -= 10.0  # y grows downwards: up is minus
    table = frame_table(subjects, ["T1"] * n, range(n), labels, aus)
    return write_store(path, table, patches, holistic, aus, {"dataset": "toy"}, mesh=mesh)
