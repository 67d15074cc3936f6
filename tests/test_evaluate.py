"""``evaluate_run`` / ``compare_runs`` / ``pattnet evaluate`` on synthetic run directories."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score, roc_auc_score

from pattnet.cli import main
from pattnet.constants import BP4D_AUS, DISFA_AUS
from pattnet.errors import PattnetError
from pattnet.evaluate import compare_runs, evaluate_run
from pattnet.paper import AUC_PATTNET, BEST_SINGLE_PATCH, F1_HOLISTIC, F1_PATTNET, F1_SOFTMAX


def make_run(
    root: Path,
    name: str = "run",
    aus=BP4D_AUS,
    folds=(1, 2, 3),
    model: str = "pattnet",
    dataset: str = "bp4d",
    attention: bool = True,
    n: int = 300,
    seed: int = 0,
    **extra,
) -> Path:
    """A run directory as ``pattnet train`` writes it, with random but informative predictions."""
    run = root / name
    run.mkdir(parents=True)
    meta = {"model": model, "aus": list(aus), "folds": [1, 2, 3], "dataset": dataset,
            "threshold": 0.5, **extra}
    (run / "run.json").write_text(json.dumps(meta))
    (run / "config.yaml").write_text("model: x\n")
    rng = np.random.default_rng(seed)
    a = len(aus)
    for f in folds:
        d = run / f"fold{f}"
        d.mkdir()
        label = (rng.random((n, a)) < 0.3).astype(np.int8)
        prob = np.clip(0.3 * label + 0.7 * rng.random((n, a)), 0, 1).astype(np.float32)
        label[rng.random((n, a)) < 0.1] = -1
        arrays = {"index": np.arange(n, dtype=np.int64) + 1000 * f,
                  "subject": np.array([f"S{f}{i % 4}" for i in range(n)]),
                  "prob": prob, "label": label}
        if attention:
            arrays["attention"] = rng.random((n, a, 9)).astype(np.float16)
        np.savez(d / "predictions.npz", **arrays)
        (d / "split.json").write_text(json.dumps({"train": [], "val": [], "test": []}))
        (d / "selected.json").write_text(
            json.dumps({"epoch": f + 1, "criterion": "val_f1", "value": 0.6}))
    return run


def table_rows(md: str) -> list[list[str]]:
    """The cells of every markdown table row in ``md`` (separator rows left out)."""
    rows = []
    for ln in md.splitlines():
        if ln.startswith("|"):
            cells = [c.strip() for c in ln.strip().strip("|").split("|")]
            if not all(set(c) <= set(":-") for c in cells):
                rows.append(cells)
    return rows


def row_of(md: str, first: str) -> list[str]:
    """The cells of the first table row whose first cell is ``first``."""
    return next(r for r in table_rows(md) if r[0] == first)


def has_cells(md: str, cells: list[str]) -> bool:
    """Whether some table row holds ``cells`` as consecutive cells."""
    n = len(cells)
    return any(r[i:i + n] == cells for r in table_rows(md) for i in range(len(r) - n + 1))


def _load(run: Path, f: int):
    z = np.load(run / f"fold{f}" / "predictions.npz")
    return z["prob"], z["label"], z["attention"] if "attention" in z.files else None


def test_per_fold_and_pooled(tmp_path):
    run = make_run(tmp_path)
    res = evaluate_run(run)
    assert res.folds == (1, 2, 3) and res.missing_folds == ()
    probs, labels = [], []
    for f in (1, 2, 3):
        p, lab, _ = _load(run, f)
        probs.append(p)
        labels.append(lab)
        m = res.fold(f)
        for j, au in enumerate(BP4D_AUS):
            keep = lab[:, j] >= 0
            assert m.loc[f"AU{au:02d}", "f1"] == pytest.approx(
                f1_score(lab[keep, j], p[keep, j] >= 0.5))
    # Pooled = metrics on concatenated predictions, not the mean of folds.
    P, L = np.concatenate(probs), np.concatenate(labels)
    for j, au in enumerate(BP4D_AUS):
        keep = L[:, j] >= 0
        row = res.pooled.loc[f"AU{au:02d}"]
        assert row["f1"] == pytest.approx(f1_score(L[keep, j], P[keep, j] >= 0.5))
        assert row["auc"] == pytest.approx(roc_auc_score(L[keep, j], P[keep, j]))
        fold_f1 = [res.fold(f).loc[f"AU{au:02d}", "f1"] for f in (1, 2, 3)]
        assert row["f1_fold_mean"] == pytest.approx(np.mean(fold_f1))
    assert res.pooled.loc["Avg", "f1_fold_mean"] == pytest.approx(
        np.mean([res.fold(f).loc["Avg", "f1"] for f in (1, 2, 3)]))
    assert res.pooled.loc["Avg", "n"] == (L >= 0).sum()


def test_files_written(tmp_path):
    run = make_run(tmp_path)
    res = evaluate_run(run)
    ev = run / "eval"
    for name in ("metrics_per_fold.csv", "metrics_pooled.csv", "attention_mean.csv",
                 "tables.md", "summary.json"):
        assert (ev / name).is_file(), name
    per = pd.read_csv(ev / "metrics_per_fold.csv")
    assert set(per["fold"]) == {1, 2, 3} and len(per) == 3 * 13
    pooled = pd.read_csv(ev / "metrics_pooled.csv")
    assert list(pooled["name"])[-1] == "Avg"
    assert (pooled["pooling"] == "concatenated predictions").all()
    np.testing.assert_allclose(pooled["f1"], res.pooled["f1"], rtol=1e-5)
    att = pd.read_csv(ev / "attention_mean.csv", index_col=0)
    assert list(att.columns) == [f"P{i}" for i in range(1, 10)] and len(att) == 12
    # Attention: mean over coded frames per fold, then over folds.
    means = []
    for f in (1, 2, 3):
        _, lab, a = _load(run, f)
        means.append(a[lab[:, 0] >= 0, 0].astype(np.float64).mean(0))
    np.testing.assert_allclose(att.loc["AU01"], np.mean(means, 0), rtol=1e-5)
    summary = json.loads((ev / "summary.json").read_text())
    assert summary["folds_evaluated"] == [1, 2, 3]
    assert "concatenated" in summary["pooling"]


def test_tables_hold_paper_and_ours(tmp_path):
    run = make_run(tmp_path)
    res = evaluate_run(run, write=False)
    md = res.markdown
    assert res.files == {} and not (run / "eval").exists()
    assert "## Table 1" in md and "## Table 2" in md
    for row in (F1_PATTNET, F1_SOFTMAX, F1_HOLISTIC):
        cells = row_of(md, row.label)
        assert cells[1:] == [f"{row.values[a]:.1f}" for a in BP4D_AUS] + [f"{row.avg:.1f}"]
    assert any(r[:3] == [AUC_PATTNET.label, "66.5", "65.6"] for r in table_rows(md))
    cells = row_of(md, "ours (this run, pattnet), pooled")
    assert cells[1] == f"{100 * res.pooled.loc['AU01', 'f1']:.1f}"
    assert cells[-1] == f"{100 * res.pooled.loc['Avg', 'f1']:.1f}"
    assert row_of(md, "Method")[1:4] == ["AU1", "AU2", "AU4"]
    assert "concatenated test predictions of folds 1, 2, 3" in md
    assert "epoch 2 selected by val_f1" in md
    assert "ME-GraphAU 65.5" in md


def test_missing_folds_and_no_attention(tmp_path):
    run = make_run(tmp_path, folds=(1, 3), model="holistic", attention=False)
    res = evaluate_run(run)
    assert res.folds == (1, 3) and res.missing_folds == (2,)
    assert res.attention is None and not (run / "eval" / "attention_mean.csv").exists()
    assert "missing: 2" in res.markdown
    assert "ours (this run, holistic)" in res.markdown


def test_disfa_shows_ours_for_aus_the_paper_lacks(tmp_path):
    run = make_run(tmp_path, aus=DISFA_AUS, dataset="disfa")
    md = evaluate_run(run).markdown
    cells = row_of(md, F1_PATTNET.label)
    # AU9, AU25, AU26 are not in the paper; columns follow the run's AUs + Avg + Avg shared.
    assert cells[1:] == ["46.1", "41.4", "57.1", "77.9", "–", "88.4", "–", "–", "62.6",
                         f"{np.mean([46.1, 41.4, 57.1, 77.9, 88.4]):.1f}"]
    assert "AU9, AU25, AU26: not in the paper, ours only" in md
    assert "BP4D only" in md and "Avg shared" in md


def test_threshold_option(tmp_path):
    run = make_run(tmp_path)
    lo = evaluate_run(run, threshold=0.2, write=False)
    p, lab, _ = _load(run, 1)
    keep = lab[:, 0] >= 0
    assert lo.fold(1).loc["AU01", "f1"] == pytest.approx(f1_score(lab[keep, 0], p[keep, 0] >= 0.2))
    assert lo.threshold == 0.2 and "threshold 0.2" in lo.markdown


def test_single_class_fold_gives_nan_not_crash(tmp_path):
    run = make_run(tmp_path, aus=(1, 2), folds=(1,))
    z = dict(np.load(run / "fold1" / "predictions.npz"))
    z["label"][:, 1] = 0
    np.savez(run / "fold1" / "predictions.npz", **z)
    res = evaluate_run(run)
    assert np.isnan(res.pooled.loc["AU02", "auc"])
    assert "n/a" in res.markdown and "one class" in res.markdown


def test_errors(tmp_path):
    with pytest.raises(PattnetError, match="does not exist"):
        evaluate_run(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PattnetError, match="run.json is missing"):
        evaluate_run(tmp_path / "empty")
    run = make_run(tmp_path, folds=())
    with pytest.raises(PattnetError, match="no finished fold"):
        evaluate_run(run)
    run = make_run(tmp_path, name="bad", folds=(1,))
    (run / "fold1" / "predictions.npz").write_bytes(b"not a zip")
    with pytest.raises(PattnetError, match="cannot read"):
        evaluate_run(run)
    run = make_run(tmp_path, name="wrong_aus", aus=(1, 2, 4), folds=(1,))
    (run / "run.json").write_text(json.dumps({"model": "pattnet", "aus": [1, 2]}))
    with pytest.raises(PattnetError, match="do not match"):
        evaluate_run(run)


def test_compare_runs_table3(tmp_path):
    runs = {
        "sigmoid": make_run(tmp_path, "sig", seed=1),
        "P7": make_run(tmp_path, "p7", model="single-patch", patch=7, attention=False, seed=2),
        "holistic": make_run(tmp_path, "hol", model="holistic", attention=False, seed=3),
        "P1": make_run(tmp_path, "p1", model="single-patch", patch=1, attention=False, seed=4),
        "softmax": make_run(tmp_path, "soft", model="pattnet-softmax", seed=5),
    }
    cmp = compare_runs(runs)
    assert list(cmp.f1.columns) == ["P1", "P7", "holistic", "softmax", "sigmoid"]
    assert list(cmp.f1.index) == [f"AU{a:02d}" for a in BP4D_AUS] + ["Avg"]
    ref = evaluate_run(runs["P7"], write=False).pooled["f1"]
    np.testing.assert_allclose(cmp.f1["P7"], ref.to_numpy())
    md = cmp.markdown
    header = ["AU", "P1", "P7", "holistic", "softmax", "sigmoid", "paper best patch",
              "paper PAttNet"]
    assert header in table_rows(md)
    bp = BEST_SINGLE_PATCH[4]
    assert has_cells(md, [f"P{bp[0]} {bp[1]:.1f}", "57.1"])
    assert "**" in md  # our best single patch per AU is marked
    files = cmp.write(tmp_path / "report")
    back = pd.read_csv(files["csv"], index_col=0)
    assert list(back.columns) == list(cmp.f1.columns)
    assert not any((p / "eval").exists() for p in runs.values())  # compare does not write


def test_cli(tmp_path, capsys):
    run = make_run(tmp_path)
    assert main(["evaluate", str(run)]) == 0
    out = capsys.readouterr().out
    assert "## Table 1" in out and "46.1" in out and str(run / "eval" / "tables.md") in out
    assert main(["evaluate", str(run), "--threshold", "0.4"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("pattnet: error:") and "missing" in err
    bare = make_run(tmp_path, "bare", folds=())
    assert main(["evaluate", str(bare)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no finished fold" in err
