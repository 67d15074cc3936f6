"""Where Figures 2 and 3 come from: a registered face (photo or store frame) and the patch store.

Why these are looked up before anything is written: a missing photo or a bad ``--frame`` must
fail with one line and leave the output directory untouched, while a store that has since been
deleted only skips its figures with a note.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pattnet.errors import PattnetError
from pattnet.report.runs import ReportRun
from pattnet.store import is_store

#: (face image, its 9 patches, a description of where it came from)
FaceSource = tuple[np.ndarray, np.ndarray, str]


def find_stores(runs: Sequence[ReportRun]) -> tuple[list[Path], list[str]]:
    """Patch stores named by the runs that still exist, and those that no longer do."""
    found, gone = [], []
    for rr in runs:
        s = rr.run.meta.get("store")
        if not s:
            continue
        p = Path(str(s))
        if is_store(p):
            if p not in found:
                found.append(p)
        elif str(p) not in gone:
            gone.append(str(p))
    return found, gone


def face_from_image(path: str | Path) -> FaceSource:
    """Register the face in a photo: (512x512 face, its 9 patches, description)."""
    from pattnet.patches import crop_patches
    from pattnet.registration import register_image

    p = Path(path)
    if not p.is_file():
        raise PattnetError(f"--face {p}: no such file")
    faces = register_image(p)
    faces = [f for f in faces if f.success]
    if not faces:
        raise PattnetError(f"--face {p}: no face could be registered in this image")
    patches, _ = crop_patches(faces[0])
    return faces[0].image, patches, f"face registered from {p}"


def face_from_store(store_path: Path, frame: int | None = None) -> FaceSource:
    """A stored frame: its 200x200 holistic face and its 9 patches as training saw them.
    ``frame`` is a store row; by default the first frame whose registration succeeded."""
    from pattnet.store import PatchStore

    store = PatchStore(store_path)
    if len(store) == 0:
        raise PattnetError(f"{store_path}: the store holds no frames")
    if frame is None:
        ok = np.nonzero(store.success)[0] if "success" in store.table.columns else np.arange(1)
        i = int(ok[0]) if ok.size else 0
    else:
        i = int(frame)
        if not 0 <= i < len(store):
            raise PattnetError(f"--frame {i} is outside the store's rows 0..{len(store) - 1}")
    row = store.table.iloc[i]
    desc = (f"store {store_path}, row {i} (subject {row['subject']}, session {row['session']}, "
            f"frame {row['frame']})")
    return store.holistic(i), store.patches(i), desc


__all__ = ["FaceSource", "face_from_image", "face_from_store", "find_stores"]
