"""The canonical 3D face template that defines pattnet's registered 512x512 frame.

Built by ``scripts/build_template.py`` (generalised Procrustes over MediaPipe meshes of frontal,
near-neutral faces, made symmetric, placed and anchored on the ZFace frame positions of
docs/paper-notes.md) and shipped in the package as ``assets/template.npz``; nothing is read from
outside the package at run time.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

from pattnet.constants import CANONICAL_SIZE
from pattnet.errors import PattnetError

# MediaPipe indices of points named in the paper notes
IRIS_RIGHT = 468  # subject's right eye, image left
IRIS_LEFT = 473  # subject's left eye, image right
NOSE_TIP = 1
MOUTH_LEFT = 61  # image left
MOUTH_RIGHT = 291  # image right
UPPER_LIP = 13
CHIN = 152
FOREHEAD = 10


@dataclass(frozen=True)
class Template:
    """Mean face in the canonical frame.

    Attributes:
        points: (478, 3) float32; x, y in canonical 512x512 pixels, z depth in the same units,
            positive away from the camera.
        triangles: (T, 3) int32 over the 468 mesh points, counter-clockwise on screen.
        rigid: indices of the points used for pose fits (little moved by expressions: no jaw,
            lips or brows).
        mirror: (478,) index of each point's left-right counterpart.
        version: identifier stored in checkpoints, so a model is never used on frames registered
            with a different template.
    """

    points: np.ndarray
    triangles: np.ndarray
    rigid: np.ndarray
    mirror: np.ndarray
    version: str

    @property
    def size(self) -> int:
        return CANONICAL_SIZE

    @property
    def interocular(self) -> float:
        return float(np.linalg.norm(self.points[IRIS_LEFT, :2] - self.points[IRIS_RIGHT, :2]))


@lru_cache(maxsize=1)
def load_template() -> Template:
    """The packaged template (cached: every Registrar shares one read-only copy)."""
    try:
        ref = resources.files("pattnet.registration").joinpath("assets/template.npz")
        with ref.open("rb") as fh, np.load(fh) as d:
            t = Template(
                points=d["points"].astype(np.float32),
                triangles=d["triangles"].astype(np.int32),
                rigid=d["rigid"].astype(np.int64),
                mirror=d["mirror"].astype(np.int64),
                version=str(d["version"]),
            )
    except (FileNotFoundError, KeyError, OSError, ValueError) as exc:
        raise PattnetError(
            "the registration template (pattnet/registration/assets/template.npz) is missing or "
            "damaged; reinstall pattnet or run scripts/build_template.py"
        ) from exc
    for a in (t.points, t.triangles, t.rigid, t.mirror):
        a.setflags(write=False)
    return t
