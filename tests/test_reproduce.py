"""``pattnet reproduce``: the whole grid end to end on a tiny store, its dry run, and a kill -9
in the middle followed by the same command, which ends with the report an uninterrupted run
writes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import toy_store
from pattnet.cli import main
from pattnet.reproduce import GRID, select

TINY = ["--set", "epochs=1", "batch_size=6", "num_workers=0", "max_batches=1"]
TABLES = ("table1_f1.csv", "table2_auc.csv", "table3_ablation.csv", "fig4_attention.csv")


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("grid") / "store"
    toy_store(path, n=24, aus=(1, 12), signal_patch={12: 8})
    return path


def _cmd(store: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "pattnet", "reproduce", str(store), "--out", str(out),
            "--no-progress", *TINY]


def test_the_grid_is_the_papers_table_3_and_the_multilabel_model():
    names = [e.name for e in GRID]
    assert names[:3] == ["pattnet", "pattnet-softmax", "holistic"]
    assert names[3:12] == [f"single-patch-P{p}" for p in range(1, 10)]
    assert names[12] == "pattnet-multilabel"
    assert [e.name for e in select(["single-patch"], ["single-patch-P5"])] == \
        [f"single-patch-P{p}" for p in (1, 2, 3, 4, 6, 7, 8, 9)]


def test_dry_run_prints_the_plan_and_runs_nothing(store, tmp_path, capsys):
    assert main(["reproduce", str(store), "--out", str(tmp_path / "g"), "--dry-run",
                 "--only", "pattnet-multilabel", "holistic", *TINY]) == 0
    out = capsys.readouterr().out
    assert "grid of 2 experiment(s) x 3 folds" in out and "estimated time left" in out
    assert "pattnet-multilabel" in out and "samples/s training" in out
    assert not (tmp_path / "g").exists()


def test_bad_names_and_settings_are_refused(store, tmp_path, capsys):
    assert main(["reproduce", str(store), "--out", str(tmp_path / "g"), "--only", "resnet"]) == 2
    assert "--only 'resnet': no such experiment" in capsys.readouterr().err
    assert main(["reproduce", str(store), "--out", str(tmp_path / "g"), "--set",
                 "model=holistic"]) == 2
    assert "use --only/--skip" in capsys.readouterr().err
    assert not (tmp_path / "g").exists()


@pytest.mark.slow
def test_killed_grid_resumes_to_the_report_of_an_uninterrupted_one(store, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOG_minloglevel": "3"}
    full = tmp_path / "full"
    r = subprocess.run(_cmd(store, full), capture_output=True, text=True, env=env, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    for name in (e.name for e in GRID):
        assert all((full / name / f"fold{k}" / "predictions.npz").is_file() for k in (1, 2, 3))
    cut = tmp_path / "cut"
    proc = subprocess.Popen(_cmd(store, cut), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 300
    while not (cut / "single-patch-P2" / "fold1").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)  # in the middle of the grid
    proc.wait()
    assert not (cut / "report").exists()
    r = subprocess.run(_cmd(store, cut), capture_output=True, text=True, env=env, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    for t in TABLES:
        assert (cut / "report" / t).read_bytes() == (full / "report" / t).read_bytes(), t


def test_each_gpu_worker_repeats_the_command_it_was_started_by():
    """The workers' command comes from the parsed arguments, not from ``sys.argv`` (which is
    pytest's here, as it is any Python caller's of ``pattnet.cli.main``)."""
    from pattnet.cli import build_parser
    from pattnet.cli.reproduce import _worker_argv

    parser = build_parser()
    given = ["reproduce", "st", "--out", "grid", "--only", "pattnet", "holistic", "--skip",
             "single-patch", "--set", "epochs=2", "lr=0.01", "--gpus", "4", "--no-progress"]
    args = parser.parse_args(given)
    again = parser.parse_args([*_worker_argv(args), "--worker", "1/4"])
    for key in ("store", "out", "only", "skip", "set", "no_progress", "dry_run"):
        assert getattr(again, key) == getattr(args, key), key
    assert again.worker == "1/4"
