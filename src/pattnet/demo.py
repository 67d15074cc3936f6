"""The embedded default job: the whole pipeline on a controlled AU set made from real faces.

BP4D and DISFA are licensed, so a fresh install has no labelled AU data and no honest pretrained
weights. ``pattnet demo`` makes its own: real faces that ship inside installed packages
(scikit-image's astronaut and 40 LFW faces, matplotlib's Grace Hopper; more with ``--faces``) get
FACS-based AU deformations of their face mesh (``pattnet synth``), then the real pipeline runs on
them: prepare -> train -> evaluate -> report -> export -> detect on a video whose AUs switch on
and off on a known schedule, with the timeline compared to that schedule.

The numbers it prints are about synthetic deformations of a few real faces, not about
spontaneous expressions: BP4D/DISFA results need those datasets (``pattnet prepare``).
"""

from __future__ import annotations

import contextlib
import importlib
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import NonNegativeInt, PositiveInt

from pattnet.config import STAGE_CONFIG, save_config
from pattnet.constants import au_name
from pattnet.errors import PattnetError
from pattnet.io.atomic import atomic_write_text
from pattnet.train import TrainConfig

DISCLAIMER = (
    "pattnet demo: the data are SYNTHETIC FACS-based AU deformations of real faces bundled with "
    "scikit-image and matplotlib (the astronaut, Grace Hopper and 40 LFW faces, plus any "
    "--faces). They exercise the whole pipeline end to end; the tables below say how much the "
    "model learned from them. Results on spontaneous expressions need BP4D or DISFA "
    "(pattnet prepare)."
)


@dataclass
class DemoConfig:
    """What the demo runs; sized to finish in minutes on a small CPU."""

    __pydantic_config__: ClassVar = STAGE_CONFIG

    per_identity: PositiveInt = 24
    seed: NonNegativeInt = 0
    model: str = "pattnet-multilabel"
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            model="pattnet-multilabel", epochs=3, optimizer="adam", lr=3e-4, attention_lr=3e-3,
            batch_size=10, normalize="subject", val_fraction=0.0, num_workers=0,
        )
    )


def tiny_config(cfg: DemoConfig) -> DemoConfig:
    cfg.per_identity = 2
    cfg.train.epochs = 1
    return cfg


#: Where the paper (Fig. 4) finds each AU's attention: upper-face AUs on the brow and eye
#: patches P1-P5, lower-face AUs on the cheek, mouth and chin patches P6-P9.
EXPECTED_PATCHES: dict[int, tuple[int, ...]] = {
    1: (1, 2, 3, 4, 5), 2: (1, 2, 3, 4, 5), 4: (1, 2, 3, 4, 5),
    12: (6, 7, 8, 9), 15: (6, 7, 8, 9), 17: (6, 7, 8, 9), 23: (6, 7, 8, 9), 24: (6, 7, 8, 9),
}


def attention_check(attention: pd.DataFrame) -> pd.DataFrame:
    """Per AU of :data:`EXPECTED_PATCHES`: the patch with the most mean attention and whether it
    is where the paper says (rows of ``attention`` are AU names, columns P1..P9)."""
    rows = []
    for au, want in EXPECTED_PATCHES.items():
        name = au_name(au)
        if name not in attention.index:
            continue
        top = int(np.argmax(attention.loc[name].to_numpy(dtype=float))) + 1
        rows.append({"au": name, "top_patch": f"P{top}",
                     "expected": f"P{want[0]}-P{want[-1]}", "ok": top in want})
    return pd.DataFrame(rows).set_index("au") if rows else pd.DataFrame()


def schedule_agreement(detections: pd.DataFrame, schedule: pd.DataFrame,
                       aus: Sequence[int]) -> pd.DataFrame:
    """Per AU: how often detect's occurrence equals the schedule's ground truth, frame by frame.

    Also F1 of the occurrence and the mean probability when on vs off, which shows whether the
    timeline follows the schedule even where the threshold is off.
    """
    from sklearn.metrics import f1_score

    det = detections[detections["success"] == 1].drop_duplicates("frame").set_index("frame")
    sch = schedule.set_index("frame")
    frames = det.index.intersection(sch.index)
    rows = []
    for au in aus:
        name = au_name(au)
        if f"{name}_c" not in det.columns or name not in sch.columns:
            continue
        truth = sch.loc[frames, name].to_numpy().astype(int)
        pred = det.loc[frames, f"{name}_c"].to_numpy().astype(int)
        prob = det.loc[frames, f"{name}_p"].to_numpy(dtype=float)
        rows.append({
            "au": name,
            "frames": len(frames),
            "frames_on": int(truth.sum()),
            "agreement": float((truth == pred).mean()) if len(frames) else np.nan,
            "f1": float(f1_score(truth, pred, zero_division=0)) if truth.any() else np.nan,
            "mean_p_on": float(prob[truth == 1].mean()) if truth.any() else np.nan,
            "mean_p_off": float(prob[truth == 0].mean()) if (truth == 0).any() else np.nan,
        })
    df = pd.DataFrame(rows).set_index("au")
    if len(df):
        df.loc["Avg"] = df.mean(numeric_only=True)
    return df


#: The stages' packages, imported before the first stage starts (see :func:`_import_stages`).
_STAGE_MODULES = ("pattnet.checkpoint", "pattnet.detect", "pattnet.evaluate", "pattnet.prepare",
                  "pattnet.report", "pattnet.synth", "pattnet.train")


def _import_stages() -> None:
    """Import every stage up front: a broken install fails before any work is done, and the
    stage times printed at the end are the stages' own, not their imports'."""
    for name in _STAGE_MODULES:
        importlib.import_module(name)


@dataclass(frozen=True)
class DemoPaths:
    """Where each stage of a demo writes, under its ``out`` folder."""

    out: Path

    @property
    def synth(self) -> Path:
        return self.out / "synth"

    @property
    def store(self) -> Path:
        return self.out / "store"

    @property
    def run(self) -> Path:
        return self.out / "run"

    @property
    def report(self) -> Path:
        return self.out / "report"

    @property
    def model(self) -> Path:
        return self.out / "model.pt"

    @property
    def detect(self) -> Path:
        return self.out / "detect"


class _StageClock:
    """Prints each stage's heading and keeps how long the stage took, for the closing summary."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}
        self.start = time.perf_counter()

    @contextlib.contextmanager
    def stage(self, heading: str, key: str) -> Iterator[None]:
        print(f"\n== {heading}")
        t = time.perf_counter()
        yield
        self.times[key] = time.perf_counter() - t

    def total(self) -> float:
        return time.perf_counter() - self.start


def _demo_config(cfg: DemoConfig | None, tiny: bool, paper: bool) -> DemoConfig:
    cfg = cfg or DemoConfig()
    if tiny:
        cfg = tiny_config(cfg)
    if paper:
        cfg.train.model = "pattnet"
    return cfg


def _synth(paths: DemoPaths, faces: Sequence[str | Path] | None, cfg: DemoConfig) -> None:
    from pattnet.synth import synthesize

    shutil.rmtree(paths.synth, ignore_errors=True)
    synthesize(paths.synth, faces, per_identity=cfg.per_identity, seed=cfg.seed)


def _prepare(paths: DemoPaths, progress: bool) -> None:
    from pattnet.prepare import prepare

    shutil.rmtree(paths.store, ignore_errors=True)
    prepare(paths.synth / "manifest.csv", paths.store, "manifest", track=False, progress=progress)


def _train(paths: DemoPaths, cfg: DemoConfig, progress: bool) -> None:
    from pattnet.train import train

    shutil.rmtree(paths.run, ignore_errors=True)
    train(paths.store, paths.run, cfg.train, folds="all", progress=progress)


def _evaluate_and_report(paths: DemoPaths) -> tuple[Any, Any]:
    """The run's evaluation (Tables 1-2) and the report made from it (its figures)."""
    from pattnet.evaluate import evaluate_run
    from pattnet.report import make_report

    res = evaluate_run(paths.run)
    shutil.rmtree(paths.report, ignore_errors=True)
    rep = make_report([paths.run], paths.report)
    return res, rep


def _detect(paths: DemoPaths) -> pd.DataFrame:
    """Export the run as one model file and detect AUs on the schedule video with it."""
    from pattnet.checkpoint import export_run
    from pattnet.detect import Detector, read_detections
    from pattnet.synth import SCHEDULE_VIDEO

    export_run(paths.run, paths.model)
    det_dir = paths.detect
    det_dir.mkdir(exist_ok=True)
    detector = Detector(paths.model)
    detector.detect_to_files(
        paths.synth / SCHEDULE_VIDEO, det_dir / "schedule.csv",
        overlay=det_dir / "schedule_overlay.mp4", plot=det_dir / "schedule_timeline.png",
    )
    return read_detections(det_dir / "schedule.csv")


def _compare(paths: DemoPaths, detections: pd.DataFrame, aus: Sequence[int]) -> pd.DataFrame:
    from pattnet.synth import SCHEDULE_CSV

    schedule = pd.read_csv(paths.synth / SCHEDULE_CSV)
    agree = schedule_agreement(detections, schedule, aus)
    atomic_write_text(paths.detect / "schedule_agreement.csv", agree.round(3).to_csv())
    return agree


def _print_results(res: Any, agree: pd.DataFrame) -> dict[str, Any]:
    """Print the tables and the headline figures; return those figures."""
    pooled = res.pooled
    avg_f1 = float(pooled.loc["Avg", "f1"])
    base = pooled["base_rate"].drop("Avg")
    all_pos = 2 * base / (1 + base)
    beats = int((pooled["f1"].drop("Avg") > all_pos).sum())
    print("\n" + res.markdown)
    print("\nDetected timeline vs schedule (per AU, frame by frame):")
    print(agree.round(3).to_string())
    att = attention_check(res.attention) if res.attention is not None else pd.DataFrame()
    att_ok = int(att["ok"].sum()) if len(att) else 0
    print(f"\nF1 above the all-positive baseline for {beats} of {len(base)} AUs; "
          f"average F1 {avg_f1:.3f}")
    if len(att):
        print(f"Attention where the paper finds it (AU1/2/4 on P1-P5, AU12/15/17/23/24 on P6-P9): "
              f"{att_ok} of {len(att)} AUs (" + ", ".join(f"{a} {r.top_patch}" for a, r in att.iterrows())
              + ")")
    return {"avg_f1": avg_f1, "beats_baseline": beats, "attention": att}


def _print_locations(paths: DemoPaths, times: dict[str, float], total: float) -> None:
    det_dir = paths.detect
    print("\nWhere things are:")
    print(f"  tables:    {paths.report / 'report.md'}")
    for p in sorted(paths.report.glob("*.png")):
        print(f"  figure:    {p}")
    print(f"  model:     {paths.model}")
    print(f"  detect:    {det_dir / 'schedule.csv'}, {det_dir / 'schedule_overlay.mp4'}, "
          f"{det_dir / 'schedule_timeline.png'}")
    print("  stage times: " + ", ".join(f"{k} {v:.0f} s" for k, v in times.items()))
    print(f"demo finished in {total:.0f} s")


def run_demo(
    out: str | Path = "pattnet-demo",
    faces: Sequence[str | Path] | None = None,
    paper: bool = False,
    tiny: bool = False,
    progress: bool = True,
    cfg: DemoConfig | None = None,
) -> dict[str, Any]:
    """Run every stage into ``out`` and return where things are and the key figures."""
    _import_stages()
    cfg = _demo_config(cfg, tiny, paper)
    paths = DemoPaths(Path(out))
    paths.out.mkdir(parents=True, exist_ok=True)
    print(DISCLAIMER)
    clock = _StageClock()
    with clock.stage("1/6 synth: AU deformations of real faces", "synth"):
        _synth(paths, faces, cfg)
    with clock.stage("2/6 prepare: register every image, cut the 9 patches, write the store",
                     "prepare"):
        _prepare(paths, progress)
    with clock.stage(f"3/6 train: {cfg.train.model}, subject-independent 3-fold cross-validation",
                     "train"):
        _train(paths, cfg, progress)
    with clock.stage("4/6 evaluate and report: Tables 1-2, Figures 2-4", "evaluate+report"):
        res, rep = _evaluate_and_report(paths)
    with clock.stage("5/6 detect: export the model, run it on the schedule video", "detect"):
        detections = _detect(paths)
    with clock.stage("6/6 compare the detected timeline with the schedule", "compare"):
        agree = _compare(paths, detections, res.run.aus)
    total = clock.total()
    save_config(cfg, paths.out / "demo_config.yaml")
    figures = _print_results(res, agree)
    _print_locations(paths, clock.times, total)
    print(DISCLAIMER)
    return {"out": paths.out, "run": paths.run, "report": rep, "avg_f1": figures["avg_f1"],
            "beats_baseline": figures["beats_baseline"], "attention": figures["attention"],
            "agreement": agree, "times": clock.times, "total_s": total}


def check_faces(faces: Sequence[str | Path] | None) -> None:
    for f in faces or []:
        if not Path(f).exists():
            raise PattnetError(f"{f}: --faces file or folder not found")
