"""The demo's stages, one function each, and :func:`run_demo`, which runs them in order."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pattnet.config import save_config
from pattnet.demo.checks import attention_check, schedule_agreement
from pattnet.demo.config import DISCLAIMER, DemoConfig, tiny_config
from pattnet.errors import PattnetError
from pattnet.io.atomic import atomic_write_text
from pattnet.train import TrainConfig

#: The stages' packages, imported before the first stage starts (see :func:`_import_stages`).
_STAGE_MODULES = ("pattnet.checkpoint", "pattnet.detect", "pattnet.evaluate", "pattnet.prepare",
                  "pattnet.report", "pattnet.synth", "pattnet.train")


def _import_stages() -> None:
    """Import every stage up front: a broken install fails before any work is done, and the
    stage times printed at the end are the stages' own, not their imports'."""
    for name in _STAGE_MODULES:
        importlib.import_module(name)


@dataclass(frozen=True)
class DemoModel:
    """One of the demo's models: its name, training config and where its results go."""

    key: str  # "patches" (the paper's network) or "fusion"
    train: TrainConfig
    out: Path

    @property
    def run(self) -> Path:
        return self.out / ("run" if self.key == "patches" else f"run-{self.key}")

    @property
    def model(self) -> Path:
        return self.out / ("model-patches.pt" if self.key == "patches" else "model.pt")

    @property
    def schedule_csv(self) -> Path:
        return DemoPaths(self.out).detect / ("schedule-patches.csv" if self.key == "patches"
                                             else "schedule.csv")


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
    def report(self) -> Path:
        return self.out / "report"

    @property
    def detect(self) -> Path:
        return self.out / "detect"

    def models(self, cfg: DemoConfig) -> list[DemoModel]:
        """The patch model, then the fusion model (the one the schedule video's overlay shows)."""
        out = [DemoModel("patches", cfg.train, self.out)]
        if cfg.fusion:
            out.append(DemoModel("fusion", dataclasses.replace(cfg.train, model=cfg.fusion),
                                 self.out))
        return out


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


def _train(paths: DemoPaths, m: DemoModel, progress: bool) -> None:
    from pattnet.train import train

    shutil.rmtree(m.run, ignore_errors=True)
    train(paths.store, m.run, m.train, folds="all", progress=progress)


def _branch_of(models: list[DemoModel]) -> str | None:
    """The branch of the fusion model that is the patch model (then one training gives both),
    or None when the patch model is another network (``--paper``'s per-AU networks)."""
    from pattnet.models import model_branches

    if len(models) < 2:
        return None
    patch, fusion = models[0], models[-1]
    found = [b.key for b in model_branches(fusion.train.model) if b.model == patch.train.model]
    return found[0] if found else None


def _train_all(paths: DemoPaths, models: list[DemoModel], clock: _StageClock,
               progress: bool) -> None:
    """Train each model, except a patch model that the fusion model holds as its branch: that
    one is the fusion training's branch, written out as a run of its own."""
    from pattnet.train import branch_run

    branch = _branch_of(models)
    trained = [models[-1]] if branch else models
    for m in trained:
        with clock.stage(f"3/6 train: {m.train.model}, subject-independent 3-fold "
                         "cross-validation", f"train {m.key}"):
            _train(paths, m, progress)
    if branch:
        patch = models[0]
        with clock.stage(f"3/6 {patch.train.model}: the {branch} branch of {models[-1].train.model}"
                         ", trained with it (one training, two models)", "branch"):
            shutil.rmtree(patch.run, ignore_errors=True)
            branch_run(models[-1].run, patch.run, branch)


def _evaluate_and_report(paths: DemoPaths, models: list[DemoModel]) -> tuple[list[Any], Any]:
    """Each run's evaluation (Tables 1-2) and one report over all of them (Table 3, figures)."""
    from pattnet.evaluate import evaluate_run
    from pattnet.report import make_report

    results = [evaluate_run(m.run) for m in models]
    shutil.rmtree(paths.report, ignore_errors=True)
    rep = make_report([m.run for m in models], paths.report)
    return results, rep


def _detect(paths: DemoPaths, m: DemoModel, overlay: bool) -> pd.DataFrame:
    """Export the run as one model file and detect AUs on the schedule video with it."""
    from pattnet.checkpoint import export_run
    from pattnet.detect import Detector, read_detections
    from pattnet.synth import SCHEDULE_VIDEO

    export_run(m.run, m.model)
    paths.detect.mkdir(exist_ok=True)
    with Detector(m.model) as detector:
        detector.detect_to_files(
            paths.synth / SCHEDULE_VIDEO, m.schedule_csv,
            overlay=paths.detect / "schedule_overlay.mp4" if overlay else None,
            plot=m.schedule_csv.with_name(m.schedule_csv.stem + "_timeline.png"),
            progress=False)
    return read_detections(m.schedule_csv)


def _compare(paths: DemoPaths, m: DemoModel, detections: pd.DataFrame,
             aus: Sequence[int]) -> pd.DataFrame:
    from pattnet.synth import SCHEDULE_CSV

    schedule = pd.read_csv(paths.synth / SCHEDULE_CSV)
    agree = schedule_agreement(detections, schedule, aus)
    name = m.schedule_csv.stem.replace("schedule", "schedule_agreement")
    atomic_write_text(paths.detect / f"{name}.csv", agree.round(3).to_csv())
    return agree


def _print_results(m: DemoModel, res: Any, agree: pd.DataFrame) -> dict[str, Any]:
    """Print one model's tables and headline figures; return those figures."""
    pooled = res.pooled
    avg_f1 = float(pooled.loc["Avg", "f1"])
    base = pooled["base_rate"].drop("Avg")
    all_pos = 2 * base / (1 + base)
    beats = int((pooled["f1"].drop("Avg") > all_pos).sum())
    print(f"\n==== {m.train.model} ({m.run})\n" + res.markdown)
    print("\nDetected timeline vs schedule (per AU, frame by frame):")
    print(agree.round(3).to_string())
    att = attention_check(res.attention) if res.attention is not None else pd.DataFrame()
    att_ok = int(att["ok"].sum()) if len(att) else 0
    print(f"\n{m.train.model}: F1 above the all-positive baseline for {beats} of {len(base)} AUs; "
          f"average F1 {avg_f1:.3f}, pooled AUC {float(pooled.loc['Avg', 'auc']):.3f}; "
          f"schedule agreement {float(agree.loc['Avg', 'agreement']):.3f}")
    if len(att):
        print(f"Attention where the paper finds it (AU1/2/4 on P1-P5, AU12/15/17/23/24 on P6-P9): "
              f"{att_ok} of {len(att)} AUs (" + ", ".join(f"{a} {r.top_patch}" for a, r in att.iterrows())
              + ")")
    return {"model": m.train.model, "avg_f1": avg_f1, "auc": float(pooled.loc["Avg", "auc"]),
            "beats_baseline": beats, "attention": att, "agreement": agree}


def _print_locations(paths: DemoPaths, models: list[DemoModel], times: dict[str, float],
                     total: float) -> None:
    print("\nWhere things are:")
    print(f"  tables:    {paths.report / 'report.md'}")
    for p in sorted(paths.report.glob("*.png")):
        print(f"  figure:    {p}")
    for m in models:
        print(f"  model:     {m.model} ({m.train.model})")
        print(f"  detect:    {m.schedule_csv}")
    print(f"  overlay:   {paths.detect / 'schedule_overlay.mp4'}")
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
    models = paths.models(cfg)
    print(DISCLAIMER)
    clock = _StageClock()
    with clock.stage("1/6 synth: AU deformations of real faces", "synth"):
        _synth(paths, faces, cfg)
    with clock.stage("2/6 prepare: register every image, cut the 9 patches, keep the mesh, "
                     "write the store", "prepare"):
        _prepare(paths, progress)
    _train_all(paths, models, clock, progress)
    with clock.stage("4/6 evaluate and report: Tables 1-3, Figures 2-4", "evaluate+report"):
        results, rep = _evaluate_and_report(paths, models)
    with clock.stage("5/6 detect: export each model, run it on the schedule video", "detect"):
        detections = [_detect(paths, m, overlay=m is models[-1]) for m in models]
    with clock.stage("6/6 compare the detected timelines with the schedule", "compare"):
        agree = [_compare(paths, m, d, r.run.aus)
                 for m, d, r in zip(models, detections, results, strict=True)]
    total = clock.total()
    save_config(cfg, paths.out / "demo_config.yaml")
    figures = [_print_results(m, r, a) for m, r, a in zip(models, results, agree, strict=True)]
    _print_locations(paths, models, clock.times, total)
    print(DISCLAIMER)
    return {"out": paths.out, "report": rep, "models": figures, "times": clock.times,
            "total_s": total}


def check_faces(faces: Sequence[str | Path] | None) -> None:
    for f in faces or []:
        if not Path(f).exists():
            raise PattnetError(f"{f}: --faces file or folder not found")


__all__ = ["DemoModel", "DemoPaths", "check_faces", "run_demo"]
