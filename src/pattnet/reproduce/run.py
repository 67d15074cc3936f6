"""``pattnet reproduce``: the whole grid, resumable, spread over the GPUs, then one report.

Why one process per GPU (and not DDP per experiment): the grid's experiments are independent,
each small enough for one GPU, so N GPUs finish N experiments at a time with no communication at
all, where DDP would add a gradient and batch-statistics exchange to every step of each. Without
a GPU the experiments run one after another in this process.

Resumable at any point: every experiment is an ordinary run folder trained with ``resume``, so a
killed grid continues from the last checkpoint of each run, and finished folds are skipped; the
report is written again at the end from whatever is finished.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pattnet.config import to_dict, validate
from pattnet.errors import PattnetError
from pattnet.io.atomic import atomic_write_json, ensure_output_dir, read_json
from pattnet.reproduce.grid import Experiment, Progress, progress, select
from pattnet.store import PatchStore
from pattnet.train import TrainConfig, train

PLAN_FILE = "reproduce.json"
REPORT_DIR = "report"


@dataclass
class Plan:
    """What a grid run is: the store, the settings every experiment shares, the experiments."""

    store: Path
    out: Path
    base: TrainConfig
    experiments: list[Experiment]

    def record(self) -> None:
        """``DIR/reproduce.json``; a rerun into ``DIR`` must be the same grid."""
        f = self.out / PLAN_FILE
        want = {"store": str(self.store.resolve()), "settings": to_dict(self.base)}
        if f.is_file():
            have = read_json(f)
            if have.get("store") != want["store"] or have.get("settings") != want["settings"]:
                raise PattnetError(f"{f}: this folder holds a grid with another store or other "
                                   "settings; rerun the command that made it, or choose another "
                                   "--out")
            return
        atomic_write_json(f, want)


def plan(store: str | Path, out: str | Path, base: TrainConfig, only: list[str] | None = None,
         skip: list[str] | None = None) -> Plan:
    """Check everything a grid needs before anything runs (the store, the settings, the names)."""
    st = PatchStore(store)  # refuses a missing, unfinished or damaged store in one line
    base = validate(base)
    if base.model != TrainConfig().model or base.patch != TrainConfig().patch:
        raise PattnetError("--set model/patch: the grid chooses the model of each experiment; "
                           "use --only/--skip")
    return Plan(st.path, Path(out), base, select(only, skip))


def estimate(p: Plan, echo: Callable[[str], None] = print) -> float:
    """Print the plan with a time estimate from a short measured step of each model; returns
    the estimated seconds of what is left."""
    from pattnet.reproduce.timing import step_rates

    st = PatchStore(p.store)
    usable = int(st.success.sum())
    train_frames = usable * (p.base.folds - 1) / p.base.folds * (1 - p.base.val_fraction)
    if p.base.max_batches is not None:
        train_frames = min(train_frames, p.base.max_batches * p.base.batch_size)
    val_frames = usable * (p.base.folds - 1) / p.base.folds * p.base.val_fraction
    test_frames = usable / p.base.folds
    rates = step_rates(p.experiments, p.base, st.aus)
    left = 0.0
    echo(f"grid of {len(p.experiments)} experiment(s) x {p.base.folds} folds on {p.store} "
         f"({usable} usable frames; {p.base.epochs} epochs, batch {p.base.batch_size}):")
    for pr in progress(p.out, p.experiments, p.base.folds):
        train_rate, eval_rate = rates[pr.experiment.name]
        # validated after every epoch, tested once with the selected epoch
        per_fold = (p.base.epochs * (train_frames / train_rate + val_frames / eval_rate)
                    + test_frames / eval_rate)
        todo = (pr.total - pr.finished) * per_fold
        left += todo
        echo(f"  {pr.experiment.name:20s} {pr.finished}/{pr.total} folds done; "
             f"{train_rate:7.1f} samples/s training -> {_hms(todo)} left")
    echo(f"estimated time left: {_hms(left)} (from one measured step per model on this "
         "machine; loading and registration of new frames not included)")
    return left


def _hms(s: float) -> str:
    h, rem = divmod(int(round(s)), 3600)
    return f"{h}h{rem // 60:02d}m" if h else f"{rem // 60}m{rem % 60:02d}s"


def run_experiments(p: Plan, exps: Sequence[Experiment], progress_bars: bool,
                    echo: Callable[[str], None] = print) -> None:
    """Train (or continue) each experiment in this process, one after another."""
    for e in exps:
        t0 = time.monotonic()
        echo(f"== {e.name}")
        train(p.store, p.out / e.name, e.config(p.base), folds="all", resume=True,
              progress=progress_bars)
        echo(f"   {e.name} done in {_hms(time.monotonic() - t0)}")


def run_on_gpus(argv: list[str], gpus: int) -> None:
    """One worker process per GPU, each running every ``gpus``-th experiment on its own GPU."""
    procs = []
    for k in range(gpus):
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": str(k)}
        procs.append(subprocess.Popen([sys.executable, "-m", "pattnet.cli", *argv, "--worker",
                                       f"{k}/{gpus}"], env=env))
    failed = [k for k, proc in enumerate(procs) if proc.wait() != 0]
    if failed:
        raise PattnetError(f"the worker(s) on GPU {', '.join(map(str, failed))} failed (see "
                           "above); run the same command again to continue")


def write_report(p: Plan, echo: Callable[[str], None] = print) -> Any:
    """Tables 1-3 and Figures 2-4 over every finished experiment, beside the paper's numbers."""
    from pattnet.report import make_report

    done = [pr for pr in progress(p.out, p.experiments, p.base.folds) if pr.finished]
    if not done:
        raise PattnetError(f"{p.out}: no experiment has a finished fold yet")
    partial = [f"{pr.experiment.name} ({pr.finished}/{pr.total})" for pr in done if not pr.done]
    if partial:
        echo(f"report over unfinished experiments: {', '.join(partial)}")
    return make_report([p.out / pr.experiment.name for pr in done], p.out / REPORT_DIR)


def reproduce(store: str | Path, out: str | Path, base: TrainConfig | None = None, *,
              only: list[str] | None = None, skip: list[str] | None = None, gpus: int = 0,
              worker: tuple[int, int] | None = None, argv: list[str] | None = None,
              progress_bars: bool = True, echo: Callable[[str], None] = print) -> Any:
    """Run the grid into ``out`` (resuming what is there) and write the report; returns it.

    ``gpus`` > 1 starts one worker process per GPU (``argv`` is the command line they repeat);
    ``worker=(k, n)`` is such a worker: it runs experiments k, k+n, ... and no report.
    """
    p = plan(store, out, base or TrainConfig(), only, skip)
    ensure_output_dir(p.out)
    p.record()
    if worker is not None:
        k, n = worker
        run_experiments(p, p.experiments[k::n], progress_bars, echo)
        return None
    if gpus > 1:
        run_on_gpus(argv or [], gpus)
    else:
        run_experiments(p, p.experiments, progress_bars, echo)
    rep = write_report(p, echo)
    echo(f"report: {p.out / REPORT_DIR / 'report.md'}")
    return rep


__all__ = ["PLAN_FILE", "REPORT_DIR", "Plan", "Progress", "estimate", "plan", "reproduce",
           "write_report"]
