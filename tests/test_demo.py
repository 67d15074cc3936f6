"""The README's main job, at its smallest: every stage runs and writes what it promises."""

import pandas as pd
import pytest

from pattnet.cli import main


@pytest.mark.slow
def test_tiny_demo_runs_every_stage(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--tiny", "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "SYNTHETIC" in printed and "demo finished" in printed
    man = pd.read_csv(out / "synth" / "manifest.csv")
    assert man["subject"].nunique() >= 3
    assert (out / "store" / "frames.csv").is_file()
    for run in ("run", "run-fusion"):  # the paper's patch model and the fusion model
        for f in (1, 2, 3):
            assert (out / run / f"fold{f}" / "predictions.npz").is_file()
    for name in ("report.md", "fig4_attention.png", "fig2_patches.png", "table1_f1.csv",
                 "table3_ablation.csv"):
        assert (out / "report" / name).is_file(), name
    assert "pattnet-multilabel" in printed and "pattnet-fusion" in printed
    schedule = pd.read_csv(out / "synth" / "schedule.csv")
    for model, stem in (("model.pt", "schedule"), ("model-patches.pt", "schedule-patches")):
        assert (out / model).is_file()
        det = pd.read_csv(out / "detect" / f"{stem}.csv", comment="#")
        assert len(det) >= len(schedule)
        agree = pd.read_csv(out / "detect" / f"{stem.replace('schedule', 'schedule_agreement')}.csv",
                            index_col=0)
        assert {"agreement", "f1", "mean_p_on", "mean_p_off"} <= set(agree.columns)
        assert agree["agreement"].between(0, 1).all()
    assert (out / "detect" / "schedule_overlay.mp4").is_file()


def test_demo_rejects_missing_faces(tmp_path, capsys):
    assert main(["demo", "--faces", str(tmp_path / "nope.jpg"), "--out", str(tmp_path / "d")]) == 2
    assert "not found" in capsys.readouterr().err
