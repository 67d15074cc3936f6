"""The whole controlled AU set in one folder: the images, their manifest and ground-truth
tables, the schedule video and synth.json, so that the real pipeline can run on it unchanged."""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pattnet.constants import au_name
from pattnet.errors import PattnetError
from pattnet.io.atomic import write_png_atomic
from pattnet.registration.template import load_template
from pattnet.synth.labels import (
    AUS,
    INTENSITY_RANGE,
    LABEL_RULES,
    MIN_VISIBLE,
    label_rates,
    sample_intensities,
    sample_labels,
)
from pattnet.synth.relief import sample_light
from pattnet.synth.render import render, sample_image_params, sample_jaw_drop, sample_sensor
from pattnet.synth.schedule import Segment, write_schedule_video
from pattnet.synth.sources import SourceFace, load_sources
from pattnet.synth.tables import write_csv

__all__ = ["CONFIG", "DETAILS", "IMAGES", "MANIFEST", "synthesize"]

MANIFEST = "manifest.csv"
DETAILS = "synth_labels.csv"
CONFIG = "synth.json"
IMAGES = "images"

_N = len(AUS)
#: Where a details row (one per image, all strings) keeps its labels and requested intensities.
_LABELS = slice(3, 3 + _N)
_REQUESTED = slice(5 + 2 * _N, 5 + 3 * _N)

Sources = dict[str, list[SourceFace]]


@dataclass(frozen=True)
class _Settings:
    """What one synth run was asked for (synth.json records it as ``config``)."""

    per_identity: int
    frames_per_video: int
    seed: int
    folds: int
    size: int
    fps: int
    seconds: float
    video: bool
    workers: int
    bundled_lfw: int
    sensor: bool = False
    jaw: float = 0.0  # share of images with an (unlabelled) open mouth
    relief: bool = False  # shade the deformed surface under a light drawn per image

    @property
    def target_iod(self) -> float:
        """Output IOD in pixels: the same face-to-image proportion at every ``size``."""
        return self.size / 4.5

    def check(self) -> None:
        if self.per_identity < 1:
            raise PattnetError(f"--per-identity must be at least 1, got {self.per_identity}")
        if self.folds < 1:
            raise PattnetError(f"--folds must be at least 1, got {self.folds}")
        if self.workers < 1:
            raise PattnetError(f"--workers must be at least 1, got {self.workers}")
        if self.size < 64:
            raise PattnetError(f"--size must be at least 64, got {self.size}")
        if not 0.0 <= self.jaw <= 1.0:
            raise PattnetError(f"--jaw must lie in [0, 1], got {self.jaw}")


def _load_enough_sources(faces: Sequence[str | Path] | None, cfg: _Settings,
                         skipped: list[str]) -> Sources:
    """The identities, or an error that says why there are too few for ``cfg.folds``
    subject-independent folds (before anything is written)."""
    sources = load_sources(faces, bundled_lfw=cfg.bundled_lfw, frames_per_video=cfg.frames_per_video,
                           target_iod=cfg.target_iod, skipped=skipped)
    for s in skipped:
        print(f"pattnet: skipped: {s}", file=sys.stderr)
    if len(sources) < cfg.folds:
        folds = cfg.folds
        have = ", ".join(sources) if sources else "none"
        why = f" ({len(skipped)} input(s) without a usable face)" if skipped else ""
        raise PattnetError(
            f"synth found {len(sources)} identit{'y' if len(sources) == 1 else 'ies'} ({have}){why}; "
            f"{folds} subject-independent folds need at least {folds} different people: pass "
            "--faces photos or videos of more people (one identity per file; each face of a group "
            "photo counts as one), or lower --folds"
        )
    return sources


def _check_out(out: Path) -> None:
    """Refuse to write into a folder with other things in it; a previous synth output is
    replaced (its images first, so no stale image outlives a smaller rerun)."""
    if not out.exists():
        return
    if not out.is_dir():
        raise PattnetError(f"{out}: exists and is not a folder")
    entries = [p for p in out.iterdir() if not p.name.startswith(".")]
    if not entries:
        return
    if not (out / CONFIG).is_file():
        raise PattnetError(f"{out}: folder is not empty and holds no earlier synth output "
                           f"({CONFIG}); choose a new --out")
    img = out / IMAGES
    if img.is_dir():
        for p in img.glob("*.png"):
            p.unlink()




class _ImageMaker:
    """Renders image ``k`` of identity ``i`` and returns its details row. Each image draws from
    its own generator seeded with (seed, i, k), so the set is the same whatever the thread count."""

    def __init__(self, out: Path, sources: Sources, cfg: _Settings) -> None:
        self.out = out
        self.sources = sources
        self.cfg = cfg

    def __call__(self, job: tuple[int, str, int]) -> list[str]:
        i, name, k = job
        rng = np.random.default_rng([self.cfg.seed, i, k])
        labels = sample_labels(rng)[0]
        inten = sample_intensities(rng, labels)
        params = sample_image_params(rng)
        # drawn last: the draws above are the same with or without these
        if self.cfg.sensor:
            params = dataclasses.replace(params, sensor=sample_sensor(rng))
        if self.cfg.jaw > 0:
            inten = {**inten, **sample_jaw_drop(rng, self.cfg.jaw, labels)}
        if self.cfg.relief:
            params = dataclasses.replace(params, light=sample_light(rng))
        sfs = self.sources[name]
        src = sfs[k % len(sfs)]
        im = render(src, inten, params, size=self.cfg.size, target_iod=self.cfg.target_iod)
        rel = f"{IMAGES}/{name}_{k:04d}.png"
        write_png_atomic(self.out / rel, im.rgb)
        p = im.params
        return [rel, name, str(k), *map(str, im.labels), src.origin, str(src.frame_index),
                *(f"{im.effective[a]:.3f}" for a in AUS), *(f"{im.intensities[a]:.3f}" for a in AUS),
                f"{p.rotation:.2f}", f"{p.scale:.3f}", f"{p.shift[0]:.3f}", f"{p.shift[1]:.3f}",
                f"{p.gain:.3f}", f"{p.offset:.2f}", f"{p.sensor.exposure:.3f}",
                *(f"{v:.3f}" for v in p.sensor.white_balance), f"{p.sensor.blur:.2f}",
                f"{p.sensor.noise:.2f}", str(p.sensor.jpeg), f"{im.jaw_drop:.3f}",
                *(f"{v:.3f}" for v in p.light.direction), f"{p.light.strength:.3f}"]


def _render_images(out: Path, sources: Sources, cfg: _Settings) -> list[list[str]]:
    """Every image of every identity, in a fixed row order (identity, then image index)."""
    from concurrent.futures import ThreadPoolExecutor

    jobs = [(i, name, k) for i, name in enumerate(sources) for k in range(cfg.per_identity)]
    with ThreadPoolExecutor(max_workers=cfg.workers) as pool:
        return list(pool.map(_ImageMaker(out, sources, cfg), jobs))


def _write_tables(out: Path, rows: list[list[str]]) -> None:
    """``synth_labels.csv`` (everything known about each image) and ``manifest.csv`` (what the
    manifest adapter reads: path, subject, session, frame, labels)."""
    names = [au_name(a) for a in AUS]
    det = ["path", "subject", "frame", *names, "source", "source_frame",
           *(f"I{a:02d}" for a in AUS), *(f"requested_I{a:02d}" for a in AUS),
           "rotation", "scale", "shift_x", "shift_y", "gain", "offset", "exposure", "wb_r",
           "wb_g", "wb_b", "blur", "noise", "jpeg", "jaw_drop", "light_x", "light_y", "light_z",
           "light_strength"]
    write_csv(out / DETAILS, det, rows)
    write_csv(out / MANIFEST, ["path", "subject", "session", "frame", *names],
              ([r[0], r[1], "synth", r[2], *r[_LABELS]] for r in rows))


def _config_record(cfg: _Settings, faces: Sequence[str | Path] | None) -> dict[str, object]:
    return {"per_identity": cfg.per_identity, "frames_per_video": cfg.frames_per_video,
            "folds": cfg.folds, "size": cfg.size, "target_iod": round(cfg.target_iod, 2),
            "fps": cfg.fps, "seconds": cfg.seconds, "video": cfg.video, "sensor": cfg.sensor,
            "jaw": cfg.jaw, "relief": cfg.relief,
            "intensity_range": list(INTENSITY_RANGE), "min_visible": MIN_VISIBLE,
            "faces": [str(f) for f in faces] if faces else ["bundled"]}


def _label_records(rows: list[list[str]]) -> dict[str, object]:
    """The rules, the rates they produce, the rates this set got, and how many requested AUs the
    fold guard dropped (requested but labelled absent)."""
    y = np.array([[int(v) for v in r[_LABELS]] for r in rows], dtype=np.int64)
    requested = sum(1 for r in rows for v in r[_REQUESTED] if float(v) > 0)
    names = [au_name(a) for a in AUS]
    return {
        "label_rules": [{"au": a, "base": b, "given": [{"au": p, "p": q} for p, q in par]}
                        for a, b, par in LABEL_RULES],
        "rates_model": label_rates(),
        "rates_this_set": {k: round(float(v), 3) for k, v in zip(names, y.mean(axis=0), strict=True)},
        "labels_dropped_by_fold_guard": requested - int(y.sum()),
    }


def _metadata(cfg: _Settings, faces: Sequence[str | Path] | None, sources: Sources,
              skipped: list[str], rows: list[list[str]], segs: list[Segment],
              took: dict[str, float], t0: float) -> dict[str, object]:
    """What synth.json records, in its key order; ``took`` the seconds per step so far, ``t0``
    the start, so the total includes building this record."""
    from pattnet import __version__

    return {
        "pattnet_version": __version__,
        "template_version": load_template().version,
        "seed": cfg.seed,
        "config": _config_record(cfg, faces),
        "identities": {name: {"images": cfg.per_identity,
                              "sources": [{"origin": s.origin, "frame": s.frame_index,
                                           "iod_px": round(s.frame.source_iod, 1)} for s in sfs]}
                       for name, sfs in sources.items()},
        "skipped": skipped,
        "images": len(rows),
        **_label_records(rows),
        "schedule": {"identity": next(iter(sources)), "fps": cfg.fps, "seconds": cfg.seconds,
                     "segments": [{"start": s.start, "end": s.end, "aus": list(s.aus),
                                   "intensity": s.intensity} for s in segs]} if cfg.video else None,
        "seconds": {**{k: round(v, 2) for k, v in took.items()},
                    "total": round(time.monotonic() - t0, 2)},
    }


def synthesize(
    out: str | Path,
    faces: Sequence[str | Path] | None = None,
    *,
    per_identity: int = 100,
    frames_per_video: int = 8,
    seed: int = 0,
    folds: int = 3,
    size: int = 384,
    fps: int = 12,
    seconds: float = 10.0,
    video: bool = True,
    workers: int = 1,
    bundled_lfw: int = 40,
    sensor: bool = False,
    jaw: float = 0.0,
    relief: bool = False,
    echo: Callable[[str], None] = print,
) -> dict[str, object]:
    """Build the controlled AU set in ``out`` and return what synth.json records.

    ``bundled_lfw``: how many LFW faces :func:`~pattnet.synth.sources.bundled_faces` adds when
    ``faces`` is None. ``sensor``: each image also gets a camera's degradations
    (:func:`~pattnet.synth.render.sample_sensor`). ``jaw``: share of images whose mouth is also
    opened (the jaw drop, unlabelled: :func:`~pattnet.synth.render.sample_jaw_drop`).
    ``relief``: each image's deformed surface is also shaded under a light drawn for it
    (:func:`~pattnet.synth.relief.shade_relief`).

    Deterministic given the inputs and ``seed``: image k of identity i draws from its own
    generator seeded with (seed, i, k), whatever ``workers`` is.
    """
    from pattnet.io.atomic import atomic_write_json

    t0 = time.monotonic()
    out = Path(out).expanduser()
    cfg = _Settings(per_identity, frames_per_video, seed, folds, size, fps, seconds, video, workers,
                    bundled_lfw, sensor, jaw, relief)
    cfg.check()
    skipped: list[str] = []
    sources = _load_enough_sources(faces, cfg, skipped)
    _check_out(out)
    (out / IMAGES).mkdir(parents=True, exist_ok=True)
    took = {"sources": time.monotonic() - t0}
    t1 = time.monotonic()
    rows = _render_images(out, sources, cfg)
    took["images"] = time.monotonic() - t1
    _write_tables(out, rows)
    t2 = time.monotonic()
    segs = (write_schedule_video(sources[next(iter(sources))][0], out, fps=fps, seconds=seconds,
                                 size=size, target_iod=cfg.target_iod) if video else [])
    took["video"] = time.monotonic() - t2
    meta = _metadata(cfg, faces, sources, skipped, rows, segs, took, t0)
    atomic_write_json(out / CONFIG, meta)
    echo(f"synth: {len(sources)} identities, {len(rows)} images in {took['images']:.1f} s"
         + (f", schedule video {int(round(fps * seconds))} frames" if video else "")
         + f" -> {out}")
    return meta
