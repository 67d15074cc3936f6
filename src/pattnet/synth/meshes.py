"""A controlled AU set of face meshes: the FACS table applied to real faces' meshes, no pixels.

Why meshes and not images for a model of the mesh: a synthetic image is re-registered by
MediaPipe, and MediaPipe reads some drawn AUs the wrong way round. Measured on the bundled
set (docs/bundled-model.md, "How MediaPipe reads the synthetic images"): the chin raiser that
pushes the lower lip and chin *up* is read as the lower lip moving *down* (the chin furrow looks
like the lip's edge), and the lip presser likewise, so a mesh model trained on those images
learns "open mouth" for AU17 and AU24, which is what it then reported on real faces. Real
faces move MediaPipe's mesh the way FACS says (the angry photo of ../shared/data lifts the
lower lip and chin by 0.14-0.18 IOD). Deforming the mesh itself gives the model exactly the
geometry the table describes, and takes milliseconds instead of a render and a registration.

Each sample is one real face's mesh (the bundled faces, :func:`~pattnet.synth.sources.
load_sources`) with AUs applied by :func:`~pattnet.synth.deformations.deform_mesh`, MediaPipe's
landmark jitter added, and put through registration's own pose fit
(:meth:`~pattnet.registration.Registrar.canonical_mesh`), so an AU that moves the points the
fit uses shifts the frame as it does at detection. What a face does besides the AUs:

* **neutral** samples (no AU, mouth closed): the person's true reference, which training uses
  under ``reference: neutral``. A source photo with the mouth open has it closed first
  (:func:`~pattnet.synth.mouth.close_mouth`): lips apart is AU25, not the person;
* the **mouth** opening, labelled: lips parted (AU25) or the jaw dropped (AU26, with AU25),
  never with the lips pressed or tightened (AU23, AU24);
* **speech** shapes, unlabelled: lip pucker (18) and lip stretch (20), so that a lower-face AU
  is not learned as any movement of the lips.

The store holds meshes only (``store.json`` ``arrays: ["mesh"]``); models of the patches refuse
it with one line.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pattnet.constants import MESH_SHAPE
from pattnet.errors import PattnetError
from pattnet.synth.deformations import deform_mesh
from pattnet.synth.face_frame import FaceFrame
from pattnet.synth.labels import AUS, INTENSITY_RANGE, MIN_VISIBLE, sample_intensities, sample_labels
from pattnet.synth.mouth import close_mouth
from pattnet.synth.sources import SourceFace, load_sources

__all__ = ["MESH_AUS", "MeshSettings", "deform_canonical", "mesh_sample", "synthesize_meshes"]

#: The AUs of a mesh set: the paper's 12, then lips part and jaw drop.
MESH_AUS: tuple[int, ...] = (*AUS, 25, 26)
LIPS_PART, JAW_DROP = 25, 26
#: Unlabelled speech shapes: lip pucker and lip stretch.
SPEECH: tuple[int, ...] = (18, 20)
#: AUs that close the lips: never drawn with an open mouth.
CLOSED_LIPS: tuple[int, ...] = (23, 24)


@dataclass(frozen=True)
class MeshSettings:
    """What a mesh set is drawn with (the store keeps it as ``synth`` in store.json).

    ``neutral``: share of samples with no AU and a closed mouth. ``mouth``: share of the others
    with an open mouth, of which ``jaw`` have the jaw dropped (the rest only the lips parted).
    ``speech``: share with a pucker or a stretch of the lips (unlabelled). ``noise``: landmark
    jitter in interocular distances (MediaPipe on a still face under camera noise moves each
    landmark by about 0.003 IOD, median; benchmarks/real_faces.py's still clip).
    """

    per_identity: int = 200
    seed: int = 0
    neutral: float = 0.15
    mouth: float = 0.35
    jaw: float = 0.6
    speech: float = 0.2
    noise: float = 0.004
    bundled_lfw: int = 100
    folds: int = 3

    def check(self) -> None:
        for name in ("neutral", "mouth", "jaw", "speech"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise PattnetError(f"--{name} must lie in [0, 1], got {v}")
        if self.per_identity < 1:
            raise PattnetError(f"--per-identity must be at least 1, got {self.per_identity}")
        if not 0.0 <= self.noise < 0.1:
            raise PattnetError(f"--noise must lie in [0, 0.1) IOD, got {self.noise}")


def _intensities(rng: np.random.Generator, cfg: MeshSettings) -> dict[int, float]:
    """The AUs and nuisance shapes of one sample, as requested intensities."""
    if rng.random() < cfg.neutral:
        return {}
    labels = sample_labels(rng)[0]
    inten = sample_intensities(rng, labels)
    lo, hi = INTENSITY_RANGE
    closed = any(labels[AUS.index(a)] for a in CLOSED_LIPS)
    if rng.random() < cfg.mouth and not closed:
        inten[JAW_DROP if rng.random() < cfg.jaw else LIPS_PART] = float(rng.uniform(lo, hi))
    if rng.random() < cfg.speech:
        inten[SPEECH[int(rng.integers(len(SPEECH)))]] = float(rng.uniform(lo, hi))
    return inten


def _labels(eff: dict[int, float]) -> np.ndarray:
    """Occurrence in :data:`MESH_AUS` order; a dropped jaw parts the lips (FACS codes 25+26)."""
    y = {a: int(eff.get(a, 0.0) >= MIN_VISIBLE) for a in MESH_AUS}
    y[LIPS_PART] = max(y[LIPS_PART], y[JAW_DROP])
    return np.array([y[a] for a in MESH_AUS], dtype=np.int8)


def mesh_sample(source: SourceFace, intensities: dict[int, float], registrar: Any,
                rng: np.random.Generator | None = None, noise: float = 0.0
                ) -> tuple[np.ndarray, np.ndarray, float]:
    """(canonical mesh (478, 3) float32, labels in :data:`MESH_AUS` order, fit confidence) of
    ``source`` with its mouth closed, ``intensities`` applied and ``noise`` IOD of jitter (drawn
    from ``rng``)."""
    return _deformed(source.frame, source.points, intensities, registrar, rng, noise, True)


def deform_canonical(canonical: np.ndarray, intensities: dict[int, float], registrar: Any,
                     rng: np.random.Generator | None = None, noise: float = 0.0
                     ) -> tuple[np.ndarray, np.ndarray, float]:
    """:func:`mesh_sample` for a face known by its canonical mesh alone (a registered face, a
    model's population reference), its mouth as it is: the AUs a test or a tool applies."""
    pts = np.asarray(canonical, dtype=np.float64)
    return _deformed(FaceFrame.fit(pts, pts), pts, intensities, registrar, rng, noise, False)


def _deformed(ff: FaceFrame, points: np.ndarray, intensities: dict[int, float], registrar: Any,
              rng: np.random.Generator | None, noise: float, closed: bool
              ) -> tuple[np.ndarray, np.ndarray, float]:
    face = ff.to_face(points)
    moved, eff = deform_mesh(close_mouth(face) if closed else face, intensities)
    pts = ff.from_face(moved)
    if noise > 0:
        if rng is None:
            raise ValueError("noise needs a random generator")
        pts = pts + rng.normal(0.0, noise * ff.source_iod, pts.shape)
    canon, confidence = registrar.canonical_mesh(pts)
    return canon.astype(np.float32), _labels(eff), confidence


def _identity_samples(i: int, sources: list[SourceFace], cfg: MeshSettings, registrar: Any
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sample ``k`` of identity ``i`` draws from its own generator seeded (seed, i, k)."""
    meshes = np.empty((cfg.per_identity, *MESH_SHAPE), np.float32)
    labels = np.empty((cfg.per_identity, len(MESH_AUS)), np.int8)
    conf = np.empty(cfg.per_identity, np.float32)
    for k in range(cfg.per_identity):
        rng = np.random.default_rng([cfg.seed, i, k])
        inten = _intensities(rng, cfg)
        meshes[k], labels[k], conf[k] = mesh_sample(sources[k % len(sources)], inten, registrar,
                                                    rng, cfg.noise)
    return meshes, labels, conf


def synthesize_meshes(
    out: str | Path,
    faces: Sequence[str | Path] | None = None,
    settings: MeshSettings | None = None,
    *,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Write a store of synthetic meshes to ``out`` (one chunk per identity) and return what
    its store.json records under ``synth``. Deterministic given the faces and the settings."""
    from pattnet.registration import Registrar
    from pattnet.store import StoreWriter, frame_table

    cfg = settings or MeshSettings()
    cfg.check()
    out = Path(out).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise PattnetError(f"{out}: exists and is not an empty folder; choose a new --out")
    t0 = time.monotonic()
    skipped: list[str] = []
    sources = load_sources(faces, bundled_lfw=cfg.bundled_lfw, skipped=skipped)
    if len(sources) < cfg.folds:
        raise PattnetError(f"synth --meshes found {len(sources)} identities; {cfg.folds} "
                           "subject-independent folds need at least as many different people")
    record: dict[str, Any] = {"kind": "meshes", "settings": asdict(cfg), "aus": list(MESH_AUS),
                              "identities": list(sources), "skipped": skipped,
                              "faces": [str(f) for f in faces] if faces else ["bundled"]}
    w = StoreWriter(out, MESH_AUS, {"dataset": None, "synth": record}, kinds=("mesh",))
    registrar = Registrar(static_image_mode=True)  # the pose fit only: MediaPipe never starts
    for i, (name, sfs) in enumerate(sources.items()):
        meshes, labels, conf = _identity_samples(i, sfs, cfg, registrar)
        n = len(meshes)
        table = frame_table([name] * n, ["synth"] * n, range(n), labels, MESH_AUS,
                            confidence=conf)
        w.add_chunk(f"{i:04d}_{name}", table, None, None, meshes)
    store = w.finalize()
    record["seconds"] = round(time.monotonic() - t0, 1)
    echo(f"synth --meshes: {len(sources)} identities, {store.n} meshes in "
         f"{record['seconds']:.1f} s -> {out}")
    return record
