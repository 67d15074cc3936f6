"""The embedded default job: build a small labelled store, train, evaluate, print the tables.

Interim version (until the controlled AU set from real faces lands): the store is synthetic.
Each AU is a visual mark drawn in the patch where the paper finds it (AU1/AU2 in the brow
patches, AU12 at the lip corners, ...) on noise images. It exercises the real training and
evaluation code end to end and shows that the network learns AU-specific patches, but it is NOT
facial data: AU results on faces need BP4D or DISFA (``pattnet prepare``).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np

from pattnet import BP4D_AUS

# Where each AU's synthetic mark goes (0-based patch index), following the paper's Table 3 and
# the facial region the AU moves.
AU_PATCH = {1: 0, 2: 1, 4: 3, 6: 5, 7: 2, 10: 6, 12: 7, 14: 5, 15: 8, 17: 8, 23: 6, 24: 8}


def build_marker_store(path: Path, n: int, n_subjects: int = 6, seed: int = 0):
    from pattnet.data.store import frame_table, write_store

    rng = np.random.default_rng(seed)
    aus = list(BP4D_AUS)
    labels = (rng.random((n, len(aus))) < 0.35).astype(np.int8)
    patches = rng.integers(0, 110, size=(n, 9, 100, 100, 3), dtype=np.uint8)
    holistic = rng.integers(0, 110, size=(n, 200, 200, 3), dtype=np.uint8)
    for j, au in enumerate(aus):
        p = AU_PATCH[au]
        # each AU has its own mark position inside its patch, so AUs sharing a patch differ
        y0, x0 = 8 + 22 * (j % 4), 8 + 22 * ((j // 4) % 4)
        on = labels[:, j] == 1
        patches[on, p, y0:y0 + 18, x0:x0 + 18] = 235
    subjects = [f"S{i % n_subjects:02d}" for i in range(n)]
    table = frame_table(subjects, ["T1"] * n, range(n), labels, aus)
    return write_store(path, table, patches, holistic, aus, {"dataset": "demo-markers"})


def run_demo(out: str | Path, tiny: bool = False, progress: bool = True) -> Path:
    from pattnet.evaluate import evaluate_run
    from pattnet.train import TrainConfig, train

    out = Path(out)
    t0 = time.perf_counter()
    print("pattnet demo: SYNTHETIC data. Each AU is a visual mark drawn in the patch where the paper "
          "finds it, on noise images; this checks that the pipeline trains, evaluates and learns "
          "AU-specific patches. Results on real faces need BP4D or DISFA (pattnet prepare).")
    store_dir = out / "store"
    if store_dir.exists():
        shutil.rmtree(store_dir)
    n = 120 if tiny else 480
    build_marker_store(store_dir, n)
    run_dir = out / "run"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    cfg = TrainConfig(model="pattnet-multilabel", epochs=1 if tiny else 3, lr=0.01, batch_size=20,
                      num_workers=0)
    train(store_dir, run_dir, cfg, folds="all", progress=progress)
    res = evaluate_run(run_dir)
    print(res.markdown)
    print(f"\nstore: {store_dir}\nrun:   {run_dir}\ntables: {run_dir / 'eval' / 'tables.md'}")
    print(f"demo finished in {time.perf_counter() - t0:.0f} s")
    return run_dir
