#!/usr/bin/env python
"""How MediaPipe reads each synthetic AU: the mesh registration finds in a rendered image, against
the mesh displacement the AU applied.

Renders a synthetic image set (``pattnet synth``, the bundled faces), registers it
(``pattnet prepare``), then regresses every stored canonical mesh on the AU intensities each image
was rendered with (within each identity, so who the person is drops out). For each AU it prints
the cosine between the displacement MediaPipe reports per unit of intensity and the displacement
the FACS table applied, and the gain (the reported displacement's component along the applied
one, 1 = read in full). A negative cosine means MediaPipe reads the drawn AU as the opposite
movement: a model of the mesh trained on such images learns that movement.

Run: .venv/bin/python benchmarks/mediapipe_reading.py [--work DIR] [--per-identity 24] [--lfw 100]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def reading(store_path: Path, details: Path) -> pd.DataFrame:
    from pattnet.models.inputs import interocular_distance
    from pattnet.store import PatchStore
    from pattnet.synth import AUS, DEFORMATIONS, template_face

    st = PatchStore(store_path)
    tab = pd.read_csv(details)
    ok = st.success.astype(bool)
    mesh = st.mesh(np.arange(st.n))[:, :, :2].astype(np.float64) / interocular_distance()
    aus = [*AUS, 26]
    x = np.column_stack([tab[f"I{a:02d}"].to_numpy() for a in AUS] + [tab["jaw_drop"].to_numpy()])
    y = mesh.reshape(len(mesh), -1)
    subj = tab["subject"].to_numpy()
    for s in np.unique(subj):
        m = (subj == s) & ok
        x[m] -= x[m].mean(0)
        y[m] -= y[m].mean(0)
    d, *_ = np.linalg.lstsq(x[ok], y[ok], rcond=None)
    rows = []
    for k, a in enumerate(aus):
        applied = DEFORMATIONS[a].displacement(template_face())[:, :2].reshape(-1)
        seen = d[k]
        rows.append({"AU": f"AU{a}", "name": DEFORMATIONS[a].name,
                     "cosine": seen @ applied / (np.linalg.norm(seen) * np.linalg.norm(applied)),
                     "gain": seen @ applied / (applied @ applied)})
    return pd.DataFrame(rows).set_index("AU").round(2)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=None, help="keep the synthetic set and store here")
    ap.add_argument("--per-identity", type=int, default=24)
    ap.add_argument("--lfw", type=int, default=100)
    args = ap.parse_args()
    from _common import machine

    from pattnet.prepare import prepare
    from pattnet.synth import synthesize

    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        if not (work / "store" / "store.json").is_file():
            synthesize(work / "synth", None, per_identity=args.per_identity, video=False,
                       bundled_lfw=args.lfw, jaw=0.3, workers=2, echo=print)
            prepare(work / "synth" / "manifest.csv", work / "store", dataset="manifest",
                    track=False, progress=False)
        print(reading(work / "store", work / "synth" / "synth_labels.csv").to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
